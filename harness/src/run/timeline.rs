//! A run: load through a sequence of phases, each with the faults in force at
//! each dependency, while the journals are drained into [`Observations`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fault_server::FaultServer;
use futures_util::TryFutureExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::journals::{drain, lost_calls};
use super::lease::{renew, LEASE};
use super::plan::{Limits, PhasePlan};
use super::progress::{publish_progress, Progress};
use crate::load::{drive_from, DriveOptions, LiveCounts, Load, LoadReport, PhaseStarts};
use crate::run::fault_control::{FaultControl, FaultControlError};
use faultline_properties::{EdgeStats, Observations, Phase, Shown};

/// What a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// Everything observed, for the properties.
    pub observations: Observations,
    /// When the run was stopped before its phases were over (ns on the run's clock).
    pub aborted_at_ns: Option<u64>,
    /// Why, when it was.
    pub aborted: Option<Abort>,
}

/// Why a run stopped before its phases were over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// The caller cancelled it (a signal, for the binary).
    Stopped,
    /// Still running this long after its last phase: the watchdog of [`Limits`].
    HardCap(std::time::Duration),
    /// Its `abort_when` condition held at a phase's end: why.
    Unhealthy(String),
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abort::Stopped => f.write_str("a signal"),
            Abort::HardCap(grace) => write!(
                f,
                "hard cap: still running {} after its last phase",
                humantime::format_duration(*grace)
            ),
            Abort::Unhealthy(why) => f.write_str(why),
        }
    }
}

/// The journal window opened when the load is over: calls after it are no
/// phase's.
const AFTER_RUN: &str = "after the run";
/// Runs `loads` through `phases` in order against the dependencies of
/// `server`. Each load runs for its own duration from the run's start (a
/// suite's plan gives each the whole run). The phases keep to a plan fixed
/// at the start (no drift from late timers): at each boundary the faults at
/// every dependency are replaced and the journals are marked; the faults are
/// leased for [`LEASE`] and the lease renewed while the run lives; after the
/// last phase every fault is cleared.
pub async fn run(
    server: &FaultServer,
    phases: &[PhasePlan],
    loads: Vec<Load>,
    run_id: u64,
) -> Result<RunResult, FaultControlError> {
    run_on(FaultControl::Local(server), phases, loads, run_id).await
}

/// As [`run`], against a fault server here or elsewhere.
pub async fn run_on(
    server: FaultControl<'_>,
    phases: &[PhasePlan],
    loads: Vec<Load>,
    run_id: u64,
) -> Result<RunResult, FaultControlError> {
    let stop = CancellationToken::new();
    run_until(
        server,
        phases,
        loads,
        run_id,
        stop,
        &Limits::default(),
        None,
    )
    .await
}

/// As [`run_on`], stopped early when `stop` is cancelled (no more requests
/// go out, those in flight are abandoned, every fault is cleared, and the
/// observations end where the run stopped) or by `limits`, and publishing
/// where it stands on `progress` four times a second.
pub async fn run_until(
    server: FaultControl<'_>,
    phases: &[PhasePlan],
    loads: Vec<Load>,
    run_id: u64,
    stop: CancellationToken,
    limits: &Limits,
    progress: Option<&watch::Sender<Progress>>,
) -> Result<RunResult, FaultControlError> {
    let dependencies = server.dependencies();
    // Where each journal stands before any load goes out: calls that ended
    // before the run are not the run's; those still open then (a pool's
    // connections, opened when the target started) are in flight during it.
    let mut from = BTreeMap::new();
    for dependency in &dependencies {
        server.keep_records(dependency).await?;
        let next = server.next_seq(dependency).await?;
        let open = server.open_calls(dependency).await?;
        let first = open
            .iter()
            .map(|r| r.seq)
            .min()
            .map_or(next, |s| s.min(next));
        from.insert(dependency.as_str(), first);
    }
    // Each phase's journal window at each dependency: the calls that met its faults.
    let windows = std::sync::Mutex::new(vec![BTreeMap::new(); phases.len()]);
    // The first phase's faults are in place before the first request.
    if let Some(first) = phases.first() {
        windows.lock().unwrap_or_else(|e| e.into_inner())[0] =
            switch_to(server, first, &dependencies).await?;
    }
    let clock = server.clock();
    let start = Instant::now();
    let phase_starts = Arc::new(PhaseStarts::new(phases.len()));
    phase_starts.begin(0, clock.ns_at(start));
    let mut starts = Vec::with_capacity(phases.len() + 1);
    let mut at = start;
    for phase in phases {
        starts.push(at);
        at += phase.duration;
    }
    let end = at;
    let live = Arc::new(match &limits.abort_when {
        Some(rule) if rule.latency_above.is_some() => LiveCounts::with_latency(phases.len()),
        _ => LiveCounts::new(phases.len()),
    });
    let options = DriveOptions {
        phase_starts: Arc::clone(&phase_starts),
        stop: stop.clone(),
        live: Arc::clone(&live),
        max_requests: limits.max_requests,
        ..DriveOptions::new(clock, run_id)
    };
    // The hard cap on the run's length: its phases, then a grace for requests in flight.
    let capped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (stop, capped, cap) = (stop.clone(), Arc::clone(&capped), end + limits.grace);
        tokio::spawn(async move {
            tokio::time::sleep_until(cap).await;
            capped.store(true, std::sync::atomic::Ordering::Relaxed);
            stop.cancel();
        })
    };
    let (done_tx, done_rx) = watch::channel(false);
    let timeline = async {
        let switch = switch_phases(
            server,
            phases,
            &dependencies,
            &starts,
            (&live, limits),
            (&phase_starts, &windows),
        );
        let ended = tokio::select! {
            switched = switch => switched,
            failed = renew(server, &dependencies).map_ok(|()| None) => failed,
            () = stop.cancelled() => Ok(None),
        };
        if matches!(ended, Ok(Some(_))) {
            stop.cancel();
        }
        ended
    };
    let load = async {
        let report = drive_from(loads, start, options).await;
        // Close the phases' journal windows before the last read: a call
        // that arrives from here on (a load balancer's health check, say)
        // lands in a window of its own, so each phase's exact count is final
        // when the records are read and compared with it. Best effort: if
        // the mark fails, a late call can only make a count look short
        // (inconclusive), never a record look present.
        let _ = server.switch(AFTER_RUN, BTreeMap::new(), LEASE).await;
        let _ = done_tx.send(true);
        report
    };
    let shown = publish_progress(progress, server, &dependencies, phases, &starts, &live);
    let (timeline, report, journals) = tokio::select! {
        all = async { tokio::join!(timeline, load, drain(server, &dependencies, from, done_rx, &stop)) } => all,
        never = shown => match never {},
    };
    watchdog.abort();
    let unhealthy = timeline?;
    let (journals, mut unread) = journals?;
    // A run that is stopping judges what it saw, whatever its fault server
    // (a remote one, not answering) still tells it: a dependency it could
    // not read to the end is no evidence, the rest is.
    let stopping = stop.is_cancelled();
    let mut alerts = BTreeMap::new();
    for dependency in &dependencies {
        if unread.contains_key(dependency) {
            continue;
        }
        let read = match server.clear_faults(dependency).await {
            Ok(()) => server.alerts(dependency).await,
            Err(error) => Err(error),
        };
        match read {
            Ok(received) if !received.is_empty() => {
                alerts.insert(dependency.clone(), received);
            }
            Ok(_) => {}
            Err(error) if stopping => {
                unread.insert(dependency.clone(), error.to_string());
            }
            Err(error) => return Err(error),
        }
    }
    let LoadReport {
        records,
        truncated_ns,
        stats,
    } = report;
    let aborted_at_ns = match &unhealthy {
        // Stopped where the condition held: at a phase boundary, the phase
        // not entered is not seen; in a phase, the rest of it is not.
        Some((_, at)) => Some(clock.ns_at(*at)),
        None => stop.is_cancelled().then(|| clock.now_ns()),
    };
    let aborted = aborted_at_ns.map(|_| match unhealthy {
        Some((why, _)) => Abort::Unhealthy(why),
        None if capped.load(std::sync::atomic::Ordering::Relaxed) => Abort::HardCap(limits.grace),
        None => Abort::Stopped,
    });
    let cut = aborted_at_ns.unwrap_or(u64::MAX);
    let windows = windows.into_inner().unwrap_or_else(|e| e.into_inner());
    // A phase begins once its faults are in force everywhere (not at its
    // planned instant), and ends where the next one begins.
    let begun: Vec<u64> = (0..phases.len())
        .map_while(|index| phase_starts.start_of(index))
        .collect();
    let ends = begun.iter().skip(1).copied().chain([clock.ns_at(end)]);
    let seen_phases: Vec<Phase> = phases
        .iter()
        .zip(begun.iter().zip(ends))
        .zip(windows)
        .map(|((plan, (from, to)), windows)| {
            let mut phase = Phase::new(plan.name.clone(), *from, to.min(cut));
            phase.windows = windows;
            phase
        })
        .filter(|phase| phase.start_ns < cut)
        .collect();
    let lost_calls = lost_calls(server, &seen_phases, &journals, &mut unread, stopping).await?;
    Ok(RunResult {
        observations: Observations {
            edge_stats: by_phase_name(stats, &seen_phases),
            phases: seen_phases,
            edge: records,
            edge_truncated_ns: truncated_ns,
            dependencies: journals,
            lost_calls,
            unread,
            alerts,
        },
        aborted_at_ns,
        aborted,
    })
}

/// Statistics indexed by phase number, keyed by phase name instead.
fn by_phase_name(
    stats: BTreeMap<String, Vec<EdgeStats>>,
    phases: &[Phase],
) -> BTreeMap<String, BTreeMap<String, EdgeStats>> {
    stats
        .into_iter()
        .map(|(endpoint, per_phase)| {
            let named = phases
                .iter()
                .map(|p| p.name.clone())
                .zip(per_phase)
                .collect();
            (endpoint, named)
        })
        .collect()
}

/// Puts `phase`'s faults in force at every dependency, each as its journal
/// opens the phase's window; returns the windows.
async fn switch_to(
    server: FaultControl<'_>,
    phase: &PhasePlan,
    dependencies: &[String],
) -> Result<BTreeMap<String, u32>, FaultControlError> {
    let faults = dependencies
        .iter()
        .map(|d| (d.clone(), phase.faults.get(d).cloned().unwrap_or_default()))
        .collect();
    let mut windows = server.switch(&phase.name, faults, LEASE).await?;
    windows.retain(|dependency, _| dependencies.contains(dependency));
    Ok(windows)
}

/// Switches to each phase after the first at its planned start, then waits
/// out the last, watching `abort_when` while it waits ([`watch`]). Before
/// switching, checks `abort_when` on the phase just over. When it holds,
/// returns why and the instant the run stops (the phase not entered, or the
/// instant in the phase), without switching (the caller stops the run).
async fn switch_phases(
    server: FaultControl<'_>,
    phases: &[PhasePlan],
    dependencies: &[String],
    starts: &[Instant],
    (live, limits): (&LiveCounts, &Limits),
    (begun, windows): (&PhaseStarts, &std::sync::Mutex<Vec<BTreeMap<String, u32>>>),
) -> Result<Option<(String, Instant)>, FaultControlError> {
    let clock = server.clock();
    for (index, (phase, start)) in phases.iter().zip(starts).enumerate().skip(1) {
        let previous = (&phases[index - 1], index - 1, starts[index - 1]);
        if let Some(tripped) = watch(previous, *start, live, limits).await {
            return Ok(Some(tripped));
        }
        if let Some(why) = unhealthy(previous.0, previous.1, live, limits, None) {
            return Ok(Some((why, *start)));
        }
        let opened = switch_to(server, phase, dependencies).await?;
        begun.begin(index, clock.now_ns());
        if let Some(slot) = windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(index)
        {
            *slot = opened;
        }
    }
    if let (Some(last), Some(start)) = (phases.last(), starts.last()) {
        let index = phases.len() - 1;
        if let Some(tripped) =
            watch((last, index, *start), *start + last.duration, live, limits).await
        {
            return Ok(Some(tripped));
        }
    }
    Ok(None)
}

/// Requests a phase must have ended before `abort_when` judges it while it
/// goes (its end is judged whatever it has).
pub const MIN_LIVE_SAMPLES: u64 = 10;

/// How often `abort_when` looks at the phase it watches.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Waits until `until`, judging `abort_when` every [`WATCH_EVERY`] when it
/// watches `phase` (from its `delay` into it, once [`MIN_LIVE_SAMPLES`]
/// requests ended): why and when it held, if it did.
async fn watch(
    (phase, index, began): (&PhasePlan, usize, Instant),
    until: Instant,
    live: &LiveCounts,
    limits: &Limits,
) -> Option<(String, Instant)> {
    let Some(rule) = limits.abort_when.as_ref().filter(|r| r.phase == phase.name) else {
        tokio::time::sleep_until(until).await;
        return None;
    };
    let mut next = began + rule.delay;
    while next < until {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        if let Some(why) = unhealthy(phase, index, live, limits, Some(now - began)) {
            return Some((why, now));
        }
        next = now + WATCH_EVERY;
    }
    tokio::time::sleep_until(until).await;
    None
}

/// Why the run should stop, if `abort_when` says so of `phase`: `into`
/// the phase while it goes (`None`: at its end). Its success rate and its
/// latency over the requests ended so far; while it goes, only once it has
/// [`MIN_LIVE_SAMPLES`].
fn unhealthy(
    phase: &PhasePlan,
    index: usize,
    live: &LiveCounts,
    limits: &Limits,
    into: Option<Duration>,
) -> Option<String> {
    let rule = limits
        .abort_when
        .as_ref()
        .filter(|r| r.phase == phase.name)?;
    let (ended, ok) = live.ended(index);
    if into.is_some() && ended < MIN_LIVE_SAMPLES {
        return None;
    }
    let when = match into {
        Some(into) => format!("{} into `{}`", Shown(into), phase.name),
        None => format!("at the end of `{}`", phase.name),
    };
    let after = match into {
        Some(_) => "the run stopped there",
        None => "no fault was injected after it",
    };
    // No request ended in the phase (a load kept to other phases, or one
    // that has not begun): nothing to judge it by, so no reason to stop.
    if ended == 0 {
        return None;
    }
    let rate = ok as f64 / ended as f64;
    if let Some(below) = rule.success_rate_below.filter(|below| rate < *below) {
        return Some(format!(
            "abort_when: {when}, the success rate was {rate:.3} ({ok} of {ended}), under {below}; {after}"
        ));
    }
    let latency = rule
        .latency_above
        .zip(live.latency(index, rule.percentile))
        .filter(|(above, seen)| seen > above);
    latency.map(|(above, seen)| {
        format!(
            "abort_when: {when}, p{} latency was {} over {} requests, over {}; {after}",
            rule.percentile,
            Shown(seen),
            ended,
            Shown(above)
        )
    })
}
