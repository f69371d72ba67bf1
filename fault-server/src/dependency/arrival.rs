//! A call that has arrived at a dependency ([`Arrival`]): its journal
//! guard, its delay and how it ends, waited out the same way for sockets
//! and in-process calls; and what the calls of one connection share
//! ([`Link`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CallGuard, Dependency};
use crate::fault::{ConnAction, Ending, HangEnd, HangFault};
use crate::response::ResponseTemplate;

/// What the calls of one connection share: the dependency, and the way back
/// to the connection task for faults that take the socket over. A call holds
/// this rather than the dependency, so its reference count stays with the one
/// worker running the connection.
pub(crate) struct Link {
    pub(crate) dependency: Arc<Dependency>,
    pub(crate) takeover: Mutex<Option<tokio::sync::oneshot::Sender<crate::fault::ConnAction>>>,
    /// The connection's calls in flight and last arrival or departure (its idleness).
    pub(crate) activity: crate::dataplane::Activity,
}

impl Link {
    pub(crate) fn new(
        dependency: Arc<Dependency>,
        takeover: Option<tokio::sync::oneshot::Sender<crate::fault::ConnAction>>,
    ) -> Self {
        let now = dependency.clock.now_ns();
        Link {
            dependency,
            takeover: Mutex::new(takeover),
            activity: crate::dataplane::Activity::new(now),
        }
    }
}

/// A call that has arrived: its journal guard and what to do with it.
pub(crate) struct Arrival {
    pub(crate) guard: CallGuard,
    pub(crate) delay: Duration,
    pub(crate) terminal: Option<Ending>,
    pub(crate) slow_body: Option<u64>,
    /// The stub's response, when the call may end with it.
    pub(crate) response: Option<ResponseTemplate>,
    /// A proxy's call: where a stub would answer, it is forwarded.
    pub(crate) forward: bool,
}

impl Arrival {
    /// Waits out the call's delay (and a timed hang's) with `wait`, and says
    /// how the call ends: a `Hang` it returns lasts until the client leaves.
    /// One path for sockets and in-process calls alike.
    pub(crate) async fn ending<W, F>(&mut self, wait: W) -> Ending
    where
        W: Fn(Duration) -> F,
        F: Future<Output = ()>,
    {
        if !self.delay.is_zero() {
            wait(self.delay).await;
        }
        // Where a stub answers with its response, a proxy forwards.
        let stub = self.response.take().unwrap_or_else(ResponseTemplate::empty);
        let answered = if self.forward {
            Ending::Forward
        } else {
            Ending::Respond(stub)
        };
        match self.terminal.take() {
            None => answered,
            Some(Ending::Hang(HangFault {
                after: Some(after),
                then,
            })) => {
                wait(after).await;
                match then {
                    HangEnd::Respond => answered,
                    HangEnd::Close => Ending::Connection(ConnAction::Close),
                    HangEnd::Reset => Ending::Connection(ConnAction::Reset),
                }
            }
            Some(ending) => ending,
        }
    }
}
