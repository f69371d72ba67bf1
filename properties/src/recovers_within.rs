//! `recovers_within`: after the fault clears, the system is healthy again in time.

use std::time::Duration;

use crate::observations::nanos;
use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// In the phase after a fault (the recovery), the success rate over a sliding
/// `window` of requests' intended times is back to at least `at_least` within
/// `within` of the phase's start, and stays there until the phase ends.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{Property, RecoversWithin, Scope};
/// let claim = RecoversWithin::new(0.99, Duration::from_secs(5), Scope::phase("recovery"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RecoversWithin {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// The success rate that counts as recovered, 0 to 1.
    pub at_least: f64,
    /// How long after the phase starts recovery may take.
    pub within: Duration,
    /// The sliding window the rate is measured over.
    pub window: Duration,
    /// The recovery phase (its `settle` is ignored: recovery counts from the start).
    pub scope: Scope,
}

impl RecoversWithin {
    /// Recovered to `at_least` within `within` of the phase's start, over a 1 s window.
    pub fn new(at_least: f64, within: Duration, scope: Scope) -> Self {
        RecoversWithin {
            endpoint: None,
            at_least,
            within,
            window: Duration::from_secs(1),
            scope,
        }
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Measures the rate over `window`.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

impl Property for RecoversWithin {
    fn name(&self) -> String {
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        format!(
            "recovers_within({subject}, {}) to {}",
            Shown(self.within),
            self.at_least
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
        let mut requests: Vec<_> = seen
            .edge_in(phase, Duration::ZERO, self.endpoint.as_deref())
            .collect();
        requests.sort_by_key(|r| r.intended_ns);
        evidence.samples = requests.len() as u64;
        // Walk windows ending at each request; remember the last unhealthy one.
        // At least 1 ns, so the window always holds the request ending it.
        let window = nanos(self.window).max(1);
        let (mut from, mut ok) = (0usize, 0u64);
        let mut last_unhealthy = None::<&crate::EdgeRecord>;
        let mut full_window_seen = false;
        for (to, request) in requests.iter().enumerate() {
            ok += u64::from(request.succeeded());
            while requests[from].intended_ns.saturating_add(window) <= request.intended_ns {
                ok -= u64::from(requests[from].succeeded());
                from += 1;
            }
            if request.intended_ns < phase.start_ns.saturating_add(window) {
                continue;
            }
            full_window_seen = true;
            let rate = ok as f64 / (to + 1 - from) as f64;
            if rate < self.at_least {
                last_unhealthy = Some(request);
            }
        }
        if !full_window_seen {
            return Judgement::inconclusive("the phase is shorter than the window");
        }
        let recovered_after = last_unhealthy.map_or(self.window, |r| {
            Duration::from_nanos(r.intended_ns.saturating_sub(phase.start_ns))
        });
        evidence.observed = Some(Measure::Duration(recovered_after));
        evidence.witness = last_unhealthy.and_then(|r| r.witness());
        if let Some(late) = last_unhealthy.filter(|_| recovered_after > self.within) {
            evidence.first_broke_ns = Some(late.intended_ns);
        }
        Judgement::held(recovered_after <= self.within)
    }
}

/// `property = "recovers_within"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The success rate that counts as recovered, 0 to 1.
    at_least: f64,
    /// How long after the phase starts recovery may take.
    #[serde(deserialize_with = "keys::duration")]
    within: Duration,
    /// The sliding window the rate is measured over (1 s).
    #[serde(default, deserialize_with = "keys::optional_duration")]
    window: Option<Duration>,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "recovers_within";
    /// Recovery counts from the phase's start: no `settle`.
    const SHARED: &'static [&'static str] = &["min_samples"];

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        let at_least = keys::fraction("at_least", self.at_least)?;
        let within = keys::above_zero("within", self.within)?;
        let mut property = RecoversWithin::new(at_least, within, scope);
        if let Some(window) = self.window {
            property = property.with_window(keys::above_zero("window", window)?);
        }
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

    /// The fault phase (1..2 s) is the recovery: failures until `failing_ms` in, then successes.
    fn recovery(failing_ms: u64) -> Observations {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, failing_ms / 10, 5, 503);
        requests(
            &mut seen,
            "checkout",
            1_000 + failing_ms,
            (1_000 - failing_ms) / 10,
            5,
            200,
        );
        seen
    }

    #[test]
    fn a_quick_recovery_passes_and_says_when() {
        let claim = RecoversWithin::new(0.9, Duration::from_millis(500), Scope::phase("fault"))
            .with_window(Duration::from_millis(200));
        let verdict = claim.check(&recovery(100));
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        let Some(Measure::Duration(after)) = verdict.evidence.observed else {
            panic!()
        };
        assert!(after <= Duration::from_millis(300), "{after:?}");
    }

    #[test]
    fn a_window_of_zero_or_of_ages_judges_without_a_panic() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 5, 200);
        for window in [Duration::ZERO, Duration::MAX] {
            let claim = RecoversWithin::new(0.9, Duration::from_millis(100), Scope::phase("fault"))
                .with_window(window);
            let _ = claim.check(&seen);
        }
    }

    #[test]
    fn a_slow_recovery_fails_at_the_last_unhealthy_window() {
        let claim = RecoversWithin::new(0.9, Duration::from_millis(300), Scope::phase("fault"))
            .with_window(Duration::from_millis(200));
        let verdict = claim.check(&recovery(600));
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        assert!(verdict.evidence.first_broke_ns.is_some());
        assert!(verdict.evidence.witness.is_some());
    }

    #[test]
    fn a_phase_shorter_than_the_window_is_inconclusive() {
        let claim = RecoversWithin::new(0.9, Duration::from_millis(300), Scope::phase("fault"))
            .with_window(Duration::from_secs(5));
        assert_eq!(claim.check(&recovery(100)).outcome, Outcome::Inconclusive);
    }
}
