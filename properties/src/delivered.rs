//! `delivered`: what a queue accepted reaches the dependency exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::observations::nanos;
use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{CorrelationId, EdgeOutcome, Observations, Phase};
use crate::{Judgement, Property, Reads, Samples, Scope};

/// Every request to `endpoint` answered 202 in the phase is delivered to
/// `dependency` — a call carrying its correlation id and an idempotency key
/// is answered 2xx — no later than `within` after the phase ends (after the
/// fault clears), and no idempotency key is delivered successfully twice.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{Delivered, Property, Scope};
/// let claim = Delivered::new("crm_sync", "crm", Duration::from_secs(10), Scope::phase("crm slow"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The endpoint that accepts the work.
    pub endpoint: String,
    /// The dependency the work must reach.
    pub dependency: String,
    /// How long after the phase ends delivery may take.
    pub within: Duration,
    /// The phase in which the work was accepted.
    pub scope: Scope,
}

impl Delivered {
    /// Work accepted at `endpoint` reaches `dependency` exactly once, `within` after the phase.
    pub fn new(
        endpoint: impl Into<String>,
        dependency: impl Into<String>,
        within: Duration,
        scope: Scope,
    ) -> Self {
        Delivered {
            endpoint: endpoint.into(),
            dependency: dependency.into(),
            within,
            scope,
        }
    }
}

impl Property for Delivered {
    fn name(&self) -> String {
        format!(
            "delivered({} -> {}) exactly once within {}",
            self.endpoint,
            self.scope.subject(&self.dependency),
            Shown(self.within)
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::EdgeAndCalls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Count(1)
    }

    fn samples(&self) -> Samples {
        Samples::of("requests accepted with 202 in the phase")
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let accepted: BTreeSet<CorrelationId> = seen
            .edge_in(phase, self.scope.settle, Some(&self.endpoint))
            .filter(|r| r.outcome == EdgeOutcome::Status(202))
            .filter_map(|r| r.correlation_id)
            .collect();
        evidence.samples = accepted.len() as u64;
        let deadline = phase.end_ns.saturating_add(nanos(self.within));
        let mut delivered: BTreeSet<CorrelationId> = BTreeSet::new();
        let mut per_key: BTreeMap<&str, u64> = BTreeMap::new();
        let mut failed_attempts = 0u64;
        for call in self.scope.calls(seen, &self.dependency) {
            let ok = call.status.is_some_and(|s| (200..300).contains(&s));
            let (Some(id), Some(key)) = (
                call.correlation_id
                    .as_deref()
                    .and_then(|id| id.parse::<CorrelationId>().ok()),
                call.idempotency_key.as_deref(),
            ) else {
                continue;
            };
            if !accepted.contains(&id) {
                continue;
            }
            if !ok {
                failed_attempts += 1;
                continue;
            }
            let count = per_key.entry(key).or_default();
            *count += 1;
            if *count == 2 && evidence.first_broke_ns.is_none() {
                evidence.first_broke_ns = Some(call.arrival_ns);
                evidence.witness = Some(key.to_owned());
            }
            if call.arrival_ns <= deadline {
                delivered.insert(id);
            }
        }
        let worst = per_key.values().copied().max().unwrap_or(0);
        let redelivered = failed_attempts > 0;
        let what = if redelivered {
            format!("{failed_attempts} deliveries failed and were tried again")
        } else {
            "no delivery failed: redelivery was not exercised".to_owned()
        };
        let missing = accepted.difference(&delivered).next();
        evidence.observed = Some(Measure::Count(worst));
        if worst > 1 {
            return Judgement::held(false)
                .note(format!("an idempotency key was delivered {worst} times"))
                .covering(redelivered, what);
        }
        if let Some(lost) = missing {
            evidence.witness = Some(lost.to_string());
            return Judgement::held(false)
                .note(format!(
                    "{} of {} accepted requests never reached {} in time",
                    accepted.len() - delivered.len(),
                    accepted.len(),
                    self.dependency
                ))
                .covering(redelivered, what);
        }
        Judgement::held(true).covering(redelivered, what)
    }
}

/// `property = "delivered"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The endpoint that accepts the work.
    endpoint: String,
    /// The dependency it must reach.
    dependency: String,
    /// How long after the phase ends it may take.
    #[serde(deserialize_with = "keys::duration")]
    within: Duration,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "delivered";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.endpoint("endpoint", &self.endpoint)?;
        names.dependency("dependency", &self.dependency)?;
        let within = keys::above_zero("within", self.within)?;
        Ok(Arc::new(Delivered::new(
            self.endpoint,
            self.dependency,
            within,
            scope,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, id, requests, two_phases};
    use crate::Outcome;

    /// 20 requests accepted in the baseline (0..1 s); each delivered at `at_ms` `times` times.
    fn queued(at_ms: u64, times: usize, skip: usize) -> Observations {
        let mut seen = two_phases();
        requests(&mut seen, "crm_sync", 0, 20, 2, 202);
        for i in skip..20 {
            for _ in 0..times {
                call(
                    &mut seen,
                    "crm",
                    at_ms + i as u64,
                    1,
                    &id("crm_sync", 0, i as u64).to_string(),
                );
                let calls = seen.dependencies.get_mut("crm").unwrap();
                calls.last_mut().unwrap().idempotency_key = Some(format!("order-{i}"));
            }
        }
        seen
    }

    fn claim() -> Delivered {
        Delivered::new(
            "crm_sync",
            "crm",
            Duration::from_millis(500),
            Scope::phase("baseline"),
        )
    }

    #[test]
    fn each_accepted_order_delivered_once_in_time_passes() {
        assert_eq!(claim().check(&queued(1_200, 1, 0)).outcome, Outcome::Pass);
    }

    #[test]
    fn a_duplicate_delivery_fails_naming_the_key() {
        let verdict = claim().check(&queued(1_200, 2, 0));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.witness.as_deref(), Some("order-0"));
    }

    #[test]
    fn a_lost_or_late_order_fails() {
        assert_eq!(
            claim().check(&queued(1_200, 1, 3)).outcome,
            Outcome::Fail,
            "three never delivered"
        );
        assert_eq!(
            claim().check(&queued(1_800, 1, 0)).outcome,
            Outcome::Fail,
            "delivered after the deadline"
        );
    }
}
