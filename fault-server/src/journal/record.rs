//! One call as the journal keeps it.

use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

use crate::fault::FaultKinds;

/// The header that carries the harness's correlation id when no `traceparent` does.
pub const REQUEST_ID_HEADER: &str = "x-faultline-request";
/// The header a client may set to number its attempts (1 for the first try).
pub const ATTEMPT_HEADER: &str = "x-faultline-attempt";

/// One call a dependency received.
///
/// Times are nanoseconds since the fault server started, on a monotonic clock
/// shared by every dependency of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Arrival order at this dependency, from 0.
    pub seq: u64,
    /// When the request head had been read.
    pub arrival_ns: u64,
    /// When the call ended; absent while it is in flight.
    pub departure_ns: Option<u64>,
    /// Calls in flight at this dependency right after this one arrived (itself included).
    pub in_flight: u64,
    /// Request method.
    #[serde(with = "method_text")]
    pub method: Method,
    /// Request path, without the query.
    pub path: String,
    /// The trace-id of a W3C `traceparent` header, else the `x-faultline-request` header.
    pub correlation_id: Option<String>,
    /// The `idempotency-key` header.
    pub idempotency_key: Option<String>,
    /// The `x-faultline-attempt` header, else Envoy's `x-envoy-attempt-count`.
    pub attempt: Option<u32>,
    /// The faults that applied.
    pub faults: FaultKinds,
    /// How the call ended.
    pub outcome: CallOutcome,
    /// The status sent, if a response head went out.
    pub status: Option<u16>,
    /// The journal window (see `mark`) the call arrived in.
    pub window: u32,
    /// For a call a proxy forwarded, how long its upstream took to answer
    /// (to its response head, or to failing), in nanoseconds; absent for a
    /// call answered by the fault server itself (a stub, or a fault that
    /// answered instead of forwarding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ns: Option<u64>,
    /// A TCP proxy's connection: bytes it carried from the client to the
    /// upstream, and from the upstream to the client (absent for HTTP calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<ByteCounts>,
    /// The values of the headers the dependency keeps (`keep_headers`), as
    /// name and value pairs in the request's order; empty when it keeps none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// Bytes a TCP proxy's connection carried each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteCounts {
    /// From the client to the upstream.
    pub upstream: u64,
    /// From the upstream to the client.
    pub downstream: u64,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Not over yet.
    InFlight,
    /// A whole response was sent.
    Responded,
    /// The fault server reset the connection.
    Reset,
    /// The fault server closed the connection without a response.
    Closed,
    /// The fault server sent bytes that are not HTTP.
    Malformed,
    /// The client went away before the call was over.
    ClientGone,
    /// A proxy's upstream could not be reached or failed mid-answer: the
    /// client got a 502 (or a cut-off body); a TCP proxy's could not be
    /// connected to.
    UpstreamError,
    /// A TCP proxy's connection ended by its client.
    ClientClosed,
    /// A TCP proxy's connection ended by its upstream.
    UpstreamClosed,
    /// A TCP proxy's connection closed by a `timeout` fault.
    TimedOut,
    /// A TCP proxy's connection refused by a `down` fault.
    Refused,
}

impl CallOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [CallOutcome; 11] = [
        CallOutcome::InFlight,
        CallOutcome::Responded,
        CallOutcome::Reset,
        CallOutcome::Closed,
        CallOutcome::Malformed,
        CallOutcome::ClientGone,
        CallOutcome::UpstreamError,
        CallOutcome::ClientClosed,
        CallOutcome::UpstreamClosed,
        CallOutcome::TimedOut,
        CallOutcome::Refused,
    ];

    /// The name as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::InFlight => "in_flight",
            CallOutcome::Responded => "responded",
            CallOutcome::Reset => "reset",
            CallOutcome::Closed => "closed",
            CallOutcome::Malformed => "malformed",
            CallOutcome::ClientGone => "client_gone",
            CallOutcome::UpstreamError => "upstream_error",
            CallOutcome::ClientClosed => "client_closed",
            CallOutcome::UpstreamClosed => "upstream_closed",
            CallOutcome::TimedOut => "timed_out",
            CallOutcome::Refused => "refused",
        }
    }
}

/// What the journal takes from a request when it arrives (borrowed from it:
/// the journal copies only what it keeps).
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request path.
    pub path: &'a str,
    /// See [`CallRecord::correlation_id`].
    pub correlation_id: Option<&'a str>,
    /// See [`CallRecord::idempotency_key`].
    pub idempotency_key: Option<&'a str>,
    /// See [`CallRecord::attempt`].
    pub attempt: Option<u32>,
    /// The request's headers, of which the journal keeps those it was told
    /// to ([`super::Journal::keep_headers`]); `None` for a call without any
    /// (a TCP connection).
    pub headers: Option<&'a HeaderMap>,
}

impl<'a> CallInfo<'a> {
    /// Reads what the journal keeps from a request's method, path and headers.
    ///
    /// ```
    /// use fault_server::CallInfo;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
    /// let info = CallInfo::from_parts(&http::Method::GET, "/x", &headers);
    /// assert_eq!(info.correlation_id, Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// ```
    pub fn from_parts(method: &'a Method, path: &'a str, headers: &'a HeaderMap) -> Self {
        // One pass over the headers: cheaper than hashing five names per call.
        let (mut traceparent, mut request_id, mut idempotency_key) = (None, None, None);
        let (mut attempt, mut envoy_attempt) = (None, None);
        for (name, value) in headers {
            let slot = match name.as_str() {
                "traceparent" => &mut traceparent,
                REQUEST_ID_HEADER => &mut request_id,
                "idempotency-key" => &mut idempotency_key,
                ATTEMPT_HEADER => &mut attempt,
                "x-envoy-attempt-count" => &mut envoy_attempt,
                _ => continue,
            };
            if slot.is_none() {
                *slot = value.to_str().ok();
            }
        }
        let correlation_id = traceparent.and_then(trace_id).or(request_id);
        let attempt = [attempt, envoy_attempt]
            .into_iter()
            .find_map(|a| a?.trim().parse().ok());
        CallInfo {
            method,
            path,
            correlation_id,
            idempotency_key,
            attempt,
            headers: Some(headers),
        }
    }
}

/// A method as its text in JSON.
mod method_text {
    use http::Method;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        method: &Method,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(method.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Method, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Method::from_bytes(text.as_bytes()).map_err(D::Error::custom)
    }
}

/// The trace-id of a `traceparent` (`version-traceid-parentid-flags`), if well formed.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace, parent, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(trace, 32) && hex(parent, 16) && trace.bytes().any(|b| b != b'0')).then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_traceparent_falls_back_to_the_request_header() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "garbage".parse().unwrap());
        headers.insert(REQUEST_ID_HEADER, "req-7".parse().unwrap());
        headers.insert(ATTEMPT_HEADER, "2".parse().unwrap());
        headers.insert("idempotency-key", "order-1".parse().unwrap());
        let info = CallInfo::from_parts(&Method::POST, "/", &headers);
        assert_eq!(info.correlation_id, Some("req-7"));
        assert_eq!(info.attempt, Some(2));
        assert_eq!(info.idempotency_key, Some("order-1"));
    }

    #[test]
    fn an_all_zero_trace_id_is_invalid() {
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
    }
}
