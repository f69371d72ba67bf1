//! A dependency as configured: what the config file, a suite, the control
//! API and the Rust builder give.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::{ControlError, HttpProxy, StubResponse};

/// A dependency as configured: a name, where it listens, what it answers, and
/// the faults it starts with.
///
/// ```
/// use fault_server::{DependencySpec, StubResponse, Distribution};
/// use std::time::Duration;
///
/// let spec = DependencySpec::stub("payments")
///     .with_response(StubResponse::ok("{}").with_latency(Distribution::Fixed(Duration::from_millis(200))));
/// assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    /// Unique name: letters, digits, `-`, `_` and `.`, at most 64.
    pub name: String,
    /// Where to listen; 127.0.0.1 on a free port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// What it answers when no fault says otherwise (a stub's; a proxy
    /// answers with its upstream's response).
    #[serde(default)]
    pub response: StubResponse,
    /// Forward every request to this HTTP upstream instead of answering it
    /// (a proxy dependency): `"http://127.0.0.1:9000"`, or a table with
    /// options ([`HttpProxy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<HttpProxy>,
    /// Pipe every connection to this TCP upstream, `host:port` (a TCP proxy
    /// dependency: a database, a cache, a broker), with connection-level
    /// faults (see [`crate::fault::Stream`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Faults in force from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Keep these request headers' values in each call's journal record (at
    /// most 16): what a property that selects calls by header reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_headers: Vec<String>,
    /// Read each request body as an Alertmanager webhook and keep its alerts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alert_sink: bool,
}

impl DependencySpec {
    /// A stub answering 200 with an empty body, on a free loopback port.
    pub fn stub(name: impl Into<String>) -> Self {
        DependencySpec {
            name: name.into(),
            listen: None,
            response: StubResponse::default(),
            proxy: None,
            tcp: None,
            keep_headers: Vec::new(),
            faults: Vec::new(),
            alert_sink: false,
        }
    }

    /// A proxy dependency: every request forwarded to `upstream`
    /// (`http://host:port` or `https://...`), faults applied on the way.
    ///
    /// ```
    /// use fault_server::DependencySpec;
    /// let spec = DependencySpec::proxy("payments", "http://127.0.0.1:9000");
    /// assert!(spec.validate().is_ok());
    /// ```
    pub fn proxy(name: impl Into<String>, upstream: impl Into<String>) -> Self {
        DependencySpec {
            proxy: Some(HttpProxy::to(upstream)),
            ..DependencySpec::stub(name)
        }
    }

    /// Makes it an alert sink (see [`crate::AlertRecord`]).
    pub fn as_alert_sink(mut self) -> Self {
        self.alert_sink = true;
        self
    }

    /// Sets the response.
    pub fn with_response(mut self, response: StubResponse) -> Self {
        self.response = response;
        self
    }

    /// Listens on this address.
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Adds a fault in force from the start.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// A TCP proxy dependency: every connection piped to `upstream`
    /// (`host:port`), with connection-level faults.
    ///
    /// ```
    /// use fault_server::DependencySpec;
    /// assert!(DependencySpec::tcp("db", "127.0.0.1:5432").validate().is_ok());
    /// assert!(DependencySpec::tcp("db", "5432").validate().is_err());
    /// ```
    pub fn tcp(name: impl Into<String>, upstream: impl Into<String>) -> Self {
        DependencySpec {
            tcp: Some(upstream.into()),
            ..DependencySpec::stub(name)
        }
    }

    /// Checks the name, response (or proxy) and faults.
    pub fn validate(&self) -> Result<(), ControlError> {
        validate_name(&self.name)?;
        self.response
            .validate()
            .map_err(|e| ControlError::invalid("response", e))?;
        if let Some(proxy) = &self.proxy {
            proxy
                .validate()
                .map_err(|e| ControlError::invalid("proxy", e))?;
            if self.response != StubResponse::default() {
                return Err(ControlError::invalid(
                    "response",
                    "a proxy answers with its upstream's response; `response` is a stub's",
                ));
            }
            if self.alert_sink {
                return Err(ControlError::invalid(
                    "alert_sink",
                    "an alert sink answers webhooks itself; it cannot be a proxy",
                ));
            }
        }
        if self.keep_headers.len() > crate::journal::MAX_KEPT_HEADERS {
            return Err(ControlError::invalid(
                "keep_headers",
                format!("at most {} headers", crate::journal::MAX_KEPT_HEADERS),
            ));
        }
        for name in &self.keep_headers {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(ControlError::invalid(
                    "keep_headers",
                    format!("`{name}` is not a header name"),
                ));
            }
        }
        if let Some(upstream) = &self.tcp {
            check_tcp_upstream(upstream).map_err(|e| ControlError::invalid("tcp", e))?;
            let stub_only = [
                (
                    self.proxy.is_some(),
                    "proxy",
                    "a dependency is a TCP proxy or an HTTP one, not both",
                ),
                (
                    self.response != StubResponse::default(),
                    "response",
                    "a TCP proxy answers nothing itself; `response` is a stub's",
                ),
                (
                    self.alert_sink,
                    "alert_sink",
                    "an alert sink answers webhooks itself; it cannot be a TCP proxy",
                ),
            ];
            if let Some((_, key, why)) = stub_only.into_iter().find(|(set, _, _)| *set) {
                return Err(ControlError::invalid(key, why));
            }
        }
        for (i, fault) in self.faults.iter().enumerate() {
            fault
                .validate()
                .and_then(|()| fault.check_for(self.tcp.is_some()))
                .map_err(|e| ControlError::invalid(format!("faults[{i}]"), e))?;
        }
        crate::fault::check_names(&self.faults)
            .map_err(|(i, e)| ControlError::invalid(format!("faults[{i}].name"), e))
    }
}

fn validate_name(name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        // `.` and `..` are path steps a URL library removes: not addressable.
        && !name.bytes().all(|b| b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ControlError::invalid(
            "name",
            format!("`{name}` must be 1 to 64 letters, digits, `-`, `_` or `.`, not only dots"),
        ))
    }
}

/// A TCP upstream is `host:port`: a name or an address, and a port above 0.
pub(crate) fn check_tcp_upstream(upstream: &str) -> Result<(), String> {
    let (host, port) = upstream
        .rsplit_once(':')
        .ok_or_else(|| format!("`{upstream}` is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!("`{upstream}` is not host:port"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!("`{upstream}`: the port must be 1 to 65535")),
    }
}
