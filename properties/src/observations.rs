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
/// use faultline_properties::{EdgeOutcome, EdgeRecord, Observations, Phase};
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
    /// Dependencies whose journal the run could not read to the end (a
    /// remote server that stopped answering while the run was stopping),
    /// with why. Verdicts on their calls are inconclusive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unread: BTreeMap<String, String>,
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

    /// Whether `call` at `dependency` met this phase's faults, after
    /// `settle`: it arrived in the journal window the phase opened there
    /// (without `settle` the window alone decides, so a remote journal's
    /// clock read a little early never moves a call out of it), or, when no
    /// window is known, within the phase.
    pub fn met(&self, dependency: &str, call: &CallRecord, settle: Duration) -> bool {
        match self.windows.get(dependency) {
            Some(window) => {
                call.window == *window
                    && (settle.is_zero()
                        || call.arrival_ns >= self.start_ns.saturating_add(nanos(settle)))
            }
            None => self.holds(call.arrival_ns, settle),
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

    /// Edge requests of `phase` after `settle`, of `endpoint` (all when
    /// `None`). A request belongs to the phase whose faults its first
    /// dependency call met, at whichever dependency ([`Phase::met`]), when
    /// that call arrived while the request was open: one sent in the last
    /// moments of a phase whose call met the next phase's faults is the next
    /// phase's, as its fate was. A request that made no call the journals
    /// tie to it (none, or the target passes no correlation id on), or whose
    /// first call came after its answer (work a queue did later), belongs to
    /// the phase it was intended in. With a
    /// `settle`, a request intended before the phase's start plus the
    /// settle is left out either way.
    pub fn edge_in<'a>(
        &'a self,
        phase: &'a Phase,
        settle: Duration,
        endpoint: Option<&'a str>,
    ) -> impl Iterator<Item = &'a EdgeRecord> + 'a {
        let placed = self.phases_met();
        let index = self
            .phases
            .iter()
            .position(|p| std::ptr::eq(p, phase) || p.name == phase.name);
        self.edge.iter().filter(move |r| {
            endpoint.is_none_or(|e| &*r.endpoint == e)
                && match r
                    .correlation_id
                    .and_then(|id| placed.get(&id))
                    .filter(|(_, arrived)| *arrived <= r.ended_ns)
                {
                    Some(&(met, _)) => {
                        Some(met) == index
                            && (settle.is_zero()
                                || r.intended_ns >= phase.start_ns.saturating_add(nanos(settle)))
                    }
                    None => phase.holds(r.intended_ns, settle),
                }
        })
    }

    /// For each edge request that made a call, the phase (by index) whose
    /// faults its first call met, and when that call arrived; a request
    /// whose first call met no phase (after the run) is left out.
    fn phases_met(&self) -> HashMap<CorrelationId, (usize, u64)> {
        let mut first: HashMap<CorrelationId, (&str, &CallRecord)> = HashMap::new();
        for (dependency, calls) in &self.dependencies {
            for call in calls {
                let Some(id) = call
                    .correlation_id
                    .as_deref()
                    .and_then(|id| id.parse::<CorrelationId>().ok())
                else {
                    continue;
                };
                let earlier = first
                    .get(&id)
                    .is_none_or(|(_, seen)| call.arrival_ns < seen.arrival_ns);
                if earlier {
                    first.insert(id, (dependency.as_str(), call));
                }
            }
        }
        first
            .into_iter()
            .filter_map(|(id, (dependency, call))| {
                let met = self
                    .phases
                    .iter()
                    .position(|p| p.met(dependency, call, Duration::ZERO))?;
                Some((id, (met, call.arrival_ns)))
            })
            .collect()
    }

    /// Calls at `dependency` that met `phase`'s faults, after `settle`
    /// ([`Phase::met`]).
    pub fn calls_in<'a>(
        &'a self,
        dependency: &str,
        phase: &'a Phase,
        settle: Duration,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        let calls = self.dependencies.get(dependency).into_iter().flatten();
        let dependency = dependency.to_owned();
        calls.filter(move |r| phase.met(&dependency, r, settle))
    }

    /// The calls at `dependency` already open when `phase` began (after
    /// `settle`) that arrived before it: a pool's long-lived connections,
    /// in flight through the phase though none arrived in it. With the
    /// calls that arrived in the phase, what was in flight during it.
    pub fn open_at_start<'a>(
        &'a self,
        dependency: &str,
        phase: &'a Phase,
        settle: Duration,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        let from_ns = phase.start_ns.saturating_add(nanos(settle));
        let calls = self.dependencies.get(dependency).into_iter().flatten();
        let dependency = dependency.to_owned();
        calls.filter(move |c| {
            c.arrival_ns < from_ns
                && c.departure_ns.is_none_or(|d| d > from_ns)
                && !phase.met(&dependency, c, settle)
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
    /// Only the calls `select` keeps count (a request whose calls it drops
    /// all made none). With `settle`, a request (or uncorrelated call) counts only from
    /// `settle` into the phase.
    pub fn attributed<'a>(
        &'a self,
        dependency: &str,
        phase: &'a Phase,
        settle: Duration,
        endpoint: Option<&str>,
        select: impl Fn(&CallRecord) -> bool,
    ) -> Attributed<'a> {
        let met = |call: &CallRecord| phase.met(dependency, call, settle);
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
        for call in calls.iter().filter(|c| select(c)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, id, requests, two_phases, MS};

    /// Two phases whose switch opened window 1 at `crm`; calls carry the
    /// window they arrived in.
    fn switched() -> Observations {
        let mut seen = two_phases();
        seen.phases[0].windows.insert("crm".to_owned(), 0);
        seen.phases[1].windows.insert("crm".to_owned(), 1);
        seen
    }

    /// A call at `crm` for `request`, arriving at `at_ms` in `window`.
    fn call_in(seen: &mut Observations, at_ms: u64, request: CorrelationId, window: u32) {
        call(seen, "crm", at_ms, 1, &request.to_string());
        seen.dependencies
            .get_mut("crm")
            .unwrap()
            .last_mut()
            .unwrap()
            .window = window;
    }

    #[test]
    fn a_request_counts_in_the_phase_whose_faults_its_first_call_met() {
        let mut seen = switched();
        // Ten requests sent in the last 100 ms of the baseline, one call each.
        requests(&mut seen, "checkout", 900, 10, 5, 200);
        for i in 0..10 {
            let request = id("checkout", 900, i);
            // The last three were sent before the switch but their calls
            // went in after it, and met the fault phase's faults: each made
            // three attempts there.
            if i < 7 {
                call_in(&mut seen, 901 + i * 10, request, 0);
            } else {
                for attempt in 0..3 {
                    call_in(&mut seen, 1_001 + i * 10 + attempt, request, 1);
                }
            }
        }
        let baseline = seen.phase("baseline").unwrap();
        let fault = seen.phase("fault").unwrap();
        let before = seen.attributed("crm", baseline, Duration::ZERO, None, |_| true);
        assert_eq!((before.calls.len(), before.requests), (7, 7));
        let after = seen.attributed("crm", fault, Duration::ZERO, Some("checkout"), |_| true);
        assert_eq!((after.calls.len(), after.requests), (9, 3));
        // By arrival instant alone (no windows known) a call sent early but
        // arriving late would land in the same phase; by window it does too,
        // even when its arrival instant reads before the switch completed.
        let late = id("checkout", 900, 9);
        for call in seen.dependencies.get_mut("crm").unwrap() {
            if call.correlation_id.as_deref() == Some(&late.to_string()) {
                call.arrival_ns = 999 * MS;
            }
        }
        let fault = seen.phase("fault").unwrap();
        let after = seen.attributed("crm", fault, Duration::ZERO, None, |_| true);
        assert_eq!((after.calls.len(), after.requests), (9, 3));
    }

    #[test]
    fn retries_that_cross_a_switch_count_with_the_attempt_that_caused_them() {
        let mut seen = switched();
        requests(&mut seen, "checkout", 990, 1, 5, 200);
        let request = id("checkout", 990, 0);
        call_in(&mut seen, 995, request, 0);
        call_in(&mut seen, 1_005, request, 1);
        call_in(&mut seen, 1_015, request, 1);
        let baseline = seen.phase("baseline").unwrap();
        let fault = seen.phase("fault").unwrap();
        let before = seen.attributed("crm", baseline, Duration::ZERO, None, |_| true);
        assert_eq!((before.calls.len(), before.requests), (3, 1));
        let after = seen.attributed("crm", fault, Duration::ZERO, None, |_| true);
        assert_eq!((after.calls.len(), after.requests), (0, 0));
    }

    #[test]
    fn endpoints_count_only_their_own_calls_and_uncorrelated_calls_only_without_one() {
        let mut seen = switched();
        requests(&mut seen, "get", 1_000, 10, 5, 200);
        requests(&mut seen, "post", 1_000, 10, 5, 200);
        for i in 0..10 {
            for attempt in 0..3 {
                call_in(&mut seen, 1_001 + i * 10 + attempt, id("get", 1_000, i), 1);
            }
            call_in(&mut seen, 1_004 + i * 10, id("post", 1_000, i), 1);
        }
        // Two calls nobody's request caused (a health check, say).
        call(&mut seen, "crm", 1_500, 1, "");
        call(&mut seen, "crm", 1_600, 1, "");
        for call in seen.dependencies.get_mut("crm").unwrap() {
            call.window = 1;
        }
        let fault = seen.phase("fault").unwrap();
        let get = seen.attributed("crm", fault, Duration::ZERO, Some("get"), |_| true);
        assert_eq!((get.calls.len(), get.requests), (30, 10));
        let post = seen.attributed("crm", fault, Duration::ZERO, Some("post"), |_| true);
        assert_eq!((post.calls.len(), post.requests), (10, 10));
        let all = seen.attributed("crm", fault, Duration::ZERO, None, |_| true);
        assert_eq!((all.calls.len(), all.requests), (42, 20));
        // A request that made no call belongs to the phase it was sent in.
        requests(&mut seen, "get", 1_900, 1, 5, 200);
        let fault = seen.phase("fault").unwrap();
        let get = seen.attributed("crm", fault, Duration::ZERO, Some("get"), |_| true);
        assert_eq!((get.calls.len(), get.requests), (30, 11));
    }

    /// A request sent in the last moment of a phase whose call met the
    /// next phase's faults is the next phase's (its fate was decided
    /// there); one that made no call stays where it was intended.
    #[test]
    fn an_edge_request_belongs_to_the_phase_whose_faults_its_first_call_met() {
        let mut seen = two_phases();
        requests(&mut seen, "search", 990, 1, 20, 200);
        requests(&mut seen, "search", 995, 1, 20, 200);
        // The first request's call arrived after the switch, in the fault
        // phase; the second made none.
        call(
            &mut seen,
            "catalog",
            1_002,
            1,
            &id("search", 990, 0).to_string(),
        );
        let (baseline, fault) = (
            seen.phase("baseline").unwrap(),
            seen.phase("fault").unwrap(),
        );
        let in_baseline: Vec<u64> = seen
            .edge_in(baseline, Duration::ZERO, None)
            .map(|r| r.intended_ns / MS)
            .collect();
        let in_fault: Vec<u64> = seen
            .edge_in(fault, Duration::ZERO, None)
            .map(|r| r.intended_ns / MS)
            .collect();
        assert_eq!(in_baseline, [995]);
        assert_eq!(in_fault, [990]);
        // With a settle, a request moved in from before the phase is left out.
        assert_eq!(
            seen.edge_in(fault, Duration::from_millis(1), None).count(),
            0
        );
    }
}
