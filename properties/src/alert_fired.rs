//! `alert_fired`: an alert on concurrency utilisation fires, not just one on
//! error rates, soon after the fault starts.

use std::time::Duration;

use crate::observations::nanos;
use std::sync::Arc;

use serde::Deserialize;

use crate::keys::{self, Expectation, ParamError, SuiteKeys, SuiteNames};
use crate::verdict::{Evidence, Measure, Shown};
use crate::{Judgement, Property, Reads, Samples, Scope};
use crate::{Observations, Phase};

/// An alert named `alertname` with status `firing` reaches an alert sink of
/// the fault server within `within` of the phase's start.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::{AlertFired, Property, Scope};
/// let claim = AlertFired::new("ConcurrencyHigh", Duration::from_secs(30), Scope::phase("crm slow"));
/// assert_eq!(claim.check(&Default::default()).outcome, faultline_properties::Outcome::Inconclusive, "no such phase");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFired {
    /// The alert's `alertname` label.
    pub alertname: String,
    /// How soon after the phase starts it must arrive.
    pub within: Duration,
    /// The alert sink it must reach; any sink when `None`.
    pub sink: Option<String>,
    /// The phase whose start is the fault's.
    pub scope: Scope,
}

impl AlertFired {
    /// `alertname` fires within `within` of the phase's start.
    pub fn new(alertname: impl Into<String>, within: Duration, scope: Scope) -> Self {
        AlertFired {
            alertname: alertname.into(),
            within,
            sink: None,
            scope,
        }
    }

    /// Counts only the alerts that reach the sink `dependency`.
    pub fn at_sink(mut self, dependency: impl Into<String>) -> Self {
        self.sink = Some(dependency.into());
        self
    }
}

impl Property for AlertFired {
    fn name(&self) -> String {
        match &self.sink {
            Some(sink) => format!(
                "alert_fired({} at {sink}) within {}",
                self.alertname,
                Shown(self.within)
            ),
            None => format!(
                "alert_fired({}) within {}",
                self.alertname,
                Shown(self.within)
            ),
        }
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn reads(&self) -> Reads<'_> {
        Reads::Phase
    }

    fn threshold(&self) -> Measure {
        Measure::Duration(self.within)
    }

    fn samples(&self) -> Samples {
        Samples::uncounted("alerts received")
    }

    fn judge(&self, seen: &Observations, phase: &Phase, evidence: &mut Evidence) -> Judgement {
        let received: Vec<&fault_server::AlertRecord> = seen
            .alerts
            .iter()
            .filter(|(sink, _)| self.sink.as_ref().is_none_or(|s| s == *sink))
            .flat_map(|(_, alerts)| alerts)
            .collect();
        evidence.samples = received.len() as u64;
        let first = received
            .into_iter()
            .filter(|a| {
                a.alertname == self.alertname && a.status == "firing" && a.at_ns >= phase.start_ns
            })
            .min_by_key(|a| a.at_ns);
        let Some(first) = first else {
            return Judgement::held(false).note(format!(
                "no `{}` alert fired after the phase began",
                self.alertname
            ));
        };
        let after = Duration::from_nanos(first.at_ns - phase.start_ns);
        evidence.observed = Some(Measure::Duration(after));
        let held = first.at_ns - phase.start_ns <= nanos(self.within);
        if !held {
            evidence.first_broke_ns = Some(phase.start_ns + nanos(self.within));
        }
        Judgement::held(held)
    }
}

/// `property = "alert_fired"`: its suite keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keys {
    /// The alert's `alertname` label.
    alert: String,
    /// How soon after the phase starts it must arrive.
    #[serde(deserialize_with = "keys::duration")]
    within: Duration,
    /// The alert sink it must reach; any sink when absent.
    #[serde(default)]
    dependency: Option<String>,
}

impl SuiteKeys for Keys {
    const PROPERTY: &'static str = "alert_fired";
    /// One alert is the evidence, from the phase's start.
    const SHARED: &'static [&'static str] = &[];

    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError> {
        let within = keys::above_zero("within", self.within)?;
        let mut property = AlertFired::new(self.alert, within, scope);
        if let Some(sink) = self.dependency {
            names.dependency("dependency", &sink)?;
            property = property.at_sink(sink);
        }
        Ok(Arc::new(property))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{two_phases, MS};
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
        // At another sink than the one named, it does not count.
        let elsewhere = claim().at_sink("pager").check(&alert_at(1_200));
        assert_eq!(elsewhere.outcome, Outcome::Fail);
        assert_eq!(
            claim().at_sink("alerts").check(&alert_at(1_200)).outcome,
            Outcome::Pass
        );
    }
}
