//! The hardened shop's alert on concurrency utilisation (checklist item 7:
//! alert on utilisation, not only on errors): every [`EVERY`], each
//! function's running invocations over its reserve; at [`FIRING_AT`] or more
//! it posts a firing `ConcurrencyUtilisationHigh` alert as an Alertmanager
//! webhook (version 4), and a resolved one once back under [`RESOLVED_BELOW`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;

use crate::call::HttpClient;
use crate::reserve::Gauge;

/// How often utilisation is sampled.
const EVERY: Duration = Duration::from_millis(50);
/// Utilisation that fires the alert.
pub(crate) const FIRING_AT: f64 = 0.8;
/// Utilisation under which it resolves.
const RESOLVED_BELOW: f64 = 0.5;
/// The alert's name.
pub(crate) const ALERT: &str = "ConcurrencyUtilisationHigh";

/// Watches `gauges` (with their reserves) and posts to `url` until the task is aborted.
pub(crate) fn watch(
    client: HttpClient,
    url: String,
    gauges: Vec<(&'static str, usize, Arc<Gauge>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut firing: BTreeMap<&str, bool> = BTreeMap::new();
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            for (function, reserve, gauge) in &gauges {
                let utilisation = gauge.now() as f64 / (*reserve).max(1) as f64;
                let was = firing.get(function).copied().unwrap_or(false);
                let now = if was {
                    utilisation >= RESOLVED_BELOW
                } else {
                    utilisation >= FIRING_AT
                };
                if now != was {
                    firing.insert(function, now);
                    post(&client, &url, function, now, utilisation).await;
                }
            }
        }
    })
}

async fn post(client: &HttpClient, url: &str, function: &str, firing: bool, utilisation: f64) {
    let status = if firing { "firing" } else { "resolved" };
    let body = serde_json::json!({
        "version": "4",
        "status": status,
        "receiver": "faultline",
        "groupLabels": {"alertname": ALERT},
        "alerts": [{
            "status": status,
            "labels": {"alertname": ALERT, "function": function, "severity": "page"},
            "annotations": {"summary": format!("{function} at {:.0}% of its reserved concurrency", utilisation * 100.0)},
        }],
    });
    let Ok(request) = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
    else {
        return;
    };
    // An alert that cannot be delivered is not worth stalling the watch for.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.request(request)).await;
}
