//! `max_attempts`: retries have a cap: no edge request reaches a dependency
//! more than A times.

use std::collections::BTreeMap;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// No correlation id reaches `dependency` more than `at_most` times in the
/// phase. Needs a target that passes the correlation id on; calls without one
/// are not counted (and too few correlated calls make it inconclusive).
///
/// ```
/// use faultline_properties::{MaxAttempts, Property, Scope};
/// let claim = MaxAttempts::new("payments", 3, Scope::phase("payments down"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MaxAttempts {
    /// The dependency's name.
    pub dependency: String,
    /// The most calls one edge request may cause there.
    pub at_most: u64,
    /// Where to look.
    pub scope: Scope,
}

impl MaxAttempts {
    /// `attempts(dependency) <= at_most` per correlated request within `scope`.
    pub fn new(dependency: impl Into<String>, at_most: u64, scope: Scope) -> Self {
        MaxAttempts {
            dependency: dependency.into(),
            at_most,
            scope,
        }
    }
}

impl Property for MaxAttempts {
    fn name(&self) -> String {
        format!(
            "max_attempts({}) <= {}",
            self.scope.subject(&self.dependency),
            self.at_most
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Calls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Count(self.at_most)
    }

    fn samples(&self) -> Samples {
        Samples::of(format!("correlated requests reached {}", self.dependency))
            .hint("does the target pass x-faultline-request or traceparent on?")
            .breach_proves()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let mut attempts: BTreeMap<&str, u64> = BTreeMap::new();
        let attributed = self.scope.attributed(seen, &self.dependency, phase, None);
        for call in attributed.calls {
            let Some(id) = call.correlation_id.as_deref() else {
                continue;
            };
            let count = attempts.entry(id).or_default();
            *count += 1;
            if *count > self.at_most && evidence.first_broke_ns.is_none() {
                evidence.first_broke_ns = Some(call.arrival_ns);
            }
        }
        evidence.samples = attempts.len() as u64;
        let worst = attempts.iter().max_by_key(|(_, n)| **n);
        evidence.observed = worst.map(|(_, n)| Measure::Count(*n));
        evidence.witness = worst.map(|(id, _)| (*id).to_owned());
        let most = worst.map_or(0, |(_, n)| *n);
        let what = if most >= self.at_most {
            format!("a request used every attempt: {most} of {}", self.at_most)
        } else {
            format!(
                "no request used every attempt: at most {most} of {}",
                self.at_most
            )
        };
        Judgement::held(most <= self.at_most).covering(most >= self.at_most, what)
    }
}

/// `property = "max_attempts"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// The most calls one edge request may cause there.
    #[serde(deserialize_with = "keys::count")]
    at_most: u64,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "max_attempts";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        Ok(Arc::new(MaxAttempts::new(
            self.dependency,
            self.at_most,
            scope,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, two_phases};
    use crate::Outcome;

    fn retries(per_request: u64) -> Observations {
        let mut seen = two_phases();
        for request in 0..20 {
            for attempt in 0..per_request {
                call(
                    &mut seen,
                    "payments",
                    1_000 + request * 20 + attempt,
                    1,
                    &format!("req-{request}"),
                );
            }
        }
        seen
    }

    #[test]
    fn three_attempts_pass_a_cap_of_three_and_four_fail_it() {
        let claim = MaxAttempts::new("payments", 3, Scope::phase("fault"));
        assert_eq!(claim.check(&retries(3)).outcome, Outcome::Pass);
        let verdict = claim.check(&retries(4));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Count(4)));
        assert_eq!(
            verdict.evidence.first_broke_ns,
            Some(1_003 * crate::fixtures::MS)
        );
    }

    #[test]
    fn too_few_requests_are_inconclusive_unless_one_broke_the_cap() {
        let claim = MaxAttempts::new("payments", 3, Scope::phase("fault"));
        let mut seen = two_phases();
        for attempt in 0..3 {
            call(&mut seen, "payments", 1_000 + attempt, 1, "only");
        }
        assert_eq!(claim.check(&seen).outcome, Outcome::Inconclusive);
        call(&mut seen, "payments", 1_010, 1, "only");
        let verdict = claim.check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail, "one request, 4 attempts");
        assert_eq!(verdict.evidence.samples, 1);
    }

    #[test]
    fn uncorrelated_calls_make_it_inconclusive() {
        let claim = MaxAttempts::new("payments", 3, Scope::phase("baseline"));
        assert_eq!(claim.check(&retries(4)).outcome, Outcome::Inconclusive);
    }
}
