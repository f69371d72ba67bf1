//! Latency bounds in the spirit of k6 thresholds: `p99 <= 250ms`, or
//! `p99 <= baseline * 1.5`, per endpoint. `fast_fail` and `latency_budget`
//! are this property with a fault phase and a tight bound.

use std::time::Duration;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{percentile, Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// The bound a latency percentile is held to.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyLimit {
    /// A fixed bound.
    Absolute(Duration),
    /// The same percentile in another phase (the baseline), times `factor`.
    Baseline {
        /// The phase to compare against.
        phase: String,
        /// How much worse than the baseline is allowed.
        factor: f64,
    },
}

/// The `percentile` (0-100; 100 = max) of latency, measured from each
/// request's intended send time, stays within `limit` for `endpoint` (every
/// endpoint when `None`).
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{LatencyBound, LatencyLimit, Property, Scope};
///
/// let fast_fail = LatencyBound::new(99.0, LatencyLimit::Absolute(Duration::from_millis(100)), Scope::phase("crm down"))
///     .for_endpoint("crm_sync");
/// assert_eq!(fast_fail.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyBound {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// Which percentile (100 is the maximum).
    pub percentile: f64,
    /// The bound.
    pub limit: LatencyLimit,
    /// Where to look.
    pub scope: Scope,
}

impl LatencyBound {
    /// `p<percentile> <= limit` within `scope`.
    pub fn new(percentile: f64, limit: LatencyLimit, scope: Scope) -> Self {
        LatencyBound {
            endpoint: None,
            percentile,
            limit,
            scope,
        }
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    fn latencies(
        &self,
        seen: &Observations,
        phase: &str,
        settle: Duration,
    ) -> Option<Vec<Duration>> {
        let phase = seen.phase(phase)?;
        Some(
            seen.edge_in(phase, settle, self.endpoint.as_deref())
                .map(|r| r.latency())
                .collect(),
        )
    }
}

impl Property for LatencyBound {
    fn name(&self) -> String {
        let stat = if self.percentile >= 100.0 {
            "max".to_owned()
        } else {
            format!("p{}", self.percentile)
        };
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        match &self.limit {
            LatencyLimit::Absolute(bound) => format!("{stat}({subject}) <= {}", Shown(*bound)),
            LatencyLimit::Baseline { phase, factor } => {
                format!("{stat}({subject}) <= {phase} * {factor}")
            }
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
            LatencyLimit::Absolute(bound) => Measure::Duration(*bound),
            // Known once the baseline is read.
            LatencyLimit::Baseline { .. } => Measure::Duration(Duration::ZERO),
        }
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let bound = match &self.limit {
            LatencyLimit::Absolute(bound) => *bound,
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
                reference.mul_f64(factor.max(0.0))
            }
        };
        evidence.threshold = Measure::Duration(bound);
        let records: Vec<_> = seen
            .edge_in(phase, self.scope.settle, self.endpoint.as_deref())
            .collect();
        evidence.samples = records.len() as u64;
        evidence.first_broke_ns = records
            .iter()
            .filter(|r| r.latency() > bound)
            .map(|r| r.intended_ns)
            .min();
        evidence.witness = records
            .iter()
            .max_by_key(|r| r.latency())
            .and_then(|r| r.witness());
        let mut latencies: Vec<Duration> = records.iter().map(|r| r.latency()).collect();
        let Some(observed) = percentile(&mut latencies, self.percentile) else {
            return Judgement::inconclusive("no requests in the phase");
        };
        evidence.observed = Some(Measure::Duration(observed));
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
        Judgement::held(observed <= bound).covering(faulted > 0, what)
    }
}

/// `property = "latency"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// Which percentile, above 0 and at most 100 (99; 100 is the maximum).
    #[serde(default = "ninety_nine")]
    percentile: f64,
    /// A fixed bound...
    #[serde(default, deserialize_with = "keys::optional_duration")]
    at_most: Option<Duration>,
    /// ...or the same percentile in this phase...
    #[serde(default)]
    baseline: Option<String>,
    /// ...times this factor.
    #[serde(default)]
    factor: Option<f64>,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

fn ninety_nine() -> f64 {
    99.0
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "latency";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(ParamError::at(
                "percentile",
                format!("must be above 0 and at most 100, not {}", self.percentile),
            ));
        }
        let limit = match (self.at_most, self.baseline, self.factor) {
            (Some(bound), None, None) => LatencyLimit::Absolute(bound),
            (None, Some(phase), Some(factor)) => {
                names.phase("baseline", &phase)?;
                if factor <= 0.0 {
                    return Err(ParamError::at("factor", "must be above 0"));
                }
                LatencyLimit::Baseline { phase, factor }
            }
            (Some(_), _, _) => {
                return Err(ParamError::at(
                    "at_most",
                    "a fixed bound or `baseline` and `factor`, not both",
                ))
            }
            (None, None, Some(_)) => return Err(ParamError::at("factor", "goes with `baseline`")),
            (None, Some(_), None) => return Err(ParamError::at("baseline", "needs `factor`")),
            (None, None, None) => {
                return Err(ParamError::whole(
                    "latency needs `at_most` (a duration) or `baseline` and `factor`",
                ))
            }
        };
        let mut property = LatencyBound::new(self.percentile, limit, scope);
        if let Some(endpoint) = self.endpoint {
            names.endpoint("endpoint", &endpoint)?;
            property = property.for_endpoint(endpoint);
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
        let p90 = LatencyBound::new(90.0, LatencyLimit::Absolute(ms(50)), Scope::phase("fault"))
            .check(&seen);
        assert_eq!(p90.outcome, Outcome::Pass, "{p90:?}");
        let p99 = LatencyBound::new(99.0, LatencyLimit::Absolute(ms(50)), Scope::phase("fault"))
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
        let few = LatencyBound::new(99.0, LatencyLimit::Absolute(ms(50)), Scope::phase("fault"))
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
}
