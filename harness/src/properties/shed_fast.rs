//! `shed_fast`: under overload the system sheds load with a fast 503/429 and
//! a `Retry-After`, and the requests it accepts stay fast.

use std::time::Duration;

use crate::properties::{percentile, Property, Scope};
use crate::verdict::Measure;
use crate::{EdgeOutcome, EdgeRecord, Observations, Verdict};

/// For `endpoint` (every endpoint when `None`) in the phase: every rejection
/// (503 or 429) carries `Retry-After`, the p99 of rejections is at most
/// `rejected_within`, and the p99 of the other requests at most
/// `accepted_within`. With no rejection at all the shedding was not
/// exercised: inconclusive, unless the accepted requests broke their bound.
///
/// ```
/// use std::time::Duration;
/// use harness::properties::{Property, Scope, ShedFast};
/// let claim = ShedFast::new(Duration::from_millis(50), Duration::from_millis(500), Scope::phase("overload"));
/// assert_eq!(claim.check(&Default::default()).outcome, harness::Outcome::Inconclusive);
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
            "shed_fast({subject}): rejections p99 <= {:?} with Retry-After, accepted p99 <= {:?}",
            self.rejected_within, self.accepted_within
        )
    }

    fn check(&self, seen: &Observations) -> Verdict {
        let name = self.name();
        let (phase, mut evidence) =
            match self
                .scope
                .start_edge(seen, &name, Measure::Duration(self.rejected_within))
            {
                Ok(found) => found,
                Err(verdict) => return *verdict,
            };
        let (rejections, accepted): (Vec<&EdgeRecord>, Vec<&EdgeRecord>) = seen
            .edge_in(phase, self.scope.settle, self.endpoint.as_deref())
            .partition(|r| rejected(r));
        evidence.samples = (rejections.len() + accepted.len()) as u64;
        if let Some(why) = self
            .scope
            .too_few(evidence.samples, "requests in the phase")
        {
            return Verdict::inconclusive(name, &phase.name, evidence, why);
        }
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
            let mut verdict = Verdict::judged(name, &phase.name, false, evidence);
            verdict.note = Some("accepted requests slowed down: the load was not shed".to_owned());
            return verdict;
        }
        let Some(rejection_p99) = p99(&rejections) else {
            return Verdict::inconclusive(
                name,
                &phase.name,
                evidence,
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
            let mut verdict = Verdict::judged(name, &phase.name, false, evidence);
            verdict.note = Some("a rejection came without Retry-After".to_owned());
            return verdict;
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
        Verdict::judged(
            name,
            &phase.name,
            rejection_p99 <= self.rejected_within,
            evidence,
        )
        .covering(true, shed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::fixtures::{requests, two_phases};
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
