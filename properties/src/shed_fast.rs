//! `shed_fast`: under overload the system sheds load with a fast 503/429 and
//! a `Retry-After`, and the requests it accepts stay fast.

use std::time::Duration;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{percentile, Judgement, Property, Reads, Samples, Scope};
use crate::{EdgeOutcome, EdgeRecord, Observations, Phase};

/// For `endpoint` (every endpoint when `None`) in the phase: every rejection
/// (503 or 429) carries `Retry-After`, the p99 of rejections is at most
/// `rejected_within`, and the p99 of the other requests at most
/// `accepted_within`. With no rejection at all the shedding was not
/// exercised: inconclusive, unless the accepted requests broke their bound.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{Property, Scope, ShedFast};
/// let claim = ShedFast::new(Duration::from_millis(50), Duration::from_millis(500), Scope::phase("overload"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ShedFast {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// Bound on the p99 of rejections.
    pub rejected_within: Duration,
    /// Bound on the p99 of accepted requests.
    pub accepted_within: Duration,
    /// Where to look.
    pub scope: Scope,
}

impl ShedFast {
    /// Rejections within `rejected_within` with `Retry-After`; accepted requests within `accepted_within`.
    pub fn new(rejected_within: Duration, accepted_within: Duration, scope: Scope) -> Self {
        ShedFast {
            endpoint: None,
            rejected_within,
            accepted_within,
            scope,
        }
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

fn rejected(record: &EdgeRecord) -> bool {
    matches!(record.outcome, EdgeOutcome::Status(429 | 503))
}

impl Property for ShedFast {
    fn name(&self) -> String {
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        format!(
            "shed_fast({subject}): rejections p99 <= {} with Retry-After, accepted p99 <= {}",
            Shown(self.rejected_within),
            Shown(self.accepted_within)
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Edge
    }

    fn threshold(&self) -> Measure {
        Measure::Duration(self.rejected_within)
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let (rejections, accepted): (Vec<&EdgeRecord>, Vec<&EdgeRecord>) = seen
            .edge_in(phase, self.scope.settle, self.endpoint.as_deref())
            .partition(|r| rejected(r));
        evidence.samples = (rejections.len() + accepted.len()) as u64;
        let p99 = |records: &[&EdgeRecord]| {
            percentile(
                &mut records.iter().map(|r| r.latency()).collect::<Vec<_>>(),
                99.0,
            )
        };
        if let Some(slow) = p99(&accepted).filter(|p| *p > self.accepted_within) {
            evidence.observed = Some(Measure::Duration(slow));
            evidence.threshold = Measure::Duration(self.accepted_within);
            evidence.first_broke_ns = accepted
                .iter()
                .filter(|r| r.latency() > self.accepted_within)
                .map(|r| r.intended_ns)
                .min();
            evidence.witness = accepted
                .iter()
                .max_by_key(|r| r.latency())
                .and_then(|r| r.witness());
            return Judgement::held(false)
                .note("accepted requests slowed down: the load was not shed");
        }
        let Some(rejection_p99) = p99(&rejections) else {
            return Judgement::inconclusive(
                "no request was rejected: the shedding was not exercised",
            )
            .covering(false, "no request was shed");
        };
        evidence.observed = Some(Measure::Duration(rejection_p99));
        if let Some(bare) = rejections
            .iter()
            .filter(|r| !r.retry_after)
            .min_by_key(|r| r.intended_ns)
        {
            evidence.first_broke_ns = Some(bare.intended_ns);
            evidence.witness = bare.witness();
            return Judgement::held(false).note("a rejection came without Retry-After");
        }
        evidence.witness = rejections
            .iter()
            .max_by_key(|r| r.latency())
            .and_then(|r| r.witness());
        let shed = format!(
            "{} of {} requests were shed",
            rejections.len(),
            evidence.samples
        );
        Judgement::held(rejection_p99 <= self.rejected_within).covering(true, shed)
    }
}

/// `property = "shed_fast"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// Bound on the p99 of rejections.
    #[serde(deserialize_with = "keys::duration")]
    rejected_within: Duration,
    /// Bound on the p99 of accepted requests.
    #[serde(deserialize_with = "keys::duration")]
    accepted_within: Duration,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "shed_fast";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        let mut property = ShedFast::new(self.rejected_within, self.accepted_within, scope);
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
    use crate::fixtures::{requests, two_phases};
    use crate::Outcome;

    fn overload(rejection_ms: u64, accepted_ms: u64, with_retry_after: bool) -> Observations {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 30, accepted_ms, 200);
        requests(&mut seen, "checkout", 1_300, 60, rejection_ms, 503);
        if with_retry_after {
            for record in seen.edge.iter_mut().filter(|r| rejected(r)) {
                record.retry_after = true;
            }
        }
        seen
    }

    fn claim() -> ShedFast {
        ShedFast::new(
            Duration::from_millis(20),
            Duration::from_millis(300),
            Scope::phase("fault"),
        )
    }

    #[test]
    fn fast_rejections_with_retry_after_and_fast_accepted_requests_pass() {
        let verdict = claim().check(&overload(2, 100, true));
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
    }

    #[test]
    fn a_rejection_without_retry_after_fails() {
        let verdict = claim().check(&overload(2, 100, false));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.note.unwrap().contains("Retry-After"));
    }

    #[test]
    fn slow_rejections_fail_and_slow_accepted_requests_fail() {
        assert_eq!(
            claim().check(&overload(900, 100, true)).outcome,
            Outcome::Fail,
            "a slow 503 is no shedding"
        );
        let queued = claim().check(&overload(2, 8_000, true));
        assert_eq!(queued.outcome, Outcome::Fail);
        assert!(queued.note.unwrap().contains("not shed"));
    }

    #[test]
    fn without_rejections_it_is_inconclusive() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 10, 200);
        assert_eq!(claim().check(&seen).outcome, Outcome::Inconclusive);
    }
}
