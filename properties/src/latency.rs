//! Latency bounds in the spirit of k6 thresholds: `p99 <= 250ms`,
//! `p50 >= 200ms`, `min in 440ms..=1s`, or `p99 <= baseline * 1.5`, per
//! endpoint. `fast_fail` and `latency_budget` are this property with a fault
//! phase and a tight bound.

use std::time::Duration;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::windows::{self, Window};
use crate::{percentile, stat_name, Bound, Judgement, Property, Reads, Samples, Scope};
use crate::{EdgeRecord, Observations, Outcomes, Phase};

/// The bound a latency percentile is held to.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyLimit {
    /// A fixed bound: at most, at least, or both.
    Fixed(Bound<Duration>),
    /// The same percentile in another phase (the baseline), times `factor`.
    Baseline {
        /// The phase to compare against.
        phase: String,
        /// How much worse than the baseline is allowed.
        factor: f64,
    },
}

impl LatencyLimit {
    /// At most `bound`: `p99 <= 250ms`.
    pub fn at_most(bound: Duration) -> Self {
        LatencyLimit::Fixed(Bound::at_most(bound))
    }

    /// At least `bound`: `p50 >= 200ms` (a request that should wait behind
    /// a slow dependency, or a shed that should not come too soon).
    pub fn at_least(bound: Duration) -> Self {
        LatencyLimit::Fixed(Bound::at_least(bound))
    }
}

/// The `percentile` (0-100; 0 = min, 100 = max) of latency, measured from
/// each request's intended send time, stays within `limit` for `endpoint`
/// (every endpoint when `None`), counting only the requests that ended with
/// `status` when it is set (the shed 503s apart from the accepted 200s).
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{LatencyBound, LatencyLimit, Property, Scope};
///
/// let fast_fail = LatencyBound::new(99.0, LatencyLimit::at_most(Duration::from_millis(100)), Scope::phase("crm down"))
///     .for_endpoint("crm_sync");
/// assert_eq!(fast_fail.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyBound {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// Only requests that ended so; all when `None`.
    pub status: Option<Outcomes>,
    /// Which percentile (0 is the minimum, 100 the maximum).
    pub percentile: f64,
    /// The bound.
    pub limit: LatencyLimit,
    /// Judged in every window of this length instead of the whole phase
    /// (see [`crate::SuccessRate::over_windows`]).
    pub window: Option<Duration>,
    /// Where to look.
    pub scope: Scope,
}

impl LatencyBound {
    /// `p<percentile> <= limit` within `scope`.
    pub fn new(percentile: f64, limit: LatencyLimit, scope: Scope) -> Self {
        LatencyBound {
            endpoint: None,
            status: None,
            percentile,
            limit,
            window: None,
            scope,
        }
    }

    /// Judges every window of `length` in the phase ("no 10 s window with a
    /// p99 over 250 ms") instead of the phase as a whole.
    pub fn over_windows(mut self, length: Duration) -> Self {
        self.window = Some(length);
        self
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Judges only requests that ended with `status` (`"503"`, `"2xx"`,
    /// `"timeout"`).
    pub fn for_outcomes(mut self, status: Outcomes) -> Self {
        self.status = Some(status);
        self
    }

    /// The requests it judges in `phase`: to its endpoint, ended as selected.
    fn selected<'a>(
        &'a self,
        seen: &'a Observations,
        phase: &'a Phase,
        settle: Duration,
    ) -> impl Iterator<Item = &'a EdgeRecord> + 'a {
        seen.edge_in(phase, settle, self.endpoint.as_deref())
            .filter(|r| self.status.as_ref().is_none_or(|s| s.matches(r.outcome)))
    }

    fn latencies(
        &self,
        seen: &Observations,
        phase: &str,
        settle: Duration,
    ) -> Option<Vec<Duration>> {
        let phase = seen.phase(phase)?;
        Some(
            self.selected(seen, phase, settle)
                .map(|r| r.latency())
                .collect(),
        )
    }
}

impl Property for LatencyBound {
    fn name(&self) -> String {
        let stat = stat_name(self.percentile);
        let endpoint = self.endpoint.as_deref().unwrap_or("all endpoints");
        let subject = match &self.status {
            Some(status) => format!("{endpoint} [{status}]"),
            None => endpoint.to_owned(),
        };
        let claim = match &self.limit {
            LatencyLimit::Fixed(bound) => {
                format!(
                    "{stat}({subject}) {}",
                    bound.describe(|d| Shown(d).to_string())
                )
            }
            LatencyLimit::Baseline { phase, factor } => {
                format!("{stat}({subject}) <= {phase} * {factor}")
            }
        };
        match self.window {
            Some(length) => format!("{claim} in every {} window", Shown(length)),
            None => claim,
        }
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Edge
    }

    fn threshold(&self) -> Measure {
        match &self.limit {
            LatencyLimit::Fixed(bound) => Measure::Duration(bound.threshold_for(None)),
            // Known once the baseline is read.
            LatencyLimit::Baseline { .. } => Measure::Duration(Duration::ZERO),
        }
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let bound = match &self.limit {
            LatencyLimit::Fixed(bound) => *bound,
            LatencyLimit::Baseline { phase, factor } => {
                let mut baseline = self
                    .latencies(seen, phase, Duration::ZERO)
                    .unwrap_or_default();
                if (baseline.len() as u64) < self.scope.min_samples {
                    return Judgement::inconclusive(format!(
                        "{} requests in the baseline phase `{phase}` (need {})",
                        baseline.len(),
                        self.scope.min_samples
                    ));
                }
                let reference = percentile(&mut baseline, self.percentile).unwrap_or_default();
                Bound::at_most(reference.mul_f64(factor.max(0.0)))
            }
        };
        evidence.threshold = Measure::Duration(bound.threshold_for(None));
        if let Some(length) = self.window {
            return self.judge_windows(seen, phase, bound, length, evidence);
        }
        let records: Vec<_> = self.selected(seen, phase, self.scope.settle).collect();
        evidence.samples = records.len() as u64;
        let mut latencies: Vec<Duration> = records.iter().map(|r| r.latency()).collect();
        let Some(observed) = percentile(&mut latencies, self.percentile) else {
            return Judgement::inconclusive(match &self.status {
                Some(status) => format!("no request in the phase ended with {status}"),
                None => "no requests in the phase".to_owned(),
            });
        };
        evidence.observed = Some(Measure::Duration(observed));
        evidence.threshold = Measure::Duration(bound.threshold_for(Some(observed)));
        // Too fast is the breach when the lower side broke: the first request
        // under it, and the fastest as the witness; else the slowest.
        let too_fast = bound.lower().is_some_and(|least| observed < least);
        evidence.first_broke_ns = records
            .iter()
            .filter(|r| match (too_fast, bound.broken_by(r.latency())) {
                (true, Some(least)) => r.latency() < least,
                (false, Some(most)) => r.latency() > most,
                (_, None) => false,
            })
            .map(|r| r.intended_ns)
            .min();
        let witness = if too_fast {
            records.iter().min_by_key(|r| r.latency())
        } else {
            records.iter().max_by_key(|r| r.latency())
        };
        evidence.witness = witness.and_then(|r| r.witness());
        self.covered(seen, phase, Judgement::held(bound.holds(observed)))
    }
}

impl LatencyBound {
    /// Whether any call in the phase met a fault (the bound was tested against one).
    fn covered(&self, seen: &Observations, phase: &Phase, judgement: Judgement) -> Judgement {
        let faulted = seen
            .dependencies
            .keys()
            .flat_map(|d| seen.calls_in(d, phase, self.scope.settle))
            .filter(|c| !c.faults.is_empty())
            .count();
        let what = if faulted > 0 {
            format!("{faulted} calls met a fault")
        } else {
            "no call met a fault: the bound was not tested against one".to_owned()
        };
        judgement.covering(faulted > 0, what)
    }

    /// Every window judged on its own; the worst is the evidence: the one
    /// past the upper side by the most, else the one past the lower side.
    fn judge_windows(
        &self,
        seen: &Observations,
        phase: &Phase,
        bound: Bound<Duration>,
        length: Duration,
        evidence: &mut Evidence,
    ) -> Judgement {
        let mut records: Vec<&EdgeRecord> = self.selected(seen, phase, self.scope.settle).collect();
        let windows = windows::sliding(&mut records, phase, self.scope.settle, length);
        let judged: Vec<(Duration, &Window<'_, '_>)> = windows
            .iter()
            .filter(|w| w.records.len() as u64 >= self.scope.min_samples)
            .filter_map(|w| {
                let mut latencies: Vec<Duration> = w.records.iter().map(|r| r.latency()).collect();
                Some((percentile(&mut latencies, self.percentile)?, w))
            })
            .collect();
        let highest = judged.iter().max_by_key(|(p, _)| *p);
        let lowest = judged.iter().min_by_key(|(p, _)| *p);
        let worst = match (highest, lowest) {
            (Some(high), _) if bound.upper().is_some_and(|most| high.0 > most) => high,
            (_, Some(low)) if bound.lower().is_some_and(|least| low.0 < least) => low,
            (Some(high), _) if bound.upper().is_some() => high,
            (_, Some(low)) => low,
            _ => {
                return windows::none_judged(&windows, length, self.scope.min_samples, evidence);
            }
        };
        let &(observed, window) = worst;
        evidence.samples = window.records.len() as u64;
        evidence.observed = Some(Measure::Duration(observed));
        evidence.threshold = Measure::Duration(bound.threshold_for(Some(observed)));
        let too_fast = bound.lower().is_some_and(|least| observed < least);
        let breach = |r: &EdgeRecord| match bound.broken_by(r.latency()) {
            Some(least) if too_fast => r.latency() < least,
            Some(most) => !too_fast && r.latency() > most,
            None => false,
        };
        evidence.witness = window
            .records
            .iter()
            .find(|r| breach(r))
            .and_then(|r| r.witness());
        evidence.first_broke_ns = judged
            .iter()
            .filter(|(p, _)| !bound.holds(*p))
            .find_map(|(_, w)| w.records.iter().find(|r| breach(r)))
            .map(|r| r.intended_ns);
        let held = judged.iter().all(|(p, _)| bound.holds(*p));
        let worst_at = format!("worst: {}", window.describe(phase));
        if held {
            if let Some(thin) = windows::thin(&windows, phase, self.scope.min_samples, &worst_at) {
                return thin;
            }
        }
        self.covered(seen, phase, Judgement::held(held).note(worst_at))
    }
}

/// `property = "latency"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// Which percentile, from 0 to 100 (99; 0 is the minimum, 100 the maximum).
    #[serde(default = "ninety_nine")]
    percentile: f64,
    /// A fixed bound: at most...
    #[serde(default, deserialize_with = "keys::optional_duration")]
    at_most: Option<Duration>,
    /// ...and/or at least...
    #[serde(default, deserialize_with = "keys::optional_duration")]
    at_least: Option<Duration>,
    /// ...or the same percentile in this phase...
    #[serde(default)]
    baseline: Option<String>,
    /// ...times this factor.
    #[serde(default)]
    factor: Option<f64>,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
    /// Only requests that ended so (`503`, `"5xx"`, `"timeout"`, a list).
    #[serde(default)]
    status: Option<Outcomes>,
    /// Judged in every window of this length inside the phase.
    #[serde(default, deserialize_with = "keys::optional_duration")]
    window: Option<Duration>,
}

fn ninety_nine() -> f64 {
    99.0
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "latency";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        keys::percentile("percentile", self.percentile)?;
        let fixed = self.at_most.is_some() || self.at_least.is_some();
        let limit = match (fixed, self.baseline, self.factor) {
            (true, None, None) => LatencyLimit::Fixed(keys::bound(
                self.at_least,
                self.at_most,
                None,
                "a latency",
                |d| Shown(d).to_string(),
            )?),
            (false, Some(phase), Some(factor)) => {
                names.phase("baseline", &phase)?;
                if phase == scope.phase {
                    return Err(ParamError::at(
                        "baseline",
                        format!("is the phase judged (`{phase}`): a phase cannot be its own baseline"),
                    ));
                }
                if factor <= 0.0 {
                    return Err(ParamError::at("factor", "must be above 0"));
                }
                LatencyLimit::Baseline { phase, factor }
            }
            (true, _, _) => {
                let key = if self.at_most.is_some() {
                    "at_most"
                } else {
                    "at_least"
                };
                return Err(ParamError::at(
                    key,
                    "a fixed bound or `baseline` and `factor`, not both",
                ));
            }
            (false, None, Some(_)) => return Err(ParamError::at("factor", "goes with `baseline`")),
            (false, Some(_), None) => return Err(ParamError::at("baseline", "needs `factor`")),
            (false, None, None) => {
                return Err(ParamError::whole(
                    "latency needs `at_most` or `at_least` (durations; or both), or `baseline` and `factor`",
                ))
            }
        };
        let window = self
            .window
            .map(|w| keys::window(w, &scope, names))
            .transpose()?;
        let mut property = LatencyBound::new(self.percentile, limit, scope);
        property.window = window;
        if let Some(endpoint) = self.endpoint {
            names.endpoint("endpoint", &endpoint)?;
            property = property.for_endpoint(endpoint);
        }
        if let Some(status) = self.status {
            property = property.for_outcomes(status);
        }
        Ok(Arc::new(property))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{id, requests, two_phases, MS};
    use crate::Outcome;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_absolute_bound_passes_and_fails_on_the_percentile() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 95, 20, 200);
        requests(&mut seen, "checkout", 1_950, 5, 900, 200);
        let p90 = LatencyBound::new(90.0, LatencyLimit::at_most(ms(50)), Scope::phase("fault"))
            .check(&seen);
        assert_eq!(p90.outcome, Outcome::Pass, "{p90:?}");
        let p99 = LatencyBound::new(99.0, LatencyLimit::at_most(ms(50)), Scope::phase("fault"))
            .check(&seen);
        assert_eq!(p99.outcome, Outcome::Fail);
        assert_eq!(p99.evidence.observed, Some(Measure::Duration(ms(900))));
        assert_eq!(p99.evidence.first_broke_ns, Some(1_950 * MS));
        let slow: Vec<String> = (0..5)
            .map(|i| id("checkout", 1_950, i).to_string())
            .collect();
        assert!(slow.contains(&p99.evidence.witness.unwrap()));
    }

    #[test]
    fn a_baseline_bound_compares_with_the_baseline_phase() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 0, 50, 100, 200);
        requests(&mut seen, "search", 1_000, 50, 140, 200);
        let within = LatencyBound::new(
            99.0,
            LatencyLimit::Baseline {
                phase: "baseline".into(),
                factor: 1.5,
            },
            Scope::phase("fault"),
        )
        .for_endpoint("search")
        .check(&seen);
        assert_eq!(within.outcome, Outcome::Pass, "{within:?}");
        assert_eq!(within.evidence.threshold, Measure::Duration(ms(150)));
        let tight = LatencyBound::new(
            99.0,
            LatencyLimit::Baseline {
                phase: "baseline".into(),
                factor: 1.2,
            },
            Scope::phase("fault"),
        )
        .check(&seen);
        assert_eq!(tight.outcome, Outcome::Fail);
    }

    #[test]
    fn is_inconclusive_with_too_few_requests_or_an_empty_baseline() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 1_000, 5, 10, 200);
        let few = LatencyBound::new(99.0, LatencyLimit::at_most(ms(50)), Scope::phase("fault"))
            .check(&seen);
        assert_eq!(few.outcome, Outcome::Inconclusive);
        requests(&mut seen, "search", 1_100, 50, 10, 200);
        let no_baseline = LatencyBound::new(
            99.0,
            LatencyLimit::Baseline {
                phase: "baseline".into(),
                factor: 2.0,
            },
            Scope::phase("fault"),
        )
        .check(&seen);
        assert_eq!(no_baseline.outcome, Outcome::Inconclusive);
    }

    #[test]
    fn a_lower_bound_fails_when_requests_come_back_too_soon() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 90, 250, 200);
        requests(&mut seen, "checkout", 1_900, 10, 3, 503);
        let waits = |p: f64| {
            LatencyBound::new(p, LatencyLimit::at_least(ms(200)), Scope::phase("fault"))
                .for_endpoint("checkout")
                .check(&seen)
        };
        let p50 = waits(50.0);
        assert_eq!(p50.outcome, Outcome::Pass, "{p50:?}");
        assert_eq!(p50.property, "p50(checkout) >= 200ms");
        let min = waits(0.0);
        assert_eq!(min.property, "min(checkout) >= 200ms");
        assert_eq!(min.outcome, Outcome::Fail);
        assert_eq!(min.evidence.observed, Some(Measure::Duration(ms(3))));
        assert_eq!(min.evidence.threshold, Measure::Duration(ms(200)));
        assert_eq!(min.evidence.first_broke_ns, Some(1_900 * MS));
        let fast: Vec<String> = (0..10)
            .map(|i| id("checkout", 1_900, i).to_string())
            .collect();
        assert!(
            fast.contains(&min.evidence.witness.unwrap()),
            "the fastest is the witness"
        );
    }

    #[test]
    fn a_range_shows_the_side_it_broke() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 600, 200);
        let range = |least, most| {
            LatencyBound::new(
                99.0,
                LatencyLimit::Fixed(Bound::between(ms(least), ms(most))),
                Scope::phase("fault"),
            )
            .check(&seen)
        };
        let held = range(440, 1_000);
        assert_eq!(held.outcome, Outcome::Pass);
        assert_eq!(held.property, "p99(all endpoints) in 440ms..=1s");
        let slow = range(100, 500);
        assert_eq!(slow.outcome, Outcome::Fail);
        assert_eq!(slow.evidence.threshold, Measure::Duration(ms(500)));
        let fast = range(700, 900);
        assert_eq!(fast.outcome, Outcome::Fail);
        assert_eq!(fast.evidence.threshold, Measure::Duration(ms(700)));
    }

    #[test]
    fn a_status_selects_the_requests_judged() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 90, 250, 200);
        requests(&mut seen, "checkout", 1_900, 10, 3, 503);
        let of = |status: &str, limit| {
            LatencyBound::new(99.0, limit, Scope::phase("fault"))
                .for_endpoint("checkout")
                .for_outcomes(status.parse().unwrap())
                .check(&seen)
        };
        let shed = of("503", LatencyLimit::at_most(ms(10)));
        assert_eq!(shed.outcome, Outcome::Pass, "{shed:?}");
        assert_eq!(shed.property, "p99(checkout [503]) <= 10ms");
        assert_eq!(shed.evidence.samples, 10);
        let accepted = of("2xx", LatencyLimit::at_least(ms(200)));
        assert_eq!(accepted.outcome, Outcome::Pass, "{accepted:?}");
        assert_eq!(accepted.evidence.samples, 90);
        // Unselected, the fast 503s drag the minimum down...
        let all = LatencyBound::new(0.0, LatencyLimit::at_least(ms(200)), Scope::phase("fault"))
            .check(&seen);
        assert_eq!(all.outcome, Outcome::Fail);
        // ...and a selection nothing ended with is no evidence.
        let none = of("timeout", LatencyLimit::at_most(ms(10)));
        assert_eq!(none.outcome, Outcome::Inconclusive, "{none:?}");
    }

    #[test]
    fn a_slow_burst_breaks_a_windowed_p99_that_the_phase_hides() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 20, 200);
        requests(&mut seen, "checkout", 1_500, 20, 900, 200);
        requests(&mut seen, "checkout", 1_700, 30, 20, 200);
        let p75 = |window: Option<u64>| {
            let bound =
                LatencyBound::new(75.0, LatencyLimit::at_most(ms(100)), Scope::phase("fault"));
            match window {
                Some(w) => bound.over_windows(ms(w)),
                None => bound,
            }
            .check(&seen)
        };
        assert_eq!(
            p75(None).outcome,
            Outcome::Pass,
            "80% of the phase was fast"
        );
        let windowed = p75(Some(300));
        assert_eq!(windowed.outcome, Outcome::Fail, "{windowed:?}");
        assert_eq!(
            windowed.property,
            "p75(all endpoints) <= 100ms in every 300ms window"
        );
        assert_eq!(windowed.evidence.observed, Some(Measure::Duration(ms(900))));
        assert_eq!(windowed.evidence.first_broke_ns, Some(1_500 * MS));
        // From below, the fast windows are the breach.
        let waits = LatencyBound::new(50.0, LatencyLimit::at_least(ms(500)), Scope::phase("fault"))
            .over_windows(ms(300))
            .check(&seen);
        assert_eq!(waits.outcome, Outcome::Fail);
        assert_eq!(waits.evidence.observed, Some(Measure::Duration(ms(20))));
        assert_eq!(waits.evidence.threshold, Measure::Duration(ms(500)));
    }
}
