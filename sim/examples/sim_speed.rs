//! How fast the paused-clock simulation runs property-test cases whose
//! faults take seconds: 256 cases (or `PROPTEST_CASES`) of an outage of 8 s
//! latency faults behind tower's `Retry` over `Timeout`, judged by
//! `max_attempts`. Prints the wall time, the virtual time the cases covered,
//! and their ratio; exits 1 if the cases took longer than 5 s of wall time.
//!
//! `cargo run --release -p faultline-sim --example sim_speed` (or `bench/sim.sh`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_server::InProcessDependency;
use faultline_sim::properties::MaxAttempts;
use faultline_sim::{scope, strategy, Scenario, Simulation, DEPENDENCY};
use http::{Request, Response};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use tower::retry::Policy;
use tower::{BoxError, ServiceBuilder};

const LIMIT: Duration = Duration::from_secs(5);

/// Retries any error (a timeout here) twice, at once.
#[derive(Clone)]
struct Twice(usize);

impl Policy<Request<Bytes>, Response<Bytes>, BoxError> for Twice {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut Request<Bytes>,
        result: &mut Result<Response<Bytes>, BoxError>,
    ) -> Option<Self::Future> {
        (result.is_err() && self.0 > 0).then(|| {
            self.0 -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, request: &Request<Bytes>) -> Option<Request<Bytes>> {
        let mut copy = Request::new(request.body().clone());
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

fn main() {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    let sim = Simulation::new(|dependency: InProcessDependency| {
        ServiceBuilder::new()
            .retry(Twice(2))
            .timeout(Duration::from_secs(10))
            .service(dependency)
    });
    let eight_seconds = strategy::latency(Duration::from_secs(8));
    let faults = strategy::outage(5, 20, proptest::strategy::Just(vec![eight_seconds]));
    let workload = strategy::Workload::new(10..=20, Duration::from_millis(200));
    let scenarios = strategy::scenario(faults, &workload, Duration::from_secs(60));
    let mut runner = TestRunner::new(Config::with_cases(cases));
    let attempts = MaxAttempts::new(DEPENDENCY, 3, scope());

    let started = Instant::now();
    let (mut covered, mut calls, mut slow_calls) = (Duration::ZERO, 0usize, 0usize);
    for _ in 0..cases {
        let scenario: Scenario = scenarios
            .new_tree(&mut runner)
            .expect("the strategy always yields a scenario")
            .current();
        let trace = sim.run(&scenario).expect("every case finishes");
        assert!(trace.holds(&attempts).is_ok());
        let last = trace.edge().iter().map(|r| r.ended_ns).max().unwrap_or(0);
        covered += Duration::from_nanos(last);
        calls += trace.calls().len();
        slow_calls += trace
            .calls()
            .iter()
            .filter(|c| !c.faults.is_empty())
            .count();
    }
    let wall = started.elapsed();
    println!("cases:            {cases}");
    println!("dependency calls: {calls} ({slow_calls} slowed by 8 s)");
    println!(
        "virtual time:     {:.1} min (what the cases would take in real time)",
        covered.as_secs_f64() / 60.0
    );
    println!("wall time:        {:.2} s", wall.as_secs_f64());
    println!(
        "speed-up:         {:.0}x",
        covered.as_secs_f64() / wall.as_secs_f64()
    );
    if wall > LIMIT {
        eprintln!("slower than the target of {LIMIT:?}");
        std::process::exit(1);
    }
}
