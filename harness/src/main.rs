//! `faultline`: the chaos harness. For now it serves the fault server alone
//! (`faultline serve`); `run`, `validate` and `demo` arrive with the harness.
//!
//! Exit codes: 0 success, 1 the server could not start, 2 bad usage or invalid config.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fault_server::cli::{serve, ServeArgs};

/// Chaos fault injection for resilience tests before every deployment.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the fault server alone, on a TOML configuration, until SIGINT/SIGTERM.
    Serve(ServeArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => match serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("faultline: {error}");
                error.exit_code()
            }
        },
    }
}
