//! `faultline`: the chaos harness.
//!
//! Exit codes: 0 every property held, 1 a property failed, 2 bad usage or an
//! invalid suite, 3 inconclusive (too few samples), 4 the run broke.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fault_server::cli::{serve, ServeArgs};
use harness::report::{exit_code, table};
use harness::run::run_suite;
use harness::suite::{collect, Suite};

/// Chaos fault injection for resilience tests before every deployment.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run suites: drive load through their phases of faults and judge their properties.
    Run {
        /// Suite files, or folders of them.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// The system under test, overriding each suite's [target] base_url.
        #[arg(long, value_name = "URL")]
        target_url: Option<String>,
        /// Seed for every random fault decision.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Check suites without running them.
    Validate {
        /// Suite files, or folders of them.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
    },
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
        Command::Validate { suites } => match load_all(&suites) {
            Ok(loaded) => {
                for suite in &loaded {
                    println!(
                        "{}: ok ({} phases, {} expectations)",
                        suite.path.display(),
                        suite.phases.len(),
                        suite.expect.len()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run {
            suites,
            target_url,
            seed,
        } => {
            let loaded = match load_all(&suites) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            let mut verdicts = Vec::new();
            for suite in &loaded {
                match run_suite(suite, target_url.as_deref(), seed).await {
                    Ok(found) => {
                        verdicts.extend(found.into_iter().map(|v| (suite.name.clone(), v)))
                    }
                    Err(error) => {
                        eprintln!("faultline: {error}");
                        return ExitCode::from(if error.is_usage() { 2 } else { 4 });
                    }
                }
            }
            println!("{}", table(&verdicts));
            ExitCode::from(exit_code(&verdicts))
        }
    }
}

/// Every suite, or exit code 2 after printing every error found.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Suite>, ExitCode> {
    let files = collect(paths).map_err(|e| {
        eprintln!("faultline: {e}");
        ExitCode::from(2)
    })?;
    let (loaded, errors): (Vec<_>, Vec<_>) = files
        .iter()
        .map(|f| Suite::load(f))
        .partition(Result::is_ok);
    if errors.is_empty() && !loaded.is_empty() {
        return Ok(loaded.into_iter().filter_map(Result::ok).collect());
    }
    for error in errors.into_iter().filter_map(Result::err) {
        eprintln!("faultline: {error}");
    }
    if files.is_empty() {
        eprintln!("faultline: no suite files found");
    }
    Err(ExitCode::from(2))
}
