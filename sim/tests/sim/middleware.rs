//! Property tests against tower's own middleware on the paused-clock
//! simulation, with the numbers tower documents: `ConcurrencyLimit(n)` never
//! lets more than n calls through, `Retry` with n retries makes exactly n + 1
//! calls for a request that keeps failing, `Timeout(t)` ends every request by
//! t. And the simulation's own guarantees: a stack without a limit fails and
//! shrinks to a handful of calls, a hang is a failure and not a hung test, a
//! stack that is not deterministic is caught.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use fault_server::{CallOutcome, FaultKindName, InProcessDependency};
use faultline_sim::properties::{EdgeOutcome, Outcome};
use faultline_sim::properties::{LatencyBound, LatencyLimit, MaxAttempts, MaxInFlight};
use faultline_sim::{
    scope, strategy, EdgeRequest, Scenario, SimError, Simulation, Tally, DEPENDENCY,
};
use http::{Request, Response};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use tower::retry::Policy;
use tower::{BoxError, ServiceBuilder};

const SECOND: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Cases per property test: proptest's default, or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    ProptestConfig::default()
}

#[test]
fn concurrency_limit_never_lets_more_than_n_through_even_when_callers_cancel() {
    const LIMIT: usize = 4;
    let sim = Simulation::new(|dependency: InProcessDependency| {
        ServiceBuilder::new()
            .concurrency_limit(LIMIT)
            .service(dependency)
    });
    // Slow and hung calls hold their permits until the edge gives up.
    let faults = strategy::schedule(30, strategy::slow_or_hung(8 * SECOND));
    let workload = strategy::Workload::new(1..=30, ms(100)).patience(ms(100)..=10 * SECOND);
    let scenarios = strategy::scenario(faults, &workload, 60 * SECOND);
    let tally = Tally::new();
    let cancelled = std::sync::atomic::AtomicU64::new(0);
    proptest!(config(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&MaxInFlight::new(DEPENDENCY, LIMIT as u64, scope()))?);
        prop_assert!(trace.peak_in_flight() <= LIMIT as u64);
        let gone = trace.calls().iter().filter(|c| c.outcome == CallOutcome::ClientGone).count();
        cancelled.fetch_add(gone as u64, std::sync::atomic::Ordering::Relaxed);
    });
    tally.assert_exercised("max_in_flight", 0.2);
    assert!(
        cancelled.into_inner() > 0,
        "no case cancelled a call: the permits' release on cancel was not tested"
    );
}

/// Retries a failure (an error, a 5xx, a 429) while retries are left, at once.
#[derive(Clone)]
struct RetryFailures {
    left: usize,
}

impl Policy<Request<Bytes>, Response<Bytes>, BoxError> for RetryFailures {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<Bytes>,
        result: &mut Result<Response<Bytes>, BoxError>,
    ) -> Option<Self::Future> {
        let failed = match result {
            Ok(response) => response.status().is_server_error() || response.status() == 429,
            Err(_) => true,
        };
        (failed && self.left > 0).then(|| {
            self.left -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, request: &Request<Bytes>) -> Option<Request<Bytes>> {
        let mut copy = Request::new(request.body().clone());
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

#[test]
fn retry_with_n_retries_makes_exactly_n_plus_one_calls_for_a_request_that_keeps_failing() {
    const RETRIES: usize = 2;
    let sim = Simulation::new(|dependency: InProcessDependency| {
        ServiceBuilder::new()
            .retry(RetryFailures { left: RETRIES })
            .map_err(Into::<BoxError>::into)
            .service(dependency)
    });
    let faults = strategy::outage(10, 30, strategy::fast_failures());
    let workload = strategy::Workload::new(1..=20, ms(20));
    let scenarios = strategy::scenario(faults, &workload, 10 * SECOND);
    let tally = Tally::new();
    proptest!(config(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&MaxAttempts::new(DEPENDENCY, RETRIES as u64 + 1, scope()))?);
        let calls = trace.calls_per_request();
        for request in trace.edge() {
            let id = request.correlation_id.unwrap().to_string();
            let made = calls.get(id.as_str()).copied().unwrap_or(0);
            prop_assert!(made >= 1 && made <= RETRIES as u64 + 1, "{id} made {made} calls");
            if !request.succeeded() {
                prop_assert_eq!(made, RETRIES as u64 + 1, "{} failed after {} calls", id, made);
            }
        }
        // Attempt numbers come from arrival order, one series per request.
        for call in trace.calls() {
            prop_assert!(call.attempt.unwrap() as u64 <= RETRIES as u64 + 1);
        }
    });
    tally.assert_exercised("max_attempts", 0.2);
}

#[test]
fn timeout_ends_every_request_by_its_limit_and_hung_calls_as_client_gone() {
    let limit = 2 * SECOND;
    let sim = Simulation::new(move |dependency: InProcessDependency| {
        ServiceBuilder::new().timeout(limit).service(dependency)
    });
    let faults = strategy::schedule(20, strategy::slow_or_hung(8 * SECOND));
    let workload = strategy::Workload::new(1..=20, ms(500));
    let scenarios = strategy::scenario(faults, &workload, 60 * SECOND);
    let tally = Tally::new();
    let bound = LatencyBound::new(100.0, LatencyLimit::at_most(limit + ms(1)), scope());
    proptest!(config(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&bound)?);
        let limit_ns = limit.as_nanos() as u64;
        for call in trace.calls() {
            let took = call.departure_ns.unwrap() - call.arrival_ns;
            if call.faults.contains(FaultKindName::Hang) {
                prop_assert_eq!(call.outcome, CallOutcome::ClientGone);
            }
            // Cut off exactly at the limit, or answered by then (a tie may go either way).
            if call.outcome == CallOutcome::ClientGone {
                prop_assert_eq!(took, limit_ns, "{:?}", call);
            } else {
                prop_assert!(took <= limit_ns, "{:?}", call);
            }
        }
        for request in trace.edge() {
            prop_assert!(request.latency() <= limit);
            if request.outcome == EdgeOutcome::Timeout {
                prop_assert_eq!(request.latency(), limit);
            }
        }
    });
    tally.assert_exercised("max(all endpoints)", 0.2);
}

/// Without a limit, `max_in_flight <= 4` fails, and the failure (from up to
/// 30 requests and 30 faulted calls) shrinks to the minimum: five requests
/// sent together, the first four calls held 1 ms, so the fifth meets them:
///
/// ```json
/// {
///   "calls": [
///     [{"latency": {"fixed": "1ms"}}],
///     [{"latency": {"fixed": "1ms"}}],
///     [{"latency": {"fixed": "1ms"}}],
///     [{"latency": {"fixed": "1ms"}}]
///   ],
///   "requests": [
///     {"at": "0s", "give_up_after": "100ms"},
///     {"at": "0s", "give_up_after": "100ms"},
///     {"at": "0s", "give_up_after": "100ms"},
///     {"at": "0s", "give_up_after": "100ms"},
///     {"at": "0s", "give_up_after": "100ms"}
///   ],
///   "horizon": "1m"
/// }
/// ```
///
/// (proptest's own pass shrinks the requests first, then the calls, and
/// does not go back: it left nine requests; the strategy's second pass cuts
/// them to five.)
#[test]
fn a_stack_without_a_limit_fails_max_in_flight_and_shrinks_to_five_requests_and_four_slow_calls() {
    let sim = Simulation::new(|dependency: InProcessDependency| dependency);
    let faults = strategy::schedule(30, strategy::slow_or_hung(8 * SECOND));
    let workload = strategy::Workload::new(1..=30, ms(100)).patience(ms(100)..=10 * SECOND);
    let scenarios = strategy::scenario(faults, &workload, 60 * SECOND);
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            // proptest's default budget (4 per case) stops short of the minimum.
            max_shrink_iters: 20_000,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let failure = runner
        .run(&scenarios, |scenario| {
            let trace = sim.run(&scenario)?;
            trace.holds(&MaxInFlight::new(DEPENDENCY, 4, scope()))?;
            Ok(())
        })
        .unwrap_err();
    let TestError::Fail(why, shrunk) = failure else {
        panic!("expected a failing case, got {failure:?}");
    };
    println!("shrunk to:\n{shrunk:?}\n{why}");
    assert!(
        why.message().contains("max_in_flight(dependency) <= 4"),
        "{why}"
    );
    assert!(
        why.message().contains("witness: edge request "),
        "the worst request named by its place in the scenario: {why}"
    );
    assert_eq!(shrunk.calls.len(), 4, "a handful of calls: {shrunk:?}");
    let one_ms = strategy::latency(ms(1));
    assert!(
        shrunk
            .calls
            .iter()
            .all(|c| c == std::slice::from_ref(&one_ms)),
        "{shrunk:?}"
    );
    assert_eq!(
        shrunk.requests.len(),
        5,
        "the fewest that break it: {shrunk:?}"
    );
    assert!(shrunk.requests.iter().all(|r| r.at.is_zero()), "{shrunk:?}");
    // The shrunk JSON replays to the same failure.
    let replayed = Scenario::from_json(&shrunk.to_json()).unwrap();
    let trace = sim.replay(&replayed).unwrap();
    assert!(trace.peak_in_flight() > 4);
}

#[test]
fn a_hang_nothing_times_out_fails_the_case_at_the_horizon_with_what_was_seen() {
    let sim = Simulation::new(|dependency: InProcessDependency| dependency);
    let mut scenario = Scenario::new(30 * SECOND);
    scenario.then = vec![serde_json::from_str(r#"{"hang": {}}"#).unwrap()];
    scenario.requests = vec![EdgeRequest::at(Duration::ZERO), EdgeRequest::at(SECOND)];
    let wall = std::time::Instant::now();
    let Err(SimError::Hung {
        unanswered, trace, ..
    }) = sim.run(&scenario)
    else {
        panic!("a hang with no timeout must fail the case");
    };
    assert!(
        wall.elapsed() < 5 * SECOND,
        "30 s of virtual time is not waited for"
    );
    assert_eq!(unanswered, 2);
    assert!(trace
        .calls()
        .iter()
        .all(|c| c.outcome == CallOutcome::InFlight));
}

/// Spins (yielding, so tokio never sees an idle moment to move the clock)
/// for a second of real time, then answers.
#[derive(Clone)]
struct Spinning;

impl tower::Service<Request<Bytes>> for Spinning {
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>>>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Bytes>) -> Self::Future {
        Box::pin(async {
            let started = std::time::Instant::now();
            while started.elapsed() < SECOND {
                tokio::task::yield_now().await;
            }
            Ok(Response::new(Bytes::new()))
        })
    }
}

#[test]
fn a_stack_that_never_lets_time_pass_is_stopped_by_the_wall_clock_watchdog() {
    let sim = Simulation::new(|_: InProcessDependency| Spinning).wall_limit(ms(200));
    let mut scenario = Scenario::new(SECOND);
    scenario.requests = vec![EdgeRequest::at(Duration::ZERO)];
    let wall = std::time::Instant::now();
    let error = sim.run(&scenario).unwrap_err();
    assert!(matches!(error, SimError::WallClock(_)), "{error}");
    assert!(wall.elapsed() < SECOND, "{:?}", wall.elapsed());
}

#[test]
fn replay_catches_a_stack_whose_waits_come_from_thread_rng() {
    use rand::Rng;
    let jittery = Simulation::new(|dependency: InProcessDependency| {
        ServiceBuilder::new()
            .then(
                |result: Result<Response<Bytes>, fault_server::CallError>| async move {
                    let wait = rand::thread_rng().gen_range(1..1_000);
                    tokio::time::sleep(ms(wait)).await;
                    result
                },
            )
            .service(dependency)
    });
    let mut scenario = Scenario::new(10 * SECOND);
    scenario.requests = (0..5).map(|i| EdgeRequest::at(ms(i * 10))).collect();
    let error = jittery.replay(&scenario).unwrap_err();
    assert!(matches!(error, SimError::NonDeterministic(_)), "{error}");
    assert!(error.to_string().contains("edge request"), "{error}");
    let steady = Simulation::new(|dependency: InProcessDependency| dependency);
    assert_eq!(steady.replay(&scenario).unwrap().edge().len(), 5);
}

#[test]
fn the_verdicts_of_a_case_say_whether_the_defence_was_exercised() {
    let sim = Simulation::new(|dependency: InProcessDependency| {
        ServiceBuilder::new()
            .concurrency_limit(2)
            .service(dependency)
    });
    let slow = strategy::latency(SECOND);
    let mut scenario = Scenario::new(10 * SECOND);
    scenario.requests = (0..3).map(|_| EdgeRequest::at(Duration::ZERO)).collect();
    let bulkhead = MaxInFlight::new(DEPENDENCY, 2, scope());
    let idle = sim.run(&scenario).unwrap().check(&bulkhead);
    assert_eq!(idle.outcome, Outcome::Pass);
    assert!(
        !idle.coverage.unwrap().exercised,
        "instant calls never fill the bulkhead"
    );
    scenario.calls = vec![vec![slow.clone()], vec![slow]];
    let busy = sim.run(&scenario).unwrap().check(&bulkhead);
    assert_eq!(busy.outcome, Outcome::Pass);
    let coverage = busy.coverage.unwrap();
    assert!(coverage.exercised, "{coverage:?}");
    assert_eq!(coverage.what, "the limit was reached: peak 2 of 2");
}

#[test]
fn a_stack_that_panics_fails_the_case_with_its_own_panic() {
    let sim = Simulation::new(|dependency: InProcessDependency| {
        ServiceBuilder::new()
            .map_request(|request: Request<Bytes>| -> Request<Bytes> {
                assert!(
                    request.headers().is_empty(),
                    "the middleware's own assertion"
                );
                request
            })
            .service(dependency)
    });
    let mut scenario = Scenario::new(SECOND);
    scenario.requests = vec![EdgeRequest::at(Duration::ZERO)];
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run(&scenario)))
        .expect_err("the stack panicked");
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(
        message.contains("the middleware's own assertion"),
        "{message}"
    );
}

#[test]
fn keyed_workloads_carry_an_idempotency_key_per_request_to_the_dependency() {
    let sim = Simulation::new(|dependency: InProcessDependency| dependency);
    let workload = strategy::Workload::new(3..=10, ms(10)).keyed();
    let scenarios = strategy::scenario(Just(Vec::new()), &workload, SECOND);
    let mut runner = TestRunner::deterministic();
    runner
        .run(&scenarios, |scenario| {
            for (i, request) in scenario.requests.iter().enumerate() {
                prop_assert_eq!(request.key.clone(), Some(format!("order-{i}")));
            }
            let trace = sim.run(&scenario)?;
            let keys: Vec<_> = trace
                .calls()
                .iter()
                .map(|c| c.idempotency_key.clone())
                .collect();
            let sent: Vec<_> = scenario.requests.iter().map(|r| r.key.clone()).collect();
            prop_assert_eq!(keys, sent);
            Ok(())
        })
        .unwrap();
}
