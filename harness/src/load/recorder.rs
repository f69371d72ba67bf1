//! Where the driver puts what each request saw: exact statistics per endpoint
//! and phase for every request, and the records themselves up to a cap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::LoadReport;
use faultline_properties::{EdgeRecord, EdgeStats};

/// Records kept by default: 64 MB of them. A run that sends more keeps exact
/// histograms and counts, but not the records past the cap.
pub const DEFAULT_RECORD_CAPACITY: usize = 1_000_000;

/// Requests ended so far and how many succeeded, per phase: read while the
/// run goes on (by `abort_when`), without stopping the driver.
#[derive(Debug, Default)]
pub struct LiveCounts {
    sent: AtomicU64,
    phases: Vec<(AtomicU64, AtomicU64)>,
    /// Each phase's latencies so far, in µs, when asked for
    /// ([`LiveCounts::with_latency`]): a lock per request, paid only then.
    latency: Option<Vec<std::sync::Mutex<hdrhistogram::Histogram<u64>>>>,
}

impl LiveCounts {
    /// Counters for `phases` phases (at least one).
    pub fn new(phases: usize) -> Self {
        LiveCounts {
            sent: AtomicU64::new(0),
            phases: (0..phases.max(1))
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            latency: None,
        }
    }

    /// Counters that also keep each phase's latencies, readable while the
    /// run goes on ([`LiveCounts::latency`]).
    pub fn with_latency(phases: usize) -> Self {
        LiveCounts {
            latency: Some(
                (0..phases.max(1))
                    .map(|_| std::sync::Mutex::new(faultline_properties::micros_histogram()))
                    .collect(),
            ),
            ..LiveCounts::new(phases)
        }
    }

    fn count(&self, phase: usize, succeeded: bool, latency: std::time::Duration) {
        if let Some((done, ok)) = self.phases.get(phase) {
            done.fetch_add(1, Ordering::Relaxed);
            if succeeded {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(histogram) = self.latency.as_ref().and_then(|l| l.get(phase)) {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            histogram
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .saturating_record(micros.max(1));
        }
    }

    /// The `percentile` latency of `phase`'s requests ended so far; `None`
    /// when none has, or latencies are not kept.
    pub fn latency(&self, phase: usize, percentile: f64) -> Option<std::time::Duration> {
        let histogram = self.latency.as_ref()?.get(phase)?;
        let histogram = histogram.lock().unwrap_or_else(|e| e.into_inner());
        (!histogram.is_empty())
            .then(|| std::time::Duration::from_micros(histogram.value_at_percentile(percentile)))
    }

    /// Counts a request sent.
    pub(crate) fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests sent, ended and succeeded so far, over every phase.
    pub fn totals(&self) -> (u64, u64, u64) {
        let (ended, ok) = self.phases.iter().fold((0, 0), |(e, o), (done, good)| {
            (
                e + done.load(Ordering::Relaxed),
                o + good.load(Ordering::Relaxed),
            )
        });
        (self.sent.load(Ordering::Relaxed), ended, ok)
    }

    /// Requests of `phase` ended so far, and of those, the successes.
    pub fn ended(&self, phase: usize) -> (u64, u64) {
        self.phases.get(phase).map_or((0, 0), |(done, ok)| {
            (done.load(Ordering::Relaxed), ok.load(Ordering::Relaxed))
        })
    }
}

/// Where each phase begins (ns on the run's clock), shared by the timeline,
/// which sets a phase's start once its faults are in force at every
/// dependency, and the driver, which files each request under the last phase
/// begun by its intended instant. So a request sent while the previous
/// phase's faults were still in place counts in the previous phase.
#[derive(Debug)]
pub struct PhaseStarts(Vec<AtomicU64>);

/// The start of a phase not yet begun.
const NOT_BEGUN: u64 = u64::MAX;

impl PhaseStarts {
    /// `phases` phases (at least one), none begun.
    pub fn new(phases: usize) -> Self {
        PhaseStarts(
            (0..phases.max(1))
                .map(|_| AtomicU64::new(NOT_BEGUN))
                .collect(),
        )
    }

    /// Phases beginning at these instants (ascending).
    pub fn fixed(starts_ns: &[u64]) -> Self {
        let starts = PhaseStarts::new(starts_ns.len());
        for (phase, at) in starts_ns.iter().enumerate() {
            starts.begin(phase, *at);
        }
        starts
    }

    /// Phase `phase` began at `at_ns`.
    pub fn begin(&self, phase: usize, at_ns: u64) {
        if let Some(start) = self.0.get(phase) {
            start.store(at_ns.min(NOT_BEGUN - 1), Ordering::Release);
        }
    }

    /// When phase `phase` began, if it has.
    pub fn start_of(&self, phase: usize) -> Option<u64> {
        let at = self.0.get(phase)?.load(Ordering::Acquire);
        (at != NOT_BEGUN).then_some(at)
    }

    /// How many phases there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never: there is always one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The phase an instant falls in: the last one begun at or before it
    /// (before the first, the first).
    pub fn phase_of(&self, at_ns: u64) -> usize {
        (0..self.0.len())
            .rev()
            .find(|phase| self.start_of(*phase).is_some_and(|start| start <= at_ns))
            .unwrap_or(0)
    }
}

/// What the driver has seen so far. Each worker thread has its own (no lock
/// or cache line shared per request); they share only the count of records
/// kept, so the cap holds over all of them, and are merged at the end.
#[derive(Debug)]
pub(crate) struct Recorder {
    phase_starts: Arc<PhaseStarts>,
    capacity: usize,
    kept: Arc<AtomicUsize>,
    live: Arc<LiveCounts>,
    records: Vec<EdgeRecord>,
    truncated_ns: Option<u64>,
    stats: BTreeMap<Arc<str>, Vec<EdgeStats>>,
}

impl Recorder {
    /// Splits statistics at `phase_starts_ns` (ascending) and keeps at most `capacity` records.
    #[cfg(test)]
    pub(crate) fn new(phase_starts_ns: Vec<u64>, capacity: usize) -> Self {
        let live = Arc::new(LiveCounts::new(phase_starts_ns.len()));
        Recorder::with_live(
            Arc::new(PhaseStarts::fixed(&phase_starts_ns)),
            capacity,
            live,
        )
    }

    /// As [`Recorder::new`], counting into `live` as well.
    pub(crate) fn with_live(
        phase_starts: Arc<PhaseStarts>,
        capacity: usize,
        live: Arc<LiveCounts>,
    ) -> Self {
        Recorder {
            live,
            phase_starts,
            capacity,
            kept: Arc::new(AtomicUsize::new(0)),
            records: Vec::new(),
            truncated_ns: None,
            stats: BTreeMap::new(),
        }
    }

    /// Another recorder for another thread, sharing this one's cap.
    pub(crate) fn sibling(&self) -> Self {
        Recorder {
            phase_starts: Arc::clone(&self.phase_starts),
            capacity: self.capacity,
            kept: Arc::clone(&self.kept),
            live: Arc::clone(&self.live),
            records: Vec::new(),
            truncated_ns: None,
            stats: BTreeMap::new(),
        }
    }

    /// Takes in what a sibling recorded.
    pub(crate) fn merge(&mut self, other: Recorder) {
        self.records.extend(other.records);
        self.truncated_ns = match (self.truncated_ns, other.truncated_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (endpoint, phases) in other.stats {
            match self.stats.get_mut(&endpoint) {
                Some(mine) => mine.iter_mut().zip(&phases).for_each(|(a, b)| a.add(b)),
                None => {
                    self.stats.insert(endpoint, phases);
                }
            }
        }
    }

    /// The phase an instant falls in (before the first phase counts as the first).
    fn phase_of(&self, at_ns: u64) -> usize {
        self.phase_starts.phase_of(at_ns)
    }

    fn stats_mut(&mut self, endpoint: &Arc<str>, phase: usize) -> &mut EdgeStats {
        let phases = self.phase_starts.len();
        let per_phase = self
            .stats
            .entry(Arc::clone(endpoint))
            .or_insert_with(|| vec![EdgeStats::default(); phases]);
        &mut per_phase[phase]
    }

    /// Counts a request and keeps its record while there is room.
    pub(crate) fn push(&mut self, record: EdgeRecord) {
        let phase = self.phase_of(record.intended_ns);
        self.live.count(phase, record.succeeded(), record.latency());
        self.stats_mut(&record.endpoint, phase).record(&record);
        if self.kept.fetch_add(1, Ordering::Relaxed) < self.capacity {
            if self.records.capacity() == 0 {
                // Reserved at the first record, so the driver never stops to
                // copy a grown vector; pages count toward RSS only once written.
                self.records
                    .reserve(self.capacity.min(DEFAULT_RECORD_CAPACITY));
            }
            self.records.push(record);
        } else {
            let first = self.truncated_ns.get_or_insert(record.intended_ns);
            *first = (*first).min(record.intended_ns);
        }
    }

    /// Counts an open-loop send that was due at `due_ns` but not made.
    pub(crate) fn dropped(&mut self, endpoint: &Arc<str>, due_ns: u64) {
        let phase = self.phase_of(due_ns);
        self.stats_mut(endpoint, phase).dropped += 1;
    }

    /// The records kept, when the first not kept was intended, and the statistics.
    pub(crate) fn finish(self) -> LoadReport {
        LoadReport {
            records: self.records,
            truncated_ns: self.truncated_ns,
            stats: self
                .stats
                .into_iter()
                .map(|(endpoint, phases)| (endpoint.to_string(), phases))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_properties::EdgeOutcome;

    fn request(at_ns: u64) -> EdgeRecord {
        EdgeRecord::new("a", at_ns, at_ns, at_ns + 1_000, EdgeOutcome::Status(200))
    }

    #[test]
    fn requests_count_in_the_phase_they_were_intended_in() {
        let mut recorder = Recorder::new(vec![100, 200], 10);
        for at in [100, 150, 199, 200, 250] {
            recorder.push(request(at));
        }
        recorder.dropped(&Arc::from("a"), 260);
        let recorded = recorder.finish();
        let phases = &recorded.stats["a"];
        assert_eq!(phases[0].requests(), 3);
        assert_eq!(phases[1].requests(), 2);
        assert_eq!(phases[1].dropped, 1);
        assert_eq!(recorded.dropped(), 1);
    }

    #[test]
    fn siblings_share_the_cap_and_merge_into_one_record() {
        let mut first = Recorder::new(vec![0], 3);
        let mut second = first.sibling();
        first.push(request(10));
        second.push(request(20));
        second.push(request(30));
        first.push(request(40));
        first.merge(second);
        let recorded = first.finish();
        assert_eq!(recorded.records.len(), 3);
        assert_eq!(recorded.truncated_ns, Some(40));
        assert_eq!(recorded.stats["a"][0].requests(), 4);
    }

    #[test]
    fn past_the_cap_records_go_but_every_request_still_counts() {
        let mut recorder = Recorder::new(vec![0], 2);
        for at in [10, 20, 40, 30] {
            recorder.push(request(at));
        }
        let recorded = recorder.finish();
        assert_eq!(recorded.records.len(), 2);
        assert_eq!(recorded.truncated_ns, Some(30));
        assert_eq!(recorded.stats["a"][0].requests(), 4);
    }
}
