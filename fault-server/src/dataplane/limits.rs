//! How many connections the data plane holds at once, and how long an idle
//! one may stay: a flood of idle connections must not take the file
//! descriptors the control API needs to answer.
//!
//! Every dependency of a server draws from one pool of connection permits,
//! [`default_max_connections`] unless configured: the process's open-file
//! limit less a reserve for the control API, listeners and files. A
//! connection accepted beyond the cap is reset at once (it costs a
//! descriptor for an instant) and counted as refused. With an idle timeout,
//! a connection with no call in flight and none arriving or ending for that
//! long is closed (a slow-loris sending a byte at a time is idle too: bytes
//! that make no request are not a call).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Clock;

/// Descriptors kept back from the data plane: a quarter of the open-file
/// limit, at most this many. Half of them at most go to control API
/// connections ([`control_max_connections`]), the rest to listeners, files
/// and the runtime.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The process's soft open-file limit (`RLIMIT_NOFILE`), and the reserve.
fn budget() -> (u64, u64) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    (limit, (limit / 4).min(RESERVED_DESCRIPTORS))
}

/// The data plane's cap on connections, over every dependency of a server,
/// when none is configured: the process's soft open-file limit less the
/// reserve ([`RESERVED_DESCRIPTORS`], or a quarter of the limit when that is
/// less), at least 64. 19,744 under a limit of 20,000; 192 under 256.
pub fn default_max_connections() -> usize {
    let (limit, reserve) = budget();
    usize::try_from(limit.saturating_sub(reserve).max(64)).unwrap_or(usize::MAX)
}

/// Connections the control API serves at once: half the reserve, from 8 to
/// 128 (128 under a limit of 20,000; 32 under 256). A new one beyond evicts
/// the oldest.
pub fn control_max_connections() -> usize {
    usize::try_from((budget().1 / 2).clamp(8, 128)).unwrap_or(128)
}

/// The shared pool of connection permits and the idle timeout.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    permits: Arc<Semaphore>,
    pub(crate) idle_timeout: Option<Duration>,
}

impl ConnectionLimits {
    pub(crate) fn new(max_connections: usize, idle_timeout: Option<Duration>) -> Self {
        ConnectionLimits {
            permits: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            idle_timeout,
        }
    }

    /// A permit for one more connection, unless the cap is reached.
    pub(crate) fn admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }
}

/// A connection's calls in flight and when one last arrived or ended, in
/// nanoseconds on the dependency's clock.
#[derive(Debug)]
pub(crate) struct Activity {
    calls: AtomicUsize,
    last_ns: AtomicU64,
}

impl Activity {
    pub(crate) fn new(now_ns: u64) -> Self {
        Activity {
            calls: AtomicUsize::new(0),
            last_ns: AtomicU64::new(now_ns),
        }
    }

    pub(crate) fn arrived(&self, now_ns: u64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.last_ns.fetch_max(now_ns, Ordering::Relaxed);
    }

    pub(crate) fn departed(&self, now_ns: u64) {
        self.calls.fetch_sub(1, Ordering::Relaxed);
        self.last_ns.fetch_max(now_ns, Ordering::Relaxed);
    }

    /// Returns once the connection has had no call in flight and no arrival
    /// or departure for `timeout`.
    pub(crate) async fn idle_for(&self, timeout: Duration, clock: Clock) {
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        loop {
            let now = clock.now_ns();
            let due = self
                .last_ns
                .load(Ordering::Relaxed)
                .saturating_add(timeout_ns);
            let wait = if self.calls.load(Ordering::Relaxed) > 0 {
                timeout_ns
            } else if now >= due {
                return;
            } else {
                due - now
            };
            tokio::time::sleep(Duration::from_nanos(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_with_no_call_in_flight_for_the_whole_timeout() {
        let clock = Clock::start();
        let activity = Arc::new(Activity::new(clock.now_ns()));
        activity.arrived(clock.now_ns());
        let idle = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move {
                activity.idle_for(Duration::from_secs(1), clock).await;
                clock.now_ns()
            }
        });
        // A call in flight for 5 s: not idle, however long it takes.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!idle.is_finished());
        activity.departed(clock.now_ns());
        let at = idle.await.unwrap();
        assert_eq!(at, Duration::from_secs(6).as_nanos() as u64);
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_below_the_open_file_limit() {
        let (limit, reserve) = budget();
        let cap = default_max_connections() as u64;
        assert_eq!(cap, limit - reserve);
        assert!(reserve <= RESERVED_DESCRIPTORS && reserve <= limit / 4);
        assert!(control_max_connections() as u64 <= reserve / 2);
    }
}
