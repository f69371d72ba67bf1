//! A dependency in the caller's own process: the fault server's fault model,
//! decisions and journal, reached without a socket, so that a caller's
//! middleware can be tested on tokio's paused clock (an 8 s fault then costs
//! no wall time). Two ways in: [`InProcessDependency`] is a `tower::Service`
//! over `http::Request`, for stacks of tower middleware; its
//! [`connector`](InProcessDependency::connector) hands a hyper or hyper-util
//! client a `tokio::io::duplex` pipe served by the fault server's own HTTP/1
//! connection code, for stacks built on a real client.

mod duplex;
mod service;

use std::sync::Arc;

pub use duplex::{DuplexConnector, DuplexIo};
pub use service::{CallError, CallFuture};

use crate::dependency::{Dependency, Link};
use crate::journal::DEFAULT_JOURNAL_CAPACITY;
use crate::{CallRecord, Clock, ControlError, DependencySpec, Fault, JournalStats};

/// A dependency served in-process: cheap to clone (clones share it), with
/// delays on tokio's clock and every call in its journal.
///
/// Create it inside the runtime that will call it: its clock starts then,
/// and reads that runtime's time (paused or not).
///
/// ```
/// use std::time::Duration;
/// use fault_server::{DependencySpec, Fault, InProcessDependency, CallOutcome};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let payments = InProcessDependency::new(&DependencySpec::stub("payments"), 0).unwrap();
/// // The first call is slow, the second fails, then the stub answers.
/// let slow = Fault::latency(Duration::from_secs(8)).into();
/// let failing = Fault::error(503).into();
/// payments.schedule(vec![vec![slow], vec![failing]]).unwrap();
///
/// let started = tokio::time::Instant::now();
/// let response = payments.clone().oneshot(http::Request::new(bytes::Bytes::new())).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(started.elapsed(), Duration::from_secs(8), "8 s of virtual time, none of real time");
/// let response = payments.clone().oneshot(http::Request::new(bytes::Bytes::new())).await.unwrap();
/// assert_eq!(response.status(), 503);
/// let calls = payments.calls();
/// assert_eq!(calls.len(), 2);
/// assert_eq!(calls[0].outcome, CallOutcome::Responded);
/// # }
/// ```
#[derive(Clone)]
pub struct InProcessDependency {
    link: Arc<Link>,
}

impl std::fmt::Debug for InProcessDependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessDependency")
            .field("name", &self.link.dependency.name)
            .finish_non_exhaustive()
    }
}

impl InProcessDependency {
    /// A dependency as `spec` describes it (its listen address is ignored),
    /// with `seed` for its probabilistic faults and latency distributions.
    pub fn new(spec: &DependencySpec, seed: u64) -> Result<Self, ControlError> {
        if spec.proxy.is_some() || spec.tcp.is_some() {
            return Err(ControlError::invalid(
                "proxy",
                "an in-process dependency has no socket to forward from: run a proxy in a FaultServer",
            ));
        }
        let dependency = Dependency::new(spec, seed, Clock::start(), DEFAULT_JOURNAL_CAPACITY)?
            .on_virtual_time();
        Ok(InProcessDependency {
            // Nothing to take over: connection faults end the call with a
            // `CallError` here, and on a duplex pipe its own connection task acts.
            link: Arc::new(Link::new(Arc::new(dependency), None)),
        })
    }

    /// Gives the k-th call to arrive the faults `calls[k]` (an empty list: none)
    /// instead of the standing faults, which apply to every call after the list.
    /// Scheduling by arrival order, not time, keeps a schedule's meaning
    /// whatever the caller's timing.
    pub fn schedule(&self, calls: Vec<Vec<Fault>>) -> Result<(), ControlError> {
        self.link.dependency.set_schedule(calls)
    }

    /// The clock its journal reads (zero when it was created).
    pub fn clock(&self) -> Clock {
        self.link.dependency.clock
    }

    /// Every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.link.dependency.state().journal.since(0, usize::MAX)
    }

    /// Exact counters since it was created.
    pub fn stats(&self) -> JournalStats {
        self.link.dependency.state().journal.stats()
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u64 {
        self.link.dependency.state().journal.in_flight()
    }

    /// A connector for hyper-util's client (or anything that connects through
    /// a `tower::Service<Uri>`): each connection is a duplex pipe served by
    /// this dependency, whatever the URI says.
    pub fn connector(&self) -> DuplexConnector {
        DuplexConnector::new(Arc::clone(&self.link.dependency))
    }
}
