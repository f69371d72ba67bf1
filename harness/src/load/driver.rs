//! Drives several loads at once and gathers what they saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fault_server::Clock;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::recorder::{LiveCounts, PhaseStarts, Recorder, DEFAULT_RECORD_CAPACITY};
use super::request::{send_pooled, Connection, HttpClient};
use super::{Arrival, Load, MAX_IN_FLIGHT};
use faultline_properties::{CorrelationId, EdgeOutcome, EdgeRecord, EdgeStats};

/// How a drive stamps, splits, keeps and caps what it sends.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// The clock instants are stamped on (the fault server's, so edge records
    /// and journals share one timeline).
    pub clock: Clock,
    /// Tells this run's correlation ids apart from any other's.
    pub run: u64,
    /// Where each phase begins: statistics are kept per phase, by each
    /// request's intended instant (see [`PhaseStarts`]).
    pub phase_starts: Arc<PhaseStarts>,
    /// Records kept at most (statistics count every request regardless).
    pub capacity: usize,
    /// Requests sent at most over the whole drive, whatever the loads say:
    /// a hard cap.
    pub max_requests: Option<u64>,
    /// Counts per phase, readable while the drive goes on.
    pub live: Arc<LiveCounts>,
    /// Cancelling it stops the drive at once: no further sends, requests in
    /// flight abandoned (and not recorded).
    pub stop: CancellationToken,
    /// Threads, each with a runtime of its own, that closed-loop clients are
    /// spread over (0: the caller's runtime). Default: one per core, as wrk
    /// runs one event loop per thread; measured faster here than sharing a
    /// multi-thread runtime with the rest of the harness.
    pub workers: usize,
}

impl DriveOptions {
    /// One phase, [`DEFAULT_RECORD_CAPACITY`] records.
    pub fn new(clock: Clock, run: u64) -> Self {
        DriveOptions {
            clock,
            run,
            phase_starts: Arc::new(PhaseStarts::fixed(&[0])),
            capacity: DEFAULT_RECORD_CAPACITY,
            max_requests: None,
            live: Arc::new(LiveCounts::new(1)),
            stop: CancellationToken::new(),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// What a driver saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The requests sent, in the order they ended, up to the options' capacity.
    pub records: Vec<EdgeRecord>,
    /// When records were dropped for want of capacity: the earliest intended
    /// instant of a request whose record was not kept.
    pub truncated_ns: Option<u64>,
    /// Exact statistics by endpoint, then phase (indexed as the options' phases).
    pub stats: BTreeMap<String, Vec<EdgeStats>>,
}

impl LoadReport {
    /// Open-loop sends skipped because `MAX_IN_FLIGHT` requests were
    /// outstanding, over every endpoint and phase.
    pub fn dropped(&self) -> u64 {
        self.stats.values().flatten().map(|s| s.dropped).sum()
    }

    /// The latest a send went out after its intended time.
    pub fn max_lag(&self) -> Duration {
        self.stats
            .values()
            .flatten()
            .map(|s| s.max_lag)
            .max()
            .unwrap_or_default()
    }
}

struct Shared {
    client: HttpClient,
    clock: Clock,
    run: u64,
    max_requests: u64,
    live: Arc<LiveCounts>,
    stop: CancellationToken,
    workers: usize,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    recorder: Mutex<Recorder>,
    /// Requests each load asked to send so far, by endpoint.
    load_sent: BTreeMap<String, AtomicU64>,
    /// Each load's next turn among its variants, by endpoint.
    load_turns: BTreeMap<String, AtomicU64>,
}

impl Shared {
    /// The next request's id; none once the drive's cap on requests is spent.
    fn next_id(&self) -> Option<CorrelationId> {
        let seq = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = (seq < self.max_requests).then(|| CorrelationId::new(self.run, seq));
        if id.is_some() {
            self.live.sent();
        }
        id
    }

    fn spent(&self) -> bool {
        self.next_id.load(Ordering::Relaxed) >= self.max_requests
    }

    /// The turn of `load`'s next send among its variants.
    fn next_variant(&self, load: &Load) -> u64 {
        self.load_turns
            .get(&load.endpoint.name)
            .map_or(0, |turn| turn.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether `load` may send one more request under its own cap
    /// ([`super::Pacing::requests`]); counts it when it may.
    fn load_may_send(&self, load: &Load) -> bool {
        let Some(cap) = load.pacing.requests else {
            return true;
        };
        self.load_sent
            .get(&load.endpoint.name)
            .is_some_and(|sent| sent.fetch_add(1, Ordering::Relaxed) < cap)
    }

    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A recorder for a worker thread, to hand back with [`Shared::merge`].
    fn sibling(&self) -> Arc<Mutex<Recorder>> {
        Arc::new(Mutex::new(self.recorder().sibling()))
    }

    fn merge(&self, sibling: Arc<Mutex<Recorder>>) {
        let recorder = match Arc::try_unwrap(sibling) {
            Ok(mutex) => mutex.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => {
                let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                let empty = guard.sibling();
                std::mem::replace(&mut *guard, empty)
            }
        };
        self.recorder().merge(recorder);
    }
}

/// Runs every load to its end from now, on `clock`, one phase, the default
/// record capacity. See [`drive_from`].
pub async fn drive(loads: Vec<Load>, clock: Clock, run: u64) -> LoadReport {
    drive_from(loads, Instant::now(), DriveOptions::new(clock, run)).await
}

/// Runs every load from `start` to its end, as `options` say.
pub async fn drive_from(loads: Vec<Load>, start: Instant, options: DriveOptions) -> LoadReport {
    let shared = Arc::new(Shared {
        client: Client::builder(TokioExecutor::new()).build_http(),
        clock: options.clock,
        run: options.run,
        max_requests: options.max_requests.unwrap_or(u64::MAX),
        stop: options.stop,
        live: Arc::clone(&options.live),
        workers: options.workers,
        next_id: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        load_sent: loads
            .iter()
            .map(|l| (l.endpoint.name.clone(), AtomicU64::new(0)))
            .collect(),
        load_turns: loads
            .iter()
            .map(|l| (l.endpoint.name.clone(), AtomicU64::new(0)))
            .collect(),
        recorder: Mutex::new(Recorder::with_live(
            options.phase_starts,
            options.capacity,
            options.live,
        )),
    });
    let mut drivers = JoinSet::new();
    for load in loads {
        let shared = Arc::clone(&shared);
        drivers.spawn(async move {
            match load.arrival {
                Arrival::Open { rate } => {
                    open_loop(shared, load, start, Schedule::steady(rate)).await
                }
                Arrival::Ramp { from, to } => {
                    let schedule = Schedule::ramp(from, to, load.duration);
                    open_loop(shared, load, start, schedule).await
                }
                Arrival::Closed { clients } => closed_loop(shared, load, start, clients).await,
            }
        });
    }
    while drivers.join_next().await.is_some() {}
    let recorded = std::mem::replace(
        &mut *shared.recorder(),
        Recorder::with_live(
            Arc::new(PhaseStarts::new(1)),
            0,
            Arc::new(LiveCounts::new(1)),
        ),
    );
    recorded.finish()
}

/// When each open-loop request is due: the k-th request goes out when the
/// integral of the rate since the start reaches k.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// Requests per second at the start.
    from: f64,
    /// Change of the rate per second.
    slope: f64,
}

impl Schedule {
    fn steady(rate: f64) -> Self {
        Schedule {
            from: rate,
            slope: 0.0,
        }
    }

    fn ramp(from: f64, to: f64, over: Duration) -> Self {
        let seconds = over.as_secs_f64();
        let slope = if seconds > 0.0 {
            (to - from) / seconds
        } else {
            0.0
        };
        Schedule { from, slope }
    }

    /// Solves from·t + slope·t²/2 = k for the smallest t ≥ 0.
    fn due(&self, k: u32) -> Option<Duration> {
        let k = f64::from(k);
        let seconds = if self.slope.abs() < 1e-12 {
            k / self.from
        } else {
            let discriminant = self.from * self.from + 2.0 * self.slope * k;
            if discriminant < 0.0 {
                return None;
            }
            (discriminant.sqrt() - self.from) / self.slope
        };
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    }
}

/// Sends on schedule. The timer wakes at most once a millisecond, so each
/// wake sends every request now due, each stamped with its own intended time.
async fn open_loop(shared: Arc<Shared>, load: Load, start: Instant, schedule: Schedule) {
    let end = deadline(start, load.duration);
    let name: Arc<str> = Arc::from(load.endpoint.name.as_str());
    let load = Arc::new(load);
    let mut k = 0u32;
    let mut requests = JoinSet::new();
    while let Some(offset) = schedule.due(k) {
        let Some(due) = start.checked_add(offset) else {
            break;
        };
        if due >= end || shared.spent() || shared.stop.is_cancelled() {
            break;
        }
        match load.pacing.at(offset) {
            Ok(()) => {}
            // Outside the stretches it sends in: on to the next due inside one.
            Err(Some(_)) => {
                k += 1;
                continue;
            }
            Err(None) => break,
        }
        if !shared.load_may_send(&load) {
            break;
        }
        if due > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = shared.stop.cancelled() => break,
            }
        }
        k += 1;
        if shared.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            let due_ns = shared.clock.ns_at(due);
            shared.recorder().dropped(&name, due_ns);
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let (shared, load, name) = (Arc::clone(&shared), Arc::clone(&load), Arc::clone(&name));
        let turn = shared.next_variant(&load);
        requests.spawn(async move {
            if let Some(id) = shared.next_id() {
                let client = &shared.client;
                let endpoint = load.request(turn);
                let send = send_pooled(client, endpoint, &name, shared.clock, due, id);
                tokio::select! {
                    record = send => shared.recorder().push(record),
                    () = shared.stop.cancelled() => {}
                }
            }
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        while requests.try_join_next().is_some() {}
    }
    tokio::select! {
        () = async { while requests.join_next().await.is_some() {} } => {}
        () = shared.stop.cancelled() => requests.abort_all(),
    }
}

/// `clients` loops, each on its own connection, sending as soon as its last
/// answer came, spread over the drive's worker threads (or, with none, on
/// the caller's runtime).
async fn closed_loop(shared: Arc<Shared>, load: Load, start: Instant, clients: usize) {
    let end = deadline(start, load.duration);
    let name: Arc<str> = Arc::from(load.endpoint.name.as_str());
    let load = Arc::new(load);
    let workers = shared.workers.min(clients);
    let mut finished = Vec::with_capacity(workers);
    let mut here = 0;
    for worker in 0..workers {
        let share = clients / workers + usize::from(worker < clients % workers);
        let (shared, load, name) = (Arc::clone(&shared), Arc::clone(&load), Arc::clone(&name));
        let recorder = shared.sibling();
        let theirs = Arc::clone(&recorder);
        let (done, finish) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("faultline-load".into())
            .spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    let clients = clients_loop(shared, theirs, load, name, start, end, share);
                    runtime.block_on(clients);
                }
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => finished.push((finish, recorder)),
            Err(_) => here += share,
        }
    }
    if workers == 0 {
        here = clients;
    }
    let recorder = shared.sibling();
    let mine = Arc::clone(&recorder);
    clients_loop(Arc::clone(&shared), mine, load, name, start, end, here).await;
    shared.merge(recorder);
    for (finish, recorder) in finished {
        let _ = finish.await;
        shared.merge(recorder);
    }
}

/// `clients` closed-loop clients on the current runtime. A client that
/// cannot connect waits a little before trying again, rather than spin.
async fn clients_loop(
    shared: Arc<Shared>,
    recorder: Arc<Mutex<Recorder>>,
    load: Arc<Load>,
    name: Arc<str>,
    start: Instant,
    end: Instant,
    clients: usize,
) {
    tokio::select! {
        () = tokio::time::sleep_until(start) => {}
        () = shared.stop.cancelled() => return,
    }
    let mut loops = JoinSet::new();
    for _ in 0..clients {
        let (shared, load, name) = (Arc::clone(&shared), Arc::clone(&load), Arc::clone(&name));
        let recorder = Arc::clone(&recorder);
        loops.spawn(async move {
            let mut connection = Connection::default();
            loop {
                let mut now = Instant::now();
                match load.pacing.at(now.saturating_duration_since(start)) {
                    Ok(()) => {}
                    Err(Some(next)) => {
                        tokio::select! {
                            () = tokio::time::sleep_until(start + next) => {}
                            () = shared.stop.cancelled() => break,
                        }
                        now = Instant::now();
                    }
                    Err(None) => break,
                }
                if now >= end || !shared.load_may_send(&load) {
                    break;
                }
                let Some(id) = shared.next_id() else {
                    break;
                };
                let endpoint = load.request(shared.next_variant(&load));
                let send = connection.send(endpoint, &name, shared.clock, now, id);
                let record = tokio::select! {
                    record = send => record,
                    () = shared.stop.cancelled() => break,
                };
                let refused = record.outcome == EdgeOutcome::ConnectError;
                recorder
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(record);
                let pause = if refused {
                    RECONNECT_PAUSE.max(load.pacing.pause)
                } else {
                    load.pacing.pause
                };
                if !pause.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shared.stop.cancelled() => break,
                    }
                }
            }
        });
    }
    while loops.join_next().await.is_some() {}
}

/// How long a closed-loop client waits after a refused connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// `start + duration`, or a year on for a duration past what the clock holds.
fn deadline(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_schedule_is_evenly_spaced() {
        let steady = Schedule::steady(200.0);
        assert_eq!(steady.due(0), Some(Duration::ZERO));
        assert_eq!(steady.due(200), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_ramp_sends_as_many_requests_as_the_area_under_its_rate() {
        // 0 to 400 requests/s over 1 s: 200 requests, 50 in the first half.
        let ramp = Schedule::ramp(0.0, 400.0, Duration::from_secs(1));
        let first_half = (0..)
            .take_while(|k| ramp.due(*k).unwrap() < Duration::from_millis(500))
            .count();
        let all = (0..)
            .take_while(|k| ramp.due(*k).unwrap() < Duration::from_secs(1))
            .count();
        assert_eq!(first_half, 50);
        assert_eq!(all, 200);
        // Ramping down never runs out of requests within the duration.
        let down = Schedule::ramp(400.0, 0.0, Duration::from_secs(1));
        assert!(down.due(199).is_some_and(|t| t < Duration::from_secs(1)));
    }
}
