//! Alert sinks: a dependency marked `alert_sink` reads each request body as
//! an Alertmanager webhook and keeps the alerts it names, so a test can check
//! that an alert fired, and when.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Alerts an alert sink keeps at most; past it the oldest go.
pub const MAX_ALERTS: usize = 10_000;

/// One alert an alert sink received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// When it arrived, in nanoseconds on the server's clock.
    pub at_ns: u64,
    /// Its `alertname` label.
    pub alertname: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// All its labels.
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Webhook {
    #[serde(default)]
    alerts: Vec<WebhookAlert>,
}

#[derive(Deserialize)]
struct WebhookAlert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// The alerts in an Alertmanager webhook body; none if it is not one.
pub(crate) fn parse(body: &[u8], at_ns: u64) -> Vec<AlertRecord> {
    let Ok(webhook) = serde_json::from_slice::<Webhook>(body) else {
        return Vec::new();
    };
    webhook
        .alerts
        .into_iter()
        .map(|alert| AlertRecord {
            at_ns,
            alertname: alert.labels.get("alertname").cloned().unwrap_or_default(),
            status: alert.status,
            labels: alert.labels,
        })
        .collect()
}

/// The alerts a sink has kept, oldest first, at most [`MAX_ALERTS`].
#[derive(Debug, Default)]
pub(crate) struct AlertLog {
    alerts: VecDeque<AlertRecord>,
}

impl AlertLog {
    pub(crate) fn extend(&mut self, alerts: Vec<AlertRecord>) {
        for alert in alerts {
            if self.alerts.len() == MAX_ALERTS {
                self.alerts.pop_front();
            }
            self.alerts.push_back(alert);
        }
    }

    pub(crate) fn all(&self) -> Vec<AlertRecord> {
        self.alerts.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.alerts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alertmanager_webhook_yields_its_alerts_and_anything_else_none() {
        let body = br#"{"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "ConcurrencyHigh", "function": "checkout"}}
        ]}"#;
        let alerts = parse(body, 7);
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (
                alerts[0].alertname.as_str(),
                alerts[0].status.as_str(),
                alerts[0].at_ns
            ),
            ("ConcurrencyHigh", "firing", 7)
        );
        assert!(parse(b"not json", 7).is_empty());
    }
}
