//! `hold_time`: how long each call stays at a dependency (its departure less
//! its arrival, from the journal): a bulkhead that admits a call should not
//! hold it past its timeout, and a hung dependency's calls should be let go.

use std::sync::Arc;
use std::time::Duration;

use fault_server::CallRecord;
use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{percentile, stat_name, Bound, Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// The `percentile` (0-100; 0 = min, 100 = max) of the time `dependency`
/// held the calls that met the phase — from each call's arrival to its
/// departure (the answer sent, the connection cut, the caller gone) — stays
/// within `bound`.
///
/// A call that had not ended when the run last read the journal was held at
/// least until then, and counts with that: past an upper bound, it breaks
/// it; under one, nobody knows how long it will be held, so a verdict that
/// would otherwise pass is inconclusive.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{Bound, HoldTime, Property, Scope};
///
/// let let_go = HoldTime::new("crm", 100.0, Bound::at_most(Duration::from_secs(1)), Scope::phase("crm hung"));
/// assert_eq!(let_go.name(), "hold_time(crm, max) <= 1s");
/// assert_eq!(let_go.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HoldTime {
    /// The dependency's name.
    pub dependency: String,
    /// Which percentile (0 is the minimum, 100 the maximum).
    pub percentile: f64,
    /// The bound.
    pub bound: Bound<Duration>,
    /// Where to look.
    pub scope: Scope,
}

impl HoldTime {
    /// `hold_time(dependency, p<percentile>)` within `bound` in `scope`.
    pub fn new(
        dependency: impl Into<String>,
        percentile: f64,
        bound: Bound<Duration>,
        scope: Scope,
    ) -> Self {
        HoldTime {
            dependency: dependency.into(),
            percentile,
            bound,
            scope,
        }
    }
}

/// How long `call` was held: to its departure, or, still open, at least to
/// `until` (and `false`: not ended).
fn held(call: &CallRecord, until: u64) -> (Duration, bool) {
    match call.departure_ns {
        Some(departure) => (
            Duration::from_nanos(departure.saturating_sub(call.arrival_ns)),
            true,
        ),
        None => (
            Duration::from_nanos(until.saturating_sub(call.arrival_ns)),
            false,
        ),
    }
}

/// The latest instant the observations know of: a lower bound on when the
/// run last read the journals.
fn last_seen(seen: &Observations) -> u64 {
    let calls = seen
        .dependencies
        .values()
        .flatten()
        .map(|c| c.departure_ns.unwrap_or(c.arrival_ns));
    let edge = seen.edge.iter().map(|r| r.ended_ns);
    let phases = seen.phases.iter().map(|p| p.end_ns);
    calls.chain(edge).chain(phases).max().unwrap_or(0)
}

impl Property for HoldTime {
    fn name(&self) -> String {
        let stat = stat_name(self.percentile);
        format!(
            "hold_time({}, {stat}) {}",
            self.scope.subject(&self.dependency),
            self.bound.describe(|d| Shown(d).to_string())
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Calls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Duration(self.bound.threshold_for(None))
    }

    fn samples(&self) -> Samples {
        Samples::of(format!("calls at {}", self.dependency))
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let until = last_seen(seen);
        let calls: Vec<&CallRecord> = self.scope.calls_in(seen, &self.dependency, phase).collect();
        let holds: Vec<(Duration, bool, &CallRecord)> = calls
            .iter()
            .map(|c| {
                let (hold, ended) = held(c, until);
                (hold, ended, *c)
            })
            .collect();
        evidence.samples = holds.len() as u64;
        let mut values: Vec<Duration> = holds.iter().map(|(hold, _, _)| *hold).collect();
        let Some(observed) = percentile(&mut values, self.percentile) else {
            return Judgement::inconclusive(format!(
                "no call reached {} in the phase",
                self.dependency
            ));
        };
        evidence.observed = Some(Measure::Duration(observed));
        evidence.threshold = Measure::Duration(self.bound.threshold_for(Some(observed)));
        let too_short = self.bound.lower().is_some_and(|least| observed < least);
        let breaks = |hold: Duration| match self.bound.broken_by(hold) {
            Some(least) if too_short => hold < least,
            Some(most) => !too_short && hold > most,
            None => false,
        };
        evidence.first_broke_ns = holds
            .iter()
            .filter(|(hold, _, _)| breaks(*hold))
            .map(|(_, _, c)| c.arrival_ns)
            .min();
        let witness = if too_short {
            holds.iter().min_by_key(|(hold, _, _)| *hold)
        } else {
            holds.iter().max_by_key(|(hold, _, _)| *hold)
        };
        evidence.witness = witness.and_then(|(_, _, c)| c.correlation_id.clone());
        let held_ok = self.bound.holds(observed);
        let open: Vec<Duration> = holds
            .iter()
            .filter(|(_, ended, _)| !ended)
            .map(|(hold, _, _)| *hold)
            .collect();
        if held_ok && !open.is_empty() && self.bound.upper().is_some() {
            let shortest = open.iter().min().copied().unwrap_or_default();
            return Judgement::inconclusive(format!(
                "{} calls had not ended when the run stopped (held {} or more so far): how long they are held is not known",
                open.len(),
                Shown(shortest)
            ));
        }
        let faulted = calls.iter().filter(|c| !c.faults.is_empty()).count();
        let what = if faulted > 0 {
            format!("{faulted} calls met a fault")
        } else {
            "no call met a fault: the bound was not tested against one".to_owned()
        };
        Judgement::held(held_ok).covering(faulted > 0, what)
    }
}

/// `property = "hold_time"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// Which percentile, from 0 to 100 (99; 0 is the minimum, 100 the maximum).
    #[serde(default = "ninety_nine")]
    percentile: f64,
    /// At most...
    #[serde(default, deserialize_with = "keys::optional_duration")]
    at_most: Option<Duration>,
    /// ...and/or at least.
    #[serde(default, deserialize_with = "keys::optional_duration")]
    at_least: Option<Duration>,
}

fn ninety_nine() -> f64 {
    99.0
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "hold_time";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        keys::percentile("percentile", self.percentile)?;
        let bound = keys::bound(self.at_least, self.at_most, None, "a hold time", |d| {
            Shown(d).to_string()
        })?;
        Ok(Arc::new(HoldTime::new(
            self.dependency,
            self.percentile,
            bound,
            scope,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, two_phases, MS};
    use crate::Outcome;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// 20 calls in the fault phase, each held `hold_ms`.
    fn calls(hold_ms: u64) -> Observations {
        let mut seen = two_phases();
        for i in 0..20 {
            call(&mut seen, "crm", 1_000 + i * 10, 1, &format!("req-{i}"));
        }
        for c in seen.dependencies.get_mut("crm").unwrap() {
            c.departure_ns = Some(c.arrival_ns + hold_ms * MS);
        }
        seen
    }

    #[test]
    fn calls_held_past_the_bound_fail_and_those_let_go_pass() {
        let claim = HoldTime::new("crm", 99.0, Bound::at_most(ms(500)), Scope::phase("fault"));
        assert_eq!(claim.check(&calls(200)).outcome, Outcome::Pass);
        let held = claim.check(&calls(800));
        assert_eq!(held.outcome, Outcome::Fail);
        assert_eq!(held.evidence.observed, Some(Measure::Duration(ms(800))));
        assert_eq!(held.evidence.first_broke_ns, Some(1_000 * MS));
        assert_eq!(held.property, "hold_time(crm, p99) <= 500ms");
        let waited = HoldTime::new("crm", 50.0, Bound::at_least(ms(500)), Scope::phase("fault"))
            .check(&calls(200));
        assert_eq!(waited.outcome, Outcome::Fail);
        assert_eq!(waited.evidence.threshold, Measure::Duration(ms(500)));
    }

    #[test]
    fn a_call_still_open_breaks_an_upper_bound_it_passed_and_is_no_pass_under_one() {
        let mut seen = calls(100);
        seen.phases[1].end_ns = 2_000 * MS;
        // One call (arrived at 1.05 s) never departed: held at least 950 ms
        // by the end of the phase, the last instant seen.
        seen.dependencies.get_mut("crm").unwrap()[5].departure_ns = None;
        let max = |most| {
            HoldTime::new(
                "crm",
                100.0,
                Bound::at_most(ms(most)),
                Scope::phase("fault"),
            )
            .check(&seen)
        };
        let broke = max(900);
        assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
        assert_eq!(broke.evidence.witness.as_deref(), Some("req-5"));
        let unknown = max(5_000);
        assert_eq!(unknown.outcome, Outcome::Inconclusive, "{unknown:?}");
        assert!(unknown.note.unwrap().contains("1 calls had not ended"));
    }
}
