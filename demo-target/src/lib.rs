//! # demo-target
//!
//! faultline's demo target, a small serverless-style shop in a naive and a
//! hardened profile. Not built yet.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
