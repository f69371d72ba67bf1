//! # harness
//!
//! faultline's harness: it drives load at a system under test, switches
//! faults at its dependencies in timed phases, and judges resilience
//! properties against what it saw.
//!
//! The [`load`] driver (open and closed loop, correlated requests, HDR
//! histograms per endpoint and phase, a cap on kept records), the
//! [`run::timeline`] that runs loads through phases of faults at a fault server
//! here or elsewhere ([`run::fault_control`], [`run::remote`]) and drains the
//! journals, the [`Observations`] every property reads, the [`Verdict`]
//! with its evidence, the [`properties`], [`suite`] files, and [`run`] /
//! [`report`] behind `faultline run` and `faultline validate`.
//!
//! For middleware authors, [`sim`] runs the same properties as proptest
//! property tests on a paused clock, against an in-process dependency with
//! the fault server's fault model: start with its guide.
//!
//! ```
//! use harness::properties::{MaxInFlight, Property, Scope};
//! use harness::{Observations, Outcome, Phase};
//!
//! let mut seen = Observations::default();
//! seen.phases.push(Phase::new("crm slow", 0, 10_000_000_000));
//! let verdict = MaxInFlight::new("crm", 30, Scope::phase("crm slow")).check(&seen);
//! // No call reached the crm: the bulkhead was never exercised, so no pass.
//! assert_eq!(verdict.outcome, Outcome::Inconclusive);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod demo;
mod edge;
pub mod limits;
pub mod load;
mod observations;
pub mod properties;
pub mod report;
pub mod run;
pub mod sim;
pub mod suite;
mod verdict;

pub use edge::{CorrelationId, EdgeOutcome, EdgeRecord, EdgeStats, NotACorrelationId};
pub use observations::{Attributed, Observations, Phase};
pub use verdict::{Coverage, Evidence, Measure, Outcome, Shown, Verdict};
