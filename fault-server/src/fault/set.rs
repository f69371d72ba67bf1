//! The faults in force at one dependency, and how they decide each call.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::kind::Call;
use super::per::{self, CallKeys, PerKey};
use super::throttle::TokenBucket;
use super::{Fault, FaultKind, FaultKinds, HangFault, RequestView};
use crate::response::ResponseTemplate;

/// The ordered list of faults in force at one dependency.
///
/// # How faults compose
/// Each arriving call walks the list in order. A fault is *drawn* for the call
/// when its `match` holds, its `first` count is not used up, and its
/// `probability` draw succeeds; then:
/// - `latency` and `saturation` add their delay (several add up) and the walk goes on;
/// - `slow_body` marks the eventual response to be dribbled (the first one wins) and the walk goes on;
/// - `throttle` rejects the call if it is over the limit (and the walk stops), else the walk goes on
///   and the throttle does not count as applied;
/// - `error`, `hang`, `reset`, `close` and `malformed` decide the call's end and stop the walk.
///
/// The call then waits for the summed delay and ends as decided, or with the
/// stub's response. So `latency` + `error` is a slow error, `latency` + `reset`
/// a reset after a delay, `slow_body` + `error` an error whose body crawls.
/// `first` counts the calls a fault applied to; a throttle that let a call pass
/// did not apply.
///
/// ```
/// use std::time::Duration;
/// use fault_server::fault::FaultSet;
/// use fault_server::Fault;
/// use tokio::time::Instant;
///
/// let now = Instant::now();
/// let mut set = FaultSet::default();
/// let slow = Fault::latency(Duration::from_secs(8)).into();
/// let failing = Fault::error(503).lease(Duration::from_secs(30));
/// set.replace(vec![slow, failing], None, now);
/// assert_eq!(set.active(now + Duration::from_secs(29)).len(), 2);
/// assert_eq!(set.active(now + Duration::from_secs(30)).len(), 1, "the error's lease ran out");
/// ```
#[derive(Debug)]
pub struct FaultSet {
    entries: Vec<Entry>,
    /// The id the next fault added gets: a TCP connection rolls each toxic once, by id.
    next_id: u64,
    /// Bumped on every change, so that live TCP connections re-read their toxics.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for FaultSet {
    fn default() -> Self {
        FaultSet {
            entries: Vec::new(),
            next_id: 0,
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// A TCP proxy's fault as a connection holds it: what it does, on which
/// direction, until when.
#[derive(Debug, Clone)]
pub(crate) struct Toxic {
    /// The fault's id in its set (new for every fault added).
    pub(crate) id: u64,
    pub(crate) kind: FaultKind,
    pub(crate) stream: super::Stream,
    pub(crate) expires_at: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    fault: Fault,
    expires_at: Option<Instant>,
    /// The end of the fault's own lease, which no renewal extends.
    own_expiry: Option<Instant>,
    applied: u64,
    /// With `per`: calls it applied to, per request.
    per_key: PerKey,
    bucket: Option<TokenBucket>,
}

/// A fault as it stands in a set: how often it applied and how long it has left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// The fault's id in its set (not shown: a fault is named by
    /// [`ActiveFault::label`]).
    #[serde(skip)]
    pub id: u64,
    /// The fault as injected.
    #[serde(flatten)]
    pub fault: Fault,
    /// How many calls it applied to so far.
    pub applied: u64,
    /// Time left before its lease runs out; absent when it has no lease.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<Duration>,
}

impl ActiveFault {
    /// The fault's name, or for an unnamed one `<kind>-<id>` (`latency-3`):
    /// how the Toxiproxy API shows and finds it.
    pub fn label(&self) -> String {
        label(&self.fault, self.id)
    }
}

/// Whether `name` has the shape of an unnamed fault's label, `<kind>-<id>`.
pub(crate) fn is_label(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(kind, id)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && super::FaultKindName::ALL.iter().any(|k| k.as_str() == kind)
    })
}

fn label(fault: &Fault, id: u64) -> String {
    fault
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{id}", fault.kind.name()))
}

/// What the fault set decided for one call.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub(crate) delay: Duration,
    pub(crate) terminal: Option<Ending>,
    pub(crate) slow_body: Option<u64>,
    pub(crate) applied: FaultKinds,
}

/// How a call ends: what a fault decides (`terminal`), and, once its delays
/// have passed, what the call does ([`crate::dependency::Arrival::ending`]:
/// a timed hang resolved, the stub's answer or a proxy's forwarding where no
/// fault decided).
#[derive(Debug)]
pub(crate) enum Ending {
    /// With this response: the stub's, an error's or a throttle's.
    Respond(ResponseTemplate),
    /// Forwarded to a proxy's upstream, whose answer is the call's.
    Forward,
    /// Held: until the client leaves, or, for a timed hang a fault decided,
    /// `after`, then as `then` says.
    Hang(HangFault),
    /// With this done to the connection.
    Connection(ConnAction),
}

/// What is done to the connection instead of answering.
#[derive(Debug, Clone)]
pub(crate) enum ConnAction {
    Reset,
    Close,
    Malformed(Bytes),
}

impl FaultSet {
    /// Replaces every fault. `lease`, when set, bounds each fault's own lease.
    pub fn replace(&mut self, faults: Vec<Fault>, lease: Option<Duration>, now: Instant) {
        self.entries.clear();
        for fault in faults {
            self.add(fault, lease, now);
        }
        self.touch();
    }

    /// Tells live TCP connections that the faults changed.
    fn touch(&mut self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// A receiver told of every change to the set.
    pub(crate) fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The TCP faults in force for one connection. Each fault is rolled once
    /// per connection (`roll(id, probability)`, remembered in `rolled`), when
    /// the connection first meets it; a fault whose `first` is used up is
    /// not rolled for new connections. `applied` counts the connections a
    /// fault applied to.
    pub(crate) fn toxics(
        &mut self,
        now: Instant,
        rolled: &mut std::collections::HashMap<u64, bool>,
        mut roll: impl FnMut(u64, f64) -> bool,
    ) -> Vec<Toxic> {
        self.prune(now);
        let mut toxics = Vec::new();
        for entry in &mut self.entries {
            let fault = &entry.fault;
            if !fault.for_tcp() {
                continue;
            }
            let applies = *rolled.entry(entry.id).or_insert_with(|| {
                let fresh = fault.first.is_none_or(|n| entry.applied < n)
                    && (fault.probability >= 1.0 || roll(entry.id, fault.probability));
                if fresh {
                    entry.applied += 1;
                }
                fresh
            });
            if applies {
                toxics.push(Toxic {
                    id: entry.id,
                    kind: fault.kind.clone(),
                    stream: fault.stream.unwrap_or_default(),
                    expires_at: entry.expires_at,
                });
            }
        }
        toxics
    }

    /// Adds one fault at the end of the list.
    pub fn push(&mut self, fault: Fault, lease: Option<Duration>, now: Instant) {
        self.add(fault, lease, now);
        self.touch();
    }

    fn add(&mut self, fault: Fault, lease: Option<Duration>, now: Instant) {
        let at = |lease: Duration| {
            now.checked_add(lease)
                .unwrap_or(now + Duration::from_secs(86_400 * 365))
        };
        let expires_at = [fault.lease, lease].into_iter().flatten().min().map(at);
        let own_expiry = fault.lease.map(at);
        let bucket = match &fault.kind {
            FaultKind::Throttle(t) => t.new_bucket(now),
            _ => None,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry {
            id,
            fault,
            expires_at,
            own_expiry,
            applied: 0,
            per_key: PerKey::default(),
            bucket,
        });
    }

    /// Extends the lease of every leased fault still in force to `lease`
    /// from `now` (never past a fault's own lease), without resetting its
    /// state (`first` counts, token buckets). Faults without a lease stay
    /// without one. A client that holds faults only while it lives renews
    /// them well before they run out.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio::time::Instant;
    /// # use fault_server::fault::FaultSet;
    /// # use fault_server::Fault;
    /// let mut set = FaultSet::default();
    /// let now = Instant::now();
    /// set.replace(vec![Fault::reset().into()], Some(Duration::from_secs(2)), now);
    /// set.renew(Duration::from_secs(2), now + Duration::from_secs(1));
    /// assert_eq!(set.active(now + Duration::from_millis(2_900)).len(), 1, "renewed");
    /// assert!(set.active(now + Duration::from_secs(3)).is_empty(), "and not renewed again");
    /// ```
    pub fn renew(&mut self, lease: Duration, now: Instant) {
        self.prune(now);
        let until = now
            .checked_add(lease)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        for entry in &mut self.entries {
            if entry.expires_at.is_some() {
                entry.expires_at = Some(entry.own_expiry.map_or(until, |own| own.min(until)));
            }
        }
        self.touch();
    }

    /// The fault labelled `name` ([`ActiveFault::label`]) as it stands, if
    /// it is in force.
    pub fn named(&mut self, name: &str, now: Instant) -> Option<ActiveFault> {
        let at = {
            self.prune(now);
            self.position(name)?
        };
        self.active(now).into_iter().nth(at)
    }

    /// Puts `fault` in the place of the one named `name`, with a fresh
    /// state (its `first` count, token bucket, and each TCP connection's
    /// roll start again); false when none is named so.
    pub fn update_named(&mut self, name: &str, fault: Fault, now: Instant) -> bool {
        self.prune(now);
        let Some(at) = self.position(name) else {
            return false;
        };
        self.add(fault, None, now);
        let entry = self.entries.pop().expect("just added");
        self.entries[at] = entry;
        self.touch();
        true
    }

    /// Removes the fault named `name`; false when none is named so.
    pub fn remove_named(&mut self, name: &str, now: Instant) -> bool {
        self.prune(now);
        let Some(at) = self.position(name) else {
            return false;
        };
        self.entries.remove(at);
        self.touch();
        true
    }

    /// Where the fault labelled `name` is: one named so, else an unnamed
    /// one whose label is `name`.
    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.fault.name.as_deref() == Some(name))
            .or_else(|| {
                self.entries
                    .iter()
                    .position(|e| e.fault.name.is_none() && label(&e.fault, e.id) == name)
            })
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.touch();
    }

    /// The faults still in force at `now` (expired leases are dropped).
    pub fn active(&mut self, now: Instant) -> Vec<ActiveFault> {
        self.prune(now);
        self.entries
            .iter()
            .map(|e| ActiveFault {
                id: e.id,
                fault: e.fault.clone(),
                applied: e.applied,
                expires_in: e.expires_at.map(|at| at.saturating_duration_since(now)),
            })
            .collect()
    }

    /// Whether no fault is in force at `now`.
    pub fn is_empty(&mut self, now: Instant) -> bool {
        self.prune(now);
        self.entries.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        self.entries
            .retain(|e| e.expires_at.is_none_or(|at| now < at));
    }

    /// Decides one call, as [`FaultSet`] documents. `rng` must be the call's own
    /// generator so that decisions depend only on the seed and the arrival order.
    pub(crate) fn decide<R: Rng>(
        &mut self,
        request: &RequestView<'_>,
        keys: &CallKeys<'_>,
        in_flight_before: u64,
        rng: &mut R,
        now: Instant,
    ) -> Decision {
        self.prune(now);
        let mut decision = Decision::default();
        for entry in &mut self.entries {
            let fault = &entry.fault;
            // With `per`, a call counts and draws as part of its request; a
            // call that carries no key is a request of its own.
            let key = fault.per.and_then(|per| keys.key(per));
            let used = match key {
                Some(key) => entry.per_key.applied(key),
                None if fault.per.is_some() => 0,
                None => entry.applied,
            };
            let drawn = fault.probability >= 1.0
                || match key {
                    Some(key) => per::drawn(keys.seed, entry.id, key, fault.probability),
                    None => rng.gen::<f64>() < fault.probability,
                };
            if fault.first.is_some_and(|n| used >= n)
                || fault.matcher.as_ref().is_some_and(|m| !m.matches(request))
                || !drawn
            {
                continue;
            }
            let mut call = Call {
                rng: &mut *rng,
                in_flight_before,
                now,
                bucket: entry.bucket.as_mut(),
                decision: &mut decision,
            };
            let applied = fault.kind.decide(&mut call);
            if applied {
                entry.applied += 1;
                if let Some(key) = key {
                    entry.per_key.count(key);
                }
                decision.applied.insert(fault.kind.name());
            }
            if decision.terminal.is_some() {
                break;
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKindName;
    use http::{HeaderMap, Method};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn decide(set: &mut FaultSet, now: Instant) -> Decision {
        let headers = HeaderMap::new();
        let view = RequestView {
            method: &Method::GET,
            path: "/",
            headers: &headers,
        };
        set.decide(
            &view,
            &CallKeys::default(),
            0,
            &mut ChaCha8Rng::seed_from_u64(0),
            now,
        )
    }

    fn error(status: u16) -> Fault {
        Fault::error(status).into()
    }

    fn latency(ms: u64) -> Fault {
        Fault::latency(Duration::from_millis(ms)).into()
    }

    #[test]
    fn latencies_add_up_and_the_first_terminal_fault_wins() {
        let now = Instant::now();
        let mut set = FaultSet::default();
        set.replace(
            vec![latency(100), latency(50), error(503), Fault::reset().into()],
            None,
            now,
        );
        let d = decide(&mut set, now);
        assert_eq!(d.delay, Duration::from_millis(150));
        assert!(matches!(d.terminal, Some(Ending::Respond(ref t)) if t.status == 503));
        assert!(d.applied.contains(FaultKindName::Error));
        assert!(!d.applied.contains(FaultKindName::Reset));
    }

    #[test]
    fn first_three_fail_then_calls_succeed() {
        let now = Instant::now();
        let mut set = FaultSet::default();
        set.replace(vec![error(500).first(3)], None, now);
        let failed = (0..10)
            .filter(|_| decide(&mut set, now).terminal.is_some())
            .count();
        assert_eq!(failed, 3);
    }

    #[test]
    fn a_lease_removes_the_fault_when_it_runs_out() {
        let now = Instant::now();
        let mut set = FaultSet::default();
        set.push(error(500).lease(Duration::from_secs(30)), None, now);
        assert!(decide(&mut set, now + Duration::from_secs(29))
            .terminal
            .is_some());
        assert!(decide(&mut set, now + Duration::from_secs(30))
            .terminal
            .is_none());
        assert!(set.is_empty(now + Duration::from_secs(30)));
    }

    #[test]
    fn the_set_lease_bounds_each_fault_lease() {
        let now = Instant::now();
        let mut set = FaultSet::default();
        set.replace(
            vec![error(500).lease(Duration::from_secs(60)), latency(5)],
            Some(Duration::from_secs(10)),
            now,
        );
        let active = set.active(now + Duration::from_secs(4));
        assert!(active
            .iter()
            .all(|a| a.expires_in == Some(Duration::from_secs(6))));
        assert!(set.is_empty(now + Duration::from_secs(10)));
    }
}
