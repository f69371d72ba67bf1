//! What every fault kind is, as its own file implements it ([`Kind`]):
//! where it acts, its checks, and what it does to one HTTP call. The one
//! list of kinds (`fault_kinds!` in `mod.rs`) dispatches to it.
//!
//! Adding a kind: its file (the type, serde, `impl Kind`), a `mod` line and
//! a line in the list. A TCP kind's work on the bytes of a connection is
//! the proxy's (`proxy/tcp/pump.rs`), which reads the toxics it is given.

use rand::Rng;
use tokio::time::Instant;

use super::set::Decision;
use super::throttle::TokenBucket;

/// What a kind acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActsOn {
    /// HTTP requests: a stub's or an HTTP proxy's.
    Http,
    /// A TCP proxy's connections.
    Tcp,
    /// Both (`latency`).
    Both,
}

/// One HTTP call a fault was drawn for, as it decides it.
pub(crate) struct Call<'a, R: ?Sized> {
    /// The call's own generator (decisions depend only on the seed and the arrival order).
    pub(crate) rng: &'a mut R,
    /// Calls in flight when it arrived.
    pub(crate) in_flight_before: u64,
    /// When it arrived.
    pub(crate) now: Instant,
    /// The fault's token bucket, for a throttle with a rate.
    pub(crate) bucket: Option<&'a mut TokenBucket>,
    /// What the faults drawn before it decided; it adds to it.
    pub(crate) decision: &'a mut Decision,
}

/// A fault kind.
pub(crate) trait Kind {
    /// What it acts on.
    const ACTS_ON: ActsOn;

    /// Checks its parameters: a message relative to its own keys
    /// (`rate must be ...`); the caller names the kind.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// What it does to one HTTP call it was drawn for: adds to
    /// `call.decision`, and says whether it applied (a throttle that lets a
    /// call pass did not). A kind that acts on connections only does nothing.
    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        let _ = call;
        false
    }
}
