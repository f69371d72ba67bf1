//! The hyper service of a dependency: journal the arrival, wait out the
//! decided delay, then answer, hang, or hand the connection back for a
//! connection-level fault.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use tokio::sync::oneshot;

use super::body::JournalBody;
use crate::dependency::{Arrival, CallGuard, Dependency};
use crate::fault::{ConnAction, HangEnd, HangFault, RequestView, Terminal};
use crate::journal::Outcome;

/// The most request body a stub reads (and throws away) before answering.
const MAX_DRAINED_BODY: usize = 64 * 1024 * 1024;

/// Serves one connection's requests.
pub(crate) struct DependencyService {
    dependency: Arc<Dependency>,
    takeover: Arc<Takeover>,
}

/// The way back to the connection task, used once, by the call that takes the
/// connection over.
struct Takeover(Mutex<Option<oneshot::Sender<ConnAction>>>);

impl DependencyService {
    pub(crate) fn new(dependency: Arc<Dependency>, takeover: oneshot::Sender<ConnAction>) -> Self {
        DependencyService {
            dependency,
            takeover: Arc::new(Takeover(Mutex::new(Some(takeover)))),
        }
    }
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<JournalBody>, Infallible>> + Send>>;

impl Service<Request<Incoming>> for DependencyService {
    type Response = Response<JournalBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let arrival = self.dependency.arrive(&RequestView {
            method: &parts.method,
            path: parts.uri.path(),
            headers: &parts.headers,
        });
        let takeover = Arc::clone(&self.takeover);
        Box::pin(async move {
            // Read the whole request, as a real service would: a client still
            // sending would otherwise stall, and hyper notices a client that
            // leaves only once the request is read.
            let _ = http_body_util::Limited::new(body, MAX_DRAINED_BODY)
                .collect()
                .await;
            Ok(answer(arrival, &takeover).await)
        })
    }
}

async fn answer(arrival: Arrival, takeover: &Takeover) -> Response<JournalBody> {
    let Arrival {
        mut guard,
        delay,
        terminal,
        slow_body,
        stub,
    } = arrival;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let template = match terminal {
        None => stub.response.clone(),
        Some(Terminal::Respond(template)) => template,
        Some(Terminal::Hang(HangFault { after: None, .. })) => {
            return std::future::pending().await;
        }
        Some(Terminal::Hang(HangFault {
            after: Some(after),
            then,
        })) => {
            tokio::time::sleep(after).await;
            match then {
                HangEnd::Respond => stub.response.clone(),
                HangEnd::Close => return take_over(guard, takeover, ConnAction::Close).await,
                HangEnd::Reset => return take_over(guard, takeover, ConnAction::Reset).await,
            }
        }
        Some(Terminal::Connection(action)) => return take_over(guard, takeover, action).await,
    };
    guard.set_status(template.status.as_u16());
    let mut response = Response::new(JournalBody::new(template.body, slow_body, guard));
    *response.status_mut() = template.status;
    *response.headers_mut() = template.headers;
    response
}

/// Asks the connection task for the socket and waits to be dropped by it.
async fn take_over(
    mut guard: CallGuard,
    takeover: &Takeover,
    action: ConnAction,
) -> Response<JournalBody> {
    guard.expect(match action {
        ConnAction::Reset => Outcome::Reset,
        ConnAction::Close => Outcome::Closed,
        ConnAction::Malformed(_) => Outcome::Malformed,
    });
    let sender = takeover.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(sender) = sender {
        let _ = sender.send(action);
    }
    let _held_until_dropped = guard;
    std::future::pending().await
}
