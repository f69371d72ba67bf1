//! `breaker`: a circuit breaker opens on repeated failures, holds back calls
//! while open, and lets probes through again after its reset interval.

use std::time::Duration;

use fault_server::{CallOutcome, CallRecord};

use crate::observations::nanos;
use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// At `dependency`, once `failures` calls in a row have ended in failure
/// (a 5xx or 429, a reset, a close, garbage, or the caller giving up), at most
/// `probes` calls arrive in any `reset` interval that follows while the
/// dependency keeps failing (safety); and calls do arrive again after the
/// first `reset` interval (liveness: a breaker stuck open fails too).
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{Breaker, Property, Scope};
/// let claim = Breaker::new("crm", 5, Duration::from_secs(30), 1, Scope::phase("crm down"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    /// The dependency's name.
    pub dependency: String,
    /// Consecutive failures that open the breaker.
    pub failures: u64,
    /// How long it stays open before letting probes through.
    pub reset: Duration,
    /// Calls allowed per reset interval while open (half-open probes).
    pub probes: u64,
    /// Where to look.
    pub scope: Scope,
}

impl Breaker {
    /// Opens after `failures` in a row, stays open `reset`, lets `probes` through per interval.
    pub fn new(
        dependency: impl Into<String>,
        failures: u64,
        reset: Duration,
        probes: u64,
        scope: Scope,
    ) -> Self {
        Breaker {
            dependency: dependency.into(),
            failures,
            reset,
            probes,
            scope,
        }
    }
}

fn failed(call: &CallRecord) -> bool {
    match call.outcome {
        CallOutcome::Responded => call.status.is_some_and(|s| s >= 500 || s == 429),
        // A TCP connection ended by either side in the ordinary way.
        CallOutcome::InFlight | CallOutcome::ClientClosed | CallOutcome::UpstreamClosed => false,
        CallOutcome::Reset
        | CallOutcome::Closed
        | CallOutcome::Malformed
        | CallOutcome::ClientGone
        | CallOutcome::UpstreamError
        | CallOutcome::TimedOut
        | CallOutcome::Refused => true,
    }
}

/// How far the dependency's view of the caller's breaker may be off: the
/// breaker learns of a failure a moment after the dependency recorded it (the
/// answer crosses the network, a timeout fires on the caller's side), and a
/// probe reaches the dependency a moment after the breaker let it go (a
/// connection may have to be made first), a moment that varies from probe to
/// probe. At most a tenth of the reset interval.
const SLACK_NS: u64 = 50_000_000;

impl Property for Breaker {
    fn name(&self) -> String {
        format!(
            "breaker({}) opens after {} failures for {}, {} probe(s)",
            self.scope.subject(&self.dependency),
            self.failures,
            Shown(self.reset),
            self.probes
        )
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Calls(&self.dependency)
    }

    fn threshold(&self) -> Measure {
        Measure::Count(self.probes)
    }

    fn samples(&self) -> Samples {
        Samples::uncounted(format!("calls at {}", self.dependency))
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let mut calls: Vec<&CallRecord> =
            self.scope.calls_in(seen, &self.dependency, phase).collect();
        calls.sort_by_key(|c| c.arrival_ns);
        evidence.samples = calls.len() as u64;
        // The breaker must be open once `failures` calls in a row have ended failing.
        let mut by_departure: Vec<&CallRecord> = calls
            .iter()
            .copied()
            .filter(|c| c.departure_ns.is_some())
            .collect();
        by_departure.sort_by_key(|c| c.departure_ns);
        let mut streak = 0;
        let mut opened_ns = None;
        for call in &by_departure {
            streak = if failed(call) { streak + 1 } else { 0 };
            if streak >= self.failures {
                opened_ns = call.departure_ns;
                break;
            }
        }
        let Some(opened_ns) = opened_ns else {
            let why = format!(
                "{} calls in a row never failed at {}: the breaker was not exercised",
                self.failures, self.dependency
            );
            return Judgement::inconclusive(why).covering(false, "the breaker never opened");
        };
        let opened = format!(
            "the breaker opened at {:.3}s, after {} failures in a row",
            opened_ns as f64 / 1e9,
            self.failures
        );
        let reset = nanos(self.reset).max(1);
        if opened_ns.saturating_add(reset) > phase.end_ns {
            let why =
                "the phase ends before one reset interval has passed after the breaker opened";
            return Judgement::inconclusive(why).covering(true, opened);
        }
        // Safety: at most `probes` arrivals in each reset interval after it
        // opened, give or take `SLACK_NS`: calls arriving within it of the
        // opening failure are not held against the breaker, and the window
        // is that much shorter than the interval.
        let slack = SLACK_NS.min(reset / 10);
        let after: Vec<&CallRecord> = calls
            .iter()
            .copied()
            .filter(|c| c.arrival_ns > opened_ns.saturating_add(slack))
            .collect();
        let window = reset.saturating_sub(slack).max(1);
        let (mut worst, mut end) = (0u64, 0usize);
        for (start, call) in after.iter().enumerate() {
            // `end` only moves forward: the windows slide, so this is linear.
            while end < after.len() && after[end].arrival_ns < call.arrival_ns + window {
                end += 1;
            }
            let in_window = (end - start) as u64;
            if in_window > worst {
                worst = in_window;
                evidence.witness = call.correlation_id.clone();
            }
            if in_window > self.probes && evidence.first_broke_ns.is_none() {
                evidence.first_broke_ns = Some(call.arrival_ns);
            }
        }
        evidence.observed = Some(Measure::Count(worst));
        if worst > self.probes {
            return Judgement::held(false).covering(true, opened);
        }
        // Liveness: probes resume after the reset interval.
        let resumed = after.iter().any(|c| c.arrival_ns >= opened_ns + reset);
        if !resumed {
            return Judgement::held(false)
                .note(format!(
                    "no call reached {} after the reset interval: the breaker stayed open",
                    self.dependency
                ))
                .covering(true, opened);
        }
        Judgement::held(true).covering(true, opened)
    }
}

/// `property = "breaker"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The dependency.
    dependency: String,
    /// Consecutive failures that open it.
    #[serde(deserialize_with = "keys::count")]
    failures: u64,
    /// How long it stays open.
    #[serde(deserialize_with = "keys::duration")]
    reset: Duration,
    /// Calls allowed per reset interval while open (1).
    #[serde(default = "one", deserialize_with = "keys::count")]
    probes: u64,
}

fn one() -> u64 {
    1
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "breaker";
    /// Judged from the failures in a row, however many calls: no `min_samples`.
    const SHARED: &'static [&'static str] = &["settle", "match", "exclude"];

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        names.dependency("dependency", &self.dependency)?;
        if self.failures == 0 {
            return Err(ParamError::at("failures", "must be at least 1"));
        }
        let reset = keys::above_zero("reset", self.reset)?;
        Ok(Arc::new(Breaker::new(
            self.dependency,
            self.failures,
            reset,
            self.probes,
            scope,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{two_phases, MS};
    use crate::Outcome;

    /// Calls at `times_ms` (into the 1 s fault phase), each failing with 503 after 1 ms.
    fn failing_calls(times_ms: &[u64]) -> Observations {
        let mut seen = two_phases();
        for (i, at) in times_ms.iter().enumerate() {
            crate::fixtures::call(&mut seen, "crm", 1_000 + at, 1, &format!("r{i}"));
        }
        for call in seen.dependencies.get_mut("crm").unwrap() {
            call.status = Some(503);
        }
        seen
    }

    fn breaker(probes: u64) -> Breaker {
        Breaker::new(
            "crm",
            5,
            Duration::from_millis(200),
            probes,
            Scope::phase("fault").with_min_samples(1),
        )
    }

    #[test]
    fn a_breaker_that_opens_and_probes_once_per_interval_passes() {
        // Five failures, then one probe every 200 ms.
        let seen = failing_calls(&[0, 10, 20, 30, 40, 250, 450, 650, 850]);
        let verdict = breaker(1).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        let coverage = verdict.coverage.unwrap();
        assert!(coverage.exercised);
        assert_eq!(
            coverage.what,
            "the breaker opened at 1.041s, after 5 failures in a row"
        );
    }

    #[test]
    fn no_breaker_keeps_calling_and_fails() {
        let times: Vec<u64> = (0..90).map(|i| i * 10).collect();
        let verdict = breaker(1).check(&failing_calls(&times));
        assert_eq!(verdict.outcome, Outcome::Fail);
        // Windows of 180 ms (the reset less a tenth, the timing slack).
        assert_eq!(verdict.evidence.observed, Some(Measure::Count(18)));
        // Calls within 20 ms of the opening failure are not held against it.
        assert_eq!(verdict.evidence.first_broke_ns, Some((1_000 + 70) * MS));
    }

    #[test]
    fn a_call_the_breaker_could_not_yet_know_to_refuse_is_not_held_against_it() {
        // The fifth failure ends at 41 ms; a call at 55 ms was on its way
        // before the caller saw it; probes come about 200 ms apart, one a
        // little early (a connection to make for the one before).
        let seen = failing_calls(&[0, 10, 20, 30, 40, 55, 250, 440, 640, 840]);
        let verdict = breaker(1).check(&seen);
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
    }

    #[test]
    fn a_breaker_stuck_open_fails_liveness() {
        let verdict = breaker(1).check(&failing_calls(&[0, 10, 20, 30, 40]));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.note.unwrap().contains("stayed open"));
    }

    #[test]
    fn without_enough_failures_in_a_row_it_is_inconclusive() {
        let verdict = breaker(1).check(&failing_calls(&[0, 10, 20]));
        assert_eq!(verdict.outcome, Outcome::Inconclusive);
        assert!(!verdict.coverage.unwrap().exercised, "it never opened");
    }
}
