//! Exact counters, for the whole journal and per window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CallOutcome;
use crate::fault::{FaultKindName, FaultKinds};

/// Exact counts of calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Calls that arrived.
    pub calls: u64,
    /// Calls that ended.
    pub completed: u64,
    /// Most calls in flight at once.
    pub peak_in_flight: u64,
    /// Ended calls by the status sent (calls with no response are not here).
    #[serde(deserialize_with = "status_keys")]
    pub statuses: BTreeMap<u16, u64>,
    /// Ended calls by how they ended.
    pub outcomes: BTreeMap<CallOutcome, u64>,
    /// Calls each fault kind applied to.
    pub faults: BTreeMap<FaultKindName, u64>,
}

/// The counters as the journal updates them, on every call, under its lock:
/// fixed arrays and a short list instead of maps, turned into [`Counters`]
/// when read.
#[derive(Debug, Clone, Default)]
pub(super) struct Tally {
    calls: u64,
    completed: u64,
    pub(super) peak_in_flight: u64,
    /// Few distinct statuses per window: a short list beats a map.
    statuses: Vec<(u16, u64)>,
    outcomes: [u64; CallOutcome::ALL.len()],
    faults: [u64; FaultKindName::ALL.len()],
}

impl Tally {
    pub(super) fn with_peak(in_flight: u64) -> Self {
        Tally {
            peak_in_flight: in_flight,
            ..Tally::default()
        }
    }

    pub(super) fn calls(&self) -> u64 {
        self.calls
    }

    pub(super) fn count_arrival(&mut self, in_flight: u64, faults: FaultKinds) {
        self.calls += 1;
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
        for kind in faults.iter() {
            self.faults[kind as usize] += 1;
        }
    }

    pub(super) fn count_departure(&mut self, outcome: CallOutcome, status: Option<u16>) {
        self.completed += 1;
        self.outcomes[outcome as usize] += 1;
        if let Some(status) = status {
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, count)) => *count += 1,
                None => self.statuses.push((status, 1)),
            }
        }
    }

    /// Adds another tally's counts; the peak is the higher of the two.
    pub(super) fn add(&mut self, other: &Tally) {
        self.calls += other.calls;
        self.completed += other.completed;
        self.peak_in_flight = self.peak_in_flight.max(other.peak_in_flight);
        for (status, count) in &other.statuses {
            match self.statuses.iter_mut().find(|(s, _)| s == status) {
                Some((_, total)) => *total += count,
                None => self.statuses.push((*status, *count)),
            }
        }
        for (total, count) in self.outcomes.iter_mut().zip(other.outcomes) {
            *total += count;
        }
        for (total, count) in self.faults.iter_mut().zip(other.faults) {
            *total += count;
        }
    }

    pub(super) fn counters(&self) -> Counters {
        Counters {
            calls: self.calls,
            completed: self.completed,
            peak_in_flight: self.peak_in_flight,
            statuses: self.statuses.iter().copied().collect(),
            outcomes: nonzero(CallOutcome::ALL.into_iter().zip(self.outcomes)),
            faults: nonzero(FaultKindName::ALL.into_iter().zip(self.faults)),
        }
    }
}

/// A stretch of the journal opened by `mark`: its counters count the calls that
/// arrived in it (their departures too, even after the window closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Position in the journal's windows, from 0.
    pub index: u32,
    /// The name given to `mark`.
    pub name: String,
    /// When the window opened.
    pub started_ns: u64,
    /// When the next window opened; absent for the current one.
    pub ended_ns: Option<u64>,
    /// Its counts.
    #[serde(flatten)]
    pub counters: Counters,
}

/// Reads status keys from their JSON form, strings. Needed by hand because a
/// flattened struct (a [`Window`]'s counters) reaches serde as buffered
/// content, where string keys are not turned into numbers.
fn status_keys<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<u16, u64>, D::Error> {
    let keyed: BTreeMap<String, u64> = Deserialize::deserialize(deserializer)?;
    keyed
        .into_iter()
        .map(|(status, count)| {
            status
                .parse()
                .map(|status| (status, count))
                .map_err(|_| serde::de::Error::custom(format!("`{status}` is not a status")))
        })
        .collect()
}

fn nonzero<K: Ord>(counts: impl Iterator<Item = (K, u64)>) -> BTreeMap<K, u64> {
    counts.filter(|(_, count)| *count > 0).collect()
}

/// A window as the journal keeps it.
#[derive(Debug, Clone)]
pub(super) struct OpenWindow {
    pub(super) name: String,
    pub(super) started_ns: u64,
    pub(super) ended_ns: Option<u64>,
    pub(super) tally: Tally,
}

impl OpenWindow {
    pub(super) fn new(name: String, started_ns: u64, in_flight: u64) -> Self {
        OpenWindow {
            name,
            started_ns,
            ended_ns: None,
            tally: Tally::with_peak(in_flight),
        }
    }

    pub(super) fn window(&self, index: u32) -> Window {
        Window {
            index,
            name: self.name.clone(),
            started_ns: self.started_ns,
            ended_ns: self.ended_ns,
            counters: self.tally.counters(),
        }
    }
}

/// A snapshot of a journal's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalStats {
    /// Calls in flight now.
    pub in_flight: u64,
    /// The sequence number the next call will get.
    pub next_seq: u64,
    /// Records held now.
    pub retained_records: u64,
    /// Records dropped to stay under the cap.
    pub dropped_records: u64,
    /// The cap on records.
    pub capacity: u64,
    /// Counts since the start (or the last reset).
    pub total: Counters,
    /// Counts per window, oldest first; the last is the current one.
    pub windows: Vec<Window>,
}

impl JournalStats {
    /// The most recent window with this name.
    pub fn window(&self, name: &str) -> Option<&Window> {
        self.windows.iter().rev().find(|w| w.name == name)
    }
}
