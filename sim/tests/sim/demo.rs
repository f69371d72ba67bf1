//! The demo shop's hardened middleware, tested unchanged on the simulation:
//! checkout's reserve with shedding, its deadline, tower `Retry` with
//! jittered backoff and its circuit breaker; crm sync's queue. The
//! dependency is in-process, reached through the shop's own hyper-util
//! client over duplex pipes.

use std::time::Duration;

use fault_server::InProcessDependency;
use faultline_demo::{simulated, Profile};
use faultline_sim::properties::{Backoff, Breaker, Delivered, Jitter, MaxAttempts, ShedFast};
use faultline_sim::{scope, strategy, EdgeRequest, Scenario, Simulation, Tally, ENDPOINT};
use proptest::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn hardened() -> impl Fn(InProcessDependency) -> simulated::Function {
    |payments| simulated::checkout(Profile::Hardened, payments.connector())
}

/// A checkout every 100 ms for 6 s, while payments fails for good after
/// some healthy calls: the breaker must open after 5 failures in a row, let
/// at most one probe through per second, and keep probing.
#[test]
fn the_breaker_opens_after_five_failures_and_probes_once_a_second() {
    let sim = Simulation::new(hardened()).dependency_name("payments");
    let steady: Vec<EdgeRequest> = (0..60).map(|i| EdgeRequest::at(ms(100 * i))).collect();
    let scenarios =
        (0..=20usize, strategy::fast_failures()).prop_map(move |(healthy, failure)| Scenario {
            calls: vec![Vec::new(); healthy],
            then: failure,
            requests: steady.clone(),
            ..Scenario::new(8 * SECOND)
        });
    let breaker = Breaker::new("payments", 5, SECOND, 1, scope());
    let tally = Tally::new();
    proptest!(ProptestConfig::default(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&breaker)?);
    });
    tally.assert_exercised("breaker(payments)", 0.5);
}

/// Outages of fast failures: every retry waits within the equal-jitter
/// envelope of 50 ms doubling to 400 ms (the demo's `BACKOFF_BASE` and
/// `BACKOFF_MAX`), and no request makes more than 3 attempts.
#[test]
fn retries_back_off_within_their_envelope_and_stop_at_three_attempts() {
    let sim = Simulation::new(hardened()).dependency_name("payments");
    let faults = strategy::outage(10, 30, strategy::fast_failures());
    let workload = strategy::Workload::new(1..=20, ms(300));
    let scenarios = strategy::scenario(faults, &workload, 20 * SECOND);
    let backoff = Backoff::new("payments", ms(50), 2.0, ms(400), Jitter::Equal, scope());
    let attempts = MaxAttempts::new("payments", 3, scope());
    let tally = Tally::new();
    proptest!(ProptestConfig::default(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&backoff)?);
        tally.record(&trace.holds(&attempts)?);
    });
    tally.assert_exercised("backoff(payments)", 0.1);
    tally.assert_exercised("max_attempts(payments)", 0.1);
}

/// Bursts of checkouts while payments is slow (up to 400 ms, within the call
/// timeout): past the reserve of 30 the shop answers 503 with Retry-After
/// at once, and the requests it took end within their 1 s budget.
///
/// (With slower or hung payments the breaker opens mid-retry, and its 503
/// comes after the backoff, not at once. The first run of this test found
/// that those 503s came without Retry-After; the shop now sends it.)
#[test]
fn past_its_reserve_checkout_sheds_at_once_and_the_rest_keep_their_budget() {
    let sim = Simulation::new(hardened()).dependency_name("payments");
    let scenarios = (
        (1..=400u64).prop_map(|delay| vec![strategy::latency(ms(delay))]),
        strategy::Workload::new(1..=80, ms(5)).strategy(),
    )
        .prop_map(|(slow, requests)| Scenario {
            then: slow,
            requests,
            ..Scenario::new(30 * SECOND)
        });
    let shed = ShedFast::new(Duration::ZERO, SECOND + ms(50), scope());
    let tally = Tally::new();
    proptest!(ProptestConfig::default(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&shed)?);
    });
    tally.assert_exercised("shed_fast", 0.2);
}

/// crm fails fast, slows down (under the queue's 10 s delivery timeout) or
/// hangs for a while: the hardened crm sync answers 202 at once, and its
/// queue delivers every accepted event to crm exactly once.
///
/// Slower answers are outside the queue's promise: with delays up to 12 s
/// this test found (and shrank to `{"calls": [[{"latency": {"fixed": "10s"}}]],
/// "requests": [{"at": "0s"}]}`) that crm answering exactly as the worker
/// gives up gets the event twice.
#[test]
fn crm_sync_delivers_every_accepted_event_exactly_once() {
    let sim = Simulation::new(|crm: InProcessDependency| {
        simulated::crm_sync(Profile::Hardened, crm.connector())
    })
    .dependency_name("crm");
    let under_timeout = 10 * SECOND - ms(1);
    let failures = prop_oneof![
        strategy::fast_failures(),
        strategy::slow_or_hung(under_timeout)
    ];
    let faults = strategy::outage(5, 10, failures);
    let workload = strategy::Workload::new(1..=20, ms(200));
    let scenarios = strategy::scenario(faults, &workload, 300 * SECOND);
    let delivered = Delivered::new(ENDPOINT, "crm", Duration::ZERO, scope());
    let tally = Tally::new();
    proptest!(ProptestConfig::default(), |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&delivered)?);
        for request in trace.edge() {
            prop_assert_eq!(request.outcome, faultline_sim::properties::EdgeOutcome::Status(202));
        }
    });
    tally.assert_exercised("delivered(edge -> crm)", 0.2);
}
