//! The fault server's integration tests, in one binary: every fault seen from
//! a real client, the journal's exactness, every control route, the binary.

mod cli;
mod common;
mod control;
mod faults;
mod journal;
