//! The one monotonic clock every journal of a server shares.

use tokio::time::Instant;

/// Nanoseconds since the fault server started, on tokio's monotonic clock (so a
/// test with a paused clock sees paused time).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// The instant that reads as zero.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// `at` as nanoseconds since the origin (0 for instants before it).
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Now, as nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }
}
