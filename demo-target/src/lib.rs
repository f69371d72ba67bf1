//! # faultline-demo
//!
//! faultline's demo target: a small HTTP service that behaves like the
//! serverless platform of the seed story, hosting a shop. Five functions,
//! each an HTTP path:
//!
//! | function | calls |
//! |---|---|
//! | `/checkout` | payments |
//! | `/search` | catalog |
//! | `/profile` | profiles (the profile store) |
//! | `/webhook` | nothing: accepts an event |
//! | `/crm_sync` | crm |
//!
//! All draw on one account concurrency pool of [`POOL`] that throttles with
//! 429 when exhausted, as the platform does. Every dependency call carries
//! the edge request's `x-faultline-request` and `traceparent`, and its
//! attempt number in `x-faultline-attempt`, so faultline ties each call to
//! the request that caused it.
//!
//! Two profiles:
//!
//! - [`Profile::Naive`]: the one shared pool; a gateway that gives up after
//!   [`GATEWAY_LIMIT`] but lets the function run on (holding its slot); three
//!   attempts at each layer, at once (gateway and function: 3 × 3 = 9 calls
//!   per request when a dependency is down); a [`NAIVE_CALL_TIMEOUT`] per
//!   call, longer than the gateway waits; crm called inline; no breaker, no
//!   shedding, no alerts.
//! - [`Profile::Hardened`]: reserved concurrency per function (tower's
//!   `ConcurrencyLimit`) shedding with 503 and `Retry-After` when full
//!   (tower's `LoadShed`); a [`HARDENED_BUDGET`] per request, passed
//!   downstream in `x-deadline-ms`, each call's timeout half what is left
//!   (at most 1 s); up to three attempts through tower's `Retry`, waiting an
//!   equal-jittered exponential backoff and never past the budget; a circuit
//!   breaker per dependency; crm sync answered 202 at once and delivered by
//!   an in-process queue with idempotency keys, exactly once; an
//!   Alertmanager webhook when a function's reserve runs hot.
//!
//! The seed's numbers are scaled down ten times for the pool, the timeouts
//! and the gateway (1,000 → 100; 30 s → 3 s; 29 s → 2.9 s), so the
//! checklist runs in about a minute.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use faultline_demo::{DemoConfig, Profile};
//! let mut config = DemoConfig::new(Profile::Hardened);
//! config.dependencies.insert("payments".into(), "http://127.0.0.1:9001".into());
//! let demo = faultline_demo::start(config).await?;
//! println!("shop at http://{}", demo.addr());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alerts;
pub mod breaker;
mod call;
mod functions;
mod queue;
mod reserve;
mod server;
pub mod simulated;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

pub use server::{start, Demo};

/// The account's concurrency pool (the seed's 1,000, scaled down).
pub const POOL: usize = 100;
/// How long the naive gateway waits for a function (the seed's 29 s, scaled).
pub const GATEWAY_LIMIT: Duration = Duration::from_millis(2_900);
/// The naive per-call timeout (the seed's 30 s, scaled): longer than the gateway waits.
pub const NAIVE_CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts at each naive layer (gateway and function).
pub const NAIVE_ATTEMPTS: u32 = 3;
/// The hardened time budget of a request without `x-deadline-ms`.
pub const HARDENED_BUDGET: Duration = Duration::from_secs(1);
/// Hardened attempts per call, at most.
pub const HARDENED_ATTEMPTS: u32 = 3;
/// The header carrying a request's remaining budget, in milliseconds.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";
/// The dependencies the functions call, by the names suites give them.
pub const DEPENDENCIES: [&str; 4] = ["payments", "catalog", "profiles", "crm"];

/// How the shop defends itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No defences: reproduces the seed's cascade.
    Naive,
    /// Every defence on the checklist.
    Hardened,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Naive => "naive",
            Profile::Hardened => "hardened",
        })
    }
}

/// Not `naive` or `hardened`.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a demo profile (naive or hardened)")]
pub struct UnknownProfile(String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "naive" => Ok(Profile::Naive),
            "hardened" => Ok(Profile::Hardened),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

/// How to start the demo.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Its defences.
    pub profile: Profile,
    /// Where to listen (a loopback port, 0 for any).
    pub listen: SocketAddr,
    /// Each dependency's base URL, by name ([`DEPENDENCIES`]); a function
    /// whose dependency has none answers 502.
    pub dependencies: BTreeMap<String, String>,
    /// Where the hardened shop posts Alertmanager webhooks.
    pub alert_url: Option<String>,
}

impl DemoConfig {
    /// `profile` on 127.0.0.1, any port, no dependencies yet.
    pub fn new(profile: Profile) -> Self {
        DemoConfig {
            profile,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            dependencies: BTreeMap::new(),
            alert_url: None,
        }
    }
}
