//! `report.json`: the whole run in one document, described by
//! `harness/report.schema.json`. Field names are snake_case and stable.

use crate::report::RunOutcome;
use crate::run::Runs;
use std::collections::BTreeMap;

use serde::Serialize;

use faultline_properties::{Observations, Verdict};

/// The version of this document's shape; it changes only when a field does.
/// 2: an endpoint's `latency_ms` has `min`; a dependency's row has
/// `hold_ms` and `still_open`.
pub const SCHEMA_VERSION: u32 = 2;

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// See [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The faultline version that wrote it.
    pub faultline_version: String,
    /// How the run ended: `pass`, `fail`, `inconclusive`, `aborted` or `broken`.
    pub outcome: String,
    /// The process's exit code.
    pub exit_code: u8,
    /// Why it ended early, when it did.
    pub aborted_reason: Option<String>,
    /// Each suite run, in order.
    pub suites: Vec<SuiteReport>,
}

/// One suite's run.
#[derive(Debug, Serialize)]
pub struct SuiteReport {
    /// Its name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// Whether it was stopped before its end.
    pub aborted: bool,
    /// Its phases as they ran (instants in ns on the run's monotonic clock).
    pub phases: Vec<PhaseReport>,
    /// Per endpoint and phase.
    pub endpoints: Vec<EndpointReport>,
    /// Per dependency and phase.
    pub dependencies: Vec<DependencyReport>,
    /// Every verdict, with its evidence.
    pub verdicts: Vec<Verdict>,
}

/// A phase as it ran.
#[derive(Debug, Serialize)]
pub struct PhaseReport {
    /// Its name.
    pub name: String,
    /// When it began (ns).
    pub start_ns: u64,
    /// When it ended (ns).
    pub end_ns: u64,
}

/// What one endpoint saw in one phase (every request counted, from the histograms).
#[derive(Debug, Serialize)]
pub struct EndpointReport {
    /// The endpoint.
    pub endpoint: String,
    /// The phase.
    pub phase: String,
    /// Requests intended in the phase.
    pub requests: u64,
    /// Of which answered 2xx or 3xx.
    pub succeeded: u64,
    /// `succeeded / requests` (absent without requests).
    pub success_rate: Option<f64>,
    /// Requests by outcome: a status code, `timeout`, `connect_error` or `reset`.
    pub outcomes: BTreeMap<String, u64>,
    /// Latency from the intended send time, in milliseconds.
    pub latency_ms: Percentiles,
    /// The latest a send went out after its intended time, in milliseconds.
    pub max_lag_ms: f64,
    /// Open-loop sends dropped because the driver was at its cap.
    pub dropped: u64,
}

/// Latency percentiles, in milliseconds (all 0 when nothing was recorded).
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// The shortest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// The longest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    fn of_micros(histogram: &hdrhistogram::Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles {
                min: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
            };
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        let at = |p: f64| ms(histogram.value_at_percentile(p));
        Percentiles {
            min: ms(histogram.min()),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            p99_9: at(99.9),
            max: ms(histogram.max()),
        }
    }
}

/// What one dependency received in one phase.
#[derive(Debug, Serialize)]
pub struct DependencyReport {
    /// The dependency.
    pub dependency: String,
    /// The phase.
    pub phase: String,
    /// Calls that arrived in the phase.
    pub calls: u64,
    /// Most calls in flight at once in the phase: at each arrival, and at its
    /// start (calls open since before it, such as pooled connections).
    pub peak_in_flight: u64,
    /// Calls by status sent; calls that ended without one by how they ended.
    pub outcomes: BTreeMap<String, u64>,
    /// How long the dependency held the calls that ended (departure less
    /// arrival), in milliseconds.
    pub hold_ms: Percentiles,
    /// Calls that had not ended when the run last read the journal (not in
    /// `hold_ms`).
    pub still_open: u64,
    /// Calls the journal counted in the phase whose records the run could
    /// not read (a remote ring overwrote them): verdicts that needed them are
    /// inconclusive.
    pub lost_records: u64,
}

impl Report {
    /// The report of running suites: each suite's run, and how they ended
    /// ([`RunOutcome::of_runs`]).
    pub fn of_runs(runs: &Runs) -> Self {
        let outcome = RunOutcome::of_runs(runs);
        Report {
            schema_version: SCHEMA_VERSION,
            faultline_version: env!("CARGO_PKG_VERSION").to_owned(),
            outcome: outcome.word().to_owned(),
            exit_code: outcome.exit_code(),
            aborted_reason: runs.ended.as_ref().map(ToString::to_string),
            suites: runs
                .suites
                .iter()
                .map(|s| {
                    SuiteReport::new(
                        &s.name,
                        &s.path,
                        s.run.aborted.is_some(),
                        &s.run.observations,
                        s.run.verdicts.clone(),
                    )
                })
                .collect(),
        }
    }
}

impl SuiteReport {
    /// Builds a suite's report from what its run observed.
    pub fn new(
        name: &str,
        path: &str,
        aborted: bool,
        seen: &Observations,
        verdicts: Vec<Verdict>,
    ) -> Self {
        let phases = seen
            .phases
            .iter()
            .map(|p| PhaseReport {
                name: p.name.clone(),
                start_ns: p.start_ns,
                end_ns: p.end_ns,
            })
            .collect();
        let mut endpoints = Vec::new();
        for (endpoint, by_phase) in &seen.edge_stats {
            for phase in &seen.phases {
                let Some(stats) = by_phase.get(&phase.name) else {
                    continue;
                };
                let requests = stats.requests();
                let empty = requests == 0;
                endpoints.push(EndpointReport {
                    endpoint: endpoint.clone(),
                    phase: phase.name.clone(),
                    requests,
                    succeeded: stats.succeeded(),
                    success_rate: (!empty).then(|| stats.succeeded() as f64 / requests as f64),
                    outcomes: stats
                        .outcomes
                        .iter()
                        .map(|(outcome, n)| (outcome.to_string(), *n))
                        .collect(),
                    latency_ms: Percentiles::of_micros(&stats.latency_us),
                    max_lag_ms: stats.max_lag.as_secs_f64() * 1_000.0,
                    dropped: stats.dropped,
                });
            }
        }
        let mut dependencies = Vec::new();
        for dependency in seen.dependencies.keys() {
            for phase in &seen.phases {
                let mut report = DependencyReport {
                    dependency: dependency.clone(),
                    phase: phase.name.clone(),
                    calls: 0,
                    peak_in_flight: 0,
                    outcomes: BTreeMap::new(),
                    hold_ms: Percentiles::of_micros(&faultline_properties::micros_histogram()),
                    still_open: 0,
                    lost_records: seen
                        .lost_calls
                        .get(dependency)
                        .and_then(|phases| phases.get(&phase.name))
                        .copied()
                        .unwrap_or(0),
                };
                // Calls open since before the phase (pooled connections) are
                // in flight in it too.
                report.peak_in_flight = seen
                    .open_at_start(dependency, phase, std::time::Duration::ZERO)
                    .count() as u64;
                let mut hold_us = faultline_properties::micros_histogram();
                for call in seen.calls_in(dependency, phase, std::time::Duration::ZERO) {
                    match call.departure_ns {
                        Some(departure) => {
                            hold_us.saturating_record(
                                departure.saturating_sub(call.arrival_ns) / 1_000,
                            );
                        }
                        None => report.still_open += 1,
                    }
                    report.calls += 1;
                    report.peak_in_flight = report.peak_in_flight.max(call.in_flight);
                    let key = call
                        .status
                        .map_or_else(|| call.outcome.as_str().to_owned(), |s| s.to_string());
                    *report.outcomes.entry(key).or_default() += 1;
                }
                report.hold_ms = Percentiles::of_micros(&hold_us);
                dependencies.push(report);
            }
        }
        SuiteReport {
            name: name.to_owned(),
            path: path.to_owned(),
            aborted,
            phases,
            endpoints,
            dependencies,
            verdicts,
        }
    }
}
