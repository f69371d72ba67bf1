//! `calls`: a cap on the calls reaching a dependency in a phase (k6-style
//! threshold: `calls(crm) <= 30`).

use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure};
use crate::{Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// At most `at_most` calls reach `dependency` during the phase. Judged only
/// when the load sent at least the scope's minimum of edge requests there.
///
/// ```
/// use faultline_properties::{Calls, Property, Scope};
/// let claim = Calls::new("crm", 30, Scope::phase("crm down"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Calls {
    /// The dependency's name.
    pub dependency: String,
    /// The most calls allowed in the phase.
    pub at_most: u64,
    /// Where to look.
    pub scope: Scope,
}

impl Calls {
    /// `calls(dependency) <= at_most` within `scope`.
    pub fn new(dependency: impl Into<String>, at_most: u64, scope: Scope) -> Self {
        Calls {
            dependency: dependency.into(),
            at_most,
            scope,
        }
    }
}

impl Property for Calls {
    fn name(&self) -> String {
        format!(
            "calls({}) <= {}",
            self.scope.subject(&self.dependency),
            self.at_most
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::EdgeAndCalls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Count(self.at_most)
    }

    fn samples(&self) -> Samples {
        Samples::of("edge requests in the phase")
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        evidence.samples = seen.edge_in(phase, self.scope.settle, None).count() as u64;
        let calls: Vec<_> = self.scope.calls_in(seen, &self.dependency, phase).collect();
        evidence.observed = Some(Measure::Count(calls.len() as u64));
        if let Some(over) = usize::try_from(self.at_most)
            .ok()
            .and_then(|n| calls.get(n))
        {
            evidence.first_broke_ns = Some(over.arrival_ns);
            evidence.witness = over.correlation_id.clone();
        }
        Judgement::held(calls.len() as u64 <= self.at_most)
    }
}

/// `property = "calls"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// The most calls allowed in the phase.
    #[serde(deserialize_with = "keys::count")]
    at_most: u64,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "calls";
    const SHARED: &'static [&'static str] = keys::JUDGES_CALLS;

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        Ok(Arc::new(Calls::new(self.dependency, self.at_most, scope)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, requests, two_phases, MS};
    use crate::Outcome;

    #[test]
    fn counts_the_calls_in_the_phase_against_the_cap() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 5, 503);
        for i in 0..40 {
            call(&mut seen, "crm", 1_000 + i * 10, 1, &format!("r{i}"));
        }
        assert_eq!(
            Calls::new("crm", 40, Scope::phase("fault"))
                .check(&seen)
                .outcome,
            Outcome::Pass
        );
        let verdict = Calls::new("crm", 30, Scope::phase("fault")).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(
            verdict.evidence.first_broke_ns,
            Some(1_300 * MS),
            "the 31st call"
        );
        assert_eq!(
            Calls::new("crm", 30, Scope::phase("baseline"))
                .check(&seen)
                .outcome,
            Outcome::Inconclusive
        );
    }
}
