//! `match`: which requests a fault applies to.

use std::collections::BTreeMap;

use globset::GlobMatcher;
use http::header::HeaderName;
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

/// The parts of a request that a fault can match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request path, without the query.
    pub path: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// Restricts a fault to some requests. Every condition given must hold.
///
/// - `method`: exact, case-sensitive (`"POST"`).
/// - `path`: a prefix (`"/api/"`), or a glob when it contains `*`, `?` or `[`
///   (`"/orders/*/items"`; `*` does not cross `/`, `**` does).
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawMatch", into = "RawMatch")]
pub struct RequestMatch {
    method: Option<Method>,
    path: Option<PathPattern>,
    headers: Vec<(HeaderName, String)>,
}

#[derive(Debug, Clone)]
enum PathPattern {
    Prefix(String),
    Glob(String, GlobMatcher),
}

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
        let path = raw
            .path
            .map(|p| {
                if p.contains(['*', '?', '[']) {
                    let glob = globset::GlobBuilder::new(&p)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| format!("match.path: {e}"))?;
                    Ok::<_, String>(PathPattern::Glob(p, glob.compile_matcher()))
                } else {
                    Ok(PathPattern::Prefix(p))
                }
            })
            .transpose()?;
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
            path: m.path.map(|p| match p {
                PathPattern::Prefix(p) | PathPattern::Glob(p, _) => p,
            }),
            headers: m
                .headers
                .into_iter()
                .map(|(h, v)| (h.as_str().to_owned(), v))
                .collect(),
        }
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
        if self.method.as_ref().is_some_and(|m| m != request.method) {
            return false;
        }
        let path_ok = match &self.path {
            None => true,
            Some(PathPattern::Prefix(prefix)) => request.path.starts_with(prefix.as_str()),
            Some(PathPattern::Glob(_, glob)) => glob.is_match(request.path),
        };
        path_ok
            && self.headers.iter().all(|(name, value)| {
                request
                    .headers
                    .get_all(name)
                    .iter()
                    .any(|v| v == value.as_str())
            })
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
