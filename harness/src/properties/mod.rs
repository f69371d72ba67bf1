//! Resilience properties: each a claim about one phase of a run, judged from
//! [`Observations`] into a [`Verdict`] with evidence. One module per property.

mod alert_fired;
mod backoff;
mod breaker;
mod calls;
mod deadline;
mod delivered;
mod fast_accept;
mod latency;
mod max_attempts;
mod max_in_flight;
mod recovers_within;
mod retry_amplification;
mod select;
mod shed_fast;
mod status_share;
mod success_rate;

use std::collections::BTreeMap;
use std::time::Duration;

pub use alert_fired::AlertFired;
pub use backoff::{Backoff, Jitter};
pub use breaker::Breaker;
pub use calls::Calls;
pub use deadline::Deadline;
pub use delivered::Delivered;
pub use fast_accept::FastAccept;
pub use latency::{LatencyBound, LatencyLimit};
pub use max_attempts::MaxAttempts;
pub use max_in_flight::MaxInFlight;
pub use recovers_within::RecoversWithin;
pub use retry_amplification::RetryAmplification;
pub use select::CallSelector;
pub use shed_fast::ShedFast;
pub(crate) use status_share::status_range;
pub use status_share::StatusShare;
pub use success_rate::SuccessRate;

use crate::verdict::{Evidence, Measure};
use fault_server::CallRecord;

use crate::observations::Attributed;
use crate::{EdgeStats, Observations, Phase, Verdict};

/// A resilience claim that can be checked against what a run observed.
pub trait Property {
    /// What it claims, as the verdict table shows it
    /// (`max_in_flight(crm) <= 10`): known without judging, so `faultline
    /// validate` can list a suite's expectations.
    fn name(&self) -> String;

    /// Judges the observations.
    fn check(&self, seen: &Observations) -> Verdict;
}

/// Samples a property needs before it will judge, unless told otherwise.
pub const DEFAULT_MIN_SAMPLES: u64 = 10;

/// Where a property looks: a phase, minus its first `settle`, and how many
/// samples it needs there before a pass or a fail means anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// The phase's name.
    pub phase: String,
    /// Skipped at the start of the phase (let the system reach its steady state).
    pub settle: Duration,
    /// Fewer samples than this make the verdict inconclusive.
    pub min_samples: u64,
    /// Which of a dependency's calls a dependency property judges (every call by default).
    pub select: CallSelector,
}

impl Scope {
    /// The whole of `phase`, with [`DEFAULT_MIN_SAMPLES`].
    pub fn phase(name: impl Into<String>) -> Self {
        Scope {
            phase: name.into(),
            settle: Duration::ZERO,
            min_samples: DEFAULT_MIN_SAMPLES,
            select: CallSelector::all(),
        }
    }

    /// Skips the first `settle` of the phase.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Needs at least `samples` to judge.
    pub fn with_min_samples(mut self, samples: u64) -> Self {
        self.min_samples = samples;
        self
    }

    /// Judges only the dependency calls `select` selects.
    pub fn with_select(mut self, select: CallSelector) -> Self {
        self.select = select;
        self
    }
}

impl Scope {
    /// `dependency` as a verdict names it: with the selection, when there is one
    /// (`crm [not =/__health]`).
    pub(crate) fn subject(&self, dependency: &str) -> String {
        if self.select.is_all() {
            dependency.to_owned()
        } else {
            format!("{dependency} [{}]", self.select)
        }
    }

    /// Every selected call at `dependency` in the run.
    pub(crate) fn calls<'a>(
        &'a self,
        seen: &'a Observations,
        dependency: &str,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        seen.dependencies
            .get(dependency)
            .into_iter()
            .flatten()
            .filter(|c| self.select.selects(c))
    }

    /// The selected calls at `dependency` that met the phase's faults
    /// ([`Observations::calls_in`]).
    pub(crate) fn calls_in<'a>(
        &'a self,
        seen: &'a Observations,
        dependency: &str,
        phase: &'a Phase,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        seen.calls_in(dependency, phase, self.settle)
            .filter(|c| self.select.selects(c))
    }

    /// The selected calls made for the phase's requests ([`Observations::attributed`]).
    pub(crate) fn attributed<'a>(
        &'a self,
        seen: &'a Observations,
        dependency: &str,
        phase: &'a Phase,
        endpoint: Option<&str>,
    ) -> Attributed<'a> {
        seen.attributed(dependency, phase, self.settle, endpoint, |c| {
            self.select.selects(c)
        })
    }
}

impl Scope {
    /// Why `samples` of `what` are too few to judge, when they are.
    pub(crate) fn too_few(&self, samples: u64, what: &str) -> Option<String> {
        (samples < self.min_samples)
            .then(|| format!("{samples} {what} (need {})", self.min_samples))
    }

    /// The scope's phase in `seen`, and empty evidence against `threshold`; or,
    /// when the run has no such phase, the inconclusive verdict to return.
    pub(crate) fn start<'a>(
        &self,
        seen: &'a Observations,
        property: &str,
        threshold: Measure,
    ) -> Result<(&'a Phase, Evidence), Box<Verdict>> {
        let evidence = Evidence {
            observed: None,
            threshold,
            samples: 0,
            first_broke_ns: None,
            witness: None,
        };
        match seen.phase(&self.phase) {
            Some(phase) => Ok((phase, evidence)),
            None => Err(Box::new(Verdict::inconclusive(
                property.to_owned(),
                &self.phase,
                evidence,
                "no such phase in this run",
            ))),
        }
    }

    /// As [`Scope::start`], for a property that reads edge records: when the
    /// run kept no records for part of the phase, the verdict is
    /// inconclusive rather than judged on what happened to be kept.
    pub(crate) fn start_edge<'a>(
        &self,
        seen: &'a Observations,
        property: &str,
        threshold: Measure,
    ) -> Result<(&'a Phase, Evidence), Box<Verdict>> {
        let (phase, evidence) = self.start(seen, property, threshold)?;
        match edge_cut(seen, phase) {
            Some(why) => Err(Box::new(Verdict::inconclusive(
                property.to_owned(),
                &phase.name,
                evidence,
                why,
            ))),
            None => Ok((phase, evidence)),
        }
    }
}

impl Scope {
    /// As [`Scope::start`], for a property that reads `dependency`'s calls:
    /// inconclusive when the calls it needs are not all there
    /// ([`calls_missing`]).
    pub(crate) fn start_calls<'a>(
        &self,
        seen: &'a Observations,
        property: &str,
        threshold: Measure,
        dependency: &str,
    ) -> Result<(&'a Phase, Evidence), Box<Verdict>> {
        let found = self.start(seen, property, threshold)?;
        require_calls(seen, found, property, dependency, &self.select)
    }

    /// As [`Scope::start_edge`] and [`Scope::start_calls`] at once.
    pub(crate) fn start_edge_calls<'a>(
        &self,
        seen: &'a Observations,
        property: &str,
        threshold: Measure,
        dependency: &str,
    ) -> Result<(&'a Phase, Evidence), Box<Verdict>> {
        let found = self.start_edge(seen, property, threshold)?;
        require_calls(seen, found, property, dependency, &self.select)
    }
}

fn require_calls<'a>(
    seen: &Observations,
    (phase, evidence): (&'a Phase, Evidence),
    property: &str,
    dependency: &str,
    select: &CallSelector,
) -> Result<(&'a Phase, Evidence), Box<Verdict>> {
    match calls_missing(seen, phase, dependency, select) {
        Some(why) => Err(Box::new(Verdict::inconclusive(
            property.to_owned(),
            &phase.name,
            evidence,
            why,
        ))),
        None => Ok((phase, evidence)),
    }
}

/// Why `dependency`'s calls in `phase` cannot be judged, when they cannot:
/// the journal counted calls whose records were lost before the run read
/// them, or no call reached the dependency in the whole run although
/// requests were sent (a target down, or calling somewhere else, is no
/// evidence that it behaves).
pub(crate) fn calls_missing(
    seen: &Observations,
    phase: &Phase,
    dependency: &str,
    select: &CallSelector,
) -> Option<String> {
    if let Some(why) = seen.unread.get(dependency) {
        return Some(format!(
            "the journal of `{dependency}` could not be read to the end while the run was stopping ({why})"
        ));
    }
    let lost = seen.lost_calls.get(dependency);
    if let Some(n) = lost.and_then(|phases| phases.get(&phase.name)) {
        return Some(format!(
            "{n} calls at `{dependency}` in this phase were counted by its journal, \
             but their records were overwritten before the run could read them \
             (the fault server keeps journal_capacity records per dependency): \
             raise journal_capacity there"
        ));
    }
    let sent = seen
        .edge_stats
        .values()
        .flat_map(BTreeMap::values)
        .map(EdgeStats::requests)
        .sum::<u64>()
        .max(seen.edge.len() as u64);
    let calls = seen
        .dependencies
        .get(dependency)
        .map_or(&[][..], Vec::as_slice);
    let called = calls.iter().any(|c| select.selects(c));
    (sent > 0 && !called && lost.is_none()).then(|| {
        if calls.is_empty() {
            format!(
                "no call reached `{dependency}` in the whole run while {sent} requests were sent: \
                 is the target up, and configured to call `{dependency}` at the address the fault server gave it?"
            )
        } else {
            format!(
                "none of the {} calls at `{dependency}` in the whole run was one the property selects ({select}), \
                 while {sent} requests were sent: is the target up, and does the selection name its calls?",
                calls.len()
            )
        }
    })
}

/// Why the edge records of `phase` are incomplete, when the run outgrew its
/// cap on kept records before the phase ended.
pub(crate) fn edge_cut(seen: &Observations, phase: &Phase) -> Option<String> {
    let cut = seen.edge_truncated_ns?;
    (cut < phase.end_ns).then(|| {
        format!(
            "the run sent more requests than it keeps records for ({}); \
             requests of this phase past the cap count in the histograms only",
            seen.edge.len()
        )
    })
}

/// The `percentile` (0 to 100; 100 is the maximum) of `values` by nearest rank.
pub(crate) fn percentile(values: &mut [Duration], percentile: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (percentile / 100.0 * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len()) - 1).copied()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Hand-built observations for the properties' unit tests.
    use fault_server::{CallRecord, FaultKinds};

    use crate::{CorrelationId, EdgeOutcome, EdgeRecord, Observations, Phase};

    pub(crate) const MS: u64 = 1_000_000;

    /// A baseline phase 0..1 s and a fault phase 1..2 s.
    pub(crate) fn two_phases() -> Observations {
        Observations {
            phases: vec![
                Phase::new("baseline", 0, 1_000 * MS),
                Phase::new("fault", 1_000 * MS, 2_000 * MS),
            ],
            ..Observations::default()
        }
    }

    /// `n` requests to `endpoint`, one every 10 ms from `start_ms`, each taking `latency_ms`.
    pub(crate) fn requests(
        seen: &mut Observations,
        endpoint: &str,
        start_ms: u64,
        n: u64,
        latency_ms: u64,
        status: u16,
    ) {
        for i in 0..n {
            let at = (start_ms + i * 10) * MS;
            seen.edge.push(
                EdgeRecord::new(
                    endpoint,
                    at,
                    at,
                    at + latency_ms * MS,
                    EdgeOutcome::Status(status),
                )
                .with_correlation_id(id(endpoint, start_ms, i)),
            );
        }
    }

    /// The correlation id [`requests`] gives its `i`-th request.
    pub(crate) fn id(endpoint: &str, start_ms: u64, i: u64) -> CorrelationId {
        let tag = endpoint.bytes().fold(start_ms, |h, b| {
            h.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        CorrelationId::new(tag, i)
    }

    /// A dependency call arriving at `at_ms` with `in_flight` calls in flight.
    pub(crate) fn call(
        seen: &mut Observations,
        dependency: &str,
        at_ms: u64,
        in_flight: u64,
        correlation: &str,
    ) {
        let calls = seen.dependencies.entry(dependency.to_owned()).or_default();
        calls.push(CallRecord {
            seq: calls.len() as u64,
            arrival_ns: at_ms * MS,
            departure_ns: Some(at_ms * MS + MS),
            in_flight,
            method: http::Method::GET,
            path: "/".to_owned(),
            correlation_id: Some(correlation.to_owned()),
            idempotency_key: None,
            attempt: None,
            faults: FaultKinds::default(),
            outcome: fault_server::Outcome::Responded,
            status: Some(200),
            window: 0,
            upstream_ns: None,
            bytes: None,
            headers: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{call, requests, two_phases};
    use super::*;
    use crate::Outcome;

    #[test]
    fn a_phase_whose_records_were_cut_is_inconclusive_for_edge_properties_only() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 5, 200);
        for i in 0..20 {
            call(&mut seen, "crm", 1_000 + i, 3, "r");
        }
        let success = SuccessRate::new(0.99, Scope::phase("fault"));
        let bulkhead = MaxInFlight::new("crm", 5, Scope::phase("fault"));
        assert_eq!(success.check(&seen).outcome, Outcome::Pass);
        seen.edge_truncated_ns = Some(1_500 * fixtures::MS);
        let cut = success.check(&seen);
        assert_eq!(cut.outcome, Outcome::Inconclusive);
        assert!(cut.note.unwrap().contains("keeps records for"));
        assert_eq!(bulkhead.check(&seen).outcome, Outcome::Pass);
        // A cut after the phase leaves it whole.
        seen.edge_truncated_ns = Some(2_000 * fixtures::MS);
        assert_eq!(success.check(&seen).outcome, Outcome::Pass);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(
            percentile(&mut values, 50.0),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            percentile(&mut values, 99.0),
            Some(Duration::from_millis(99))
        );
        assert_eq!(
            percentile(&mut values, 100.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(percentile(&mut [], 99.0), None);
    }
}
