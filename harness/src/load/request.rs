//! One request: fresh correlation headers, sent with a timeout, classified.
//! Sent either through a keep-alive pool (open loop: any number in flight)
//! or on a client's own connection (closed loop: one at a time, as wrk and
//! oha do, without the pool's bookkeeping).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use fault_server::Clock;
use futures_util::FutureExt;
use http::header::{HeaderName, HeaderValue, HOST};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Endpoint, PerRequest, REQUEST_ID};
use faultline_properties::{CorrelationId, EdgeOutcome, EdgeRecord};

pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What came back: the outcome, and whether the answer carried `Retry-After`.
type Answer = (EdgeOutcome, bool);

/// The request for `endpoint` carrying `id`, its URI absolute (for the pool)
/// or in origin form with a Host header (for a connection of its own).
fn build(endpoint: &Endpoint, id: CorrelationId, origin_form: bool) -> Request<Full<Bytes>> {
    let uri = if origin_form {
        endpoint.url.path_and_query().map_or_else(
            || Uri::from_static("/"),
            |p| p.as_str().parse().unwrap_or_default(),
        )
    } else {
        endpoint.url.clone()
    };
    let mut request = Request::builder()
        .method(endpoint.method.clone())
        .uri(uri)
        .body(Full::new(endpoint.body.clone()))
        .unwrap_or_default();
    *request.headers_mut() = endpoint.headers.clone();
    let headers = request.headers_mut();
    if origin_form {
        if let Some(host) = endpoint
            .url
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.insert(HOST, host);
        }
    }
    if let Ok(value) = HeaderValue::from_bytes(&id.traceparent()) {
        headers.insert(HeaderName::from_static("traceparent"), value);
    }
    if let Ok(value) = HeaderValue::from_bytes(&id.hex()) {
        headers.insert(
            HeaderName::from_static(fault_server::journal::REQUEST_ID_HEADER),
            value,
        );
    }
    if !endpoint.per_request.is_empty() {
        made_for(&mut request, &endpoint.per_request, id);
    }
    request
}

/// Puts the request's own header values and body on it, [`REQUEST_ID`]
/// replaced by `id`.
fn made_for(request: &mut Request<Full<Bytes>>, per_request: &PerRequest, id: CorrelationId) {
    let hex = id.hex();
    let hex = std::str::from_utf8(&hex).unwrap_or_default();
    for (name, template) in &per_request.headers {
        // Checked with a sample id when the suite was read.
        if let Ok(value) = HeaderValue::from_str(&template.replace(REQUEST_ID, hex)) {
            request.headers_mut().insert(name.clone(), value);
        }
    }
    if let Some(body) = &per_request.body {
        *request.body_mut() = Full::new(Bytes::from(body.replace(REQUEST_ID, hex)));
    }
}

/// Times `exchange`, sent at `sent`, against the endpoint's timeout and records it.
async fn timed(
    endpoint: &Endpoint,
    name: &Arc<str>,
    clock: Clock,
    (intended, sent): (Instant, Instant),
    id: CorrelationId,
    exchange: impl Future<Output = Answer>,
) -> (EdgeRecord, bool) {
    let (answer, timed_out) = match tokio::time::timeout(endpoint.timeout, exchange).await {
        Ok(answer) => (answer, false),
        Err(_) => ((EdgeOutcome::Timeout, false), true),
    };
    let ended = Instant::now();
    let record = EdgeRecord {
        endpoint: Arc::clone(name),
        intended_ns: clock.ns_at(intended),
        sent_ns: clock.ns_at(sent),
        ended_ns: clock.ns_at(ended),
        outcome: answer.0,
        correlation_id: Some(id),
        retry_after: answer.1,
    };
    (record, timed_out)
}

/// Sends one request through the pool, intended at `intended`, and returns its record.
pub(super) async fn send_pooled(
    client: &HttpClient,
    endpoint: &Endpoint,
    name: &Arc<str>,
    clock: Clock,
    intended: Instant,
    id: CorrelationId,
) -> EdgeRecord {
    let request = build(endpoint, id, false);
    let exchange = async {
        match client.request(request).await {
            Ok(response) => read(response).await,
            Err(error) if error.is_connect() => (EdgeOutcome::ConnectError, false),
            Err(_) => (EdgeOutcome::Reset, false),
        }
    };
    let sent = Instant::now();
    timed(endpoint, name, clock, (intended, sent), id, exchange)
        .await
        .0
}

/// One closed-loop client's connection, made when first needed and made
/// again after an error or a timeout (which leave it in an unknown state).
/// The client's own task drives it, so an exchange costs no hand-off to a
/// connection task.
#[derive(Default)]
pub(super) struct Connection {
    open: Option<Open>,
}

struct Open {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl Connection {
    /// Sends one request on this connection now (`now`: a closed loop has no
    /// schedule, so it is both the intended and the actual send time) and
    /// returns its record.
    pub(super) async fn send(
        &mut self,
        endpoint: &Endpoint,
        name: &Arc<str>,
        clock: Clock,
        now: Instant,
        id: CorrelationId,
    ) -> EdgeRecord {
        let request = build(endpoint, id, true);
        let (record, timed_out) = timed(
            endpoint,
            name,
            clock,
            (now, now),
            id,
            self.exchange(&endpoint.url, request),
        )
        .await;
        if timed_out {
            self.open = None;
        }
        record
    }

    async fn exchange(&mut self, url: &Uri, request: Request<Full<Bytes>>) -> Answer {
        // A connection the server has closed since the last answer is done
        // with before anything is sent on it.
        if let Some(open) = &mut self.open {
            if open.driver.as_mut().now_or_never().is_some() {
                self.open = None;
            }
        }
        let open = match &mut self.open {
            Some(open) => open,
            None => match connect(url).await {
                Some(open) => self.open.insert(open),
                None => return (EdgeOutcome::ConnectError, false),
            },
        };
        let Open { sender, driver } = open;
        let exchange = async {
            sender.ready().await.ok()?;
            let response = sender.send_request(request).await.ok()?;
            Some(read(response).await)
        };
        let answer = tokio::select! {
            biased;
            answer = exchange => answer,
            _ = driver.as_mut() => None,
        };
        match answer {
            Some(answer) if answer.0 != EdgeOutcome::Reset => answer,
            _ => {
                self.open = None;
                (EdgeOutcome::Reset, false)
            }
        }
    }
}

/// A fresh HTTP/1 connection to `url`'s authority.
async fn connect(url: &Uri) -> Option<Open> {
    let host = url.host()?.trim_matches(['[', ']']);
    let port = url.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, driver) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    Some(Open {
        sender,
        driver: Box::pin(driver),
    })
}

/// The answer counts once its whole body has arrived; the body itself is
/// dropped frame by frame, never gathered.
async fn read(response: Response<hyper::body::Incoming>) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key(http::header::RETRY_AFTER);
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return (EdgeOutcome::Reset, false);
        }
    }
    (EdgeOutcome::Status(status), retry_after)
}
