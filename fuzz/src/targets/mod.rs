//! One module per fuzz target, each with a `run` taking the command line's
//! settings and returning the run's figures or its smallest failing input.

pub mod config;
pub mod dataplane;
pub mod fault_json;
pub mod suite;

use crate::Failure;

/// A run that could not start (a runtime or a server that did not come up).
fn setup_failed(target: &'static str, what: impl std::fmt::Display) -> Failure {
    Failure {
        target,
        index: 0,
        message: format!("could not set up: {what}"),
        input: String::new(),
        shrinks: 0,
    }
}

/// A current-thread runtime on a paused clock: a fault's delay costs no
/// wall time.
fn paused_runtime(target: &'static str) -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| setup_failed(target, e))
}
