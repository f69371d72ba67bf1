//! `max_in_flight`: a bulkhead holds: a dependency never sees more than N calls at once.

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// At most `at_most` calls in flight at `dependency` during the phase, from
/// the journal's exact in-flight count at each arrival, and the calls
/// already open when the phase began (after `settle`): a pool's long-lived
/// connections to a TCP proxy, opened before the run, are in flight in every
/// phase they stay open through.
///
/// ```
/// use faultline_properties::{MaxInFlight, Property, Scope};
/// use faultline_properties::{Observations, Outcome};
///
/// let verdict = MaxInFlight::new("crm", 30, Scope::phase("crm slow")).check(&Observations::default());
/// assert_eq!(verdict.outcome, Outcome::Inconclusive, "no phase, no calls: nothing to judge");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MaxInFlight {
    /// The dependency's name.
    pub dependency: String,
    /// The most calls allowed in flight at once.
    pub at_most: u64,
    /// Where to look.
    pub scope: Scope,
}

impl MaxInFlight {
    /// `max_in_flight(dependency) <= at_most` within `scope`.
    pub fn new(dependency: impl Into<String>, at_most: u64, scope: Scope) -> Self {
        MaxInFlight {
            dependency: dependency.into(),
            at_most,
            scope,
        }
    }
}

impl Property for MaxInFlight {
    fn name(&self) -> String {
        format!(
            "max_in_flight({}) <= {}",
            self.scope.subject(&self.dependency),
            self.at_most
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Calls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Count(self.at_most)
    }

    fn samples(&self) -> Samples {
        Samples::of(format!("calls reached {}", self.dependency))
            .hint("the bulkhead was not exercised")
            .breach_proves()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        // The journal's count at each arrival is exact for every call; a
        // selection recounts among the calls it selects.
        let recount = (!self.scope.select.is_all()).then(|| {
            let calls = seen.dependencies.get(&self.dependency);
            self.scope
                .select
                .in_flight(calls.map_or(&[][..], Vec::as_slice))
        });
        let in_flight = |call: &fault_server::CallRecord| match &recount {
            Some(counts) => counts.get(&call.seq).copied().unwrap_or(0),
            None => call.in_flight,
        };
        let mut peak = None::<(&fault_server::CallRecord, u64)>;
        // Calls open when the phase began, which arrived before it.
        let open: Vec<&fault_server::CallRecord> = seen
            .open_at_start(&self.dependency, phase, self.scope.settle)
            .filter(|c| self.scope.select.selects(c))
            .collect();
        if let Some(first) = open.first() {
            let n = open.len() as u64;
            evidence.samples += n;
            if n > self.at_most {
                evidence.first_broke_ns = Some(phase.start_ns);
            }
            peak = Some((first, n));
        }
        for call in self.scope.calls_in(seen, &self.dependency, phase) {
            evidence.samples += 1;
            let n = in_flight(call);
            if n > self.at_most && evidence.first_broke_ns.is_none() {
                evidence.first_broke_ns = Some(call.arrival_ns);
            }
            if peak.is_none_or(|(_, p)| n > p) {
                peak = Some((call, n));
            }
        }
        evidence.observed = peak.map(|(_, n)| Measure::Count(n));
        evidence.witness = peak.and_then(|(p, _)| p.correlation_id.clone());
        let peak = peak.map_or(0, |(_, n)| n);
        let reached = peak >= self.at_most;
        let what = if reached {
            format!("the limit was reached: peak {peak} of {}", self.at_most)
        } else {
            format!(
                "the limit was never reached: peak {peak} of {}",
                self.at_most
            )
        };
        Judgement::held(peak <= self.at_most).covering(reached, what)
    }
}

/// `property = "max_in_flight"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// The most calls in flight at once.
    #[serde(deserialize_with = "keys::count")]
    at_most: u64,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "max_in_flight";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        Ok(Arc::new(MaxInFlight::new(
            self.dependency,
            self.at_most,
            scope,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, two_phases, MS};
    use crate::Outcome;

    #[test]
    fn connections_open_before_the_phase_count_in_it() {
        let mut seen = two_phases();
        // Five pooled connections opened before either phase, never closed.
        for i in 0..5 {
            call(&mut seen, "crm", 10 + i, 1 + i, "pool");
        }
        let open = |seen: &mut Observations| {
            for c in seen.dependencies.get_mut("crm").unwrap() {
                c.departure_ns = None;
            }
        };
        open(&mut seen);
        let verdict = MaxInFlight::new("crm", 4, Scope::phase("fault")).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        assert_eq!(verdict.evidence.observed, Some(Measure::Count(5)));
        assert_eq!(verdict.evidence.samples, 5);
        let verdict = MaxInFlight::new("crm", 5, Scope::phase("fault")).check(&seen);
        assert_eq!(
            verdict.outcome,
            Outcome::Inconclusive,
            "5 calls: too few to pass"
        );
        let enough = Scope::phase("fault").with_min_samples(5);
        let verdict = MaxInFlight::new("crm", 5, enough).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
    }

    #[test]
    fn passes_when_the_peak_stays_at_the_limit() {
        let mut seen = two_phases();
        for i in 0..20 {
            call(&mut seen, "crm", 1_000 + i, 1 + i % 30, "r");
        }
        let verdict = MaxInFlight::new("crm", 30, Scope::phase("fault")).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert_eq!(verdict.evidence.observed, Some(Measure::Count(20)));
        let coverage = verdict.coverage.unwrap();
        assert!(!coverage.exercised, "a pass that never reached the limit");
        assert_eq!(coverage.what, "the limit was never reached: peak 20 of 30");
    }

    #[test]
    fn fails_at_the_first_call_past_the_limit_with_the_worst_as_witness() {
        let mut seen = two_phases();
        for i in 0..20 {
            call(
                &mut seen,
                "crm",
                1_000 + i * 10,
                25 + i,
                &format!("req-{i}"),
            );
        }
        let verdict = MaxInFlight::new("crm", 30, Scope::phase("fault")).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Count(44)));
        assert_eq!(verdict.evidence.first_broke_ns, Some((1_000 + 60) * MS));
        assert_eq!(verdict.evidence.witness.as_deref(), Some("req-19"));
    }

    #[test]
    fn is_inconclusive_when_too_few_calls_arrive_or_the_settle_skips_them() {
        let mut seen = two_phases();
        for i in 0..20 {
            call(&mut seen, "crm", 1_000 + i, 99, "r");
        }
        call(&mut seen, "crm", 500, 9, "in the baseline");
        let baseline = MaxInFlight::new("crm", 30, Scope::phase("baseline")).check(&seen);
        assert_eq!(baseline.outcome, Outcome::Inconclusive);
        // One call that saw the limit broken is enough to fail.
        call(&mut seen, "crm", 600, 31, "over");
        let baseline = MaxInFlight::new("crm", 30, Scope::phase("baseline")).check(&seen);
        assert_eq!(baseline.outcome, Outcome::Fail);
        assert_eq!(baseline.evidence.samples, 2);
        let settled = MaxInFlight::new(
            "crm",
            30,
            Scope::phase("fault").with_settle(std::time::Duration::from_millis(100)),
        )
        .check(&seen);
        assert_eq!(
            settled.outcome,
            Outcome::Inconclusive,
            "the first 100 ms are skipped"
        );
    }
}
