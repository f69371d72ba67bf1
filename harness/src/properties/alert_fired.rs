//! `alert_fired`: an alert on concurrency utilisation fires, not just one on
//! error rates, soon after the fault starts.

use std::time::Duration;

use crate::observations::nanos;
use crate::properties::{Property, Scope};
use crate::verdict::Measure;
use crate::{Observations, Verdict};

/// An alert named `alertname` with status `firing` reaches an alert sink of
/// the fault server within `within` of the phase's start.
///
/// ```
/// use std::time::Duration;
/// use harness::properties::{AlertFired, Property, Scope};
/// let claim = AlertFired::new("ConcurrencyHigh", Duration::from_secs(30), Scope::phase("crm slow"));
/// assert_eq!(claim.check(&Default::default()).outcome, harness::Outcome::Inconclusive, "no such phase");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFired {
    /// The alert's `alertname` label.
    pub alertname: String,
    /// How soon after the phase starts it must arrive.
    pub within: Duration,
    /// The phase whose start is the fault's.
    pub scope: Scope,
}

impl AlertFired {
    /// `alertname` fires within `within` of the phase's start.
    pub fn new(alertname: impl Into<String>, within: Duration, scope: Scope) -> Self {
        AlertFired {
            alertname: alertname.into(),
            within,
            scope,
        }
    }
}

impl Property for AlertFired {
    fn name(&self) -> String {
        format!("alert_fired({}) within {:?}", self.alertname, self.within)
    }

    fn check(&self, seen: &Observations) -> Verdict {
        let name = self.name();
        let (phase, mut evidence) =
            match self
                .scope
                .start(seen, &name, Measure::Duration(self.within))
            {
                Ok(found) => found,
                Err(verdict) => return *verdict,
            };
        let first = seen
            .alerts
            .values()
            .flatten()
            .filter(|a| {
                a.alertname == self.alertname && a.status == "firing" && a.at_ns >= phase.start_ns
            })
            .min_by_key(|a| a.at_ns);
        evidence.samples = seen.alerts.values().map(|a| a.len() as u64).sum();
        let Some(first) = first else {
            let mut verdict = Verdict::judged(name, &phase.name, false, evidence);
            verdict.note = Some(format!(
                "no `{}` alert fired after the phase began",
                self.alertname
            ));
            return verdict;
        };
        let after = Duration::from_nanos(first.at_ns - phase.start_ns);
        evidence.observed = Some(Measure::Duration(after));
        let held = first.at_ns - phase.start_ns <= nanos(self.within);
        if !held {
            evidence.first_broke_ns = Some(phase.start_ns + nanos(self.within));
        }
        Verdict::judged(name, &phase.name, held, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::fixtures::{two_phases, MS};
    use crate::Outcome;
    use fault_server::AlertRecord;

    fn alert_at(ms: u64) -> Observations {
        let mut seen = two_phases();
        seen.alerts.insert(
            "alerts".into(),
            vec![AlertRecord {
                at_ns: ms * MS,
                alertname: "ConcurrencyHigh".into(),
                status: "firing".into(),
                labels: Default::default(),
            }],
        );
        seen
    }

    fn claim() -> AlertFired {
        AlertFired::new(
            "ConcurrencyHigh",
            Duration::from_millis(300),
            Scope::phase("fault"),
        )
    }

    #[test]
    fn an_alert_soon_after_the_fault_passes_a_late_one_fails() {
        assert_eq!(claim().check(&alert_at(1_200)).outcome, Outcome::Pass);
        assert_eq!(claim().check(&alert_at(1_500)).outcome, Outcome::Fail);
    }

    #[test]
    fn no_alert_at_all_fails_and_one_from_before_the_phase_does_not_count() {
        let verdict = claim().check(&two_phases());
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.note.unwrap().contains("no `ConcurrencyHigh` alert"));
        assert_eq!(claim().check(&alert_at(500)).outcome, Outcome::Fail);
    }
}
