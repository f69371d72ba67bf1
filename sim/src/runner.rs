//! Runs a scenario through the caller's stack on a fresh current-thread
//! runtime whose clock is paused: tokio jumps from timer to timer whenever
//! every task waits, so an 8 s fault costs microseconds.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use fault_server::{ControlError, DependencySpec, InProcessDependency};
use futures_util::future::LocalBoxFuture;
use http::{Request, Response};
use tower::{BoxError, Service, ServiceExt};

use crate::{Scenario, Trace, DEPENDENCY, ENDPOINT, PHASE};
use faultline_properties::{CorrelationId, EdgeOutcome, EdgeRecord, Observations, Phase, Shown};

/// The run number in every simulated request's correlation id: fixed, so the
/// ids of two runs of one scenario match.
pub(super) const SIM_RUN: u64 = 0x5157;

/// Real time a case may take by default before it counts as hung.
const DEFAULT_WALL_LIMIT: Duration = Duration::from_secs(10);

/// Why a case has no trace to judge.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario's faults or response are invalid.
    #[error("the scenario is invalid: {0}")]
    Scenario(#[from] ControlError),
    /// The runtime could not be built.
    #[error("could not build the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// Edge requests were still unanswered at the horizon.
    #[error("{unanswered} of {requests} edge requests were still unanswered at the horizon ({}): the stack hangs", Shown(*.horizon))]
    Hung {
        /// Requests with no answer.
        unanswered: usize,
        /// Requests in the scenario.
        requests: usize,
        /// The scenario's horizon.
        horizon: Duration,
        /// What was seen up to the horizon (the hung calls in flight).
        trace: Box<Trace>,
    },
    /// The case took longer than its real-time limit: the stack spins, or
    /// waits on something other than tokio's timers.
    #[error("the case ran past its real-time limit of {} without reaching the horizon", Shown(*.0))]
    WallClock(Duration),
    /// Two runs of the same scenario saw different things.
    #[error("two runs of the same scenario differ, first at {0}: the stack is not deterministic (a thread_rng, the wall clock, a shared global?)")]
    NonDeterministic(String),
}

/// A stack the simulation drives: any cloneable tower service from
/// `http::Request<Bytes>` to an `http::Response`, whose errors convert into
/// tower's `BoxError` (implemented for all of them).
pub trait Stack: Clone + 'static {
    /// Sends one edge request: the answer's outcome and whether it carried
    /// `Retry-After`, or the stack's error.
    fn send(
        self,
        request: Request<Bytes>,
    ) -> LocalBoxFuture<'static, Result<(EdgeOutcome, bool), BoxError>>;
}

impl<S, B> Stack for S
where
    S: Service<Request<Bytes>, Response = Response<B>> + Clone + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: 'static,
{
    fn send(
        self,
        request: Request<Bytes>,
    ) -> LocalBoxFuture<'static, Result<(EdgeOutcome, bool), BoxError>> {
        Box::pin(async move {
            let response = self.oneshot(request).await.map_err(Into::into)?;
            Ok((
                EdgeOutcome::Status(response.status().as_u16()),
                response.headers().contains_key(http::header::RETRY_AFTER),
            ))
        })
    }
}

/// A simulation: how to build the stack under test around the in-process
/// dependency, then any number of scenarios run through it, each on a runtime
/// of its own (nothing carries over from one case to the next).
///
/// The stack takes `http::Request<Bytes>`; each edge request carries an
/// `x-faultline-request` id (pass it on to the dependency to tie calls to
/// requests) and the scenario's `Idempotency-Key`. Its errors count at the
/// edge as `timeout` when they are tower's `Elapsed`, else as `reset`.
///
/// ```
/// use std::time::Duration;
/// use faultline_sim::{EdgeRequest, Scenario, Simulation};
/// use tower::ServiceBuilder;
///
/// let sim = Simulation::new(|dependency| {
///     ServiceBuilder::new().timeout(Duration::from_secs(1)).service(dependency)
/// });
/// let mut scenario = Scenario::new(Duration::from_secs(60));
/// scenario.calls = vec![vec![faultline_sim::fault_server::Fault::hang().into()]];
/// scenario.requests = vec![EdgeRequest::at(Duration::ZERO)];
/// let trace = sim.run(&scenario).unwrap();
/// assert_eq!(trace.edge()[0].latency(), Duration::from_secs(1), "timed out after 1 s of virtual time");
/// assert_eq!(trace.calls()[0].outcome, faultline_sim::fault_server::CallOutcome::ClientGone);
/// ```
pub struct Simulation<F> {
    make_stack: Arc<F>,
    dependency: String,
    seed: u64,
    wall_limit: Duration,
}

impl<F> std::fmt::Debug for Simulation<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("dependency", &self.dependency)
            .field("seed", &self.seed)
            .field("wall_limit", &self.wall_limit)
            .finish_non_exhaustive()
    }
}

impl<F, S> Simulation<F>
where
    F: Fn(InProcessDependency) -> S + Send + Sync + 'static,
    S: Stack,
{
    /// A simulation of the stack `make_stack` builds around the dependency.
    pub fn new(make_stack: F) -> Self {
        Simulation {
            make_stack: Arc::new(make_stack),
            dependency: DEPENDENCY.to_owned(),
            seed: 0,
            wall_limit: DEFAULT_WALL_LIMIT,
        }
    }

    /// Names the dependency (default [`DEPENDENCY`]).
    pub fn dependency_name(mut self, name: impl Into<String>) -> Self {
        self.dependency = name.into();
        self
    }

    /// Seeds the dependency's probabilistic faults and latency distributions
    /// (default 0); scenarios themselves carry no seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The real time a case may take before it counts as hung (default 10 s).
    pub fn wall_limit(mut self, limit: Duration) -> Self {
        self.wall_limit = limit;
        self
    }

    /// Runs one case. It runs on a thread of its own, so that a stack that
    /// never yields to the timer is reported after the wall limit instead of
    /// hanging the test (the thread is then left to itself).
    pub fn run(&self, scenario: &Scenario) -> Result<Trace, SimError> {
        let (done, outcome) = mpsc::channel();
        let make_stack = Arc::clone(&self.make_stack);
        let (dependency, seed, scenario) = (self.dependency.clone(), self.seed, scenario.clone());
        let case = std::thread::Builder::new()
            .name("faultline-sim".to_owned())
            .spawn(move || {
                let case = drive(&*make_stack, &dependency, seed, &scenario);
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .map_err(SimError::from)
                    .and_then(|runtime| tokio::task::LocalSet::new().block_on(&runtime, case));
                let _ = done.send(result);
            })?;
        match outcome.recv_timeout(self.wall_limit) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(SimError::WallClock(self.wall_limit)),
            // The case panicked: let the test see the stack's own panic.
            Err(mpsc::RecvTimeoutError::Disconnected) => match case.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("a case that finished has sent its result"),
            },
        }
    }

    /// Runs the case twice and fails if the two traces differ: a stack whose
    /// behaviour does not follow from the scenario cannot be shrunk or replayed.
    pub fn replay(&self, scenario: &Scenario) -> Result<Trace, SimError> {
        let first = self.run(scenario)?;
        let second = self.run(scenario)?;
        match first_difference(&first, &second) {
            None => Ok(first),
            Some(at) => Err(SimError::NonDeterministic(at)),
        }
    }
}

async fn drive<F, S>(
    make_stack: &F,
    name: &str,
    seed: u64,
    scenario: &Scenario,
) -> Result<Trace, SimError>
where
    F: Fn(InProcessDependency) -> S,
    S: Stack,
{
    let mut spec = DependencySpec::stub(name).with_response(scenario.response.clone());
    spec.faults = scenario.then.clone();
    let dependency = InProcessDependency::new(&spec, seed)?;
    dependency.schedule(scenario.calls.clone())?;
    let clock = dependency.clock();
    let stack = make_stack(dependency.clone());
    let endpoint: Arc<str> = Arc::from(ENDPOINT);
    let records: Rc<RefCell<Vec<Option<EdgeRecord>>>> =
        Rc::new(RefCell::new(vec![None; scenario.requests.len()]));
    let mut tasks = Vec::with_capacity(scenario.requests.len());
    for (index, request) in scenario.requests.iter().enumerate() {
        let (stack, records, endpoint) = (stack.clone(), Rc::clone(&records), endpoint.clone());
        let request = request.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let intended = clock.origin() + request.at;
            tokio::time::sleep_until(intended).await;
            let id = CorrelationId::new(SIM_RUN, index as u64);
            let sent_ns = clock.now_ns();
            let call = stack.send(edge_request(id, request.key.as_deref()));
            let answer = match request.give_up_after {
                Some(patience) => tokio::time::timeout(patience, call)
                    .await
                    .unwrap_or_else(|_| Err(tower::timeout::error::Elapsed::new().into())),
                None => call.await,
            };
            let (outcome, retry_after) = match answer {
                Ok(answered) => answered,
                Err(error) if error.is::<tower::timeout::error::Elapsed>() => {
                    (EdgeOutcome::Timeout, false)
                }
                Err(_) => (EdgeOutcome::Reset, false),
            };
            let mut record = EdgeRecord::new(
                endpoint,
                clock.ns_at(intended),
                sent_ns,
                clock.now_ns(),
                outcome,
            )
            .with_correlation_id(id);
            if retry_after {
                record = record.with_retry_after();
            }
            records.borrow_mut()[index] = Some(record);
        }));
    }
    tokio::time::sleep_until(clock.origin() + scenario.horizon).await;
    // A request that panicked in the stack is the stack's panic, not a hang.
    for task in tasks.into_iter().filter(|t| t.is_finished()) {
        if let Err(error) = task.await {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
    let trace = trace(
        name,
        scenario,
        records.borrow().iter().flatten().cloned().collect(),
        dependency.calls(),
    );
    let unanswered = records.borrow().iter().filter(|r| r.is_none()).count();
    if unanswered > 0 {
        return Err(SimError::Hung {
            unanswered,
            requests: scenario.requests.len(),
            horizon: scenario.horizon,
            trace: Box::new(trace),
        });
    }
    Ok(trace)
}

fn edge_request(id: CorrelationId, key: Option<&str>) -> Request<Bytes> {
    let mut request = Request::new(Bytes::new());
    *request.uri_mut() = http::Uri::from_static("/");
    let headers = request.headers_mut();
    if let Ok(id) = http::HeaderValue::from_str(&id.to_string()) {
        headers.insert(fault_server::journal::REQUEST_ID_HEADER, id);
    }
    if let Some(key) = key.and_then(|k| http::HeaderValue::from_str(k).ok()) {
        headers.insert("idempotency-key", key);
    }
    request
}

/// The two views: the edge records sorted by send time (then id), and the
/// dependency's calls with attempts numbered by arrival.
fn trace(
    name: &str,
    scenario: &Scenario,
    mut edge: Vec<EdgeRecord>,
    mut calls: Vec<fault_server::CallRecord>,
) -> Trace {
    edge.sort_by_key(|r| (r.intended_ns, r.correlation_id));
    let mut attempts = std::collections::BTreeMap::<String, u32>::new();
    for call in &mut calls {
        call.attempt = call.correlation_id.as_ref().map(|id| {
            let n = attempts.entry(id.clone()).or_default();
            *n += 1;
            *n
        });
    }
    let horizon_ns = u64::try_from(scenario.horizon.as_nanos()).unwrap_or(u64::MAX);
    let mut observations = Observations {
        phases: vec![Phase::new(PHASE, 0, horizon_ns)],
        edge,
        ..Observations::default()
    };
    observations.dependencies.insert(name.to_owned(), calls);
    Trace {
        observations,
        dependency: name.to_owned(),
    }
}

/// Where two traces of one scenario part, if they do.
fn first_difference(a: &Trace, b: &Trace) -> Option<String> {
    if let Some(i) =
        (0..a.edge().len().max(b.edge().len())).find(|&i| a.edge().get(i) != b.edge().get(i))
    {
        return Some(format!(
            "edge request {i}: {:?} then {:?}",
            a.edge().get(i),
            b.edge().get(i)
        ));
    }
    let (x, y) = (a.calls(), b.calls());
    (0..x.len().max(y.len()))
        .find(|&i| x.get(i) != y.get(i))
        .map(|i| format!("dependency call {i}: {:?} then {:?}", x.get(i), y.get(i)))
}
