//! The [`Property`] trait and the one way every property is checked
//! ([`Property::check`]): a phase missing, evidence not all there, too few
//! samples.

use std::fmt;
use std::time::Duration;

use crate::verdict::{Coverage, Evidence, Measure};
use crate::{Observations, Phase, Scope, Verdict};

/// A resilience claim that can be checked against what a run observed.
///
/// A property says what it claims ([`Property::name`]), where it looks
/// ([`Property::scope`]), what it reads there ([`Property::reads`]), what it
/// counts as a sample ([`Property::samples`]) and how it judges a phase
/// ([`Property::judge`]); the provided [`Property::check`] does the rest the
/// same way for every property: a phase missing from the run, or evidence
/// lost or never produced, is inconclusive before anything is judged, and
/// too few samples are inconclusive after (unless the property says one
/// breach is proof, as a peak over a bulkhead's limit is).
pub trait Property: fmt::Debug {
    /// What it claims, as the verdict table shows it
    /// (`max_in_flight(crm) <= 10`): known without judging, so `faultline
    /// validate` can list a suite's expectations.
    fn name(&self) -> String;

    /// Where it looks: the phase, the settle, the samples it needs, the calls it selects.
    fn scope(&self) -> &Scope;

    /// What it reads, so [`Property::check`] can tell whether it is all there.
    fn reads(&self) -> Reads<'_>;

    /// The bound its evidence is held to, before anything is judged (the
    /// judgement may refine it, as a latency bound relative to a baseline does).
    fn threshold(&self) -> Measure;

    /// What it counts as a sample, and whether one breach proves it broke.
    fn samples(&self) -> Samples;

    /// Judges `phase`, found in `seen` with all the property reads:
    /// counts `evidence.samples` and fills in what was observed.
    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement;

    /// Judges the observations: inconclusive when the phase is not in the
    /// run, when what the property reads is not all there
    /// ([`Scope::missing`]), or when there were fewer than
    /// [`Scope::min_samples`] samples and no breach that proves a failure by
    /// itself; else pass or fail as [`Property::judge`] says.
    fn check(&self, seen: &Observations) -> Verdict {
        let name = self.name();
        let scope = self.scope();
        let mut evidence = Evidence::against(self.threshold());
        let Some(phase) = seen.phase(&scope.phase) else {
            return Verdict::inconclusive(
                name,
                &scope.phase,
                evidence,
                "no such phase in this run",
            );
        };
        if let Some(why) = scope.missing(seen, phase, self.reads()) {
            return Verdict::inconclusive(name, &phase.name, evidence, why);
        }
        let judgement = self.judge(seen, phase, &mut evidence);
        let samples = self.samples();
        let mut verdict = match judgement.held {
            Err(why) => Verdict::inconclusive(name, &phase.name, evidence, why),
            Ok(held)
                if samples.counted
                    && evidence.samples < scope.min_samples
                    && (held || !samples.breach_proves) =>
            {
                // Too few to say anything, what was covered included.
                let why = samples.too_few(evidence.samples, scope.min_samples);
                return Verdict::inconclusive(name, &phase.name, evidence, why);
            }
            Ok(held) => Verdict::judged(name, &phase.name, held, evidence),
        };
        verdict.note = judgement.note.or(verdict.note);
        verdict.coverage = judgement.coverage;
        verdict
    }
}

/// What a property reads in its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads<'a> {
    /// Only the phase itself (alerts, say).
    Phase,
    /// The edge requests.
    Edge,
    /// The calls at this dependency.
    Calls(&'a str),
    /// The edge requests and the calls at this dependency.
    EdgeAndCalls(&'a str),
}

impl<'a> Reads<'a> {
    /// The dependency whose calls it reads, if any.
    pub fn dependency(self) -> Option<&'a str> {
        match self {
            Reads::Calls(dependency) | Reads::EdgeAndCalls(dependency) => Some(dependency),
            Reads::Phase | Reads::Edge => None,
        }
    }
}

/// What a property counts as a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Samples {
    /// The samples, as the note on too few reads after their number
    /// (`requests in the phase`: "3 requests in the phase (need 10)").
    pub what: String,
    /// What to check when there are too few.
    pub hint: Option<&'static str>,
    /// Whether one sample that breaks the claim fails it however few there
    /// were (a peak over a limit, a call after its deadline); otherwise too
    /// few samples are inconclusive either way.
    pub breach_proves: bool,
    /// Whether [`Scope::min_samples`] applies at all: not where one sample
    /// is the whole evidence (an alert that fired, or did not).
    pub counted: bool,
}

impl Samples {
    /// Samples that are `what`, with no hint, where a breach proves nothing alone.
    pub fn of(what: impl Into<String>) -> Self {
        Samples {
            what: what.into(),
            hint: None,
            breach_proves: false,
            counted: true,
        }
    }

    /// Samples that are `what`, judged however many there are.
    pub fn uncounted(what: impl Into<String>) -> Self {
        Samples {
            counted: false,
            ..Samples::of(what)
        }
    }

    /// Requests in the phase: what edge properties count.
    pub fn requests() -> Self {
        Samples::of("requests in the phase")
    }

    /// With `hint` on what to check when there are too few.
    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// One breach fails the claim however few samples there were.
    pub fn breach_proves(mut self) -> Self {
        self.breach_proves = true;
        self
    }

    /// The note for `samples` of these when `need` are needed.
    pub fn too_few(&self, samples: u64, need: u64) -> String {
        let what = &self.what;
        match self.hint {
            Some(hint) => format!("{samples} {what} (need {need}): {hint}"),
            None => format!("{samples} {what} (need {need})"),
        }
    }
}

/// What [`Property::judge`] concluded: held, broke, or nothing can be
/// said; with, where the property says, whether the situation its defence
/// guards against happened, and why it broke where the numbers do not say.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// `Ok(held)`, or why nothing can be said.
    held: Result<bool, String>,
    coverage: Option<Coverage>,
    note: Option<String>,
}

impl Judgement {
    /// Held or broke as `held` says.
    pub fn held(held: bool) -> Self {
        Judgement {
            held: Ok(held),
            coverage: None,
            note: None,
        }
    }

    /// Nothing can be said, because of `why` (a baseline with too few samples, say).
    pub fn inconclusive(why: impl Into<String>) -> Self {
        Judgement {
            held: Err(why.into()),
            coverage: None,
            note: None,
        }
    }

    /// With `note` on why it broke.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Says whether the defence was exercised, and how.
    pub fn covering(mut self, exercised: bool, what: impl Into<String>) -> Self {
        self.coverage = Some(Coverage {
            exercised,
            what: what.into(),
        });
        self
    }
}

/// `part / whole`, or `None` when `whole` is 0 (no samples make no ratio).
pub(crate) fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A percentile as a verdict names it: `min` (0), `max` (100), else `p99`.
pub(crate) fn stat_name(percentile: f64) -> String {
    if percentile >= 100.0 {
        "max".to_owned()
    } else if percentile <= 0.0 {
        "min".to_owned()
    } else {
        format!("p{percentile}")
    }
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
            outcome: fault_server::CallOutcome::Responded,
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
    use crate::{MaxInFlight, Outcome, SuccessRate};

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
