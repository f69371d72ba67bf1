//! Who may run a function now: the naive account pool (one shared
//! semaphore: when it is exhausted every function is throttled with 429), or
//! the hardened reserves (tower's `ConcurrencyLimit` per function, behind
//! tower's `LoadShed`, so a full reserve answers 503 at once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What each function has reserved in the hardened profile (85 of the 100).
pub(crate) const RESERVES: [(&str, usize); 5] = [
    ("checkout", 30),
    ("search", 20),
    ("profile", 15),
    ("webhook", 10),
    ("crm_sync", 10),
];

/// The reserve of `function` (0 for an unknown one).
pub(crate) fn reserve_of(function: &str) -> usize {
    RESERVES
        .iter()
        .find(|(name, _)| *name == function)
        .map_or(0, |(_, n)| *n)
}

/// Invocations of one function running now.
#[derive(Debug, Default)]
pub(crate) struct Gauge(AtomicUsize);

impl Gauge {
    /// Counts an invocation until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> GaugeGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(Arc::clone(self))
    }

    pub(crate) fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// See [`Gauge::enter`].
pub(crate) struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}
