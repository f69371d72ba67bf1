//! `status_share`: the share of answers of a status or status class stays
//! under a bound (k6-style: `status_share(checkout, 429) <= 1%`): the
//! cascade's "unrelated endpoints get throttled".

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{ratio, Judgement, Property, Reads, Samples, Scope};
use crate::{EdgeRecord, Observations, Outcomes, Phase};

/// At most `at_most` (a fraction) of the requests to `endpoint` (every
/// endpoint when `None`) in the phase end with `status`: an exact code
/// (`"429"`), a class (`"5xx"`), `timeout`, `connect_error` or `reset`, or
/// several (see [`Outcomes`]).
///
/// ```
/// use faultline_properties::{Property, Scope, StatusShare};
/// let claim = StatusShare::new("429", 0.01, Scope::phase("crm slow")).unwrap().for_endpoint("checkout");
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// assert!(StatusShare::new("6xx", 0.01, Scope::phase("crm slow")).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StatusShare {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// The endings counted.
    pub status: Outcomes,
    /// The largest share allowed, 0 to 1.
    pub at_most: f64,
    /// Where to look.
    pub scope: Scope,
}

impl StatusShare {
    /// `status_share(status) <= at_most` within `scope`; `status` is a code
    /// (`"429"`), a class (`"4xx"`) or an ending (`"timeout"`), or several
    /// joined by `|`.
    ///
    /// # Errors
    /// What [`Outcomes`]' parser says of `status`.
    pub fn new(status: &str, at_most: f64, scope: Scope) -> Result<Self, String> {
        Ok(StatusShare::of(status.parse()?, at_most, scope))
    }

    /// `status_share(status) <= at_most` within `scope`.
    pub fn of(status: Outcomes, at_most: f64, scope: Scope) -> Self {
        StatusShare {
            endpoint: None,
            status,
            at_most,
            scope,
        }
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    fn matches(&self, record: &EdgeRecord) -> bool {
        self.status.matches(record.outcome)
    }
}

impl Property for StatusShare {
    fn name(&self) -> String {
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        format!(
            "status_share({subject}, {}) <= {}",
            self.status, self.at_most
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Edge
    }

    fn threshold(&self) -> Measure {
        Measure::Ratio(self.at_most)
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let mut first = None::<&EdgeRecord>;
        let mut hits = 0u64;
        for request in seen.edge_in(phase, self.scope.settle, self.endpoint.as_deref()) {
            evidence.samples += 1;
            if self.matches(request) {
                hits += 1;
                if first.is_none_or(|f| request.intended_ns < f.intended_ns) {
                    first = Some(request);
                }
            }
        }
        let Some(share) = ratio(hits, evidence.samples) else {
            return Judgement::inconclusive("no requests in the phase");
        };
        evidence.observed = Some(Measure::Ratio(share));
        evidence.first_broke_ns = first
            .map(|f| f.intended_ns)
            .filter(|_| share > self.at_most);
        evidence.witness = first.and_then(|f| f.witness());
        Judgement::held(share <= self.at_most)
    }
}

/// `property = "status_share"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// A status code (`429` or `"429"`), a class (`"5xx"`), an ending
    /// (`"timeout"`), or a list of them.
    status: Outcomes,
    /// The largest share allowed, 0 to 1.
    at_most: f64,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "status_share";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        let at_most = keys::fraction("at_most", self.at_most)?;
        let mut property = StatusShare::of(self.status, at_most, scope);
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
    use crate::fixtures::{requests, two_phases};
    use crate::Outcome;

    #[test]
    fn a_throttled_checkout_breaks_its_429_share() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 70, 5, 200);
        requests(&mut seen, "checkout", 1_700, 30, 5, 429);
        let strict = StatusShare::new("429", 0.01, Scope::phase("fault"))
            .unwrap()
            .for_endpoint("checkout");
        let verdict = strict.check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Ratio(0.3)));
        let class = StatusShare::new("4xx", 0.5, Scope::phase("fault")).unwrap();
        assert_eq!(class.check(&seen).outcome, Outcome::Pass);
    }
}
