//! The edge view: each request the load driver sent, and exact statistics per
//! endpoint and phase (HDR histograms and outcome counts) that hold even when
//! a long run outgrows the cap on kept records.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One request the load driver sent: 64 bytes, so a million of them take 64 MB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeRecord {
    /// The endpoint's name in the suite (shared by all its records).
    pub endpoint: Arc<str>,
    /// When the schedule meant to send it (latency counts from here, so a
    /// stalled target cannot hide behind coordinated omission).
    pub intended_ns: u64,
    /// When it was actually sent.
    pub sent_ns: u64,
    /// When its answer (or failure) came.
    pub ended_ns: u64,
    /// How it ended.
    pub outcome: EdgeOutcome,
    /// The id it carried (`x-faultline-request` and the trace-id of its `traceparent`).
    pub correlation_id: Option<CorrelationId>,
    /// Whether the answer carried a `Retry-After` header.
    #[serde(default)]
    pub retry_after: bool,
}

impl EdgeRecord {
    /// A record without a correlation id.
    pub fn new(
        endpoint: impl Into<Arc<str>>,
        intended_ns: u64,
        sent_ns: u64,
        ended_ns: u64,
        outcome: EdgeOutcome,
    ) -> Self {
        EdgeRecord {
            endpoint: endpoint.into(),
            intended_ns,
            sent_ns,
            ended_ns,
            outcome,
            correlation_id: None,
            retry_after: false,
        }
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Marks the answer as carrying `Retry-After`.
    pub fn with_retry_after(mut self) -> Self {
        self.retry_after = true;
        self
    }

    /// From the intended send time to the end.
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.ended_ns.saturating_sub(self.intended_ns))
    }

    /// From the actual send to the end (what the target took, without schedule lag).
    pub fn service_time(&self) -> Duration {
        Duration::from_nanos(self.ended_ns.saturating_sub(self.sent_ns))
    }

    /// Whether it got a 2xx or 3xx answer.
    pub fn succeeded(&self) -> bool {
        self.outcome.succeeded()
    }

    /// Its correlation id as a verdict's witness.
    pub fn witness(&self) -> Option<String> {
        self.correlation_id.map(|id| id.to_string())
    }
}

/// How an edge request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOutcome {
    /// An answer with this status.
    Status(u16),
    /// No answer within the client timeout.
    Timeout,
    /// The connection could not be made.
    ConnectError,
    /// The connection was reset or closed before an answer.
    Reset,
}

impl EdgeOutcome {
    /// Whether it is a 2xx or 3xx answer.
    pub fn succeeded(self) -> bool {
        matches!(self, EdgeOutcome::Status(status) if (200..400).contains(&status))
    }
}

impl fmt::Display for EdgeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdgeOutcome::Status(status) => write!(f, "{status}"),
            EdgeOutcome::Timeout => f.write_str("timeout"),
            EdgeOutcome::ConnectError => f.write_str("connect_error"),
            EdgeOutcome::Reset => f.write_str("reset"),
        }
    }
}

/// The id an edge request carries: 32 hex digits, a valid W3C trace-id (never
/// all zeros). Held as two numbers so a record needs no allocation for it.
///
/// ```
/// use faultline_properties::CorrelationId;
///
/// let id = CorrelationId::new(7, 3);
/// assert_eq!(id.to_string(), "00000000000000070000000000000007");
/// assert_eq!(id.to_string().parse::<CorrelationId>().unwrap(), id);
/// assert!("not-an-id".parse::<CorrelationId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorrelationId {
    high: u64,
    low: NonZeroU64,
}

impl CorrelationId {
    /// The id of the `seq`-th request of run `run`.
    pub fn new(run: u64, seq: u64) -> Self {
        // The low bit keeps the trace-id from ever being all zeros, which W3C forbids.
        let low = NonZeroU64::new((seq << 1) | 1).unwrap_or(NonZeroU64::MIN);
        CorrelationId { high: run, low }
    }

    /// The run and the request's number in it, as given to [`CorrelationId::new`].
    ///
    /// ```
    /// assert_eq!(faultline_properties::CorrelationId::new(7, 3).parts(), (7, 3));
    /// ```
    pub fn parts(self) -> (u64, u64) {
        (self.high, self.low.get() >> 1)
    }

    /// Its 32 hex digits.
    pub fn hex(self) -> [u8; 32] {
        let mut out = [0; 32];
        hex16(self.high, &mut out[..16]);
        hex16(self.low.get(), &mut out[16..]);
        out
    }

    /// A W3C `traceparent` with this id as trace-id and its lower half as
    /// parent span id (never zero), sampled.
    ///
    /// ```
    /// let id = faultline_properties::CorrelationId::new(1, 2);
    /// assert_eq!(
    ///     std::str::from_utf8(&id.traceparent()).unwrap(),
    ///     "00-00000000000000010000000000000005-0000000000000005-01"
    /// );
    /// ```
    pub fn traceparent(self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[..2].copy_from_slice(b"00");
        out[3..35].copy_from_slice(&self.hex());
        hex16(self.low.get(), &mut out[36..52]);
        out[53..].copy_from_slice(b"01");
        out
    }
}

/// Writes `value` as 16 lowercase hex digits (built by hand: this runs for
/// every request the driver sends, and `format!` was a measurable share of it).
fn hex16(value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().take(16).enumerate() {
        *slot = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&self.hex()).unwrap_or_default())
    }
}

/// Why a string is not a [`CorrelationId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a correlation id is 32 hex digits, not all zero")]
pub struct NotACorrelationId;

impl FromStr for CorrelationId {
    type Err = NotACorrelationId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NotACorrelationId);
        }
        let high = u64::from_str_radix(&s[..16], 16).map_err(|_| NotACorrelationId)?;
        let low = u64::from_str_radix(&s[16..], 16).map_err(|_| NotACorrelationId)?;
        Ok(CorrelationId {
            high,
            low: NonZeroU64::new(low).ok_or(NotACorrelationId)?,
        })
    }
}

impl Serialize for CorrelationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CorrelationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Exact statistics of one endpoint in one phase, kept for every request
/// even past the cap on kept records.
#[derive(Debug, Clone)]
pub struct EdgeStats {
    /// Latency from the intended send time, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Service time from the actual send, in microseconds.
    pub service_us: Histogram<u64>,
    /// Requests by outcome.
    pub outcomes: BTreeMap<EdgeOutcome, u64>,
    /// Open-loop sends that were due but not made (the driver was at its cap).
    pub dropped: u64,
    /// The longest a send went out after its intended time.
    pub max_lag: Duration,
}

/// The longest latency a histogram holds exactly: an hour; longer ones are
/// recorded as an hour (a request's timeout is far shorter).
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

impl Default for EdgeStats {
    fn default() -> Self {
        EdgeStats {
            latency_us: micros_histogram(),
            service_us: micros_histogram(),
            outcomes: BTreeMap::new(),
            dropped: 0,
            max_lag: Duration::ZERO,
        }
    }
}

/// An empty histogram of microseconds as the edge statistics keep them:
/// 1 µs to an hour at three significant digits (0.1% error), fixed bounds,
/// so `saturating_record` clamps only past an hour (an auto-resizing
/// histogram clamps to its current range).
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).unwrap_or_else(|_| {
        // The bounds above are constants that hdrhistogram accepts.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

impl EdgeStats {
    /// Counts one request.
    pub fn record(&mut self, record: &EdgeRecord) {
        let micros = |d: Duration| (d.as_micros() as u64).clamp(1, HISTOGRAM_MAX_US);
        self.latency_us.saturating_record(micros(record.latency()));
        self.service_us
            .saturating_record(micros(record.service_time()));
        *self.outcomes.entry(record.outcome).or_default() += 1;
        let lag = Duration::from_nanos(record.sent_ns.saturating_sub(record.intended_ns));
        self.max_lag = self.max_lag.max(lag);
    }

    /// Adds in what `other` counted (from another thread or machine).
    pub fn add(&mut self, other: &EdgeStats) {
        // Both cover the same range, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.service_us.add(&other.service_us);
        for (outcome, n) in &other.outcomes {
            *self.outcomes.entry(*outcome).or_default() += n;
        }
        self.dropped += other.dropped;
        self.max_lag = self.max_lag.max(other.max_lag);
    }

    /// Every request counted.
    pub fn requests(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Requests with a 2xx or 3xx answer.
    pub fn succeeded(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(outcome, _)| outcome.succeeded())
            .map(|(_, n)| n)
            .sum()
    }

    /// The latency at `percentile` (0 to 100).
    pub fn latency_at(&self, percentile: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_percentile(percentile))
    }
}

impl PartialEq for EdgeStats {
    fn eq(&self, other: &Self) -> bool {
        self.latency_us == other.latency_us
            && self.service_us == other.service_us
            && self.outcomes == other.outcomes
            && self.dropped == other.dropped
            && self.max_lag == other.max_lag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_record_takes_64_bytes() {
        assert_eq!(std::mem::size_of::<EdgeRecord>(), 64);
    }

    #[test]
    fn correlation_ids_are_unique_valid_trace_ids() {
        let a = CorrelationId::new(7, 0);
        let b = CorrelationId::new(7, 1);
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert_ne!(CorrelationId::new(0, 0).to_string(), "0".repeat(32));
        assert_eq!(
            "0".repeat(32).parse::<CorrelationId>(),
            Err(NotACorrelationId)
        );
        assert_eq!(a.to_string(), format!("{:016x}{:016x}", 7, 1));
        assert_eq!(
            CorrelationId::new(u64::MAX, 5).to_string(),
            format!("{:x}{:016x}", u64::MAX, 11)
        );
    }

    #[test]
    fn stats_count_every_outcome_and_hold_latency_within_a_tenth_of_a_percent() {
        let mut stats = EdgeStats::default();
        for i in 1..=1000u64 {
            let status = if i % 10 == 0 { 503 } else { 200 };
            let record = EdgeRecord::new("a", 0, 0, i * 1_000_000, EdgeOutcome::Status(status));
            stats.record(&record);
        }
        stats.record(&EdgeRecord::new("a", 0, 0, 5, EdgeOutcome::Timeout));
        assert_eq!(stats.requests(), 1001);
        assert_eq!(stats.succeeded(), 900);
        assert_eq!(stats.outcomes[&EdgeOutcome::Timeout], 1);
        let p99 = stats.latency_at(99.0).as_secs_f64();
        assert!((p99 - 0.990).abs() <= 0.001, "p99 {p99}");
        // Sub-microsecond latencies count as 1 µs rather than vanish.
        assert_eq!(stats.latency_us.min(), 1);
    }
}
