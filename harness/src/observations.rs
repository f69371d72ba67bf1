//! What a run saw, in one value every property checker reads: the phases,
//! every request the load driver sent (the edge view), and every call each
//! dependency received (the fault server's journal). All instants are
//! nanoseconds on the fault server's clock.
//!
//! A live run fills it from sockets; a unit test or a simulation builds it by hand.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use fault_server::{AlertRecord, CallRecord};
use serde::{Deserialize, Serialize};

use crate::{CorrelationId, EdgeRecord, EdgeStats};

/// Everything a run observed.
///
/// ```
/// use harness::{EdgeOutcome, EdgeRecord, Observations, Phase};
///
/// let mut seen = Observations::default();
/// seen.phases.push(Phase::new("baseline", 0, 1_000_000_000));
/// seen.edge.push(EdgeRecord::new("checkout", 10, 12, 5_000_000, EdgeOutcome::Status(200)));
/// let phase = seen.phase("baseline").unwrap();
/// assert_eq!(seen.edge_in(phase, std::time::Duration::ZERO, Some("checkout")).count(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// The run's phases, in order.
    pub phases: Vec<Phase>,
    /// Every request sent at the system under test, up to the driver's cap
    /// on kept records (see [`Observations::edge_truncated_ns`]).
    pub edge: Vec<EdgeRecord>,
    /// Exact latency histograms and outcome counts by endpoint, then phase:
    /// every request counts here, kept record or not.
    #[serde(skip)]
    pub edge_stats: BTreeMap<String, BTreeMap<String, EdgeStats>>,
    /// When the run sent more requests than records are kept for: the
    /// earliest intended instant of a request whose record was not kept.
    /// Properties that read records of a phase reaching past it are inconclusive.
    #[serde(default)]
    pub edge_truncated_ns: Option<u64>,
    /// Every call each dependency received, by dependency name.
    pub dependencies: BTreeMap<String, Vec<CallRecord>>,
    /// Calls a journal counted (exactly) whose records the run could not
    /// read, by dependency then phase: a remote server's ring overwrote them
    /// between two reads. Verdicts that need them are inconclusive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lost_calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// The alerts each alert sink received, by dependency name.
    #[serde(default)]
    pub alerts: BTreeMap<String, Vec<AlertRecord>>,
}

/// What [`Observations::attributed`] finds for a phase.
#[derive(Debug, Default)]
pub struct Attributed<'a> {
    /// The calls, in arrival order.
    pub calls: Vec<&'a CallRecord>,
    /// The edge requests they were made for, plus the phase's requests that
    /// made no call at the dependency.
    pub requests: u64,
}

/// A named stretch of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Its name (`baseline`, `crm slow`, `recovery`).
    pub name: String,
    /// When it began.
    pub start_ns: u64,
    /// When it ended (exclusive).
    pub end_ns: u64,
    /// The journal window each dependency opened when the phase's faults
    /// came into force there (empty for observations built by hand, whose
    /// calls are placed by arrival instant).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, u32>,
}

impl Phase {
    /// A phase from `start_ns` to `end_ns`.
    pub fn new(name: impl Into<String>, start_ns: u64, end_ns: u64) -> Self {
        Phase {
            name: name.into(),
            start_ns,
            end_ns,
            windows: BTreeMap::new(),
        }
    }

    /// Whether `at_ns` lies in the phase once its first `settle` has passed.
    pub fn holds(&self, at_ns: u64, settle: Duration) -> bool {
        let from = self.start_ns.saturating_add(nanos(settle));
        (from..self.end_ns).contains(&at_ns)
    }
}

impl Observations {
    /// The phase with this name.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Edge requests intended within `phase` after `settle`, of `endpoint` (all when `None`).
    pub fn edge_in<'a>(
        &'a self,
        phase: &'a Phase,
        settle: Duration,
        endpoint: Option<&'a str>,
    ) -> impl Iterator<Item = &'a EdgeRecord> + 'a {
        self.edge.iter().filter(move |r| {
            phase.holds(r.intended_ns, settle) && endpoint.is_none_or(|e| &*r.endpoint == e)
        })
    }

    /// Calls at `dependency` that met `phase`'s faults, after `settle`: those
    /// that arrived in the journal window the phase opened there (when known;
    /// else those that arrived within the phase).
    pub fn calls_in<'a>(
        &'a self,
        dependency: &str,
        phase: &'a Phase,
        settle: Duration,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        let window = phase.windows.get(dependency).copied();
        let from = phase.start_ns.saturating_add(nanos(settle));
        self.dependencies
            .get(dependency)
            .into_iter()
            .flatten()
            .filter(move |r| match window {
                Some(window) => r.window == window && r.arrival_ns >= from,
                None => phase.holds(r.arrival_ns, settle),
            })
    }

    /// The calls at `dependency` made for `phase`'s requests, and those
    /// requests, for properties that count calls per request.
    ///
    /// A request of the run whose calls reached the dependency belongs to the
    /// phase whose faults its *first* call there met (the journal window it
    /// arrived in), and all its calls there count with it: a request sent
    /// just before a switch whose calls met the next phase's faults counts in
    /// the next phase, retries and all, and retries that cross a switch count
    /// with the attempt that caused them. A request with no call there
    /// belongs to the phase it was sent in. A call without a known
    /// correlation id (a target that does not pass it on) counts in the
    /// phase whose faults it met, and only when no `endpoint` is asked for.
    /// With `settle`, a request (or uncorrelated call) counts only from
    /// `settle` into the phase.
    pub fn attributed<'a>(
        &'a self,
        dependency: &str,
        phase: &'a Phase,
        settle: Duration,
        endpoint: Option<&str>,
    ) -> Attributed<'a> {
        let window = phase.windows.get(dependency).copied();
        let from = phase.start_ns.saturating_add(nanos(settle));
        let met = |call: &CallRecord| match window {
            Some(window) => call.window == window && call.arrival_ns >= from,
            None => phase.holds(call.arrival_ns, settle),
        };
        let requests: HashMap<CorrelationId, &EdgeRecord> = self
            .edge
            .iter()
            .filter_map(|r| Some((r.correlation_id?, r)))
            .collect();
        let calls = self
            .dependencies
            .get(dependency)
            .map_or(&[][..], Vec::as_slice);
        // Each request's calls, in arrival order: the first decides its phase.
        let mut by_request: HashMap<CorrelationId, Vec<&CallRecord>> = HashMap::new();
        let mut attributed = Attributed::default();
        for call in calls {
            let id = call
                .correlation_id
                .as_deref()
                .and_then(|id| id.parse::<CorrelationId>().ok())
                .filter(|id| requests.contains_key(id));
            match id {
                Some(id) => by_request.entry(id).or_default().push(call),
                None if endpoint.is_none() && met(call) => attributed.calls.push(call),
                None => {}
            }
        }
        let called: HashSet<CorrelationId> = by_request.keys().copied().collect();
        for (id, mut made) in by_request {
            let request = requests[&id];
            made.sort_by_key(|c| c.seq);
            if endpoint.is_some_and(|e| &*request.endpoint != e) || !met(made[0]) {
                continue;
            }
            attributed.requests += 1;
            attributed.calls.extend(made);
        }
        attributed.requests += self
            .edge
            .iter()
            .filter(|r| endpoint.is_none_or(|e| &*r.endpoint == e))
            .filter(|r| r.correlation_id.is_none_or(|id| !called.contains(&id)))
            .filter(|r| phase.holds(r.intended_ns, settle))
            .count() as u64;
        attributed.calls.sort_by_key(|c| c.seq);
        attributed
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
