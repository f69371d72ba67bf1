//! # faultline-sim: property tests against middleware, on a paused clock
//!
//! For authors of resilience middleware (retries, timeouts, breakers,
//! bulkheads, shedding): proptest generates fault schedules, each case runs
//! the middleware against an in-process dependency with the fault server's
//! own fault model ([`fault_server::InProcessDependency`]) on a fresh
//! current-thread runtime whose clock is paused, and the live harness's
//! property checkers judge what happened. An 8 s fault costs no wall time,
//! so hundreds of cases take seconds; a failure shrinks to a short schedule
//! that is plain JSON and replays exactly.
//!
//! The pieces:
//! - [`Scenario`]: the faults the k-th arriving call gets, the faults after
//!   that list, the edge requests (when, with which idempotency key, when
//!   the edge gives up), a horizon;
//! - [`strategy`]: proptest strategies for calls' faults, outages and
//!   workloads, ordered so shrinking moves toward benign cases;
//! - [`Simulation`]: builds your stack around the dependency for each case
//!   and runs the scenario through it ([`Simulation::run`]), or runs it twice
//!   and fails if the traces differ ([`Simulation::replay`]);
//! - [`Trace`]: what the edge saw and what reached the dependency (attempts
//!   numbered by arrival), judged by any [`crate::properties::Property`]
//!   with [`Trace::holds`];
//! - [`Tally`]: whether the cases exercised the defence at all (the limit
//!   reached, the breaker opened), from each verdict's coverage.
//!
//! Properties look at the one phase [`PHASE`], the dependency [`DEPENDENCY`]
//! and the endpoint [`ENDPOINT`]; [`scope`] is the phase with a minimum of
//! one sample.
//!
//! ## A property test in a dozen lines
//!
//! ```
//! use std::time::Duration;
//! use faultline_sim::properties::MaxInFlight;
//! use faultline_sim::{scope, strategy, Simulation, Tally, DEPENDENCY};
//! use proptest::prelude::*;
//! use tower::ServiceBuilder;
//!
//! // The stack under test: a 2 s timeout around a bulkhead of 4.
//! let sim = Simulation::new(|dependency| {
//!     ServiceBuilder::new().timeout(Duration::from_secs(2)).concurrency_limit(4).service(dependency)
//! });
//! let faults = strategy::schedule(20, strategy::slow_or_hung(Duration::from_secs(8)));
//! let workload = strategy::Workload::new(1..=20, Duration::from_millis(50));
//! let scenarios = strategy::scenario(faults, &workload, Duration::from_secs(60));
//! let tally = Tally::new();
//! proptest!(ProptestConfig::with_cases(32), |(scenario in scenarios)| {
//!     let trace = sim.run(&scenario)?;
//!     tally.record(&trace.holds(&MaxInFlight::new(DEPENDENCY, 4, scope()))?);
//! });
//! tally.assert_exercised("max_in_flight", 0.1);
//! ```
//!
//! ## In your crate's tests
//!
//! ```toml
//! [dev-dependencies]
//! faultline-sim = "0.1"   # or, from a checkout: { path = "../faultline/sim" }
//! proptest = "1"
//! tower = { version = "0.5", features = ["limit", "timeout"] }
//! ```
//!
//! `Fault`s and the rest of the fault server are `faultline_sim::fault_server`:
//! no other dependency is needed. `PROPTEST_CASES` sets the number of cases
//! as usual. In `tests/`, proptest's default place for failures looks for
//! `lib.rs` or `main.rs` first and prints "failed to find lib.rs or main.rs"
//! on every failing run (proptest's issue #233) before it falls back to a
//! file beside the test; name that file yourself and the warning goes:
//!
//! ```
//! use proptest::prelude::*;
//! use proptest::test_runner::FileFailurePersistence;
//! # use std::time::Duration;
//! # use faultline_sim::{strategy, Scenario};
//! # fn scenarios() -> impl Strategy<Value = Scenario> {
//! #     let faults = strategy::schedule(20, strategy::slow_or_hung(Duration::from_secs(8)));
//! #     let workload = strategy::Workload::new(1..=20, Duration::from_millis(50));
//! #     strategy::scenario(faults, &workload, Duration::from_secs(60))
//! # }
//!
//! // In a #[test] function of tests/bulkhead.rs:
//! let config = ProptestConfig {
//!     // Failures are kept in tests/bulkhead.regressions, tried first next time.
//!     failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
//!     // Shrink far enough to reach one request and the faults that break it.
//!     max_shrink_iters: 20_000,
//!     ..ProptestConfig::with_cases(64)
//! };
//! // (or, the same: faultline_sim::config(64))
//! proptest!(config, |(scenario in scenarios())| {
//!     // sim.run(&scenario)?, then trace.holds(...) as above
//! #   let _ = scenario;
//! });
//! ```
//!
//! (`cargo run -p faultline-sim --example property_test` shows it whole.) A
//! [`Scenario`] prints as its JSON, so the "minimal failing input" in the
//! test's output (and the comment beside the kept seed) is the shrunk
//! scenario, ready for [`Scenario::from_json`] and a test of its own. Each
//! case builds its stack and runtime afresh; anything your stack keeps in a
//! `static` or a `thread_rng` makes [`Simulation::replay`] fail, on purpose.
//!
//! Stacks built on a hyper or hyper-util client reach the dependency through
//! its connector instead: `Client::builder(TokioExecutor::new()).build(dependency.connector())`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod minimise;
mod runner;
mod scenario;
pub mod strategy;
mod trace;

/// The fault server whose fault model the dependency plays
/// ([`fault_server::Fault`], [`fault_server::InProcessDependency`]).
pub use fault_server;
/// The property checkers a [`Trace`] is judged by (`faultline-properties`):
/// the same ones faultline's live runs use.
pub use faultline_properties as properties;
pub use runner::{SimError, Simulation, Stack};
pub use scenario::{EdgeRequest, Scenario};
pub use trace::{Tally, Trace};

use faultline_properties::Scope;

/// The one phase of a simulated case, from its start to its horizon.
pub const PHASE: &str = "scenario";
/// The dependency's name unless [`Simulation::dependency_name`] says otherwise.
pub const DEPENDENCY: &str = "dependency";
/// The endpoint name of every edge request.
pub const ENDPOINT: &str = "edge";

/// Shrink steps [`config`] allows: enough for the common cases to reach
/// the minimal scenario (one request, the faults that break it), where
/// proptest's automatic budget of four steps a case stops early.
pub const SHRINK_STEPS: u32 = 20_000;

/// A proptest configuration for simulated cases: `cases` cases (or
/// `PROPTEST_CASES`), failures kept beside the test's source file
/// (`tests/<file>.regressions`, which works in `tests/`, unlike proptest's
/// default there: its issue #233) and tried first next time, and a shrink
/// budget of [`SHRINK_STEPS`].
///
/// ```
/// let config = faultline_sim::config(64);
/// assert_eq!(config.max_shrink_iters, faultline_sim::SHRINK_STEPS);
/// assert!(config.failure_persistence.is_some());
/// ```
pub fn config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        max_shrink_iters: SHRINK_STEPS,
        ..proptest::test_runner::Config::with_cases(cases)
    }
}

/// The whole case, judged from a single sample on: a generated case may be small.
pub fn scope() -> Scope {
    Scope::phase(PHASE).with_min_samples(1)
}
