//! `faultline-fuzz`: see the crate's README.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fuzz::Cli::parse();
    match fuzz::run(&cli) {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}
