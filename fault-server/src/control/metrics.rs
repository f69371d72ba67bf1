//! `GET /metrics`: Prometheus text, built at scrape time from the journals'
//! exact counters (so the data plane pays nothing for metrics).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as Metrics;

use crate::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabel {
    dependency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    dependency: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    dependency: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    dependency: String,
    kind: String,
}

/// The content type of [`render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) fn render(registry: &Registry) -> String {
    let received = Family::<DependencyLabel, Counter>::default();
    let by_status = Family::<StatusLabels, Counter>::default();
    let by_outcome = Family::<OutcomeLabels, Counter>::default();
    let in_flight = Family::<DependencyLabel, Gauge>::default();
    let peak = Family::<DependencyLabel, Gauge>::default();
    let faults = Family::<FaultLabels, Counter>::default();
    for (name, stats) in registry.all_stats() {
        let dependency = DependencyLabel {
            dependency: name.clone(),
        };
        received
            .get_or_create(&dependency)
            .inc_by(stats.total.calls);
        in_flight
            .get_or_create(&dependency)
            .set(i64::try_from(stats.in_flight).unwrap_or(i64::MAX));
        peak.get_or_create(&dependency)
            .set(i64::try_from(stats.total.peak_in_flight).unwrap_or(i64::MAX));
        for (status, count) in &stats.total.statuses {
            by_status
                .get_or_create(&StatusLabels {
                    dependency: name.clone(),
                    status: status.to_string(),
                })
                .inc_by(*count);
        }
        for (outcome, count) in &stats.total.outcomes {
            by_outcome
                .get_or_create(&OutcomeLabels {
                    dependency: name.clone(),
                    outcome: outcome.as_str().to_owned(),
                })
                .inc_by(*count);
        }
        for (kind, count) in &stats.total.faults {
            faults
                .get_or_create(&FaultLabels {
                    dependency: name.clone(),
                    kind: kind.as_str().to_owned(),
                })
                .inc_by(*count);
        }
    }
    let mut metrics = Metrics::with_prefix("fault_server");
    metrics.register("calls_received", "Calls each dependency received", received);
    metrics.register("calls", "Calls that ended, by the status sent", by_status);
    metrics.register(
        "call_outcomes",
        "Calls that ended, by how they ended",
        by_outcome,
    );
    metrics.register("in_flight", "Calls in flight now", in_flight);
    metrics.register("peak_in_flight", "Most calls in flight at once", peak);
    metrics.register(
        "faults_injected",
        "Calls each kind of fault applied to",
        faults,
    );
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &metrics);
    text
}
