//! The journal: every call a dependency received, and exact counters.
//!
//! # Memory bound
//! A journal keeps at most `capacity` records (default
//! [`DEFAULT_JOURNAL_CAPACITY`]). Past that the oldest records are dropped and
//! counted in `dropped_records`; the counters (calls, peak in-flight, statuses,
//! outcomes, faults, per window) stay exact whatever the cap, because they are
//! updated as calls arrive and leave, never recomputed from records.
//!
//! The records are a ring for readers to drain as they go (`since` a
//! sequence number), not an archive. A reader that must see every record (the
//! harness, for its own server) starts the journal's *tape* instead: from then
//! on no record is dropped; each call's record goes on the tape when the call
//! ends, and the reader takes the tape as it goes ([`Journal::take_tape`]),
//! so the ring holds only calls in flight (and those behind the oldest of them). The
//! default is small on purpose. A ring overwritten on every call costs cache:
//! measured against a bare hyper server at ~200k calls/s on two cores
//! (`bench/fault-server.sh throughput`), 4,096 records kept 0.93–0.95 of its
//! throughput, 8,192 about 0.90 and 100,000 about 0.86, the larger rings
//! pushing the kernel's socket data out of the CPU's cache.

mod interner;
mod record;
mod slot;
mod stats;

use std::collections::VecDeque;

pub use record::{
    ByteCounts, CallInfo, CallOutcome, CallRecord, ATTEMPT_HEADER, REQUEST_ID_HEADER,
};
pub use stats::{Counters, JournalStats, Window};
use stats::{OpenWindow, Tally};

use crate::fault::FaultKinds;
use interner::Interner;
use slot::Slot;

/// Records kept per dependency unless configured otherwise: 256 KiB of
/// 64-byte records, plus correlation ids and idempotency keys when calls carry them.
pub const DEFAULT_JOURNAL_CAPACITY: usize = 4_096;
/// Windows a journal keeps at most: past it, each mark retires the oldest
/// window (its counts stay in the totals; its own counters are no longer
/// listed), so a long-lived server marked by run after run never refuses one.
pub const MAX_WINDOWS: usize = 10_000;

/// Headers a journal keeps the values of at most (`keep_headers`).
pub const MAX_KEPT_HEADERS: usize = 16;

/// The name of the window a journal starts in.
pub const FIRST_WINDOW: &str = "start";

/// One dependency's journal. Not synchronised: the dependency holds it under its lock.
///
/// ```
/// use fault_server::journal::{CallInfo, Journal, CallOutcome};
/// use fault_server::FaultKinds;
///
/// let mut journal = Journal::new(1_000);
/// let call = CallInfo { method: &http::Method::GET, path: "/crm", correlation_id: Some("req-1"),
///                       idempotency_key: None, attempt: None, headers: None };
/// let ticket = journal.arrive(&call, FaultKinds::default(), 10);
/// journal.mark("crm slow", 15);
/// journal.depart(ticket, CallOutcome::Responded, Some(200), 20);
///
/// let record = &journal.since(0, 10)[0];
/// assert_eq!((record.arrival_ns, record.departure_ns, record.status), (10, Some(20), Some(200)));
/// let stats = journal.stats();
/// assert_eq!(stats.windows[0].counters.statuses[&200], 1, "counted in the window it arrived in");
/// assert_eq!(stats.window("crm slow").unwrap().counters.peak_in_flight, 1);
/// ```
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    records: VecDeque<Slot>,
    interner: Interner,
    first_seq: u64,
    next_seq: u64,
    in_flight: u64,
    epoch: u32,
    dropped: u64,
    windows: Vec<OpenWindow>,
    /// The number of `windows[0]`: windows keep their numbers when older ones retire.
    first_window: u32,
    /// The counts of retired windows.
    retired: Tally,
    /// Records of ended calls not yet taken, once the tape is started.
    tape: Option<Vec<CallRecord>>,
    /// Headers whose values each record keeps.
    keep: Vec<http::HeaderName>,
}

/// A call's place in the journal, handed back when it departs.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// The call's sequence number.
    pub seq: u64,
    window: u32,
    epoch: u32,
}

impl Journal {
    /// An empty journal keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Journal {
            capacity,
            records: VecDeque::new(),
            interner: Interner::default(),
            first_seq: 0,
            next_seq: 0,
            in_flight: 0,
            epoch: 0,
            dropped: 0,
            windows: vec![OpenWindow::new(FIRST_WINDOW.to_owned(), 0, 0)],
            first_window: 0,
            retired: Tally::default(),
            tape: None,
            keep: Vec::new(),
        }
    }

    /// Keeps the values of these headers in each call's record from now on
    /// (at most [`MAX_KEPT_HEADERS`]; more are ignored): for selecting
    /// calls by header afterwards.
    pub fn keep_headers(&mut self, mut names: Vec<http::HeaderName>) {
        names.truncate(MAX_KEPT_HEADERS);
        self.keep = names;
    }

    /// Starts the tape: from now on no record is dropped, and every call's
    /// record is handed to [`Journal::take_tape`] once the call has ended.
    /// Records of calls in flight stay readable with [`Journal::since`].
    pub fn start_tape(&mut self) {
        self.tape.get_or_insert_with(Vec::new);
    }

    /// The records of calls that ended since the last take, in departure
    /// order; empty when the tape was never started.
    pub fn take_tape(&mut self) -> Vec<CallRecord> {
        self.tape.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The sequence number the next call will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Records a call's arrival.
    pub fn arrive(&mut self, info: &CallInfo<'_>, faults: FaultKinds, now_ns: u64) -> Ticket {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight += 1;
        let window_index = self.windows.len() - 1;
        let window = &mut self.windows[window_index];
        // Only the window counts: the totals are the windows summed when read,
        // so a call updates one set of counters, not two.
        window.tally.count_arrival(self.in_flight, faults);
        let window = self.number_of(window_index);
        if self.capacity > 0 || self.tape.is_some() {
            if self.records.len() >= self.capacity && self.tape.is_none() {
                self.records.pop_front();
                self.first_seq += 1;
                self.dropped += 1;
            }
            let slot = Slot::new(
                &mut self.interner,
                info,
                &self.keep,
                faults,
                now_ns,
                self.in_flight,
                window,
            );
            self.records.push_back(slot);
        } else {
            self.first_seq = self.next_seq;
            self.dropped += 1;
        }
        Ticket {
            seq,
            window,
            epoch: self.epoch,
        }
    }

    /// Records how a call ended.
    pub fn depart(
        &mut self,
        ticket: Ticket,
        outcome: CallOutcome,
        status: Option<u16>,
        now_ns: u64,
    ) {
        self.depart_forwarded(ticket, outcome, status, None, now_ns);
    }

    /// As [`Journal::depart`], for a TCP proxy's connection: the bytes it
    /// carried each way and every fault it met over its life.
    pub fn depart_connection(
        &mut self,
        ticket: Ticket,
        outcome: CallOutcome,
        bytes: ByteCounts,
        faults: FaultKinds,
        now_ns: u64,
    ) {
        if ticket.epoch == self.epoch {
            if let Some(slot) = ticket
                .seq
                .checked_sub(self.first_seq)
                .and_then(|index| self.records.get_mut(index as usize))
            {
                slot.carried(bytes, faults);
            }
        }
        self.depart_forwarded(ticket, outcome, None, None, now_ns);
    }

    /// As [`Journal::depart`], for a call a proxy forwarded: `upstream_ns`
    /// is how long its upstream took to answer (`None`: not forwarded).
    pub fn depart_forwarded(
        &mut self,
        ticket: Ticket,
        outcome: CallOutcome,
        status: Option<u16>,
        upstream_ns: Option<u64>,
        now_ns: u64,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if ticket.epoch != self.epoch {
            return;
        }
        let open = ticket
            .window
            .checked_sub(self.first_window)
            .and_then(|index| self.windows.get_mut(index as usize));
        match open {
            Some(window) => window.tally.count_departure(outcome, status),
            // It arrived in a window retired since.
            None => self.retired.count_departure(outcome, status),
        }
        if let Some(index) = ticket.seq.checked_sub(self.first_seq) {
            if let Some(slot) = self.records.get_mut(index as usize) {
                slot.depart(outcome, status, upstream_ns, now_ns);
                if let Some(tape) = &mut self.tape {
                    tape.push(slot.record(ticket.seq, &self.interner));
                    // Ended calls at the front are on the tape: the ring lets them go.
                    while self.records.front().is_some_and(Slot::departed) {
                        self.records.pop_front();
                        self.first_seq += 1;
                    }
                }
            }
        }
    }

    /// Closes the current window and opens one named `name`. Its peak in-flight
    /// starts at the calls already in flight. Returns the new window's index.
    pub fn mark(&mut self, name: &str, now_ns: u64) -> Option<u32> {
        let index = self.number_of(self.windows.len());
        if index == u32::MAX {
            return None;
        }
        if let Some(current) = self.windows.last_mut() {
            current.ended_ns = Some(now_ns);
        }
        if self.windows.len() >= MAX_WINDOWS {
            let oldest = self.windows.remove(0);
            self.retired.add(&oldest.tally);
            self.first_window += 1;
        }
        self.windows
            .push(OpenWindow::new(name.to_owned(), now_ns, self.in_flight));
        Some(index)
    }

    /// The number of the window at `index` in `windows`.
    fn number_of(&self, index: usize) -> u32 {
        u32::try_from(index)
            .ok()
            .and_then(|i| self.first_window.checked_add(i))
            .unwrap_or(u32::MAX)
    }

    /// Up to `limit` records with `seq >= since`, oldest first.
    pub fn since(&self, since: u64, limit: usize) -> Vec<CallRecord> {
        let skip = since.saturating_sub(self.first_seq);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        self.records
            .iter()
            .enumerate()
            .skip(skip)
            .take(limit)
            .map(|(index, slot)| slot.record(self.first_seq + index as u64, &self.interner))
            .collect()
    }

    /// Counters since the start (or the last clear).
    pub fn totals(&self) -> Counters {
        self.total().counters()
    }

    /// Calls since the start (or the last clear).
    pub fn calls(&self) -> u64 {
        self.retired.calls() + self.windows.iter().map(|w| w.tally.calls()).sum::<u64>()
    }

    /// Most calls in flight at once since the start (or the last clear): every
    /// moment lies in one window, so it is the highest window peak.
    pub fn peak_in_flight(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.tally.peak_in_flight)
            .max()
            .unwrap_or(0)
            .max(self.retired.peak_in_flight)
    }

    fn total(&self) -> Tally {
        let mut total = self.retired.clone();
        for window in &self.windows {
            total.add(&window.tally);
        }
        total
    }

    /// Counters for the whole journal and per window.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            in_flight: self.in_flight,
            next_seq: self.next_seq,
            retained_records: self.records.len() as u64,
            dropped_records: self.dropped,
            capacity: self.capacity as u64,
            total: self.total().counters(),
            windows: self
                .windows
                .iter()
                .zip(self.first_window..)
                .map(|(window, index)| window.window(index))
                .collect(),
        }
    }

    /// Forgets every record, counter and window. Sequence numbers go on from
    /// where they were, so a reader polling with `since` never sees one twice;
    /// calls still in flight count toward `in_flight` until they leave.
    pub fn clear(&mut self, now_ns: u64) {
        self.records.clear();
        self.interner.clear();
        self.first_seq = self.next_seq;
        self.epoch = self.epoch.wrapping_add(1);
        self.dropped = 0;
        self.windows = vec![OpenWindow::new(
            FIRST_WINDOW.to_owned(),
            now_ns,
            self.in_flight,
        )];
        self.first_window = 0;
        self.retired = Tally::default();
        if let Some(tape) = &mut self.tape {
            tape.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn past_the_window_cap_marks_retire_the_oldest_windows_and_keep_their_counts() {
        let mut journal = Journal::new(100);
        let early = journal.arrive(&info(), FaultKinds::default(), 1);
        journal.arrive(&info(), FaultKinds::default(), 2);
        for n in 0..MAX_WINDOWS + 5 {
            let number = journal.mark(&format!("run {n}"), 10 + n as u64);
            assert_eq!(number, Some(n as u32 + 1), "marks are never refused");
        }
        journal.arrive(&info(), FaultKinds::default(), 20_000);
        // It arrived in "start", retired since: its departure still counts.
        journal.depart(early, CallOutcome::Responded, Some(200), 20_001);
        let stats = journal.stats();
        assert_eq!(stats.windows.len(), MAX_WINDOWS);
        assert_eq!(stats.windows[0].index, 6, "windows keep their numbers");
        assert!(stats.window("start").is_none());
        assert_eq!(
            stats.windows.last().unwrap().name,
            format!("run {}", MAX_WINDOWS + 4)
        );
        assert_eq!(stats.windows.last().unwrap().counters.calls, 1);
        assert_eq!(stats.total.calls, 3);
        assert_eq!(stats.total.statuses[&200], 1);
        assert_eq!(stats.total.peak_in_flight, 3);
        assert_eq!((journal.calls(), journal.peak_in_flight()), (3, 3));
        journal.clear(30_000);
        assert_eq!(journal.stats().windows[0].index, 0);
        assert_eq!(journal.calls(), 0);
    }

    fn info() -> CallInfo<'static> {
        CallInfo {
            method: &Method::GET,
            path: "/",
            correlation_id: None,
            idempotency_key: None,
            attempt: None,
            headers: None,
        }
    }

    #[test]
    fn only_the_headers_it_is_told_to_keep_are_kept() {
        let mut journal = Journal::new(10);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-tenant", "acme".parse().unwrap());
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        let call = |headers| CallInfo {
            headers: Some(headers),
            ..info()
        };
        journal.arrive(&call(&headers), FaultKinds::default(), 1);
        journal.keep_headers(vec![http::HeaderName::from_static("x-tenant")]);
        journal.arrive(&call(&headers), FaultKinds::default(), 2);
        let records = journal.since(0, 10);
        assert!(records[0].headers.is_empty());
        assert_eq!(
            records[1].headers,
            [("x-tenant".to_owned(), "acme".to_owned())]
        );
    }

    #[test]
    fn peak_in_flight_is_exact_and_kept_per_window() {
        let mut journal = Journal::new(10);
        let tickets: Vec<_> = (0..5)
            .map(|i| journal.arrive(&info(), FaultKinds::default(), i))
            .collect();
        for t in &tickets[..3] {
            journal.depart(*t, CallOutcome::Responded, Some(200), 10);
        }
        journal.mark("slow", 11);
        let late = journal.arrive(&info(), FaultKinds::default(), 12);
        let stats = journal.stats();
        assert_eq!(stats.total.peak_in_flight, 5);
        assert_eq!(stats.windows[1].name, "slow");
        assert_eq!(
            stats.windows[1].counters.peak_in_flight, 3,
            "two held over plus one new"
        );
        assert_eq!(stats.windows[1].counters.calls, 1);
        assert_eq!(stats.windows[0].counters.statuses.get(&200), Some(&3));
        journal.depart(late, CallOutcome::Reset, None, 13);
        assert_eq!(
            journal.stats().windows[1]
                .counters
                .outcomes
                .get(&CallOutcome::Reset),
            Some(&1)
        );
        // Stats read back from their JSON (as a client of the control API reads them).
        let stats = journal.stats();
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<JournalStats>(&json).unwrap(), stats);
    }

    #[test]
    fn past_capacity_the_oldest_records_go_and_counters_stay_exact() {
        let mut journal = Journal::new(3);
        for i in 0..10 {
            let t = journal.arrive(&info(), FaultKinds::default(), i);
            journal.depart(t, CallOutcome::Responded, Some(200), i + 1);
        }
        let stats = journal.stats();
        assert_eq!(stats.total.calls, 10);
        assert_eq!(stats.dropped_records, 7);
        let seqs: Vec<_> = journal.since(0, 100).iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [7, 8, 9]);
        assert_eq!(journal.since(9, 100).len(), 1);
    }

    #[test]
    fn a_started_tape_drops_no_record_past_capacity_and_hands_each_over_once() {
        let mut journal = Journal::new(2);
        journal.start_tape();
        let held = journal.arrive(&info(), FaultKinds::default(), 0);
        for i in 1..10 {
            let t = journal.arrive(&info(), FaultKinds::default(), i);
            journal.depart(t, CallOutcome::Responded, Some(200), i + 1);
        }
        let taken: Vec<_> = journal.take_tape().iter().map(|r| r.seq).collect();
        assert_eq!(taken, (1..10).collect::<Vec<_>>());
        assert!(journal.take_tape().is_empty(), "each record is taken once");
        assert_eq!(journal.stats().dropped_records, 0);
        // The call in flight is still readable, and goes on the tape when it ends.
        assert_eq!(journal.since(0, 100)[0].seq, 0);
        journal.depart(held, CallOutcome::ClientGone, None, 20);
        assert_eq!(journal.take_tape()[0].outcome, CallOutcome::ClientGone);
        assert!(journal.since(0, 100).is_empty(), "the ring let them all go");
    }

    #[test]
    fn clear_keeps_sequence_numbers_and_in_flight_calls() {
        let mut journal = Journal::new(10);
        let held = journal.arrive(&info(), FaultKinds::default(), 0);
        journal.clear(5);
        assert_eq!(journal.stats().total.calls, 0);
        assert_eq!(journal.in_flight(), 1);
        let next = journal.arrive(&info(), FaultKinds::default(), 6);
        assert_eq!(next.seq, 1);
        journal.depart(held, CallOutcome::Responded, Some(200), 7);
        assert_eq!(journal.in_flight(), 1);
        assert_eq!(
            journal.stats().total.completed,
            0,
            "a call from before the clear is not counted after it"
        );
    }
}
