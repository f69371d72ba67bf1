//! A suite's `[[load]]` entries: an endpoint, how requests arrive at it, and
//! what each request carries (headers, a body, a value unique to it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::{MAX_CLIENTS, MAX_DURATION, MAX_RATE};

pub use crate::load::REQUEST_ID;

/// Headers faultline sets on every request itself, which a load may not set.
const SET_BY_FAULTLINE: [&str; 4] = [
    "traceparent",
    fault_server::journal::REQUEST_ID_HEADER,
    "host",
    "content-length",
];

/// One `[[load]]` entry: an endpoint and how requests arrive at it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// The endpoint's name in verdicts and reports.
    pub endpoint: String,
    /// Path and query, joined to the target's base URL (or `variants`).
    #[serde(default)]
    pub path: Option<String>,
    /// Request method.
    #[serde(default = "get")]
    pub method: String,
    /// Open loop: requests per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open loop: the rate at the end of the run, ramping linearly from `rate`.
    #[serde(default)]
    pub ramp_to: Option<f64>,
    /// Closed loop: concurrent clients.
    #[serde(default)]
    pub clients: Option<usize>,
    /// Client timeout.
    #[serde(default = "super::ten_seconds", with = "humantime_serde")]
    pub timeout: Duration,
    /// Headers every request carries; [`REQUEST_ID`] in a value is the
    /// request's own correlation id.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body every request carries (UTF-8 text; [`REQUEST_ID`] in it is
    /// the request's own id); after reading, also a `body_file`'s contents.
    #[serde(default)]
    pub body: Option<String>,
    /// ...or a file holding it, relative to the suite's file.
    #[serde(default)]
    pub body_file: Option<PathBuf>,
    /// Closed loop: how long each client waits after an answer before it
    /// sends again (think time).
    #[serde(default, with = "humantime_serde::option")]
    pub pause: Option<Duration>,
    /// The most requests this load sends over the run.
    #[serde(default)]
    pub requests: Option<u64>,
    /// The phases it sends in (every phase when absent): a burst only
    /// during "overload".
    #[serde(default)]
    pub phases: Option<Vec<String>>,
    /// Several requests taken in turn by weight, instead of `path` (k6's
    /// scenarios, vegeta's targets): a checkout mix of GETs and POSTs.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
}

/// One of a load's `variants`: a request of its own and its weight. The
/// load's `headers` go with every variant (a variant's own of the same name
/// win), and its `body` with those that have none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Path and query.
    pub path: String,
    /// Request method.
    #[serde(default = "get")]
    pub method: String,
    /// Its share of the load's requests (1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Headers of its own.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A body of its own...
    #[serde(default)]
    pub body: Option<String>,
    /// ...or a file holding it, relative to the suite's file.
    #[serde(default)]
    pub body_file: Option<PathBuf>,
}

fn one() -> u32 {
    1
}

fn get() -> String {
    "GET".to_owned()
}

/// A load means something: a rate one driver could keep that sends at
/// least one request over the run, clients the process can hold, a timeout
/// above zero, a method, headers that are headers. An error names its key.
pub(super) fn check(load: &LoadSpec, run_for: Duration, phases: &[&str]) -> Result<(), String> {
    for (key, rate) in [("rate", load.rate), ("ramp_to", load.ramp_to)] {
        if rate.is_some_and(|r| !r.is_finite() || r > MAX_RATE) {
            return Err(format!("{key}: at most {MAX_RATE} requests/s"));
        }
    }
    if let Some(rate) = load.rate {
        let mean = (rate + load.ramp_to.unwrap_or(rate)) / 2.0;
        if rate > 0.0 && mean * run_for.as_secs_f64() < 1.0 {
            return Err(format!(
                "at {mean} requests/s over the run's {} not one request goes out",
                humantime::format_duration(run_for)
            ));
        }
    }
    if load.clients.is_some_and(|c| c > MAX_CLIENTS) {
        return Err(format!(
            "clients: at most {MAX_CLIENTS} (each holds a connection; split a larger load over processes)"
        ));
    }
    if load.timeout.is_zero() || load.timeout > MAX_DURATION {
        return Err(format!(
            "timeout must be above 0 and at most {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    match (load.rate, load.clients) {
        (Some(rate), None) if rate.is_finite() && rate > 0.0 => {}
        (None, Some(clients)) if clients > 0 => {}
        (Some(_), Some(_)) => {
            return Err("a load is open (`rate`) or closed (`clients`), not both".into())
        }
        _ => {
            return Err("a load needs `rate` (requests/s above 0) or `clients` (at least 1)".into())
        }
    }
    if load
        .ramp_to
        .is_some_and(|to| !(to.is_finite() && to >= 0.0))
        || (load.ramp_to.is_some() && load.rate.is_none())
    {
        return Err("ramp_to goes with rate, and is a rate of 0 or more".into());
    }
    if http::Method::from_bytes(load.method.as_bytes()).is_err() {
        return Err(format!("`{}` is not an HTTP method", load.method));
    }
    for (name, value) in &load.headers {
        check_header(name, value).map_err(|e| format!("headers: `{name}`: {e}"))?;
    }
    if load.body.is_some() && load.body_file.is_some() {
        return Err("`body` or `body_file`, not both".into());
    }
    match (&load.path, load.variants.is_empty()) {
        (Some(_), false) => return Err("`path` or `variants`, not both".into()),
        (None, true) => return Err("a load needs `path` (or `variants`)".into()),
        _ => {}
    }
    if let Some(path) = &load.path {
        check_path(path).map_err(|e| format!("path: {e}"))?;
    }
    check_header_names(&load.headers).map_err(|e| format!("headers: {e}"))?;
    let weights: u64 = load.variants.iter().map(|v| u64::from(v.weight)).sum();
    if weights > MAX_WEIGHTS {
        return Err(format!(
            "variants: their weights add up to {weights}, at most {MAX_WEIGHTS} (shares are what count: 3 and 1 is 75 and 25)"
        ));
    }
    for (i, variant) in load.variants.iter().enumerate() {
        let at = |e: String| format!("variants[{i}]: {e}");
        if http::Method::from_bytes(variant.method.as_bytes()).is_err() {
            return Err(at(format!("`{}` is not an HTTP method", variant.method)));
        }
        if variant.weight == 0 {
            return Err(at(
                "weight: at least 1 (leave a variant out to send none)".into()
            ));
        }
        check_path(&variant.path).map_err(|e| at(format!("path: {e}")))?;
        check_header_names(&variant.headers).map_err(|e| at(format!("headers: {e}")))?;
        for (name, value) in &variant.headers {
            check_header(name, value).map_err(|e| at(format!("headers: `{name}`: {e}")))?;
        }
        if variant.body.is_some() && variant.body_file.is_some() {
            return Err(at("`body` or `body_file`, not both".into()));
        }
    }
    if !load.variants.is_empty() && load.method != "GET" {
        return Err("`method` goes with `path`; each variant has its own".into());
    }
    if let Some(pause) = load.pause {
        if load.clients.is_none() {
            return Err(
                "pause: a closed loop's think time (`clients`); an open loop's requests go out on its schedule"
                    .into(),
            );
        }
        if pause > MAX_DURATION {
            return Err(format!(
                "pause: at most {}",
                humantime::format_duration(MAX_DURATION)
            ));
        }
    }
    if load.requests == Some(0) {
        return Err("requests: at least 1".into());
    }
    if let Some(named) = &load.phases {
        if named.is_empty() {
            return Err("phases: name at least one (or leave it out: every phase)".into());
        }
        for (i, name) in named.iter().enumerate() {
            if !phases.contains(&name.as_str()) {
                let hint = fault_server::located::did_you_mean(name, phases.iter().copied());
                return Err(format!("phases: no phase named `{name}`{hint}"));
            }
            if named[..i].contains(name) {
                return Err(format!("phases: `{name}` is named twice"));
            }
        }
    }
    Ok(())
}

/// The most a load's variants' weights may add up to.
pub const MAX_WEIGHTS: u64 = 10_000;

/// A path and query the target's base URL takes: from `/`, a valid URI
/// path (`{request_id}` goes in headers and the body, not here).
fn check_path(path: &str) -> Result<(), String> {
    if path.contains(REQUEST_ID) {
        return Err(format!(
            "{REQUEST_ID} goes in a header or the body, not the path"
        ));
    }
    if !path.starts_with('/') {
        return Err(format!("`{path}` does not start with `/`"));
    }
    path.parse::<http::uri::PathAndQuery>()
        .map(|_| ())
        .map_err(|_| {
            format!("`{path}` is not a URI path (escape spaces and other characters as %XX)")
        })
}

/// No header named twice (names are compared without case, as HTTP does).
fn check_header_names(headers: &BTreeMap<String, String>) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for name in headers.keys() {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!(
                "`{name}` is named twice (header names ignore case)"
            ));
        }
    }
    Ok(())
}

/// A header a load may set: a valid name faultline does not set itself, and
/// a value that is valid whatever id replaces [`REQUEST_ID`].
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| "is not a header name".to_owned())?;
    if SET_BY_FAULTLINE.contains(&header.as_str()) {
        return Err(
            "faultline sets it on every request itself (the correlation id, the target's host, the body's length)"
                .into(),
        );
    }
    let sample = value.replace(REQUEST_ID, &"0".repeat(32));
    HeaderValue::from_str(&sample).map_err(|_| "its value is not a header value".to_owned())?;
    Ok(())
}

/// `load` with its `body_file` (relative to `suite`'s folder) read into
/// `body`.
///
/// # Errors
/// The file cannot be read, or is not UTF-8 text.
pub(super) fn with_body_file(mut load: LoadSpec, suite: &Path) -> Result<LoadSpec, String> {
    if let Some(file) = &load.body_file {
        load.body = Some(read_body(file, suite)?);
    }
    for variant in &mut load.variants {
        if let Some(file) = &variant.body_file {
            variant.body = Some(read_body(file, suite)?);
        }
    }
    Ok(load)
}

/// The largest body a load may send, in bytes.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The text of `file`, relative to `suite`'s folder: a regular file of at
/// most [`MAX_BODY`] bytes.
fn read_body(file: &Path, suite: &Path) -> Result<String, String> {
    use std::io::Read;
    let path = suite.parent().unwrap_or(Path::new(".")).join(file);
    let shown = path.display();
    let meta = std::fs::metadata(&path).map_err(|e| format!("body_file `{shown}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("body_file `{shown}`: not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_BODY + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("body_file `{shown}`: {e}"))?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(format!("body_file `{shown}`: larger than {MAX_BODY} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| format!("body_file `{shown}`: not UTF-8 text"))
}

#[cfg(test)]
mod tests;
