//! Exact counters, for the whole journal and per window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Outcome;
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
    pub statuses: BTreeMap<u16, u64>,
    /// Ended calls by how they ended.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Calls each fault kind applied to.
    pub faults: BTreeMap<FaultKindName, u64>,
}

impl Counters {
    pub(super) fn count_arrival(&mut self, in_flight: u64, faults: FaultKinds) {
        self.calls += 1;
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
        for kind in faults.iter() {
            *self.faults.entry(kind).or_default() += 1;
        }
    }

    pub(super) fn count_departure(&mut self, outcome: Outcome, status: Option<u16>) {
        self.completed += 1;
        *self.outcomes.entry(outcome).or_default() += 1;
        if let Some(status) = status {
            *self.statuses.entry(status).or_default() += 1;
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

impl Window {
    pub(super) fn new(index: u32, name: String, started_ns: u64, in_flight: u64) -> Self {
        Window {
            index,
            name,
            started_ns,
            ended_ns: None,
            counters: Counters {
                peak_in_flight: in_flight,
                ..Counters::default()
            },
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
