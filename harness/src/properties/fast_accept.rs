//! `fast_accept`: long work is offloaded to a queue: the endpoint answers
//! 202 at once while its dependency is slow.

use std::time::Duration;

use crate::properties::{percentile, Property, Scope};
use crate::verdict::Measure;
use crate::{EdgeOutcome, Observations, Verdict};

/// Every request to `endpoint` in the phase is answered 202 Accepted, with a
/// p99 of at most `within`.
///
/// ```
/// use std::time::Duration;
/// use harness::properties::{FastAccept, Property, Scope};
/// let claim = FastAccept::new("crm_sync", Duration::from_millis(50), Scope::phase("crm slow"));
/// assert_eq!(claim.check(&Default::default()).outcome, harness::Outcome::Inconclusive);
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
            "fast_accept({}) 202 within {:?}",
            self.endpoint, self.within
        )
    }

    fn check(&self, seen: &Observations) -> Verdict {
        let name = self.name();
        let (phase, mut evidence) =
            match self
                .scope
                .start_edge(seen, &name, Measure::Duration(self.within))
            {
                Ok(found) => found,
                Err(verdict) => return *verdict,
            };
        let requests: Vec<_> = seen
            .edge_in(phase, self.scope.settle, Some(&self.endpoint))
            .collect();
        evidence.samples = requests.len() as u64;
        if let Some(why) = self
            .scope
            .too_few(evidence.samples, "requests in the phase")
        {
            return Verdict::inconclusive(name, &phase.name, evidence, why);
        }
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
            let mut verdict = Verdict::judged(name, &phase.name, false, evidence);
            verdict.note = Some(format!(
                "a request was answered {}, not 202 Accepted",
                refused.outcome
            ));
            return verdict;
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
        Verdict::judged(name, &phase.name, p99 <= self.within, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::fixtures::{requests, two_phases};
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
