//! The in-process dependency as a `tower::Service`: the same decision and
//! journal as a socket's call, the same waits on tokio's clock, and an error
//! where a socket would be reset, closed or sent garbage.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use super::InProcessDependency;
use crate::dependency::{Arrival, CallGuard, Dependency};
use crate::fault::Ending;
use crate::fault::{ConnAction, RequestView};
use crate::journal::CallOutcome;

/// How a call to an in-process dependency fails where a socket would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// A `reset` fault (or a hang ending in one).
    #[error("the dependency reset the connection")]
    Reset,
    /// A `close` fault (or a hang ending in one): no response.
    #[error("the dependency closed the connection without a response")]
    Closed,
    /// A `malformed` fault: what came back was not HTTP.
    #[error("the dependency sent bytes that are not HTTP")]
    Malformed,
}

/// A call in progress. Dropping it before it is ready is the caller going
/// away: the journal records the call as `client_gone`.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Response<Bytes>, CallError>> + Send>>;

/// Requests carry their whole body (`Bytes`, `Vec<u8>`, `String`, ...): a
/// stack whose requests stream hyper bodies reaches the dependency through
/// [`InProcessDependency::connector`] instead.
impl<B> tower::Service<Request<B>> for InProcessDependency
where
    B: Into<Bytes>,
{
    type Response = Response<Bytes>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> CallFuture {
        let (parts, body) = request.into_parts();
        let arrival = Dependency::arrive(
            &self.link,
            &RequestView {
                method: &parts.method,
                path: parts.uri.path(),
                headers: &parts.headers,
            },
        );
        if self.link.dependency.alert_sink {
            self.link.dependency.record_alerts(&body.into());
        }
        Box::pin(answer(arrival))
    }
}

async fn answer(mut arrival: Arrival) -> Result<Response<Bytes>, CallError> {
    let template = match arrival.ending(tokio::time::sleep).await {
        Ending::Respond(template) => template,
        // Until the caller gives up; dropping the guard then journals it.
        Ending::Hang(_) => return std::future::pending().await,
        // Never: an in-process dependency cannot be a proxy (refused when made).
        Ending::Forward => return Err(CallError::Closed),
        Ending::Connection(action) => return fail(arrival.guard, action),
    };
    if let Some(rate) = arrival.slow_body.filter(|_| !template.body.is_empty()) {
        // The caller has the body once the last byte has dribbled out.
        let seconds = template.body.len() as f64 / rate.max(1) as f64;
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    }
    let mut guard = arrival.guard;
    guard.set_status(template.status.as_u16());
    guard.finish(CallOutcome::Responded);
    let mut response = Response::new(template.body);
    *response.status_mut() = template.status;
    *response.headers_mut() = template.headers;
    Ok(response)
}

fn fail(guard: CallGuard, action: ConnAction) -> Result<Response<Bytes>, CallError> {
    let (outcome, error) = match action {
        ConnAction::Reset => (CallOutcome::Reset, CallError::Reset),
        ConnAction::Close => (CallOutcome::Closed, CallError::Closed),
        ConnAction::Malformed(_) => (CallOutcome::Malformed, CallError::Malformed),
    };
    guard.finish(outcome);
    Err(error)
}
