//! The fault vocabulary: what can go wrong at a dependency, one module per kind,
//! and the options every fault shares.
//!
//! A fault is written as one key naming its kind, beside the shared options:
//!
//! ```toml
//! [[faults]]
//! error = { status = 503, retry_after = "30s" }
//! probability = 0.3          # drawn per call from the seeded RNG; default 1
//! match = { path = "/charge" }
//! first = 3                  # apply to 3 calls, then stop
//! lease = "60s"              # remove itself after 60 s
//! ```
//!
//! With `per = "request"` (or `"idempotency_key"`), `first` counts and
//! `probability` draws per request rather than per call: `first = 2, per =
//! "request"` fails each request's first two calls and lets its third
//! through (the retry that recovers); `probability = 0.3, per = "request"`
//! fails every attempt of 30% of the requests and none of the others.
//!
//! How several faults on one dependency compose is documented on [`FaultSet`].

#[macro_use]
mod list;

mod build;
mod close;
mod error;
mod hang;
mod kind;
mod latency;
mod malformed;
mod matcher;
pub(crate) mod per;
mod reset;
mod saturation;
mod set;
mod slow_body;
mod throttle;
mod toxics;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use kind::{ActsOn, Kind};

pub use close::CloseFault;
pub use error::ErrorFault;
pub use hang::{HangEnd, HangFault};
pub use latency::LatencyFault;
pub use malformed::MalformedFault;
pub use matcher::{RequestMatch, RequestView};
pub(crate) use per::CallKeys;
pub use per::REMEMBERED_REQUESTS;
pub use reset::ResetFault;
pub use saturation::SaturationFault;
pub use set::{ActiveFault, FaultSet};
pub(crate) use set::{ConnAction, Decision, Ending, Toxic};
pub(crate) use slow_body::SlowBody;
pub use slow_body::SlowBodyFault;
pub use throttle::ThrottleFault;
pub use toxics::{
    BandwidthFault, DownFault, LimitDataFault, ResetPeerFault, SlicerFault, SlowCloseFault, Stream,
    TimeoutFault,
};

/// The longest duration a fault, a stub's latency or a lease may give: a
/// day. Longer ones are refused when configured, so no instant overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// `must be at most 1day, got …` when `duration` is longer than
/// [`MAX_DURATION`]: a message relative to its field (the caller names it).
pub(crate) fn at_most_a_day(duration: Duration) -> Result<(), String> {
    if duration > MAX_DURATION {
        return Err(format!(
            "must be at most {} (MAX_DURATION), got {}",
            humantime::format_duration(MAX_DURATION),
            humantime::format_duration(duration)
        ));
    }
    Ok(())
}

/// As [`at_most_a_day`], naming the key (`retry_after must be at most ...`),
/// for a kind's checks of its own keys.
pub(crate) fn check_duration(key: &str, duration: Duration) -> Result<(), String> {
    at_most_a_day(duration).map_err(|e| format!("{key} {e}"))
}

/// The first fault (by index) whose name another before it has, or that
/// takes the shape of an unnamed fault's label (`latency-3`), and why.
pub(crate) fn check_names(faults: &[Fault]) -> Result<(), (usize, String)> {
    let mut names = std::collections::BTreeSet::new();
    for (i, fault) in faults.iter().enumerate() {
        if let Some(name) = &fault.name {
            if set::is_label(name) {
                return Err((
                    i,
                    format!("`{name}` is how an unnamed fault is labelled (<kind>-<id>); choose another name"),
                ));
            }
            if !names.insert(name) {
                return Err((
                    i,
                    format!("`{name}` names two faults; a fault's name is unique"),
                ));
            }
        }
    }
    Ok(())
}

/// One fault: what goes wrong, and when it applies.
///
/// ```
/// use std::time::Duration;
/// use fault_server::{Fault, FaultKind, ErrorFault};
///
/// let fault: Fault = serde_json::from_str(
///     r#"{"error": {"status": 503}, "probability": 0.3, "first": 3}"#,
/// ).unwrap();
/// assert_eq!(fault.probability, 0.3);
/// assert!(matches!(fault.kind, FaultKind::Error(ErrorFault { status: 503, .. })));
///
/// let built = Fault::reset().lease(Duration::from_secs(30));
/// assert_eq!(built.lease, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFault", into = "RawFault")]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Chance that a matching call gets the fault, 0 to 1.
    pub probability: f64,
    /// Which calls it may apply to; all when absent.
    pub matcher: Option<RequestMatch>,
    /// Apply to this many calls, then stop applying (with [`Fault::per`],
    /// this many calls of each request).
    pub first: Option<u64>,
    /// Counts `first` and draws `probability` per request rather than per
    /// call: by the request's correlation id, or by its idempotency key.
    pub per: Option<Per>,
    /// Remove the fault this long after it was injected.
    pub lease: Option<Duration>,
    /// For a TCP proxy's faults, the direction of data they act on
    /// (downstream when absent); refused on an HTTP dependency's.
    pub stream: Option<Stream>,
    /// A name, unique among the dependency's faults, by which it is shown,
    /// updated or removed (a Toxiproxy toxic's name); 1 to 200 bytes.
    pub name: Option<String>,
}

/// What a fault's `first` and `probability` count by when not by call:
/// `per = "request"` or `per = "idempotency_key"` in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// The request's correlation id (`x-faultline-request`, or
    /// `traceparent`'s trace-id): one edge request and all its retries.
    Request,
    /// The request's `Idempotency-Key`: every attempt at one operation,
    /// whatever the edge request that made it.
    IdempotencyKey,
}

fault_kinds! {
    /// Delay the answer.
    latency: Latency(LatencyFault),
    /// Answer with an error status.
    error: Error(ErrorFault),
    /// Reject calls over a rate or an in-flight cap.
    throttle: Throttle(ThrottleFault),
    /// Hold the call without answering.
    hang: Hang(HangFault),
    /// Reset the connection.
    reset: Reset(ResetFault),
    /// Close the connection without a response.
    close: Close(CloseFault),
    /// Send the body slowly.
    slow_body: SlowBody(SlowBodyFault),
    /// Answer with bytes that are not HTTP.
    malformed: Malformed(MalformedFault),
    /// Latency that grows with the in-flight count.
    saturation: Saturation(SaturationFault),
    /// TCP: cap the data rate.
    bandwidth: Bandwidth(BandwidthFault),
    /// TCP: cut data into small delayed slices.
    slicer: Slicer(SlicerFault),
    /// TCP: stop data, then close (or hold open).
    timeout: Timeout(TimeoutFault),
    /// TCP: reset both sides.
    reset_peer: ResetPeer(ResetPeerFault),
    /// TCP: hold a close back.
    slow_close: SlowClose(SlowCloseFault),
    /// TCP: close after so many bytes.
    limit_data: LimitData(LimitDataFault),
    /// TCP: refuse new connections.
    down: Down(DownFault),
}

impl Fault {
    /// A fault that applies to every call, with no count and no lease.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            probability: 1.0,
            matcher: None,
            first: None,
            per: None,
            lease: None,
            stream: None,
            name: None,
        }
    }

    /// Named `name`, unique among the dependency's faults (1 to 200 bytes).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Acts on this direction of a TCP proxy's connections (downstream by default).
    pub fn stream(mut self, stream: Stream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Drawn with probability `p` (0 to 1) for each call (on a TCP proxy,
    /// each connection).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Applies only to the calls `matcher` matches.
    pub fn when(mut self, matcher: RequestMatch) -> Self {
        self.matcher = Some(matcher);
        self
    }

    /// Applies to the first `n` calls it is drawn for, then stops.
    pub fn first(mut self, n: u64) -> Self {
        self.first = Some(n);
        self
    }

    /// Counts `first` and draws `probability` for each request (`per`): by
    /// its correlation id (`x-faultline-request`, or `traceparent`'s
    /// trace-id; [`Per::Request`]) or its `Idempotency-Key`
    /// ([`Per::IdempotencyKey`]). "Each request's first 2 calls fail, then it
    /// succeeds" is `Fault::error(503).first(2).per(Per::Request)`.
    pub fn per(mut self, per: Per) -> Self {
        self.per = Some(per);
        self
    }

    /// Removes itself `lease` after it was added.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Checks every parameter, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(lease) = self.lease {
            check_duration("lease", lease)?;
        }
        if let Some(name) = &self.name {
            if name.is_empty() || name.len() > 200 {
                return Err("name: must be 1 to 200 bytes".into());
            }
        }
        if !(self.probability.is_finite() && (0.0..=1.0).contains(&self.probability)) {
            return Err(format!(
                "probability must be between 0 and 1, got {}",
                self.probability
            ));
        }
        if self.per.is_some() {
            if self.first.is_none() && self.probability >= 1.0 {
                return Err(
                    "per: goes with `first` or a `probability` under 1 (it says what they count per)"
                        .into(),
                );
            }
            if !self.for_http() {
                return Err(format!(
                    "per: `{}` acts on a TCP proxy's connections, which carry no request to count by",
                    self.kind.name().as_str()
                ));
            }
        }
        self.kind
            .validate()
            .map_err(|e| format!("{}: {e}", self.kind.name()))
    }

    /// Whether it can apply to a TCP proxy's connections (`latency` and the
    /// TCP kinds), as opposed to HTTP requests (every kind but the TCP ones).
    pub fn for_tcp(&self) -> bool {
        self.kind.name().acts_on() != ActsOn::Http
    }

    /// Whether it can apply to HTTP requests (a stub's or an HTTP proxy's).
    pub fn for_http(&self) -> bool {
        self.kind.name().acts_on() != ActsOn::Tcp
    }

    /// Why it cannot apply to a TCP proxy's connections (or, with `tcp`
    /// false, to HTTP requests), when it cannot.
    pub fn check_for(&self, tcp: bool) -> Result<(), String> {
        let name = self.kind.name();
        if tcp {
            if !self.for_tcp() {
                let takes: Vec<&str> = FaultKindName::taken_by(true)
                    .map(FaultKindName::as_str)
                    .collect();
                return Err(format!(
                    "`{name}` acts on HTTP requests; a TCP proxy takes {}",
                    takes.join(", ")
                ));
            }
            if self.matcher.is_some() {
                return Err("`match` selects HTTP requests; a TCP proxy has none".into());
            }
            if self.per.is_some() {
                return Err(
                    "`per` counts HTTP requests; a TCP proxy's connections carry none".into(),
                );
            }
        } else {
            if !self.for_http() {
                return Err(format!(
                    "`{name}` acts on a TCP proxy's connections (`tcp = \"host:port\"`), not on HTTP requests"
                ));
            }
            if self.stream.is_some() {
                return Err("`stream` is a TCP proxy's direction; HTTP faults have none".into());
            }
        }
        Ok(())
    }
}

impl FaultKindName {
    /// Whether it acts on a TCP proxy's connections only (not `latency`,
    /// which acts on both).
    pub fn tcp_only(self) -> bool {
        self.acts_on() == ActsOn::Tcp
    }

    /// The kinds a TCP proxy takes (`tcp`), or an HTTP dependency.
    pub fn taken_by(tcp: bool) -> impl Iterator<Item = FaultKindName> {
        let shut_out = if tcp { ActsOn::Http } else { ActsOn::Tcp };
        FaultKindName::ALL
            .into_iter()
            .filter(move |k| k.acts_on() != shut_out)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for FaultKindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The set of fault kinds applied to one call (a bit set, so a journal record
/// costs no allocation for it). Serialised as a list of names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultKinds(u16);

impl FaultKinds {
    /// Adds a kind.
    pub fn insert(&mut self, kind: FaultKindName) {
        self.0 |= kind.bit();
    }

    /// Whether the kind is in the set.
    pub fn contains(self, kind: FaultKindName) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether no fault applied.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`FaultKindName::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = FaultKindName> {
        FaultKindName::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl Serialize for FaultKinds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for FaultKinds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<FaultKindName>::deserialize(deserializer)?;
        let mut kinds = FaultKinds::default();
        names.into_iter().for_each(|k| kinds.insert(k));
        Ok(kinds)
    }
}

fn is_always(probability: &f64) -> bool {
    *probability == 1.0
}

fn always() -> f64 {
    1.0
}

impl TryFrom<RawFault> for Fault {
    type Error = String;

    fn try_from(mut raw: RawFault) -> Result<Self, String> {
        let kinds = raw.take_kinds();
        let all = FaultKindName::ALL.map(FaultKindName::as_str).join(", ");
        let kind = match <[FaultKind; 1]>::try_from(kinds) {
            Ok([kind]) => kind,
            Err(kinds) if kinds.is_empty() => {
                return Err(format!("a fault names its kind: one of {all}"));
            }
            Err(kinds) => {
                let names: Vec<_> = kinds.iter().map(|k| k.name().as_str()).collect();
                return Err(format!(
                    "a fault names exactly one kind, found {}: write one fault per kind",
                    names.join(" and ")
                ));
            }
        };
        let fault = Fault {
            kind,
            probability: raw.probability,
            matcher: raw.matcher,
            first: raw.first,
            per: raw.per,
            lease: raw.lease,
            stream: raw.stream,
            name: raw.name,
        };
        fault.validate()?;
        Ok(fault)
    }
}

impl From<Fault> for RawFault {
    fn from(fault: Fault) -> Self {
        let mut raw = RawFault {
            stream: fault.stream,
            probability: fault.probability,
            matcher: fault.matcher,
            first: fault.first,
            per: fault.per,
            lease: fault.lease,
            name: fault.name,
            ..RawFault::default()
        };
        raw.set_kind(fault.kind);
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Fault, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_round_trips_through_json() {
        let samples = [
            r#"{"latency":{"fixed":"8s"},"probability":1.0}"#,
            r#"{"error":{"status":503,"body":"down","retry_after":"30s"},"probability":1.0}"#,
            r#"{"throttle":{"rate":5.0,"burst":2,"status":429},"probability":1.0}"#,
            r#"{"hang":{"after":"1s","then":"close"},"probability":1.0}"#,
            r#"{"reset":{},"probability":0.5}"#,
            r#"{"close":{},"probability":1.0,"first":3}"#,
            r#"{"slow_body":{"bytes_per_second":10},"probability":1.0}"#,
            r#"{"malformed":{},"probability":1.0,"lease":"1m"}"#,
            r#"{"saturation":{"base":"200ms","workers":4},"probability":1.0,"match":{"path":"/x"}}"#,
        ];
        for sample in samples {
            let fault = parse(sample).unwrap();
            let again = parse(&serde_json::to_string(&fault).unwrap()).unwrap();
            assert_eq!(fault, again, "{sample}");
        }
    }

    #[test]
    fn a_fault_without_a_kind_lists_the_kinds() {
        let err = parse(r#"{"probability": 0.5}"#).unwrap_err();
        assert!(err.contains("one of latency, error"), "{err}");
    }

    #[test]
    fn a_fault_with_two_kinds_is_refused() {
        let err = parse(r#"{"reset": {}, "close": {}}"#).unwrap_err();
        assert!(err.contains("reset and close"), "{err}");
    }

    #[test]
    fn a_misspelt_key_is_named() {
        let err = parse(r#"{"reset": {}, "probabilty": 0.5}"#).unwrap_err();
        assert!(err.contains("probabilty"), "{err}");
    }

    #[test]
    fn probability_outside_zero_to_one_is_refused() {
        let err = parse(r#"{"reset": {}, "probability": 1.5}"#).unwrap_err();
        assert!(err.contains("probability"), "{err}");
    }

    #[test]
    fn fault_kinds_serialise_as_names() {
        let mut kinds = FaultKinds::default();
        kinds.insert(FaultKindName::SlowBody);
        kinds.insert(FaultKindName::Latency);
        assert_eq!(
            serde_json::to_string(&kinds).unwrap(),
            r#"["latency","slow_body"]"#
        );
    }
}

#[cfg(test)]
mod duration_bounds {
    use super::Fault;

    #[test]
    fn durations_past_a_day_are_refused_rather_than_overflow_a_clock() {
        for json in [
            r#"{"latency": {"fixed": "500000000000years"}}"#,
            r#"{"latency": {"log_normal": {"p50": "1ms", "p99": "2days"}}}"#,
            r#"{"error": {"status": 503, "retry_after": "25h"}}"#,
            r#"{"hang": {"after": "400days"}}"#,
            r#"{"saturation": {"base": "2days", "workers": 1}}"#,
            r#"{"reset": {}, "lease": "100years"}"#,
        ] {
            let err = serde_json::from_str::<Fault>(json)
                .map_err(|e| e.to_string())
                .and_then(|fault| fault.validate())
                .unwrap_err();
            assert!(err.contains("at most 1day"), "{json}: {err}");
        }
        let fault: Fault = serde_json::from_str(r#"{"latency": {"fixed": "24h"}}"#).unwrap();
        assert_eq!(fault.validate(), Ok(()));
    }
}
