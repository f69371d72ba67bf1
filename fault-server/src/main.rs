//! `fault-server --config FILE [--control ADDR] [--seed N] [--token T]`
//!
//! Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start, 2 bad usage or invalid config.

use std::process::ExitCode;

use clap::Parser;
use fault_server::cli::{serve, ServeArgs};

/// Stub dependencies that inject latency, errors, throttles, hangs and
/// connection faults, with an exact journal and a live control API.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match serve(args.serve).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fault-server: {error}");
            error.exit_code()
        }
    }
}
