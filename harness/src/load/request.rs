//! One request: fresh correlation headers, sent with a timeout, classified.

use bytes::Bytes;
use fault_server::Clock;
use http::header::{HeaderName, HeaderValue};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio::time::Instant;

use std::sync::Arc;

use super::Endpoint;
use crate::{CorrelationId, EdgeOutcome, EdgeRecord};

pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends one request intended at `intended` and returns its record.
pub(super) async fn send(
    client: &HttpClient,
    endpoint: &Endpoint,
    name: &Arc<str>,
    clock: Clock,
    intended: Instant,
    id: CorrelationId,
) -> EdgeRecord {
    let mut request = Request::builder()
        .method(endpoint.method.clone())
        .uri(endpoint.url.clone())
        .body(Full::new(endpoint.body.clone()))
        .unwrap_or_default();
    *request.headers_mut() = endpoint.headers.clone();
    let headers = request.headers_mut();
    let id_text = id.to_string();
    if let Ok(value) = HeaderValue::from_str(&format!("00-{id_text}-{}-01", id.span_id())) {
        headers.insert(HeaderName::from_static("traceparent"), value);
    }
    if let Ok(value) = HeaderValue::from_str(&id_text) {
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
        endpoint: Arc::clone(name),
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
