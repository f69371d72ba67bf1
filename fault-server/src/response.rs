//! What a stub answers: the configured response, and the compiled template
//! that stubs and `error` faults both send.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::Distribution;

/// The answer a stub dependency gives when no fault says otherwise.
///
/// ```toml
/// [dependencies.response]
/// status = 200
/// body = '{"ok": true}'
/// headers = { "content-type" = "application/json" }
/// latency = { normal = { mean = "200ms", stddev = "20ms" } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StubResponse {
    /// HTTP status, 200 to 599 (a 1xx is not a final answer); 200 unless set.
    /// A 204 or 304, or any answer to a `HEAD`, goes out without the body.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Response body.
    #[serde(default)]
    pub body: String,
    /// The dependency's normal latency, before any fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Distribution>,
}

fn default_status() -> u16 {
    200
}

impl Default for StubResponse {
    fn default() -> Self {
        StubResponse {
            status: default_status(),
            headers: BTreeMap::new(),
            body: String::new(),
            latency: None,
        }
    }
}

impl StubResponse {
    /// A 200 with this body and no latency.
    ///
    /// ```
    /// let ok = fault_server::StubResponse::ok("{}");
    /// assert_eq!(ok.status, 200);
    /// ```
    pub fn ok(body: impl Into<String>) -> Self {
        StubResponse {
            body: body.into(),
            ..StubResponse::default()
        }
    }

    /// Sets the normal latency.
    pub fn with_latency(mut self, latency: Distribution) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Checks status, headers and latency, naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.template()?;
        if let Some(latency) = &self.latency {
            latency.validate().map_err(|e| format!("latency: {e}"))?;
        }
        Ok(())
    }

    pub(crate) fn template(&self) -> Result<ResponseTemplate, String> {
        ResponseTemplate::new(self.status, &self.headers, &self.body, None)
    }
}

/// A response ready to send many times.
#[derive(Debug, Clone)]
pub(crate) struct ResponseTemplate {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl ResponseTemplate {
    pub(crate) fn new(
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
        retry_after: Option<Duration>,
    ) -> Result<Self, String> {
        // A 1xx is an interim response: hyper cannot send one as the answer
        // (it would send a 500 and close), so it is refused here.
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))
            .ok_or_else(|| {
                if (100..=199).contains(&status) {
                    format!("status must be 200 to 599, got {status}: a 1xx is not a final answer")
                } else {
                    format!("status must be 200 to 599, got {status}")
                }
            })?;
        // No spare capacity: the map is cloned for every response sent.
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("headers: `{name}` is not a valid header name"))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                format!("headers: the value of `{name}` is not a valid header value")
            })?;
            map.append(header, value);
        }
        if let Some(retry_after) = retry_after {
            map.insert(RETRY_AFTER, retry_after_value(retry_after));
        }
        Ok(ResponseTemplate {
            status,
            headers: map,
            body: Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    /// 200 with nothing: never sent in practice (a call that ends with the
    /// stub's response always carries it), but a safe answer if it were.
    pub(crate) fn empty() -> Self {
        ResponseTemplate {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A bodiless rejection with a `Retry-After`.
    pub(crate) fn rejection(status: StatusCode, retry_after: Duration) -> Self {
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(RETRY_AFTER, retry_after_value(retry_after));
        ResponseTemplate {
            status,
            headers,
            body: Bytes::new(),
        }
    }
}

/// `Retry-After` carries whole seconds; round up so a client never comes back early.
fn retry_after_value(after: Duration) -> HeaderValue {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    HeaderValue::from(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_value(Duration::from_millis(1_001)), "2");
        assert_eq!(retry_after_value(Duration::from_secs(30)), "30");
    }

    #[test]
    fn bad_status_and_headers_are_named() {
        let mut stub = StubResponse::ok("");
        stub.status = 42;
        assert!(stub.validate().unwrap_err().contains("status"));
        for interim in [100, 101, 103, 199] {
            let mut stub = StubResponse::ok("");
            stub.status = interim;
            let err = stub.validate().unwrap_err();
            assert!(err.contains("1xx"), "{interim}: {err}");
        }
        let mut stub = StubResponse::ok("");
        stub.headers.insert("bad header".into(), "x".into());
        assert!(stub.validate().unwrap_err().contains("bad header"));
    }
}
