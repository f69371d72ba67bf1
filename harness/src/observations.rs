//! What a run saw, in one value every property checker reads: the phases,
//! every request the load driver sent (the edge view), and every call each
//! dependency received (the fault server's journal). All instants are
//! nanoseconds on the fault server's clock.
//!
//! A live run fills it from sockets; a unit test or a simulation builds it by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use fault_server::{AlertRecord, CallRecord};
use serde::{Deserialize, Serialize};

use crate::{EdgeRecord, EdgeStats};

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
    /// The alerts each alert sink received, by dependency name.
    #[serde(default)]
    pub alerts: BTreeMap<String, Vec<AlertRecord>>,
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
}

impl Phase {
    /// A phase from `start_ns` to `end_ns`.
    pub fn new(name: impl Into<String>, start_ns: u64, end_ns: u64) -> Self {
        Phase {
            name: name.into(),
            start_ns,
            end_ns,
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

    /// Calls that reached `dependency` within `phase` after `settle`.
    pub fn calls_in<'a>(
        &'a self,
        dependency: &str,
        phase: &'a Phase,
        settle: Duration,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        self.dependencies
            .get(dependency)
            .into_iter()
            .flatten()
            .filter(move |r| phase.holds(r.arrival_ns, settle))
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
