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

use super::recorder::{Recorder, DEFAULT_RECORD_CAPACITY};
use super::request::{send, HttpClient};
use super::{Arrival, Load, MAX_IN_FLIGHT};
use crate::{CorrelationId, EdgeRecord, EdgeStats};

/// How a drive records what it sees.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The clock instants are stamped on (the fault server's, so edge records
    /// and journals share one timeline).
    pub clock: Clock,
    /// Tells this run's correlation ids apart from any other's.
    pub run: u64,
    /// Where each phase begins (ns on `clock`, ascending): statistics are
    /// kept per phase, by each request's intended instant.
    pub phase_starts_ns: Vec<u64>,
    /// Records kept at most (statistics count every request regardless).
    pub capacity: usize,
}

impl Recording {
    /// One phase, [`DEFAULT_RECORD_CAPACITY`] records.
    pub fn new(clock: Clock, run: u64) -> Self {
        Recording {
            clock,
            run,
            phase_starts_ns: Vec::new(),
            capacity: DEFAULT_RECORD_CAPACITY,
        }
    }
}

/// What a driver saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The requests sent, in the order they ended, up to the recording's capacity.
    pub records: Vec<EdgeRecord>,
    /// When records were dropped for want of capacity: the earliest intended
    /// instant of a request whose record was not kept.
    pub truncated_ns: Option<u64>,
    /// Exact statistics by endpoint, then phase (indexed as the recording's phases).
    pub stats: BTreeMap<String, Vec<EdgeStats>>,
    /// Open-loop sends skipped because `MAX_IN_FLIGHT` requests were outstanding.
    pub dropped: u64,
    /// The latest an open-loop send went out after its intended time.
    pub max_lag: Duration,
}

struct Shared {
    client: HttpClient,
    clock: Clock,
    run: u64,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    recorder: Mutex<Recorder>,
}

impl Shared {
    async fn send(&self, load: &Load, name: &Arc<str>, intended: Instant) {
        let id = CorrelationId::new(self.run, self.next_id.fetch_add(1, Ordering::Relaxed));
        let record = send(&self.client, &load.endpoint, name, self.clock, intended, id).await;
        self.recorder().push(record);
    }

    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs every load to its end from now, on `clock`, one phase, the default
/// record capacity. See [`drive_from`].
pub async fn drive(loads: Vec<Load>, clock: Clock, run: u64) -> LoadReport {
    drive_from(loads, Instant::now(), Recording::new(clock, run)).await
}

/// Runs every load from `start` to its end, recording as `recording` says.
pub async fn drive_from(loads: Vec<Load>, start: Instant, recording: Recording) -> LoadReport {
    let shared = Arc::new(Shared {
        client: Client::builder(TokioExecutor::new()).build_http(),
        clock: recording.clock,
        run: recording.run,
        next_id: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        recorder: Mutex::new(Recorder::new(recording.phase_starts_ns, recording.capacity)),
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
    let recorded =
        std::mem::replace(&mut *shared.recorder(), Recorder::new(Vec::new(), 0)).finish();
    LoadReport {
        dropped: recorded.dropped(),
        max_lag: recorded.max_lag(),
        records: recorded.records,
        truncated_ns: recorded.truncated_ns,
        stats: recorded.stats,
    }
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
    while let Some(due) = schedule.due(k).and_then(|offset| start.checked_add(offset)) {
        if due >= end {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        k += 1;
        if shared.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            let due_ns = shared.clock.ns_at(due);
            shared.recorder().dropped(&name, due_ns);
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let (shared, load, name) = (Arc::clone(&shared), Arc::clone(&load), Arc::clone(&name));
        requests.spawn(async move {
            shared.send(&load, &name, due).await;
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
}

/// `clients` loops, each sending as soon as its last answer came.
async fn closed_loop(shared: Arc<Shared>, load: Load, start: Instant, clients: usize) {
    tokio::time::sleep_until(start).await;
    let end = deadline(start, load.duration);
    let name: Arc<str> = Arc::from(load.endpoint.name.as_str());
    let load = Arc::new(load);
    let mut loops = JoinSet::new();
    for _ in 0..clients {
        let (shared, load, name) = (Arc::clone(&shared), Arc::clone(&load), Arc::clone(&name));
        loops.spawn(async move {
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                shared.send(&load, &name, now).await;
            }
        });
    }
    while loops.join_next().await.is_some() {}
}

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
