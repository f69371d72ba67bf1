//! `success_rate`: an endpoint keeps answering 2xx/3xx (isolation: an
//! endpoint that does not use the faulty dependency keeps its success rate).

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{ratio, Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// At least `at_least` (a fraction, 0.99 for 99%) of the requests to
/// `endpoint` (every endpoint when `None`) succeed in the phase.
///
/// ```
/// use faultline_properties::{Property, Scope, SuccessRate};
/// let isolation = SuccessRate::new(0.99, Scope::phase("crm slow")).for_endpoint("checkout");
/// assert_eq!(isolation.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessRate {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// The least share of successes, 0 to 1.
    pub at_least: f64,
    /// Where to look.
    pub scope: Scope,
}

impl SuccessRate {
    /// `success_rate >= at_least` within `scope`.
    pub fn new(at_least: f64, scope: Scope) -> Self {
        SuccessRate {
            endpoint: None,
            at_least,
            scope,
        }
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

impl Property for SuccessRate {
    fn name(&self) -> String {
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        format!("success_rate({subject}) >= {}", self.at_least)
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Edge
    }

    fn threshold(&self) -> Measure {
        Measure::Ratio(self.at_least)
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let mut succeeded = 0u64;
        let mut first_failure = None::<&crate::EdgeRecord>;
        for request in seen.edge_in(phase, self.scope.settle, self.endpoint.as_deref()) {
            evidence.samples += 1;
            if request.succeeded() {
                succeeded += 1;
            } else if first_failure.is_none_or(|f| request.intended_ns < f.intended_ns) {
                first_failure = Some(request);
            }
        }
        evidence.first_broke_ns = first_failure.map(|f| f.intended_ns);
        evidence.witness = first_failure.and_then(|f| f.witness());
        let Some(rate) = ratio(succeeded, evidence.samples) else {
            return Judgement::inconclusive("no requests in the phase");
        };
        evidence.observed = Some(Measure::Ratio(rate));
        Judgement::held(rate >= self.at_least)
    }
}

/// `property = "success_rate"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The least share of successes, 0 to 1.
    at_least: f64,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "success_rate";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        let mut property = SuccessRate::new(keys::fraction("at_least", self.at_least)?, scope);
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

    #[test]
    fn throttled_checkouts_fail_isolation_and_name_the_first_429() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 80, 5, 200);
        requests(&mut seen, "checkout", 1_805, 20, 5, 429);
        let verdict = SuccessRate::new(0.99, Scope::phase("fault"))
            .for_endpoint("checkout")
            .check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Ratio(0.8)));
        assert_eq!(verdict.evidence.first_broke_ns, Some(1_805 * MS));
        assert_eq!(
            verdict.evidence.witness,
            Some(id("checkout", 1_805, 0).to_string())
        );
    }

    #[test]
    fn an_unaffected_endpoint_passes() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 1_000, 100, 5, 200);
        requests(&mut seen, "checkout", 1_000, 50, 5, 503);
        let verdict = SuccessRate::new(0.99, Scope::phase("fault"))
            .for_endpoint("search")
            .check(&seen);
        assert_eq!(verdict.outcome, Outcome::Pass);
    }

    #[test]
    fn is_inconclusive_with_too_few_requests() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 1_000, 3, 5, 200);
        let verdict = SuccessRate::new(0.99, Scope::phase("fault")).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Inconclusive);
    }
}
