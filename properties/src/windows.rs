//! Sliding windows inside a phase, for thresholds judged over every window
//! of a given length rather than the whole phase (k6's most requested
//! threshold feature, its issue #2379): a whole-phase average hides a 10 s
//! outage in a 10 min phase; "no 10 s window under 99%" does not.
//!
//! Windows lie wholly inside the phase (after its settle), start every
//! twentieth of their length (a 10 s window every 500 ms), and the last
//! ends at the phase's end. A property judges each window that holds at
//! least its `min_samples` requests; the worst is its evidence. A window
//! with fewer is not evidence of a pass: when no judged window broke, a thin
//! one makes the verdict inconclusive, naming it.

use std::time::Duration;

use crate::verdict::{Evidence, Shown};
use crate::{EdgeRecord, Judgement, Phase};

/// How many steps a window's length is cut into: windows start every
/// `length / STEPS`.
pub(crate) const STEPS: u64 = 20;

/// The most windows a phase is judged in: past it, the step grows.
pub(crate) const MAX_WINDOWS: u64 = 10_000;

/// One window: where it starts (ns on the run's clock) and the requests
/// sent in it, in send order.
#[derive(Debug)]
pub(crate) struct Window<'w, 'a> {
    pub start_ns: u64,
    pub end_ns: u64,
    pub records: &'w [&'a EdgeRecord],
}

impl Window<'_, '_> {
    /// Where it lies, as a verdict's note says it: seconds from the phase's start.
    pub fn describe(&self, phase: &Phase) -> String {
        let s = |ns: u64| ns.saturating_sub(phase.start_ns) as f64 / 1e9;
        format!(
            "the {:.1}-{:.1} s window of the phase",
            s(self.start_ns),
            s(self.end_ns)
        )
    }
}

/// The judgement when no window could be judged: the phase is shorter
/// than one window, or none held `min_samples` requests (`evidence.samples`
/// is then the most any held).
pub(crate) fn none_judged(
    windows: &[Window<'_, '_>],
    length: Duration,
    min_samples: u64,
    evidence: &mut Evidence,
) -> Judgement {
    evidence.samples = windows
        .iter()
        .map(|w| w.records.len() as u64)
        .max()
        .unwrap_or(0);
    Judgement::inconclusive(if windows.is_empty() {
        format!("the phase is shorter than one {} window", Shown(length))
    } else {
        format!(
            "no {} window had {min_samples} requests (the most: {})",
            Shown(length),
            evidence.samples
        )
    })
}

/// A window with fewer than `min_samples` requests, as the inconclusive
/// judgement a verdict that would otherwise hold gets (`worst_at` names
/// the worst judged window).
pub(crate) fn thin(
    windows: &[Window<'_, '_>],
    phase: &Phase,
    min_samples: u64,
    worst_at: &str,
) -> Option<Judgement> {
    let thin = windows
        .iter()
        .find(|w| (w.records.len() as u64) < min_samples)?;
    Some(Judgement::inconclusive(format!(
        "{} had {} requests, fewer than the {min_samples} it takes to judge ({worst_at})",
        thin.describe(phase),
        thin.records.len()
    )))
}

/// Every window of `length` inside `phase` after `settle`, over `records`
/// (which it sorts by send instant). Empty when the phase is shorter than
/// one window.
pub(crate) fn sliding<'w, 'a>(
    records: &'w mut [&'a EdgeRecord],
    phase: &Phase,
    settle: Duration,
    length: Duration,
) -> Vec<Window<'w, 'a>> {
    records.sort_by_key(|r| r.intended_ns);
    let records: &'w [&'a EdgeRecord] = records;
    let from = phase.start_ns.saturating_add(nanos(settle));
    let length = nanos(length).max(1);
    let Some(last_start) = phase.end_ns.checked_sub(length).filter(|l| *l >= from) else {
        return Vec::new();
    };
    // A twentieth of the window, or longer where that would make more than
    // MAX_WINDOWS windows (a tiny window over a long phase).
    let step = (length / STEPS)
        .max((last_start - from) / MAX_WINDOWS)
        .max(1);
    let mut starts: Vec<u64> = (0..)
        .map(|i| from + i * step)
        .take_while(|s| *s <= last_start)
        .collect();
    if starts.last() != Some(&last_start) {
        starts.push(last_start);
    }
    starts
        .into_iter()
        .map(|start| {
            let end = start + length;
            let lo = records.partition_point(|r| r.intended_ns < start);
            let hi = records.partition_point(|r| r.intended_ns < end);
            Window {
                start_ns: start,
                end_ns: end,
                records: &records[lo..hi],
            }
        })
        .collect()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{requests, two_phases, MS};

    #[test]
    fn windows_start_every_twentieth_and_the_last_ends_at_the_phase_end() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 100, 5, 200);
        let phase = seen.phase("fault").unwrap().clone();
        let mut records: Vec<&EdgeRecord> = seen.edge.iter().collect();
        let windows = sliding(
            &mut records,
            &phase,
            Duration::ZERO,
            Duration::from_millis(300),
        );
        // From 1.0 s in 15 ms steps to 1.69 s (47 starts), and the last at 1.7 s.
        assert_eq!(windows.len(), 48);
        assert_eq!(windows[0].start_ns, 1_000 * MS);
        assert_eq!(windows[1].start_ns, 1_015 * MS);
        assert_eq!(windows.last().unwrap().end_ns, 2_000 * MS);
        // One request every 10 ms: 30 in each 300 ms window.
        assert!(
            windows.iter().all(|w| w.records.len() == 30),
            "{:?}",
            windows.iter().map(|w| w.records.len()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_window_longer_than_the_phase_gives_none() {
        let seen = two_phases();
        let phase = seen.phase("fault").unwrap().clone();
        let mut records = Vec::new();
        assert!(sliding(&mut records, &phase, Duration::ZERO, Duration::from_secs(2)).is_empty());
        let mut records = Vec::new();
        assert!(sliding(
            &mut records,
            &phase,
            Duration::from_millis(500),
            Duration::from_millis(600)
        )
        .is_empty());
    }
}
