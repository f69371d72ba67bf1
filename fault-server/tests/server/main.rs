//! The fault server's integration tests, in one binary: every fault seen from
//! a real client, the journal's exactness, every control route, the binary,
//! and the in-process dependency on a paused clock.

mod admission;
mod bodyless;
mod cli;
mod common;
mod control;
mod faults;
mod in_process;
mod interner;
mod journal;
mod limits;
mod matching;
mod proxy;
mod real_deps;
mod refused;
mod runtimes;
mod services;
mod tcp;
mod toxiproxy;
mod verify;
