//! `throttle`: reject calls over a rate (token bucket) or over an in-flight cap.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::kind::{ActsOn, Call, Kind};
use super::set::Ending;
use crate::response::ResponseTemplate;

/// Rejects calls beyond a limit with `status` (429 unless set) and a
/// `Retry-After`. Calls within the limit pass on to the rest of the fault set.
///
/// Two limits, one per fault:
/// - a token bucket: `rate` tokens per second, holding at most `burst` (default:
///   the rate rounded up, at least 1); each call takes a token or is rejected.
///   `Retry-After` is the time until the next token, rounded up to a second.
/// - a cap on in-flight calls at this dependency: a call that arrives while
///   `max_in_flight` calls are already in flight is rejected.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// throttle = { rate = 50.0, burst = 10 }
/// [[faults]]
/// throttle = { max_in_flight = 30, status = 503, retry_after = "2s" }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleFault {
    /// Tokens added per second (token bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Bucket size (token bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Cap on calls in flight at the dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u64>,
    /// Status of a rejection: 429 (default) or 503, or any other 4xx/5xx.
    #[serde(default = "default_status")]
    pub status: u16,
    /// `Retry-After` of a rejection; for a token bucket, default the time to the next token.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<Duration>,
}

fn default_status() -> u16 {
    429
}

impl Kind for ThrottleFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn validate(&self) -> Result<(), String> {
        match (self.rate, self.max_in_flight) {
            (Some(_), Some(_)) => {
                return Err("set either rate (token bucket) or max_in_flight, not both".into())
            }
            (None, None) => return Err("set rate (token bucket) or max_in_flight".into()),
            (Some(rate), None) if !(rate.is_finite() && rate > 0.0) => {
                return Err(format!("rate must be a positive number, got {rate}"))
            }
            (None, Some(_)) if self.burst.is_some() => {
                return Err("burst goes with rate, not with max_in_flight".into())
            }
            _ => {}
        }
        if self.burst == Some(0) {
            return Err("burst must be at least 1".into());
        }
        if !(400..=599).contains(&self.status) {
            return Err(format!("status must be 4xx or 5xx, got {}", self.status));
        }
        match self.retry_after {
            Some(after) => super::check_duration("retry_after", after),
            None => Ok(()),
        }
    }

    /// Rejects the call when it is over the limit; a call within it passes
    /// on, and the throttle did not apply to it.
    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        let bucket = call.bucket.as_deref_mut();
        match self.limit(bucket, call.in_flight_before, call.now) {
            ThrottleDecision::Pass => false,
            ThrottleDecision::Reject { retry_after } => {
                let status = http::StatusCode::from_u16(self.status)
                    .unwrap_or(http::StatusCode::TOO_MANY_REQUESTS);
                let rejection = ResponseTemplate::rejection(status, retry_after);
                call.decision.terminal = Some(Ending::Respond(rejection));
                true
            }
        }
    }
}

impl ThrottleFault {
    fn bucket_size(&self, rate: f64) -> f64 {
        match self.burst {
            Some(b) => f64::from(b),
            None => rate.ceil().max(1.0),
        }
    }
}

/// The per-fault state a throttle keeps between calls.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    refilled_at: Instant,
}

/// What a throttle decided for one call.
enum ThrottleDecision {
    Pass,
    Reject { retry_after: Duration },
}

impl ThrottleFault {
    pub(crate) fn new_bucket(&self, now: Instant) -> Option<TokenBucket> {
        self.rate.map(|rate| TokenBucket {
            tokens: self.bucket_size(rate),
            refilled_at: now,
        })
    }

    /// Whether one call is over the limit. `bucket` is the state from [`ThrottleFault::new_bucket`].
    fn limit(
        &self,
        bucket: Option<&mut TokenBucket>,
        in_flight_before: u64,
        now: Instant,
    ) -> ThrottleDecision {
        if let Some(cap) = self.max_in_flight {
            return if in_flight_before >= cap {
                ThrottleDecision::Reject {
                    retry_after: self.retry_after.unwrap_or(Duration::from_secs(1)),
                }
            } else {
                ThrottleDecision::Pass
            };
        }
        let (Some(rate), Some(bucket)) = (self.rate, bucket) else {
            return ThrottleDecision::Pass;
        };
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(self.bucket_size(rate));
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            ThrottleDecision::Pass
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            ThrottleDecision::Reject {
                retry_after: self
                    .retry_after
                    .unwrap_or_else(|| Duration::from_secs_f64(wait.clamp(0.0, 86_400.0))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(rate: f64, burst: u32) -> ThrottleFault {
        ThrottleFault {
            rate: Some(rate),
            burst: Some(burst),
            max_in_flight: None,
            status: 429,
            retry_after: None,
        }
    }

    #[test]
    fn a_token_bucket_passes_its_burst_then_refills_at_its_rate() {
        let fault = bucket(10.0, 3);
        let start = Instant::now();
        let mut state = fault.new_bucket(start).unwrap();
        let passes = (0..5)
            .filter(|_| {
                matches!(
                    fault.limit(Some(&mut state), 0, start),
                    ThrottleDecision::Pass
                )
            })
            .count();
        assert_eq!(passes, 3);
        let later = start + Duration::from_millis(200);
        let passes = (0..5)
            .filter(|_| {
                matches!(
                    fault.limit(Some(&mut state), 0, later),
                    ThrottleDecision::Pass
                )
            })
            .count();
        assert_eq!(passes, 2, "200 ms at 10/s refills two tokens");
    }

    #[test]
    fn a_rejection_says_when_the_next_token_comes() {
        let fault = bucket(0.5, 1);
        let now = Instant::now();
        let mut state = fault.new_bucket(now).unwrap();
        assert!(matches!(
            fault.limit(Some(&mut state), 0, now),
            ThrottleDecision::Pass
        ));
        match fault.limit(Some(&mut state), 0, now) {
            ThrottleDecision::Reject { retry_after } => {
                assert_eq!(retry_after, Duration::from_secs(2))
            }
            ThrottleDecision::Pass => panic!("the bucket is empty"),
        }
    }

    #[test]
    fn an_in_flight_cap_rejects_only_at_the_cap() {
        let fault = ThrottleFault {
            rate: None,
            burst: None,
            max_in_flight: Some(2),
            status: 503,
            retry_after: None,
        };
        let now = Instant::now();
        assert!(matches!(fault.limit(None, 1, now), ThrottleDecision::Pass));
        assert!(matches!(
            fault.limit(None, 2, now),
            ThrottleDecision::Reject { .. }
        ));
    }

    #[test]
    fn both_limits_at_once_are_refused() {
        let mut fault = bucket(1.0, 1);
        fault.max_in_flight = Some(3);
        assert!(fault.validate().unwrap_err().contains("not both"));
    }
}
