//! `match`: which requests a fault applies to.

mod path;

use std::collections::BTreeMap;

use http::header::HeaderName;
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

/// The parts of a request that a fault can match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request path as received (still percent-encoded), without the query.
    pub path: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// Restricts a fault to some requests. Every condition given must hold.
///
/// - `method`: exact, case-sensitive (`"POST"`).
/// - `path`, compared with the percent-decoded path (`/caf%C3%A9` is
///   `/café`; an encoded slash, `%2F`, stays inside its segment):
///   - a prefix on whole segments: `"/pay"` matches `/pay` and `/pay/refund`,
///     not `/payments`; a prefix ending in `/` (`"/api/"`) matches what is
///     under it (`/api/orders`, `/api/`), not `/api`;
///   - an exact path, written with `=` first as in nginx's `location =`:
///     `"=/charge"` matches `/charge` only (not `/charge/` nor `/charge/x`);
///   - a glob when it contains `*`, `?` or `[`: `"/orders/*/items"` (`*` does
///     not cross `/`, `**` does).
/// - `headers`: each named header must be present with exactly this value.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// error = { status = 500 }
/// match = { method = "POST", path = "/charge", headers = { "x-tenant" = "acme" } }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
///
/// Path forms:
///
/// ```
/// use fault_server::RequestMatch;
/// use http::Method;
///
/// let prefix = RequestMatch::new(None, Some("/pay"), []).unwrap();
/// assert_eq!(prefix.matches_call(&Method::GET, "/pay/refund"), Some(true));
/// assert_eq!(prefix.matches_call(&Method::GET, "/payments"), Some(false));
///
/// let exact = RequestMatch::new(Some("POST"), Some("=/charge"), []).unwrap();
/// assert_eq!(exact.matches_call(&Method::POST, "/charge"), Some(true));
/// assert_eq!(exact.matches_call(&Method::POST, "/charge/x"), Some(false));
///
/// let decoded = RequestMatch::new(None, Some("=/café"), []).unwrap();
/// assert_eq!(decoded.matches_call(&Method::GET, "/caf%C3%A9"), Some(true));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawMatch", into = "RawMatch")]
pub struct RequestMatch {
    method: Option<Method>,
    path: Option<PathPattern>,
    headers: Vec<(HeaderName, String)>,
}

use path::PathPattern;

#[derive(PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

impl PartialEq for RequestMatch {
    fn eq(&self, other: &Self) -> bool {
        RawMatch::from(self.clone()) == RawMatch::from(other.clone())
    }
}

impl TryFrom<RawMatch> for RequestMatch {
    type Error = String;

    fn try_from(raw: RawMatch) -> Result<Self, String> {
        let method = raw
            .method
            .map(|m| {
                Method::from_bytes(m.as_bytes())
                    .map_err(|_| format!("match.method: `{m}` is not an HTTP method"))
            })
            .transpose()?;
        let path = raw.path.as_deref().map(PathPattern::parse).transpose()?;
        let headers = raw
            .headers
            .into_iter()
            .map(|(name, value)| {
                HeaderName::try_from(name.as_str())
                    .map(|h| (h, value))
                    .map_err(|_| format!("match.headers: `{name}` is not a valid header name"))
            })
            .collect::<Result<_, String>>()?;
        Ok(RequestMatch {
            method,
            path,
            headers,
        })
    }
}

impl From<RequestMatch> for RawMatch {
    fn from(m: RequestMatch) -> Self {
        RawMatch {
            method: m.method.map(|m| m.to_string()),
            path: m.path.map(|p| p.text().to_owned()),
            headers: m
                .headers
                .into_iter()
                .map(|(h, v)| (h.as_str().to_owned(), v))
                .collect(),
        }
    }
}

/// The conditions as a user wrote them, space-separated: `POST =/charge
/// x-tenant=acme`; `*` for a matcher with none.
impl std::fmt::Display for RequestMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(method) = &self.method {
            parts.push(method.to_string());
        }
        if let Some(path) = &self.path {
            parts.push(path.text().to_owned());
        }
        for (name, value) in &self.headers {
            parts.push(format!("{name}={value}"));
        }
        if parts.is_empty() {
            return f.write_str("*");
        }
        f.write_str(&parts.join(" "))
    }
}

impl RequestMatch {
    /// Builds a matcher from its file form.
    ///
    /// ```
    /// use fault_server::RequestMatch;
    /// let m = RequestMatch::new(Some("POST"), Some("/orders/*"), []).unwrap();
    /// # let _ = m;
    /// ```
    pub fn new<'a>(
        method: Option<&str>,
        path: Option<&str>,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        RawMatch {
            method: method.map(str::to_owned),
            path: path.map(str::to_owned),
            headers: headers
                .into_iter()
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect(),
        }
        .try_into()
    }

    /// Whether the request meets every condition.
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.method_and_path_match(request.method, request.path)
            && self.headers.iter().all(|(name, value)| {
                request
                    .headers
                    .get_all(name)
                    .iter()
                    .any(|v| v == value.as_str())
            })
    }

    /// Whether a call known only by its method and path (a journal record:
    /// the path as received, still percent-encoded) meets the conditions.
    /// `None` when the matcher has `headers` conditions, which a method and a
    /// path cannot answer: the caller must not guess.
    ///
    /// ```
    /// use fault_server::RequestMatch;
    /// use http::Method;
    ///
    /// let m = RequestMatch::new(Some("POST"), Some("/pay"), []).unwrap();
    /// assert_eq!(m.matches_call(&Method::POST, "/pay/refund"), Some(true));
    /// assert_eq!(m.matches_call(&Method::GET, "/pay"), Some(false));
    /// let tenant = RequestMatch::new(None, Some("/pay"), [("x-tenant", "acme")]).unwrap();
    /// assert_eq!(tenant.matches_call(&Method::GET, "/pay"), None);
    /// ```
    pub fn matches_call(&self, method: &Method, path: &str) -> Option<bool> {
        self.headers
            .is_empty()
            .then(|| self.method_and_path_match(method, path))
    }

    /// The headers it has conditions on.
    pub fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.headers.iter().map(|(name, _)| name)
    }

    /// Whether the matcher has conditions on headers (see [`Self::matches_call`]).
    pub fn needs_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    fn method_and_path_match(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self.path.as_ref().is_none_or(|p| p.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(method: &'a Method, path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            method,
            path,
            headers,
        }
    }

    #[test]
    fn a_path_without_wildcards_is_a_prefix() {
        let m = RequestMatch::new(None, Some("/api/"), []).unwrap();
        let h = HeaderMap::new();
        assert!(m.matches(&view(&Method::GET, "/api/orders", &h)));
        assert!(!m.matches(&view(&Method::GET, "/health", &h)));
    }

    #[test]
    fn a_prefix_matches_whole_decoded_segments_only() {
        let m = RequestMatch::new(None, Some("/pay"), []).unwrap();
        let h = HeaderMap::new();
        assert!(m.matches(&view(&Method::GET, "/pay", &h)));
        assert!(m.matches(&view(&Method::GET, "/pay/x", &h)));
        assert!(m.matches(&view(&Method::GET, "/%70ay/x", &h)));
        assert!(!m.matches(&view(&Method::GET, "/payments", &h)));
        assert!(!m.matches(&view(&Method::GET, "/pay%2Fments", &h)));
    }

    #[test]
    fn matches_call_answers_without_headers_and_refuses_when_it_needs_them() {
        let m = RequestMatch::new(Some("GET"), Some("=/caf%C3%A9"), []).unwrap();
        assert_eq!(m.matches_call(&Method::GET, "/café"), Some(true));
        assert_eq!(m.matches_call(&Method::GET, "/caf%C3%A9"), Some(true));
        assert_eq!(m.matches_call(&Method::GET, "/caf%C3%A9/x"), Some(false));
        assert_eq!(m.matches_call(&Method::PUT, "/café"), Some(false));
        assert!(!m.needs_headers());
        let any = RequestMatch::new(None, None, []).unwrap();
        assert_eq!(any.matches_call(&Method::DELETE, "/x"), Some(true));
        let headed = RequestMatch::new(None, None, [("x-tenant", "acme")]).unwrap();
        assert_eq!(headed.matches_call(&Method::GET, "/"), None);
        assert!(headed.needs_headers());
    }

    #[test]
    fn the_file_form_round_trips_every_path_form() {
        for path in ["/pay", "=/charge", "/orders/*/items", "/api/"] {
            let m = RequestMatch::new(None, Some(path), []).unwrap();
            let json = serde_json::to_string(&m).unwrap();
            let back: RequestMatch = serde_json::from_str(&json).unwrap();
            assert_eq!(back, m, "{json}");
            assert!(json.contains(&format!("\"{path}\"")), "{json}");
        }
    }

    #[test]
    fn a_glob_star_stays_within_one_segment() {
        let m = RequestMatch::new(None, Some("/orders/*/items"), []).unwrap();
        let h = HeaderMap::new();
        assert!(m.matches(&view(&Method::GET, "/orders/42/items", &h)));
        assert!(!m.matches(&view(&Method::GET, "/orders/42/x/items", &h)));
    }

    #[test]
    fn method_and_headers_must_all_hold() {
        let m = RequestMatch::new(Some("POST"), None, [("x-tenant", "acme")]).unwrap();
        let mut h = HeaderMap::new();
        assert!(!m.matches(&view(&Method::POST, "/", &h)));
        h.insert("x-tenant", "acme".parse().unwrap());
        assert!(m.matches(&view(&Method::POST, "/", &h)));
        assert!(!m.matches(&view(&Method::GET, "/", &h)));
    }

    #[test]
    fn bad_parts_are_named() {
        assert!(RequestMatch::new(Some("GET POST"), None, [])
            .unwrap_err()
            .contains("method"));
        assert!(RequestMatch::new(None, None, [("bad name", "x")])
            .unwrap_err()
            .contains("bad name"));
    }
}
