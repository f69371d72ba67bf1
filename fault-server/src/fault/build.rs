//! Faults built in Rust: a constructor per kind on [`Fault`]
//! (`Fault::latency(d)`, `Fault::error(503)`, `Fault::reset()`), each
//! returning the kind's own type so that its options chain on
//! (`Fault::error(503).body("down").retry_after(d)`), and the options every
//! fault shares (`.probability(p)`, `.first(n)`, `.when(matcher)`,
//! `.lease(d)`, `.named(name)`, `.stream(s)`) on the kind types and on
//! [`Fault`] alike. Every kind type is a `Fault` through `From`, so any of
//! them goes where a fault is taken ([`crate::FaultServer::add_fault`]).
//! Files and the control API keep the JSON/TOML form.
//!
//! ```
//! use std::time::Duration;
//! use fault_server::{Fault, RequestMatch};
//!
//! let slow = Fault::latency(Duration::from_secs(8));
//! let flaky = Fault::error(503).retry_after(Duration::from_secs(30)).probability(0.3);
//! let twice = Fault::error(500).body("boom").first(2);
//! let charges = Fault::reset().when(RequestMatch::new(Some("POST"), Some("/charge"), []).unwrap());
//! assert_eq!(Fault::from(slow).kind.name().as_str(), "latency");
//! assert_eq!(flaky.probability, 0.3);
//! assert_eq!(twice.first, Some(2));
//! assert!(charges.matcher.is_some());
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    BandwidthFault, CloseFault, DownFault, ErrorFault, HangEnd, HangFault, LatencyFault,
    LimitDataFault, MalformedFault, ResetFault, ResetPeerFault, SaturationFault, SlicerFault,
    SlowBodyFault, SlowCloseFault, ThrottleFault, TimeoutFault,
};
use crate::{Distribution, Fault};

/// One constructor per kind.
impl Fault {
    /// `latency`: every call delayed by `delay`.
    pub fn latency(delay: Duration) -> LatencyFault {
        LatencyFault(Distribution::Fixed(delay))
    }

    /// `latency`: every call delayed by a draw evenly spread from `min` to `max`.
    pub fn latency_between(min: Duration, max: Duration) -> LatencyFault {
        LatencyFault(Distribution::Uniform { min, max })
    }

    /// `latency`: every call delayed by a draw from `distribution` (a
    /// log-normal's long tail, say).
    pub fn latency_from(distribution: Distribution) -> LatencyFault {
        LatencyFault(distribution)
    }

    /// `error`: answered with `status` (200 to 599) and an empty body; see
    /// [`ErrorFault::body`], [`ErrorFault::header`], [`ErrorFault::retry_after`].
    pub fn error(status: u16) -> ErrorFault {
        ErrorFault {
            status,
            body: String::new(),
            headers: BTreeMap::new(),
            retry_after: None,
        }
    }

    /// `throttle`: a token bucket of `rate` calls per second (burst: the
    /// rate rounded up); calls beyond it rejected with 429 and `Retry-After`.
    pub fn throttle(rate: f64) -> ThrottleFault {
        ThrottleFault {
            rate: Some(rate),
            burst: None,
            max_in_flight: None,
            status: 429,
            retry_after: None,
        }
    }

    /// `throttle`: a call arriving while `calls` are in flight is rejected
    /// with 429 and `Retry-After` (a concurrency limit, a full bulkhead).
    pub fn throttle_in_flight(calls: u64) -> ThrottleFault {
        ThrottleFault {
            rate: None,
            burst: None,
            max_in_flight: Some(calls),
            status: 429,
            retry_after: None,
        }
    }

    /// `hang`: held without an answer until the client gives up; see
    /// [`HangFault::after`].
    pub fn hang() -> HangFault {
        HangFault::default()
    }

    /// `reset`: the connection reset instead of an answer.
    pub fn reset() -> ResetFault {
        ResetFault {}
    }

    /// `close`: the connection closed without an answer.
    pub fn close() -> CloseFault {
        CloseFault {}
    }

    /// `malformed`: bytes that are not HTTP instead of an answer.
    pub fn malformed() -> MalformedFault {
        MalformedFault::default()
    }

    /// `slow_body`: the answer's body sent at `bytes_per_second`.
    pub fn slow_body(bytes_per_second: u64) -> SlowBodyFault {
        SlowBodyFault { bytes_per_second }
    }

    /// `saturation`: latency `base` × (1 + in flight ÷ `workers`), a service
    /// whose queue grows with its load.
    pub fn saturation(base: Duration, workers: u32) -> SaturationFault {
        SaturationFault {
            base,
            workers,
            max: None,
        }
    }

    /// TCP `bandwidth`: at most `kilobytes_per_second` (1,000 bytes) go through.
    pub fn bandwidth(kilobytes_per_second: u64) -> BandwidthFault {
        BandwidthFault {
            rate: kilobytes_per_second,
        }
    }

    /// TCP `slicer`: data cut into slices of about `average_size` bytes
    /// (± `size_variation`), `delay` apart.
    pub fn slicer(average_size: u64, size_variation: u64, delay: Duration) -> SlicerFault {
        SlicerFault {
            average_size,
            size_variation,
            delay,
        }
    }

    /// TCP `timeout`: no data gets through; the connection closed after
    /// `after` (held open with zero).
    pub fn timeout(after: Duration) -> TimeoutFault {
        TimeoutFault { timeout: after }
    }

    /// TCP `reset_peer`: both sides reset `after` the connection met it.
    pub fn reset_peer(after: Duration) -> ResetPeerFault {
        ResetPeerFault { timeout: after }
    }

    /// TCP `slow_close`: a close reaches the other side `delay` late.
    pub fn slow_close(delay: Duration) -> SlowCloseFault {
        SlowCloseFault { delay }
    }

    /// TCP `limit_data`: the connection closed once `bytes` went through.
    pub fn limit_data(bytes: u64) -> LimitDataFault {
        LimitDataFault { bytes }
    }

    /// TCP `down`: new connections refused; open ones live on.
    pub fn down() -> DownFault {
        DownFault {}
    }
}

impl ErrorFault {
    /// With this response body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// With this response header too.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// With `Retry-After` (whole seconds, rounded up).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl ThrottleFault {
    /// A token bucket holding at most `calls` (default: the rate rounded up).
    pub fn burst(mut self, calls: u32) -> Self {
        self.burst = Some(calls);
        self
    }

    /// Rejections answered with `status` (a 4xx or 5xx; 429 by default).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Rejections carry this `Retry-After` (default: a token bucket's time
    /// to its next token; one second for an in-flight cap).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl HangFault {
    /// Held for `after` only, then ended as `then` says (answered with the
    /// stub's response, closed, or reset).
    pub fn after(mut self, after: Duration, then: HangEnd) -> Self {
        self.after = Some(after);
        self.then = then;
        self
    }
}

impl MalformedFault {
    /// Writes `text` instead of the built-in garbage.
    pub fn bytes(mut self, text: impl Into<String>) -> Self {
        self.bytes = Some(text.into());
        self
    }
}

impl SaturationFault {
    /// The delay capped at `max`.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Stream;

    #[test]
    fn built_faults_are_the_faults_their_json_describes() {
        let same = |built: Fault, json: &str| {
            let parsed: Fault = serde_json::from_str(json).unwrap();
            assert_eq!(built, parsed, "{json}");
            assert_eq!(built.validate(), Ok(()), "{json}");
        };
        let s = Duration::from_secs;
        same(
            Fault::latency(s(8)).into(),
            r#"{"latency": {"fixed": "8s"}}"#,
        );
        same(
            Fault::latency_between(s(1), s(2)).into(),
            r#"{"latency": {"uniform": {"min": "1s", "max": "2s"}}}"#,
        );
        same(
            Fault::error(503)
                .body("down")
                .header("x-a", "b")
                .retry_after(s(30))
                .probability(0.3),
            r#"{"error": {"status": 503, "body": "down", "headers": {"x-a": "b"}, "retry_after": "30s"}, "probability": 0.3}"#,
        );
        same(
            Fault::throttle(5.0).burst(2).status(503).first(3),
            r#"{"throttle": {"rate": 5.0, "burst": 2, "status": 503}, "first": 3}"#,
        );
        same(
            Fault::throttle_in_flight(10).into(),
            r#"{"throttle": {"max_in_flight": 10}}"#,
        );
        same(
            Fault::hang().after(s(1), HangEnd::Close).lease(s(60)),
            r#"{"hang": {"after": "1s", "then": "close"}, "lease": "1m"}"#,
        );
        same(
            Fault::reset().named("boom"),
            r#"{"reset": {}, "name": "boom"}"#,
        );
        same(Fault::close().into(), r#"{"close": {}}"#);
        same(
            Fault::malformed().bytes("x").into(),
            r#"{"malformed": {"bytes": "x"}}"#,
        );
        same(
            Fault::slow_body(10).into(),
            r#"{"slow_body": {"bytes_per_second": 10}}"#,
        );
        same(
            Fault::saturation(Duration::from_millis(200), 4)
                .max(s(2))
                .into(),
            r#"{"saturation": {"base": "200ms", "workers": 4, "max": "2s"}}"#,
        );
        same(
            Fault::bandwidth(100).stream(Stream::Upstream),
            r#"{"bandwidth": {"rate": 100}, "stream": "upstream"}"#,
        );
        same(
            Fault::slicer(100, 10, Duration::from_micros(5)).into(),
            r#"{"slicer": {"average_size": 100, "size_variation": 10, "delay": "5us"}}"#,
        );
        same(
            Fault::timeout(s(2)).into(),
            r#"{"timeout": {"timeout": "2s"}}"#,
        );
        same(
            Fault::reset_peer(s(2)).into(),
            r#"{"reset_peer": {"timeout": "2s"}}"#,
        );
        same(
            Fault::slow_close(s(2)).into(),
            r#"{"slow_close": {"delay": "2s"}}"#,
        );
        same(
            Fault::limit_data(1_000).into(),
            r#"{"limit_data": {"bytes": 1000}}"#,
        );
        same(Fault::down().into(), r#"{"down": {}}"#);
    }

    #[test]
    fn a_built_fault_is_checked_like_one_read_from_a_file() {
        let error = Fault::from(Fault::error(99)).validate().unwrap_err();
        assert!(error.starts_with("error: "), "{error}");
        let error = Fault::from(Fault::throttle(0.0)).validate().unwrap_err();
        assert!(error.contains("rate must be a positive number"), "{error}");
    }
}
