//! # faultline-properties
//!
//! Resilience properties judged from what a run observed: the property
//! checkers of [faultline], shared by its live harness (load against a real
//! system, its dependencies played by a [`fault_server::FaultServer`]) and
//! its simulation (`faultline-sim`: property tests of middleware on a paused
//! clock).
//!
//! A run's evidence is one [`Observations`]: the phases on one clock, every
//! edge request ([`EdgeRecord`]) and every call each dependency received
//! ([`fault_server::CallRecord`]). A [`Property`] — [`MaxInFlight`] (a
//! bulkhead), [`RetryAmplification`], [`MaxAttempts`], [`Backoff`],
//! [`Breaker`], [`LatencyLimit`] (fast failure, latency budgets),
//! [`SuccessRate`] (isolation), [`RecoversWithin`], [`Deadline`],
//! [`ShedFast`], [`FastAccept`], [`Delivered`], [`AlertFired`], [`HoldTime`], and the
//! k6-style [`Calls`] and [`StatusShare`] — judges one phase of it into a
//! [`Verdict`]: pass, fail or inconclusive, always with its [`Evidence`].
//! No evidence is never a pass: a phase without samples, a dependency no
//! call reached, records lost on the way are inconclusive.
//!
//! ```
//! use faultline_properties::{MaxInFlight, Observations, Outcome, Phase, Property, Scope};
//!
//! let mut seen = Observations::default();
//! seen.phases.push(Phase::new("crm slow", 0, 10_000_000_000));
//! let verdict = MaxInFlight::new("crm", 30, Scope::phase("crm slow")).check(&seen);
//! // No call reached the crm: the bulkhead was never exercised, so no pass.
//! assert_eq!(verdict.outcome, Outcome::Inconclusive);
//! ```
//!
//! With the `suite` feature, [`keys`] builds each property from the keys
//! of a faultline suite file's `[[expect]]` entry.
//!
//! [faultline]: https://docs.rs/faultline-harness

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alert_fired;
mod backoff;
mod bound;
mod breaker;
mod calls;
mod deadline;
mod delivered;
mod edge;
mod fast_accept;
mod hold_time;
pub mod keys;
mod latency;
mod max_attempts;
mod max_in_flight;
mod observations;
mod outcomes;
mod property;
mod recovers_within;
mod retry_amplification;
mod scope;
mod select;
mod shed_fast;
mod status_share;
mod success_rate;
mod verdict;
mod windows;

pub use alert_fired::AlertFired;
pub use backoff::{Backoff, Jitter};
pub use bound::Bound;
pub use breaker::Breaker;
pub use calls::Calls;
pub use deadline::Deadline;
pub use delivered::Delivered;
pub use edge::{
    micros_histogram, CorrelationId, EdgeOutcome, EdgeRecord, EdgeStats, NotACorrelationId,
};
pub use fast_accept::FastAccept;
pub use hold_time::HoldTime;
pub use keys::Expectation;
pub use latency::{LatencyBound, LatencyLimit};
pub use max_attempts::MaxAttempts;
pub use max_in_flight::MaxInFlight;
pub use observations::{Attributed, Observations, Phase};
pub use outcomes::Outcomes;
pub(crate) use property::{percentile, ratio, stat_name};
pub use property::{Judgement, Property, Reads, Samples};
pub use recovers_within::RecoversWithin;
pub use retry_amplification::RetryAmplification;
pub use scope::{Scope, DEFAULT_MIN_SAMPLES};
pub use select::CallSelector;
pub use shed_fast::ShedFast;
pub use status_share::StatusShare;
pub use success_rate::SuccessRate;
pub use verdict::{Coverage, Evidence, Measure, Outcome, Shown, Verdict};

#[cfg(test)]
pub(crate) use property::fixtures;
