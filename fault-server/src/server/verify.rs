//! Waiting for calls to settle, and expectations on how many calls a
//! dependency gets, verified when the server is dropped (as wiremock-rs's
//! `expect` is) or at once with [`FaultServer::verify`].

use std::fmt;
use std::ops::{Range, RangeFrom, RangeInclusive, RangeTo, RangeToInclusive};
use std::time::{Duration, Instant};

use super::FaultServer;
use crate::journal::CallRecord;
use crate::registry::Registry;
use crate::ControlError;

/// How many calls are expected: exactly `n` (`3`), or a range (`1..`, `2..=4`, `..3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Times {
    low: u64,
    high: Option<u64>,
}

impl Times {
    fn contains(&self, n: u64) -> bool {
        n >= self.low && self.high.is_none_or(|high| n <= high)
    }

    /// "call" after a bound of one (`exactly 1 call`, `at most 1 call`), else "calls".
    fn noun(&self) -> &'static str {
        match self.high {
            Some(1) => "call",
            None if self.low == 1 => "call",
            _ => "calls",
        }
    }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.high {
            Some(high) if high == self.low => write!(f, "exactly {high}"),
            Some(high) if self.low == 0 => write!(f, "at most {high}"),
            Some(high) => write!(f, "{} to {high}", self.low),
            None => write!(f, "at least {}", self.low),
        }
    }
}

impl From<u64> for Times {
    fn from(n: u64) -> Self {
        Times {
            low: n,
            high: Some(n),
        }
    }
}

/// Refuses a range no count is in: an expectation nothing can meet is a
/// mistake in the test.
fn not_empty(empty: bool, range: &dyn fmt::Debug) {
    assert!(
        !empty,
        "expect_calls: {range:?} is empty: no number of calls is in it"
    );
}

impl From<RangeInclusive<u64>> for Times {
    fn from(range: RangeInclusive<u64>) -> Self {
        not_empty(range.is_empty(), &range);
        Times {
            low: *range.start(),
            high: Some(*range.end()),
        }
    }
}

impl From<Range<u64>> for Times {
    fn from(range: Range<u64>) -> Self {
        not_empty(range.is_empty(), &range);
        Times {
            low: range.start,
            high: Some(range.end.saturating_sub(1)),
        }
    }
}

impl From<RangeFrom<u64>> for Times {
    fn from(range: RangeFrom<u64>) -> Self {
        Times {
            low: range.start,
            high: None,
        }
    }
}

impl From<RangeTo<u64>> for Times {
    fn from(range: RangeTo<u64>) -> Self {
        not_empty(range.end == 0, &range);
        Times {
            low: 0,
            high: Some(range.end.saturating_sub(1)),
        }
    }
}

impl From<RangeToInclusive<u64>> for Times {
    fn from(range: RangeToInclusive<u64>) -> Self {
        Times {
            low: 0,
            high: Some(range.end),
        }
    }
}

/// Calls a dependency is expected to get.
#[derive(Debug, Clone)]
pub(super) struct Expected {
    dependency: String,
    times: Times,
}

/// Expectations that did not hold: what was expected and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct Unmet(pub Vec<String>);

impl FaultServer {
    /// Waits (asynchronously) until `dependency` has no call in flight, every
    /// call it received ended and journaled: a client that gave up is
    /// journaled a moment later, when the server sees its connection go.
    ///
    /// # Errors
    /// [`ControlError::UnknownDependency`]; [`ControlError::Invalid`] when
    /// calls are still in flight after `timeout` (a hang, say).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// # use std::time::Duration;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// // ... the system under test calls the crm and gives up ...
    /// server.wait_until_idle("crm", Duration::from_secs(5)).await?;
    /// assert!(server.journal("crm")?.iter().all(|call| call.departure_ns.is_some()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_until_idle(
        &self,
        dependency: &str,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        // Polled on the server's runtime, so a caller on a paused clock
        // waits in the server's time, not by racing its own clock ahead.
        let registry = std::sync::Arc::clone(self.registry());
        let dependency = dependency.to_owned();
        let waited = self.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            while !idle(
                &registry,
                &dependency,
                tokio::time::Instant::now() >= deadline,
            )? {
                tokio::time::sleep(POLL).await;
            }
            Ok(())
        });
        waited.await.unwrap_or(Err(ControlError::ShuttingDown))
    }

    /// As [`FaultServer::wait_until_idle`], blocking the calling thread (for
    /// a plain `#[test]`).
    ///
    /// # Errors
    /// As [`FaultServer::wait_until_idle`].
    pub fn wait_until_idle_blocking(
        &self,
        dependency: &str,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        let deadline = Instant::now() + timeout;
        while !idle(self.registry(), dependency, Instant::now() >= deadline)? {
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Expects `dependency` to get `times` calls (a number, or a range:
    /// `1..`, `2..=4`; an empty range panics) over the server's life: checked when the server is
    /// dropped (a panic naming what was expected and listing what was seen,
    /// unless the test is panicking already) or by [`FaultServer::verify`].
    ///
    /// ```should_panic
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("payments")).start().unwrap();
    /// server.expect_calls("payments", 1..);
    /// // ... the system under test never called payments ...
    /// drop(server); // panics: expected at least 1 call at `payments`, saw 0
    /// ```
    pub fn expect_calls(&self, dependency: &str, times: impl Into<Times>) {
        self.expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Expected {
                dependency: dependency.to_owned(),
                times: times.into(),
            });
    }

    /// Checks every expectation now, and forgets them (the drop checks none
    /// twice). Calls still in flight count: they have arrived.
    ///
    /// # Errors
    /// [`Unmet`], one line per expectation that did not hold, with the calls seen.
    ///
    /// ```
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start().unwrap();
    /// server.expect_calls("crm", 2);
    /// let unmet = server.verify().unwrap_err();
    /// assert_eq!(unmet.to_string(), "expected exactly 2 calls at `crm`, saw 0");
    /// assert!(server.verify().is_ok(), "checked once");
    /// ```
    pub fn verify(&self) -> Result<(), Unmet> {
        let expected =
            std::mem::take(&mut *self.expected.lock().unwrap_or_else(|e| e.into_inner()));
        let unmet: Vec<String> = expected.iter().filter_map(|e| self.unmet(e)).collect();
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(Unmet(unmet))
        }
    }

    fn unmet(&self, expected: &Expected) -> Option<String> {
        let name = &expected.dependency;
        let (calls, seen) = match (self.stats(name), self.journal(name)) {
            (Ok(stats), Ok(records)) => (stats.total.calls, records),
            (Err(error), _) | (_, Err(error)) => {
                return Some(format!(
                    "expected {} {} at `{name}`: {error}",
                    expected.times,
                    expected.times.noun()
                ))
            }
        };
        if expected.times.contains(calls) {
            return None;
        }
        let mut line = format!(
            "expected {} {} at `{name}`, saw {calls}",
            expected.times,
            expected.times.noun()
        );
        for record in seen.iter().take(10) {
            line.push_str(&format!("\n  {}", describe(record)));
        }
        if seen.len() > 10 {
            line.push_str(&format!("\n  ... and {} more", seen.len() - 10));
        }
        Some(line)
    }
}

/// How often a wait for calls to settle looks.
const POLL: Duration = Duration::from_millis(2);

/// Whether `dependency` has no call in flight; once `timed_out`, an error
/// naming those still held.
fn idle(registry: &Registry, dependency: &str, timed_out: bool) -> Result<bool, ControlError> {
    let in_flight = registry.in_flight(dependency)?;
    if in_flight > 0 && timed_out {
        return Err(ControlError::invalid(
            dependency,
            match in_flight {
                1 => "1 call still in flight when the wait ran out".to_owned(),
                n => format!("{n} calls still in flight when the wait ran out"),
            },
        ));
    }
    Ok(in_flight == 0)
}

/// A call as the report of an unmet expectation lists it.
fn describe(record: &CallRecord) -> String {
    let ended = match record.status {
        Some(status) => format!("answered {status}"),
        None => record.outcome.as_str().replace('_', " "),
    };
    let faults: Vec<&str> = record.faults.iter().map(|k| k.as_str()).collect();
    let faults = if faults.is_empty() {
        String::new()
    } else {
        format!(", faults: {}", faults.join(", "))
    };
    format!(
        "#{} {} {}: {ended}{faults}",
        record.seq, record.method, record.path
    )
}

#[cfg(test)]
mod tests {
    use super::Times;

    #[test]
    fn times_read_as_said() {
        let cases: [(Times, &str, &[u64], &[u64]); 5] = [
            (3.into(), "exactly 3", &[3], &[2, 4]),
            ((1..).into(), "at least 1", &[1, 100], &[0]),
            ((2..=4).into(), "2 to 4", &[2, 4], &[1, 5]),
            ((..3).into(), "at most 2", &[0, 2], &[3]),
            ((1..3).into(), "1 to 2", &[1, 2], &[0, 3]),
        ];
        for (times, said, inside, outside) in cases {
            assert_eq!(times.to_string(), said);
            assert!(inside.iter().all(|n| times.contains(*n)), "{said}");
            assert!(!outside.iter().any(|n| times.contains(*n)), "{said}");
        }
    }

    #[test]
    fn one_call_is_one_call() {
        for (times, noun) in [
            (Times::from(1), "call"),
            ((..2).into(), "call"),
            ((1..).into(), "call"),
            (Times::from(2), "calls"),
            ((1..=2).into(), "calls"),
            (Times::from(0), "calls"),
        ] {
            assert_eq!(times.noun(), noun, "{times}");
        }
    }

    #[test]
    fn an_empty_range_is_refused_rather_than_met_by_nothing() {
        for empty in [
            std::panic::catch_unwind(|| Times::from(..0)),
            std::panic::catch_unwind(|| Times::from(3..3)),
            #[allow(clippy::reversed_empty_ranges)]
            std::panic::catch_unwind(|| Times::from(4..=2)),
        ] {
            assert!(empty.is_err());
        }
    }
}
