//! `fast_accept`: long work is offloaded to a queue: the endpoint answers
//! 202 at once while its dependency is slow.

use std::time::Duration;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{percentile, Judgement, Property, Reads, Samples, Scope};
use crate::{EdgeOutcome, Observations, Phase};

/// Every request to `endpoint` in the phase is answered 202 Accepted, with a
/// p99 of at most `within`.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{FastAccept, Property, Scope};
/// let claim = FastAccept::new("crm_sync", Duration::from_millis(50), Scope::phase("crm slow"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FastAccept {
    /// The endpoint.
    pub endpoint: String,
    /// Bound on the p99 of its answers.
    pub within: Duration,
    /// Where to look.
    pub scope: Scope,
}

impl FastAccept {
    /// 202 within `within` (p99) at `endpoint`.
    pub fn new(endpoint: impl Into<String>, within: Duration, scope: Scope) -> Self {
        FastAccept {
            endpoint: endpoint.into(),
            within,
            scope,
        }
    }
}

impl Property for FastAccept {
    fn name(&self) -> String {
        format!(
            "fast_accept({}) 202 within {}",
            self.endpoint,
            Shown(self.within)
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Edge
    }

    fn threshold(&self) -> Measure {
        Measure::Duration(self.within)
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let requests: Vec<_> = seen
            .edge_in(phase, self.scope.settle, Some(&self.endpoint))
            .collect();
        evidence.samples = requests.len() as u64;
        let mut latencies: Vec<Duration> = requests.iter().map(|r| r.latency()).collect();
        let p99 = percentile(&mut latencies, 99.0).unwrap_or_default();
        evidence.observed = Some(Measure::Duration(p99));
        if let Some(refused) = requests
            .iter()
            .filter(|r| r.outcome != EdgeOutcome::Status(202))
            .min_by_key(|r| r.intended_ns)
        {
            evidence.first_broke_ns = Some(refused.intended_ns);
            evidence.witness = refused.witness();
            return Judgement::held(false).note(format!(
                "a request was answered {}, not 202 Accepted",
                refused.outcome
            ));
        }
        evidence.first_broke_ns = requests
            .iter()
            .filter(|r| r.latency() > self.within)
            .map(|r| r.intended_ns)
            .min();
        evidence.witness = requests
            .iter()
            .max_by_key(|r| r.latency())
            .and_then(|r| r.witness());
        Judgement::held(p99 <= self.within)
    }
}

/// `property = "fast_accept"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The endpoint.
    endpoint: String,
    /// Bound on the p99 of its answers.
    #[serde(deserialize_with = "keys::duration")]
    within: Duration,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "fast_accept";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.endpoint("endpoint", &self.endpoint)?;
        let within = keys::above_zero("within", self.within)?;
        Ok(Arc::new(FastAccept::new(self.endpoint, within, scope)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{requests, two_phases};
    use crate::Outcome;

    #[test]
    fn quick_202s_pass_slow_ones_and_200s_fail() {
        let claim = FastAccept::new("crm_sync", Duration::from_millis(50), Scope::phase("fault"));
        let mut offloaded = two_phases();
        requests(&mut offloaded, "crm_sync", 1_000, 50, 3, 202);
        assert_eq!(claim.check(&offloaded).outcome, Outcome::Pass);
        let mut inline = two_phases();
        requests(&mut inline, "crm_sync", 1_000, 50, 800, 202);
        assert_eq!(claim.check(&inline).outcome, Outcome::Fail);
        let mut synchronous = two_phases();
        requests(&mut synchronous, "crm_sync", 1_000, 50, 3, 200);
        let verdict = claim.check(&synchronous);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.note.unwrap().contains("not 202"));
    }
}
