//! `saturation`: latency that grows with the dependency's in-flight count.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Call, Kind};

/// Models a service with `workers` workers that each take `base` per call. A
/// call that arrives while `n` calls are already in flight waits behind them:
///
/// ```text
/// delay = base × (1 + n / workers)      capped at `max` when set
/// ```
///
/// With one call at a time it answers in `base`; with `workers` in flight, in
/// 2 × base; load piles on latency linearly, as a real saturated pool does.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// saturation = { base = "200ms", workers = 10, max = "8s" }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaturationFault {
    /// Latency of a call that finds the service idle.
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    /// How many calls the service serves at once before they queue.
    pub workers: u32,
    /// Upper bound on the delay.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<Duration>,
}

impl Kind for SaturationFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("workers must be at least 1".into());
        }
        super::check_duration("base", self.base)?;
        match self.max {
            Some(max) => super::check_duration("max", max),
            None => Ok(()),
        }
    }

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        call.decision.delay += self.delay(call.in_flight_before);
        true
    }
}

impl SaturationFault {
    /// The delay of a call that arrives while `in_flight_before` calls are in flight.
    pub fn delay(&self, in_flight_before: u64) -> Duration {
        let factor = 1.0 + in_flight_before as f64 / f64::from(self.workers.max(1));
        let delay =
            Duration::try_from_secs_f64(self.base.as_secs_f64() * factor).unwrap_or(Duration::MAX);
        match self.max {
            Some(max) => delay.min(max),
            None => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_linearly_with_in_flight_and_stops_at_max() {
        let fault = SaturationFault {
            base: Duration::from_millis(200),
            workers: 10,
            max: Some(Duration::from_secs(1)),
        };
        assert_eq!(fault.delay(0), Duration::from_millis(200));
        assert_eq!(fault.delay(10), Duration::from_millis(400));
        assert_eq!(fault.delay(15), Duration::from_millis(500));
        assert_eq!(fault.delay(1_000), Duration::from_secs(1));
    }
}
