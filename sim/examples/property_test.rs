//! A property test of resilience middleware on the paused-clock simulation:
//! a bulkhead of 4 behind a 2 s timeout, against up to 30 requests while the
//! dependency's calls are slowed by up to 8 s or hang: 256 cases (each run
//! twice, to check it replays) in seconds, not the hours the faults stand
//! for. `PROPTEST_CASES` changes the count.
//!
//! `cargo run -p faultline-sim --example property_test`

use std::time::Duration;

use faultline_sim::properties::MaxInFlight;
use faultline_sim::{scope, strategy, Simulation, Tally, DEPENDENCY};
use proptest::prelude::*;
use tower::ServiceBuilder;

fn main() {
    let sim = Simulation::new(|dependency| {
        ServiceBuilder::new()
            .timeout(Duration::from_secs(2))
            .concurrency_limit(4)
            .service(dependency)
    });
    let faults = strategy::schedule(30, strategy::slow_or_hung(Duration::from_secs(8)));
    let workload = strategy::Workload::new(1..=30, Duration::from_millis(100));
    let scenarios = strategy::scenario(faults, &workload, Duration::from_secs(60));
    let tally = Tally::new();
    // Failures are kept beside this file (`property_test.regressions`) and
    // tried first next time; shrinking goes far enough to reach the minimum.
    let config = faultline_sim::config(256);
    proptest!(config, |(scenario in scenarios)| {
        let trace = sim.replay(&scenario)?;
        tally.record(&trace.holds(&MaxInFlight::new(DEPENDENCY, 4, scope()))?);
    });
    tally.assert_exercised("max_in_flight", 0.2);
    print!("{tally}");
}
