//! # fuzz
//!
//! faultline's fuzz targets, run on the stable toolchain: each is a loop in
//! release mode that draws inputs from proptest strategies, feeds each to the
//! code under test inside `catch_unwind`, and on a panic (or a broken
//! invariant) shrinks the input with proptest's value tree, prints the
//! smallest one that still fails and exits non-zero.
//!
//! The inputs are *structure-aware*: most are mutations of real inputs (the
//! suite files in `suites/`, the fault server's example config, valid
//! control-API bodies), so that they get past the first parse error and
//! reach validation, planning and serving; the rest are random bytes.
//!
//! | target | feeds | to |
//! |---|---|---|
//! | `suite` | mutated suite files | `Suite::parse`; for what validates, `Suite::plan`, an in-process dependency per `[[dependencies]]` called once per phase with that phase's faults, and every `[[expect]]`'s property checked on what those calls recorded |
//! | `fault-json` | mutated control-API bodies | every route that takes a body (`POST`/`PUT /dependencies/crm/faults`, `PUT .../faults/lease`, `PATCH /dependencies/crm`, `POST /marks`, `POST /dependencies`), answered by the routes' own code on a live `FaultServer`; every 100th also over a socket to its control API |
//! | `config` | mutated fault-server config files | `ServerConfig::parse`; for what validates, each dependency started in-process |
//! | `dataplane` | mutated and random HTTP/1 bytes | a live data-plane port on 127.0.0.1, pipelined over many connections; then a valid request must still be answered and the journal must count what was answered |
//!
//! Quick start: `fuzz/run.sh 100000` (every target), or
//! `cargo run --profile fuzz -p fuzz -- suite --inputs 100000 --seed 7`.
//! `fuzz/README.md` has the details and the figures of the last full runs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod corpus;
mod dict;
mod engine;
mod json;
mod mutate;
mod targets;

use clap::{Args, Parser, Subcommand};

pub use engine::{Failure, Figures};

/// Fuzz one of faultline's input surfaces.
#[derive(Debug, Parser)]
#[command(name = "faultline-fuzz", version)]
pub struct Cli {
    /// The target to fuzz.
    #[command(subcommand)]
    pub target: Target,
}

/// The fuzz targets.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// Suite files: parse, validate, plan, and run the phases' faults in-process.
    Suite(Common),
    /// The control API's JSON bodies, through its own routes.
    FaultJson(FaultJsonArgs),
    /// The fault server's TOML config.
    Config(Common),
    /// Raw bytes at a live data-plane port on 127.0.0.1.
    Dataplane(DataplaneArgs),
}

/// What every target takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Inputs to run.
    #[arg(long, default_value_t = 10_000_000)]
    pub inputs: u64,
    /// Seeds the input generator: the same seed draws the same inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The control-API target's settings.
#[derive(Debug, Clone, Args)]
pub struct FaultJsonArgs {
    /// Inputs and seed.
    #[command(flatten)]
    pub common: Common,
    /// Also send every n-th input over a socket to the control API on
    /// 127.0.0.1 (0: never).
    #[arg(long, default_value_t = 100)]
    pub over_http_every: u64,
}

/// The data-plane target's settings.
#[derive(Debug, Clone, Args)]
pub struct DataplaneArgs {
    /// Inputs and seed.
    #[command(flatten)]
    pub common: Common,
    /// Connections open at once.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Most inputs pipelined on one connection (a broken one ends it, so
    /// the inputs after it never reach the parser).
    #[arg(long, default_value_t = 4)]
    pub per_connection: usize,
}

/// Runs the chosen target: its figures, or the smallest failing input.
pub fn run(cli: &Cli) -> Result<Figures, Failure> {
    match &cli.target {
        Target::Suite(common) => targets::suite::run(common),
        Target::FaultJson(args) => targets::fault_json::run(args),
        Target::Config(common) => targets::config::run(common),
        Target::Dataplane(args) => targets::dataplane::run(args),
    }
}
