//! `success_rate`: an endpoint keeps answering 2xx/3xx (isolation: an
//! endpoint that does not use the faulty dependency keeps its success rate).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::windows::{self, Window};
use crate::{ratio, Judgement, Property, Reads, Samples, Scope};
use crate::{EdgeRecord, Observations, Phase};

/// At least `at_least` (a fraction, 0.99 for 99%) of the requests to
/// `endpoint` (every endpoint when `None`) succeed in the phase — or, with
/// a `window`, in every window of that length inside it (see the module
/// `windows`: windows start every twentieth of their length; the worst is
/// the evidence; a window with fewer than `min_samples` requests is no
/// evidence of a pass).
///
/// ```
/// use faultline_properties::{Property, Scope, SuccessRate};
/// let isolation = SuccessRate::new(0.99, Scope::phase("crm slow")).for_endpoint("checkout");
/// assert_eq!(isolation.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessRate {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// The least share of successes, 0 to 1.
    pub at_least: f64,
    /// Judged in every window of this length instead of the whole phase.
    pub window: Option<Duration>,
    /// Where to look.
    pub scope: Scope,
}

impl SuccessRate {
    /// `success_rate >= at_least` within `scope`.
    pub fn new(at_least: f64, scope: Scope) -> Self {
        SuccessRate {
            endpoint: None,
            at_least,
            window: None,
            scope,
        }
    }

    /// Judges every window of `length` in the phase ("no 10 s window under
    /// 99%") instead of the phase as a whole.
    pub fn over_windows(mut self, length: Duration) -> Self {
        self.window = Some(length);
        self
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

impl Property for SuccessRate {
    fn name(&self) -> String {
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        match self.window {
            Some(length) => format!(
                "success_rate({subject}) >= {} in every {} window",
                self.at_least,
                Shown(length)
            ),
            None => format!("success_rate({subject}) >= {}", self.at_least),
        }
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Edge
    }

    fn threshold(&self) -> Measure {
        Measure::Ratio(self.at_least)
    }

    fn samples(&self) -> Samples {
        Samples::requests()
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        if let Some(length) = self.window {
            return self.judge_windows(seen, phase, length, evidence);
        }
        let mut succeeded = 0u64;
        let mut first_failure = None::<&crate::EdgeRecord>;
        for request in seen.edge_in(phase, self.scope.settle, self.endpoint.as_deref()) {
            evidence.samples += 1;
            if request.succeeded() {
                succeeded += 1;
            } else if first_failure.is_none_or(|f| request.intended_ns < f.intended_ns) {
                first_failure = Some(request);
            }
        }
        evidence.first_broke_ns = first_failure.map(|f| f.intended_ns);
        evidence.witness = first_failure.and_then(|f| f.witness());
        let Some(rate) = ratio(succeeded, evidence.samples) else {
            return Judgement::inconclusive("no requests in the phase");
        };
        evidence.observed = Some(Measure::Ratio(rate));
        Judgement::held(rate >= self.at_least)
    }
}

impl SuccessRate {
    /// Every window judged on its own; the worst is the evidence.
    fn judge_windows(
        &self,
        seen: &Observations,
        phase: &Phase,
        length: Duration,
        evidence: &mut Evidence,
    ) -> Judgement {
        let mut records: Vec<&EdgeRecord> = seen
            .edge_in(phase, self.scope.settle, self.endpoint.as_deref())
            .collect();
        let windows = windows::sliding(&mut records, phase, self.scope.settle, length);
        let rate = |w: &Window<'_, '_>| {
            let ok = w.records.iter().filter(|r| r.succeeded()).count() as u64;
            ratio(ok, w.records.len() as u64)
        };
        let judged: Vec<(f64, &Window<'_, '_>)> = windows
            .iter()
            .filter(|w| w.records.len() as u64 >= self.scope.min_samples)
            .filter_map(|w| Some((rate(w)?, w)))
            .collect();
        let Some(&(worst, window)) = judged.iter().min_by(|a, b| a.0.total_cmp(&b.0)) else {
            return windows::none_judged(&windows, length, self.scope.min_samples, evidence);
        };
        evidence.samples = window.records.len() as u64;
        evidence.observed = Some(Measure::Ratio(worst));
        fn failure<'a>(w: &Window<'_, 'a>) -> Option<&'a EdgeRecord> {
            w.records.iter().find(|r| !r.succeeded()).copied()
        }
        evidence.witness = failure(window).and_then(|r| r.witness());
        evidence.first_broke_ns = judged
            .iter()
            .filter(|(rate, _)| *rate < self.at_least)
            .find_map(|(_, w)| failure(w))
            .map(|r| r.intended_ns);
        let worst_at = format!("worst: {}", window.describe(phase));
        if worst >= self.at_least {
            if let Some(thin) = windows::thin(&windows, phase, self.scope.min_samples, &worst_at) {
                return thin;
            }
        }
        Judgement::held(worst >= self.at_least).note(worst_at)
    }
}

/// `property = "success_rate"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The least share of successes, 0 to 1.
    at_least: f64,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    endpoint: Option<String>,
    /// Judged in every window of this length inside the phase.
    #[serde(default, deserialize_with = "keys::optional_duration")]
    window: Option<Duration>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "success_rate";

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        let window = self
            .window
            .map(|w| keys::window(w, &scope, names))
            .transpose()?;
        let mut property = SuccessRate::new(keys::fraction("at_least", self.at_least)?, scope);
        property.window = window;
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
    use crate::fixtures::{id, requests, two_phases, MS};
    use crate::Outcome;

    #[test]
    fn throttled_checkouts_fail_isolation_and_name_the_first_429() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 80, 5, 200);
        requests(&mut seen, "checkout", 1_805, 20, 5, 429);
        let verdict = SuccessRate::new(0.99, Scope::phase("fault"))
            .for_endpoint("checkout")
            .check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Ratio(0.8)));
        assert_eq!(verdict.evidence.first_broke_ns, Some(1_805 * MS));
        assert_eq!(
            verdict.evidence.witness,
            Some(id("checkout", 1_805, 0).to_string())
        );
    }

    #[test]
    fn an_unaffected_endpoint_passes() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 1_000, 100, 5, 200);
        requests(&mut seen, "checkout", 1_000, 50, 5, 503);
        let verdict = SuccessRate::new(0.99, Scope::phase("fault"))
            .for_endpoint("search")
            .check(&seen);
        assert_eq!(verdict.outcome, Outcome::Pass);
    }

    #[test]
    fn is_inconclusive_with_too_few_requests() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 1_000, 3, 5, 200);
        let verdict = SuccessRate::new(0.99, Scope::phase("fault")).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Inconclusive);
    }

    /// A phase of 100 requests, 10 ms apart from 1 s, 20 of them failing
    /// from 1.5 s: 80% overall, but a third in the worst 300 ms window.
    fn outage() -> Observations {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 5, 200);
        requests(&mut seen, "checkout", 1_500, 20, 5, 503);
        requests(&mut seen, "checkout", 1_700, 30, 5, 200);
        seen
    }

    #[test]
    fn a_short_outage_hides_in_the_whole_phase_and_not_in_a_window() {
        let whole = SuccessRate::new(0.75, Scope::phase("fault")).check(&outage());
        assert_eq!(whole.outcome, Outcome::Pass, "{whole:?}");
        let windowed = SuccessRate::new(0.75, Scope::phase("fault"))
            .over_windows(Duration::from_millis(300))
            .check(&outage());
        assert_eq!(windowed.outcome, Outcome::Fail, "{windowed:?}");
        assert_eq!(
            windowed.property,
            "success_rate(all endpoints) >= 0.75 in every 300ms window"
        );
        let Some(Measure::Ratio(worst)) = windowed.evidence.observed else {
            panic!("{windowed:?}");
        };
        assert!((worst - 10.0 / 30.0).abs() < 1e-9, "{worst}");
        assert_eq!(windowed.evidence.samples, 30);
        assert_eq!(windowed.evidence.first_broke_ns, Some(1_500 * MS));
        assert!(
            windowed.note.unwrap().starts_with("worst: the "),
            "the window is named"
        );
    }

    #[test]
    fn a_window_too_thin_to_judge_is_no_pass() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 50, 5, 200);
        let thin = SuccessRate::new(0.99, Scope::phase("fault"))
            .over_windows(Duration::from_millis(300))
            .check(&seen);
        assert_eq!(thin.outcome, Outcome::Inconclusive, "{thin:?}");
        let why = thin.note.unwrap();
        assert!(why.contains("fewer than the 10 it takes to judge"), "{why}");
        let short = SuccessRate::new(0.99, Scope::phase("fault"))
            .over_windows(Duration::from_secs(3))
            .check(&seen);
        assert_eq!(short.outcome, Outcome::Inconclusive);
        // A thin window does not save a window that broke.
        requests(&mut seen, "checkout", 1_300, 20, 5, 503);
        let broke = SuccessRate::new(0.99, Scope::phase("fault"))
            .over_windows(Duration::from_millis(300))
            .check(&seen);
        assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
    }
}
