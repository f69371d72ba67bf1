//! `retry_amplification`: retries do not multiply the load on a dependency.

use std::collections::BTreeMap;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{ratio, Bound, Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// Calls reaching `dependency` per edge request sent (to `endpoint`, or to
/// every endpoint) in the phase stays within `bound` — at most `k` (three
/// immediate retries at one layer make it about 4, at two layers about
/// 9-16), or exactly `k` (nginx's `proxy_next_upstream` over three failing
/// servers makes exactly 3), or a range.
///
/// Every call at the dependency counts, correlated or not; the witness is the
/// correlation id that reached it most often.
///
/// ```
/// use faultline_properties::{Property, RetryAmplification, Scope};
/// let claim = RetryAmplification::new("payments", 2.0, Scope::phase("payments down"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryAmplification {
    /// The dependency's name.
    pub dependency: String,
    /// Only requests to this endpoint count as edge requests; all when `None`.
    pub endpoint: Option<String>,
    /// Dependency calls per edge request.
    pub bound: Bound<f64>,
    /// Where to look.
    pub scope: Scope,
}

impl RetryAmplification {
    /// `calls(dependency) / requests <= at_most` within `scope`.
    pub fn new(dependency: impl Into<String>, at_most: f64, scope: Scope) -> Self {
        RetryAmplification {
            dependency: dependency.into(),
            endpoint: None,
            bound: Bound::at_most(at_most),
            scope,
        }
    }

    /// Holds the ratio to `bound` instead (`Bound::exactly(3.0)`).
    pub fn within(mut self, bound: Bound<f64>) -> Self {
        self.bound = bound;
        self
    }

    /// Counts only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

impl Property for RetryAmplification {
    fn name(&self) -> String {
        let subject = match &self.endpoint {
            Some(endpoint) => format!("{endpoint} -> {}", self.scope.subject(&self.dependency)),
            None => self.scope.subject(&self.dependency),
        };
        format!("retry_amplification({subject}) {}", self.bound)
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::EdgeAndCalls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Ratio(self.bound.threshold_for(None))
    }

    fn samples(&self) -> Samples {
        Samples::of("edge requests in the phase")
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let attributed =
            self.scope
                .attributed(seen, &self.dependency, phase, self.endpoint.as_deref());
        let requests = attributed.requests;
        let mut per_request: BTreeMap<&str, u64> = BTreeMap::new();
        let mut calls = 0u64;
        for call in attributed.calls {
            calls += 1;
            if let Some(id) = call.correlation_id.as_deref() {
                *per_request.entry(id).or_default() += 1;
            }
        }
        evidence.samples = requests;
        evidence.witness = per_request
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(id, _)| (*id).to_owned());
        let Some(ratio) = ratio(calls, requests) else {
            return Judgement::inconclusive("no edge requests in the phase");
        };
        evidence.observed = Some(Measure::Ratio(ratio));
        evidence.threshold = Measure::Ratio(self.bound.threshold_for(Some(ratio)));
        let retried = per_request.values().filter(|n| **n > 1).count();
        Judgement::held(self.bound.holds(ratio)).covering(
            retried > 0,
            format!("{retried} of {requests} requests were retried"),
        )
    }
}

/// `property = "retry_amplification"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// The most calls there per edge request...
    #[serde(default)]
    at_most: Option<f64>,
    /// ...and/or the least...
    #[serde(default)]
    at_least: Option<f64>,
    /// ...or exactly this many.
    #[serde(default)]
    exactly: Option<f64>,
    /// The endpoint whose requests count; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "retry_amplification";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        for (key, value) in [
            ("at_most", self.at_most),
            ("at_least", self.at_least),
            ("exactly", self.exactly),
        ] {
            if value.is_some_and(|v| v < 0.0) {
                return Err(ParamError::at(key, "must be 0 or more"));
            }
        }
        let bound = keys::bound(
            self.at_least,
            self.at_most,
            self.exactly,
            "calls per edge request",
            |v| v.to_string(),
        )?;
        let mut property = RetryAmplification::new(self.dependency, 0.0, scope).within(bound);
        if let Some(endpoint) = self.endpoint {
            names.endpoint("endpoint", &endpoint)?;
            property.endpoint = Some(endpoint);
        }
        Ok(Arc::new(property))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, requests, two_phases};
    use crate::Outcome;

    fn storm(retries_per_request: u64) -> Observations {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 5, 502);
        for i in 0..50 {
            for attempt in 0..=retries_per_request {
                call(
                    &mut seen,
                    "payments",
                    1_000 + i * 10 + attempt,
                    1,
                    &format!("checkout-1000-{i}"),
                );
            }
        }
        seen
    }

    #[test]
    fn three_immediate_retries_amplify_four_times_and_fail() {
        let verdict =
            RetryAmplification::new("payments", 2.0, Scope::phase("fault")).check(&storm(3));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Ratio(4.0)));
        assert_eq!(verdict.evidence.samples, 50);
        assert!(verdict
            .evidence
            .witness
            .unwrap()
            .starts_with("checkout-1000-"));
    }

    #[test]
    fn one_retry_stays_under_two_and_passes() {
        let verdict = RetryAmplification::new("payments", 2.0, Scope::phase("fault"))
            .for_endpoint("checkout")
            .check(&storm(1));
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
    }

    #[test]
    fn is_inconclusive_without_enough_edge_requests() {
        let verdict =
            RetryAmplification::new("payments", 2.0, Scope::phase("baseline")).check(&storm(3));
        assert_eq!(verdict.outcome, Outcome::Inconclusive);
    }

    #[test]
    fn exactly_three_calls_a_request_holds_only_at_three() {
        let exactly = |k| {
            RetryAmplification::new("payments", 0.0, Scope::phase("fault"))
                .within(Bound::exactly(k))
                .check(&storm(2))
        };
        let three = exactly(3.0);
        assert_eq!(three.outcome, Outcome::Pass, "{three:?}");
        assert_eq!(three.property, "retry_amplification(payments) == 3");
        let four = exactly(4.0);
        assert_eq!(four.outcome, Outcome::Fail, "too few calls break it too");
        assert_eq!(four.evidence.threshold, Measure::Ratio(4.0));
        let range = RetryAmplification::new("payments", 0.0, Scope::phase("fault"))
            .within(Bound::between(1.5, 2.5))
            .check(&storm(2));
        assert_eq!(range.outcome, Outcome::Fail, "3 is past 2.5");
        assert_eq!(range.evidence.threshold, Measure::Ratio(2.5));
    }
}
