//! `deadline`: timeout budgets cover the whole chain: no call reaches a
//! dependency after the edge request it serves has run out of time.

use std::collections::HashMap;
use std::time::Duration;

use crate::observations::nanos;
use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{CorrelationId, Observations, Phase};
use crate::{Judgement, Property, Reads, Samples, Scope};

/// No call correlated with an edge request arrives at `dependency` later than
/// `budget` after that request was sent: work the caller has already given
/// up on is work a timeout budget should have cancelled. Needs a target that
/// passes the correlation id on.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{Deadline, Property, Scope};
/// let claim = Deadline::new("crm", Duration::from_secs(29), Scope::phase("crm slow"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    /// The dependency's name.
    pub dependency: String,
    /// The edge request's whole budget.
    pub budget: Duration,
    /// Where to look (the edge requests sent in this phase).
    pub scope: Scope,
}

impl Deadline {
    /// No correlated call at `dependency` after send + `budget`.
    pub fn new(dependency: impl Into<String>, budget: Duration, scope: Scope) -> Self {
        Deadline {
            dependency: dependency.into(),
            budget,
            scope,
        }
    }
}

impl Property for Deadline {
    fn name(&self) -> String {
        format!(
            "deadline({}) within {}",
            self.scope.subject(&self.dependency),
            Shown(self.budget)
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::EdgeAndCalls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Duration(self.budget)
    }

    fn samples(&self) -> Samples {
        Samples::of(format!(
            "calls at {} carried the id of a request in the phase",
            self.dependency
        ))
        .hint("does the target pass it on?")
        .breach_proves()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let sent: HashMap<CorrelationId, u64> = seen
            .edge_in(phase, self.scope.settle, None)
            .filter_map(|r| Some((r.correlation_id?, r.sent_ns)))
            .collect();
        let mut latest = None::<(u64, CorrelationId)>;
        let budget = nanos(self.budget);
        for call in self.scope.calls(seen, &self.dependency) {
            let Some(id) = call
                .correlation_id
                .as_deref()
                .and_then(|id| id.parse().ok())
            else {
                continue;
            };
            let Some(start) = sent.get(&id) else {
                continue;
            };
            evidence.samples += 1;
            let after = call.arrival_ns.saturating_sub(*start);
            if after > budget && evidence.first_broke_ns.is_none_or(|t| call.arrival_ns < t) {
                evidence.first_broke_ns = Some(call.arrival_ns);
            }
            if latest.is_none_or(|(worst, _)| after > worst) {
                latest = Some((after, id));
            }
        }
        evidence.observed = latest.map(|(after, _)| Measure::Duration(Duration::from_nanos(after)));
        evidence.witness = latest.map(|(_, id)| id.to_string());
        let held = latest.is_none_or(|(after, _)| after <= budget);
        Judgement::held(held)
    }
}

/// `property = "deadline"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// The edge request's budget.
    #[serde(deserialize_with = "keys::duration")]
    within: Duration,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "deadline";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        let budget = keys::above_zero("within", self.within)?;
        Ok(Arc::new(Deadline::new(self.dependency, budget, scope)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, id, requests, two_phases};
    use crate::Outcome;

    /// 20 checkout requests in the fault phase; each causes a crm call `delay_ms` after it was sent.
    fn chain(delay_ms: u64) -> Observations {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 20, 5, 504);
        for i in 0..20 {
            call(
                &mut seen,
                "crm",
                1_000 + i * 10 + delay_ms,
                1,
                &id("checkout", 1_000, i).to_string(),
            );
        }
        seen
    }

    #[test]
    fn calls_within_the_budget_pass() {
        let verdict = Deadline::new("crm", Duration::from_millis(300), Scope::phase("fault"))
            .check(&chain(250));
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
    }

    #[test]
    fn a_call_after_the_caller_gave_up_fails() {
        let verdict = Deadline::new("crm", Duration::from_millis(300), Scope::phase("fault"))
            .check(&chain(400));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(
            verdict.evidence.observed,
            Some(Measure::Duration(Duration::from_millis(400)))
        );
        assert!(verdict.evidence.witness.is_some());
    }

    #[test]
    fn too_few_calls_are_inconclusive_unless_one_came_too_late() {
        let budget = |seen: &Observations| {
            Deadline::new("crm", Duration::from_millis(300), Scope::phase("fault")).check(seen)
        };
        let mut seen = chain(100);
        seen.dependencies.get_mut("crm").unwrap().truncate(2);
        assert_eq!(budget(&seen).outcome, Outcome::Inconclusive);
        let mut seen = chain(400);
        seen.dependencies.get_mut("crm").unwrap().truncate(1);
        let verdict = budget(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        assert_eq!(verdict.evidence.samples, 1);
    }

    #[test]
    fn uncorrelated_calls_are_inconclusive() {
        let verdict = Deadline::new("crm", Duration::from_millis(300), Scope::phase("baseline"))
            .check(&chain(100));
        assert_eq!(verdict.outcome, Outcome::Inconclusive);
    }
}
