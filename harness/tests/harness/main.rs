//! The harness's integration tests, in one binary: the CLI as a user runs it,
//! the load driver, runs through phases against small targets with and
//! without each defence.

mod cleanup;
mod common;
mod defences;
mod demo;
mod evidence;
mod leases;
mod load;
mod proxies;
mod remote;
mod reports;
mod run;
mod serve;
mod timeline;
