//! `max_attempts`: retries have a cap: no edge request reaches a dependency
//! more than A times (or, with a lower bound, each makes at least, or
//! exactly, so many: nginx's `proxy_next_upstream` over three servers).

use std::collections::BTreeMap;

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{Bound, Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// No correlation id reaches `dependency` more than `at_most` times in the
/// phase — or, with a lower side to its `bound`, fewer than that: every
/// request that reached the dependency did so within the bound. Needs a
/// target that passes the correlation id on; calls without one are not
/// counted (and too few correlated calls make it inconclusive). A request
/// that never reached the dependency is not seen here: hold the calls per
/// request with [`crate::RetryAmplification`] for those.
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
    /// The calls one edge request may cause there.
    pub bound: Bound<u64>,
    /// Where to look.
    pub scope: Scope,
}

impl MaxAttempts {
    /// `attempts(dependency) <= at_most` per correlated request within `scope`.
    pub fn new(dependency: impl Into<String>, at_most: u64, scope: Scope) -> Self {
        MaxAttempts {
            dependency: dependency.into(),
            bound: Bound::at_most(at_most),
            scope,
        }
    }

    /// Holds each request's attempts to `bound` instead (`Bound::exactly(3)`).
    pub fn within(mut self, bound: Bound<u64>) -> Self {
        self.bound = bound;
        self
    }
}

impl Property for MaxAttempts {
    fn name(&self) -> String {
        let subject = self.scope.subject(&self.dependency);
        match self.bound {
            Bound::AtMost(most) => format!("max_attempts({subject}) <= {most}"),
            bound => format!("attempts({subject}) {bound} per request"),
        }
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Calls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Count(self.bound.threshold_for(None))
    }

    fn samples(&self) -> Samples {
        Samples::of(format!("correlated requests reached {}", self.dependency))
            .hint("does the target pass x-faultline-request or traceparent on?")
            .breach_proves()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        // Per correlation id: its attempts, and when the first arrived.
        let mut attempts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let attributed = self.scope.attributed(seen, &self.dependency, phase, None);
        for call in attributed.calls {
            let Some(id) = call.correlation_id.as_deref() else {
                continue;
            };
            let (count, _) = attempts.entry(id).or_insert((0, call.arrival_ns));
            *count += 1;
            if self.bound.upper().is_some_and(|most| *count > most)
                && evidence.first_broke_ns.is_none()
            {
                evidence.first_broke_ns = Some(call.arrival_ns);
            }
        }
        evidence.samples = attempts.len() as u64;
        let most = attempts.iter().max_by_key(|(_, (n, _))| *n);
        let fewest = attempts.iter().min_by_key(|(_, (n, _))| *n);
        // The breach shown: too few attempts when the lower side broke,
        // else the request with the most.
        let too_few = fewest.filter(|(_, (n, _))| self.bound.lower().is_some_and(|l| *n < l));
        let shown = too_few.or(most);
        evidence.observed = shown.map(|(_, (n, _))| Measure::Count(*n));
        evidence.witness = shown.map(|(id, _)| (*id).to_owned());
        evidence.threshold = Measure::Count(self.bound.threshold_for(shown.map(|(_, (n, _))| *n)));
        if let Some((_, (_, first))) = too_few {
            let first_short = attempts
                .values()
                .filter(|(n, _)| self.bound.lower().is_some_and(|l| *n < l))
                .map(|(_, first)| *first)
                .min()
                .unwrap_or(*first);
            evidence.first_broke_ns = Some(
                evidence
                    .first_broke_ns
                    .map_or(first_short, |upper| upper.min(first_short)),
            );
        }
        let most = most.map_or(0, |(_, (n, _))| *n);
        let fewest = fewest.map_or(0, |(_, (n, _))| *n);
        let (covered, what) = match self.bound.upper() {
            Some(cap) if most >= cap => (
                true,
                format!("a request used every attempt: {most} of {cap}"),
            ),
            Some(cap) => (
                false,
                format!("no request used every attempt: at most {most} of {cap}"),
            ),
            None => (true, format!("requests made {fewest} to {most} attempts")),
        };
        Judgement::held(self.bound.holds(most) && self.bound.holds(fewest)).covering(covered, what)
    }
}

/// `property = "max_attempts"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// The most calls one edge request may cause there...
    #[serde(default, deserialize_with = "optional_count")]
    at_most: Option<u64>,
    /// ...and/or the least each made...
    #[serde(default, deserialize_with = "optional_count")]
    at_least: Option<u64>,
    /// ...or exactly this many.
    #[serde(default, deserialize_with = "optional_count")]
    exactly: Option<u64>,
}

fn optional_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    keys::count(d).map(Some)
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "max_attempts";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        let bound = keys::bound(
            self.at_least,
            self.at_most,
            self.exactly,
            "calls per edge request",
            |n| n.to_string(),
        )?;
        Ok(Arc::new(
            MaxAttempts::new(self.dependency, 0, scope).within(bound),
        ))
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

    #[test]
    fn exactly_three_attempts_fail_on_the_request_that_made_two() {
        let claim =
            MaxAttempts::new("payments", 0, Scope::phase("fault")).within(Bound::exactly(3));
        assert_eq!(claim.name(), "attempts(payments) == 3 per request");
        assert_eq!(claim.check(&retries(3)).outcome, Outcome::Pass);
        assert_eq!(claim.check(&retries(4)).outcome, Outcome::Fail);
        let mut short = retries(3);
        call(&mut short, "payments", 1_500, 1, "short");
        call(&mut short, "payments", 1_501, 1, "short");
        let verdict = claim.check(&short);
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        assert_eq!(verdict.evidence.observed, Some(Measure::Count(2)));
        assert_eq!(verdict.evidence.threshold, Measure::Count(3));
        assert_eq!(verdict.evidence.witness.as_deref(), Some("short"));
        assert_eq!(
            verdict.evidence.first_broke_ns,
            Some(1_500 * crate::fixtures::MS)
        );
    }

    #[test]
    fn one_request_under_a_lower_bound_is_proof_enough() {
        let claim =
            MaxAttempts::new("payments", 0, Scope::phase("fault")).within(Bound::at_least(2));
        let mut seen = two_phases();
        call(&mut seen, "payments", 1_000, 1, "once");
        assert_eq!(claim.check(&seen).outcome, Outcome::Fail);
    }
}
