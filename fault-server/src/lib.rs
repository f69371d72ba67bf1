//! # fault-server
//!
//! The fault server of [faultline]: it stands in for the dependencies of a
//! system under test, answers as they normally would, and injects what goes
//! wrong with them — latency, errors, throttling, hangs, resets, closed
//! connections, dribbled bodies, garbage bytes and saturation — per request,
//! with a seeded probability, a request matcher, a count and a lease. It keeps
//! an exact journal of every call it receives, and is controlled live from
//! Rust ([`FaultServer`]) or over a JSON control API (see `control/routes.rs`
//! and the README).
//!
//! ## Quick start
//!
//! ```
//! use std::time::Duration;
//! use fault_server::{DependencySpec, Fault, FaultServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = FaultServer::builder()
//!     .dependency(DependencySpec::stub("crm"))
//!     .start()?;
//! // The system under test is pointed at this URL.
//! let crm = server.url("crm")?;
//! # assert!(crm.starts_with("http://"));
//! // The crm slows from nothing to 8 s.
//! server.mark("crm slow")?;
//! server.add_fault("crm", Fault::latency(Duration::from_secs(8)))?;
//! // ... drive load, then judge what the crm saw:
//! let stats = server.stats("crm")?;
//! let slow = stats.window("crm slow").unwrap();
//! assert_eq!(slow.counters.peak_in_flight, 0);
//! # Ok(())
//! # }
//! ```
//!
//! [faultline]: https://docs.rs/faultline-harness

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alerts;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
#[cfg(feature = "config")]
mod config;
#[cfg(feature = "control")]
mod control;
mod dataplane;
mod dependency;
mod distribution;
mod error;
pub mod fault;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod in_process;
pub mod journal;
pub mod located;
mod proxy;
mod registry;
mod response;
mod server;

pub use alerts::{AlertRecord, MAX_ALERTS};
pub use clock::Clock;
#[cfg(feature = "config")]
pub use config::{ConfigError, ControlConfig, ServerConfig};
pub use dataplane::{control_max_connections, default_max_connections, RESERVED_DESCRIPTORS};
pub use dependency::DependencySpec;
pub use distribution::Distribution;
pub use error::ControlError;
pub use fault::{
    CloseFault, ErrorFault, Fault, FaultKind, FaultKindName, FaultKinds, HangEnd, HangFault,
    LatencyFault, MalformedFault, RequestMatch, ResetFault, SaturationFault, SlowBodyFault,
    ThrottleFault,
};
pub use in_process::{CallError, CallFuture, DuplexConnector, DuplexIo, InProcessDependency};
pub use journal::{ByteCounts, CallInfo, CallOutcome, CallRecord, JournalStats};
#[cfg(feature = "config")]
pub use located::toml_message;
pub use located::LocatedError;
pub use proxy::HttpProxy;
pub use registry::{DependencyView, Mark};
pub use response::StubResponse;
pub use server::{FaultServer, FaultServerBuilder, StartError, Times, Unmet};
