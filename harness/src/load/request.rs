//! One request: fresh correlation headers, sent with a timeout, classified.

use bytes::Bytes;
use fault_server::Clock;
use http::header::{HeaderName, HeaderValue};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio::time::Instant;

use super::Endpoint;
use crate::{EdgeOutcome, EdgeRecord};

pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The correlation id of a request: 32 hex digits, usable as a W3C trace-id.
pub(super) fn correlation_id(run: u64, seq: u64) -> String {
    // The run number keeps ids unique across runs; the low bit keeps the
    // trace-id from ever being all zeros, which W3C forbids.
    format!("{run:016x}{:016x}", (seq << 1) | 1)
}

/// Sends one request intended at `intended` and returns its record.
pub(super) async fn send(
    client: &HttpClient,
    endpoint: &Endpoint,
    clock: Clock,
    intended: Instant,
    id: String,
) -> EdgeRecord {
    let mut request = Request::builder()
        .method(endpoint.method.clone())
        .uri(endpoint.url.clone())
        .body(Full::new(endpoint.body.clone()))
        .unwrap_or_default();
    *request.headers_mut() = endpoint.headers.clone();
    let headers = request.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("00-{id}-{}-01", &id[16..])) {
        headers.insert(HeaderName::from_static("traceparent"), value);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(
            HeaderName::from_static(fault_server::journal::REQUEST_ID_HEADER),
            value,
        );
    }
    let sent = Instant::now();
    let (outcome, retry_after) =
        match tokio::time::timeout(endpoint.timeout, exchange(client, request)).await {
            Ok(answer) => answer,
            Err(_) => (EdgeOutcome::Timeout, false),
        };
    let ended = Instant::now();
    EdgeRecord {
        endpoint: endpoint.name.clone(),
        intended_ns: clock.ns_at(intended),
        sent_ns: clock.ns_at(sent),
        ended_ns: clock.ns_at(ended),
        outcome,
        correlation_id: Some(id),
        retry_after,
    }
}

/// The outcome, and whether the answer carried `Retry-After`.
async fn exchange(client: &HttpClient, request: Request<Full<Bytes>>) -> (EdgeOutcome, bool) {
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key(http::header::RETRY_AFTER);
            // The answer counts once its whole body has arrived.
            match response.into_body().collect().await {
                Ok(_) => (EdgeOutcome::Status(status), retry_after),
                Err(_) => (EdgeOutcome::Reset, false),
            }
        }
        Err(error) if error.is_connect() => (EdgeOutcome::ConnectError, false),
        Err(_) => (EdgeOutcome::Reset, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_unique_valid_trace_ids() {
        let a = correlation_id(7, 0);
        let b = correlation_id(7, 1);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(correlation_id(0, 0), "0".repeat(32));
    }
}
