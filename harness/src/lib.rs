//! # harness
//!
//! faultline's harness: load, timed phases, resilience properties, suites and
//! reports. Not built yet: today the `faultline` binary only serves the fault
//! server (`faultline serve`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
