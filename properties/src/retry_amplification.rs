//! `retry_amplification`: retries do not multiply the load on a dependency.

use std::collections::BTreeMap;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{ratio, Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// Calls reaching `dependency` per edge request sent (to `endpoint`, or to
/// every endpoint) in the phase stays at or under `at_most`: three immediate
/// retries at one layer make it about 4, at two layers about 9-16.
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
    /// The most dependency calls per edge request.
    pub at_most: f64,
    /// Where to look.
    pub scope: Scope,
}

impl RetryAmplification {
    /// `calls(dependency) / requests <= at_most` within `scope`.
    pub fn new(dependency: impl Into<String>, at_most: f64, scope: Scope) -> Self {
        RetryAmplification {
            dependency: dependency.into(),
            endpoint: None,
            at_most,
            scope,
        }
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
        format!("retry_amplification({subject}) <= {}", self.at_most)
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::EdgeAndCalls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Ratio(self.at_most)
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
        let retried = per_request.values().filter(|n| **n > 1).count();
        Judgement::held(ratio <= self.at_most).covering(
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
    /// The most calls there per edge request.
    at_most: f64,
    /// The endpoint whose requests count; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "retry_amplification";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        if self.at_most < 0.0 {
            return Err(ParamError::at("at_most", "must be 0 or more"));
        }
        let mut property = RetryAmplification::new(self.dependency, self.at_most, scope);
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
}
