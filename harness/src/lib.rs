//! # faultline-harness
//!
//! faultline's harness, behind the `faultline` binary: it drives load at a
//! system under test, switches faults at its dependencies in timed phases,
//! and judges resilience properties against what it saw.
//!
//! The [`load`] driver (open and closed loop, correlated requests, HDR
//! histograms per endpoint and phase, a cap on kept records), the
//! [`run::timeline`] that runs loads through phases of faults at a fault
//! server here or elsewhere ([`run::fault_control`], [`run::remote`]) and
//! drains the journals into the [`faultline_properties::Observations`] every
//! property reads, [`suite`] files, and [`run`] / [`report`] behind
//! `faultline run` and `faultline validate`.
//!
//! The pieces a Rust user depends on are crates of their own: the fault
//! server ([`fault_server`]), the property checkers
//! ([`faultline_properties`]) and, for property tests of middleware on a
//! paused clock, `faultline-sim`.
//!
//! ```
//! use faultline_harness::suite::Suite;
//!
//! let suite = Suite::parse(
//!     r#"
//! [target]
//! base_url = "http://127.0.0.1:8080"
//!
//! [[dependencies]]
//! name = "crm"
//!
//! [[load]]
//! endpoint = "crm_sync"
//! path = "/crm_sync"
//! rate = 20.0
//!
//! [[phases]]
//! name = "crm slow"
//! duration = "10s"
//! faults = { crm = [{ latency = { fixed = "8s" } }] }
//!
//! [[expect]]
//! property = "max_in_flight"
//! dependency = "crm"
//! phase = "crm slow"
//! at_most = 30
//! "#,
//!     "bulkhead.toml".as_ref(),
//! )?;
//! assert_eq!(suite.expect[0].name(), "max_in_flight(crm) <= 30");
//! # Ok::<(), faultline_harness::suite::SuiteError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod demo;
pub mod limits;
pub mod load;
pub mod report;
pub mod run;
pub mod suite;
