//! The hyper service of a dependency: journal the arrival, wait out the
//! decided delay, then answer, hang, or hand the connection back for a
//! connection-level fault.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::{ready, Either, Ready};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::oneshot;

use super::body::JournalBody;
use super::precise_sleep;
use crate::dependency::{Arrival, CallGuard, Dependency, Link};
use crate::fault::{ConnAction, Ending, RequestView};
use crate::journal::CallOutcome;
use crate::response::ResponseTemplate;

/// The most request body a stub reads (and throws away) before answering.
const MAX_DRAINED_BODY: usize = 64 * 1024 * 1024;

/// Serves one connection's requests.
pub(crate) struct DependencyService {
    link: Arc<Link>,
}

impl DependencyService {
    /// `takeover` is the way back to the connection task, used once, by the
    /// call that takes the connection over.
    pub(crate) fn new(dependency: Arc<Dependency>, takeover: oneshot::Sender<ConnAction>) -> Self {
        DependencyService {
            link: Arc::new(Link::new(dependency, Some(takeover))),
        }
    }

    /// The connection's link: its dependency and activity.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }
}

type Answered = Result<Response<JournalBody>, Infallible>;

/// A call answered at once (no delay, nothing to read, no hang or takeover)
/// skips the boxed future: the common no-fault path stays as lean as a bare server.
type ServiceFuture = Either<Ready<Answered>, Pin<Box<dyn Future<Output = Answered> + Send>>>;

impl Service<Request<Incoming>> for DependencyService {
    type Response = Response<JournalBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let mut arrival = Dependency::arrive(
            &self.link,
            &RequestView {
                method: &parts.method,
                path: parts.uri.path(),
                headers: &parts.headers,
            },
        );
        let alert_sink = self.link.dependency.alert_sink;
        let head = parts.method == Method::HEAD;
        // A fault decided how the call ends before its body was read: a
        // client that asked to be told first (`Expect: 100-continue`) is
        // answered without being asked for the body (hyper sends `100
        // Continue` only once the body is read), as a server that rejects
        // at the headers would.
        let unread = arrival.terminal.is_some() && !alert_sink && expects_continue(&parts.headers);
        if body.is_end_stream() && arrival.delay.is_zero() && !alert_sink {
            if let Some(template) = immediate(&mut arrival) {
                return Either::Left(ready(Ok(respond(template, arrival, head))));
            }
        }
        let link = Arc::clone(&self.link);
        Either::Right(Box::pin(async move {
            if arrival.forward {
                return Ok(answer_proxied(arrival, &link, parts, body, head, unread).await);
            }
            // Read the whole request, as a real service would: a client still
            // sending would otherwise stall, and hyper notices a client that
            // leaves only once the request is read.
            if !body.is_end_stream() && !unread {
                let read = http_body_util::Limited::new(body, MAX_DRAINED_BODY)
                    .collect()
                    .await;
                if let (true, Ok(read)) = (alert_sink, read) {
                    link.dependency.record_alerts(&read.to_bytes());
                }
            }
            Ok(answer(arrival, &link, head).await)
        }))
    }
}

/// Whether the request asks to be told before it sends its body.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The response of a call that ends with one and nothing else: the stub's,
/// or an error's. Leaves hangs and takeovers in place.
fn immediate(arrival: &mut Arrival) -> Option<ResponseTemplate> {
    match arrival.terminal.take() {
        // A proxy forwards where a stub answers.
        None if arrival.forward => None,
        None => Some(
            arrival
                .response
                .take()
                .unwrap_or_else(ResponseTemplate::empty),
        ),
        Some(Ending::Respond(template)) => Some(template),
        other => {
            arrival.terminal = other;
            None
        }
    }
}

async fn answer(mut arrival: Arrival, link: &Link, head: bool) -> Response<JournalBody> {
    let ending = arrival.ending(|delay| wait(link, delay)).await;
    conclude(ending, arrival, link, head).await
}

async fn conclude(
    ending: Ending,
    arrival: Arrival,
    link: &Link,
    head: bool,
) -> Response<JournalBody> {
    match ending {
        Ending::Respond(template) => respond(template, arrival, head),
        // A stub has no upstream: its endings never forward.
        Ending::Forward => respond(ResponseTemplate::empty(), arrival, head),
        Ending::Hang(_) => std::future::pending().await,
        Ending::Connection(action) => take_over(arrival.guard, link, action).await,
    }
}

/// A proxy's call: after its delay, forwarded with its body streaming
/// through, or (a fault that answers instead) its body read and dropped and
/// the fault's ending carried out, the upstream never called.
async fn answer_proxied(
    mut arrival: Arrival,
    link: &Link,
    parts: http::request::Parts,
    body: Incoming,
    head: bool,
    unread: bool,
) -> Response<JournalBody> {
    match arrival.ending(|delay| wait(link, delay)).await {
        Ending::Forward => forward(arrival, link, parts, body, head).await,
        ending => {
            if !body.is_end_stream() && !unread {
                let _ = http_body_util::Limited::new(body, MAX_DRAINED_BODY)
                    .collect()
                    .await;
            }
            conclude(ending, arrival, link, head).await
        }
    }
}

/// Sends the call to the proxy's upstream and passes its answer on (its
/// body dribbled by a `slow_body` fault); an upstream that cannot be
/// reached is a 502 from us, journaled `upstream_error`.
async fn forward(
    arrival: Arrival,
    link: &Link,
    parts: http::request::Parts,
    body: Incoming,
    head: bool,
) -> Response<JournalBody> {
    let Arrival {
        mut guard,
        slow_body,
        ..
    } = arrival;
    let sent = tokio::time::Instant::now();
    let answer = match &link.dependency.forwarder {
        Some(forwarder) => forwarder.send(parts, body).await,
        None => Err("no upstream".to_owned()),
    };
    guard.set_upstream(sent.elapsed());
    match answer {
        Ok(response) => {
            let (parts, upstream) = response.into_parts();
            guard.set_status(parts.status.as_u16());
            let mut body = JournalBody::upstream(upstream, slow_body, guard);
            if head {
                body = body.head_only();
            }
            Response::from_parts(parts, body)
        }
        Err(why) => {
            guard.set_status(StatusCode::BAD_GATEWAY.as_u16());
            let json = serde_json::json!({ "error": why, "status": 502 }).to_string();
            let mut body =
                JournalBody::new(json.into(), None, guard).ending_as(CallOutcome::UpstreamError);
            if head {
                body = body.head_only();
            }
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

/// An injected delay: precise on real time, tokio's when the dependency is on virtual time.
fn wait(link: &Link, delay: std::time::Duration) -> precise_sleep::PreciseSleep {
    if link.dependency.virtual_time {
        precise_sleep::on_tokio(delay)
    } else {
        precise_sleep::sleep(delay)
    }
}

/// `head`: the request was a `HEAD`, whose answer has no body on the wire.
fn respond(template: ResponseTemplate, arrival: Arrival, head: bool) -> Response<JournalBody> {
    let Arrival {
        mut guard,
        slow_body,
        ..
    } = arrival;
    guard.set_status(template.status.as_u16());
    let mut body = JournalBody::new(template.body, slow_body, guard);
    if head || !has_body(template.status) {
        body = body.head_only();
    }
    let mut response = Response::new(body);
    *response.status_mut() = template.status;
    *response.headers_mut() = template.headers;
    response
}

/// Whether a response with this status carries a body (RFC 9110 §15: never
/// a 1xx, 204 or 304; configuration refuses 1xx anyway).
fn has_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Asks the connection task for the socket and waits to be dropped by it.
async fn take_over(mut guard: CallGuard, link: &Link, action: ConnAction) -> Response<JournalBody> {
    guard.expect(match action {
        ConnAction::Reset => CallOutcome::Reset,
        ConnAction::Close => CallOutcome::Closed,
        ConnAction::Malformed(_) => CallOutcome::Malformed,
    });
    let sender = link
        .takeover
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(sender) = sender {
        let _ = sender.send(action);
    }
    let _held_until_dropped = guard;
    std::future::pending().await
}
