//! `faultline demo`: the checklist suites, built into the binary, against
//! the demo shop in both profiles, side by side.

use std::path::Path;

use demo_target::Profile;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use tokio_util::sync::CancellationToken;

use crate::report::{observed, verdict_word};
use crate::run::{run_suite, RunError, TargetOverride};
use crate::suite::{Suite, SuiteError};
use crate::Verdict;

/// The checklist suites as shipped in `suites/checklist/`, by file name.
pub const CHECKLIST: [(&str, &str); 8] = [
    (
        "1-reserved-concurrency.toml",
        include_str!("../../suites/checklist/1-reserved-concurrency.toml"),
    ),
    (
        "2-circuit-breakers.toml",
        include_str!("../../suites/checklist/2-circuit-breakers.toml"),
    ),
    (
        "3-queue-offload.toml",
        include_str!("../../suites/checklist/3-queue-offload.toml"),
    ),
    (
        "4-timeout-budgets.toml",
        include_str!("../../suites/checklist/4-timeout-budgets.toml"),
    ),
    (
        "5-retries-backoff.toml",
        include_str!("../../suites/checklist/5-retries-backoff.toml"),
    ),
    (
        "6-load-shedding.toml",
        include_str!("../../suites/checklist/6-load-shedding.toml"),
    ),
    (
        "7-alerts.toml",
        include_str!("../../suites/checklist/7-alerts.toml"),
    ),
    (
        "cascade.toml",
        include_str!("../../suites/checklist/cascade.toml"),
    ),
];

/// The built-in checklist, parsed.
pub fn checklist() -> Result<Vec<Suite>, SuiteError> {
    CHECKLIST
        .iter()
        .map(|(file, text)| Suite::parse(text, &Path::new("suites/checklist").join(file)))
        .collect()
}

/// Each suite's verdicts under both profiles, in the checklist's order.
pub struct SideBySide {
    /// (suite, naive verdict, hardened verdict), matched by position.
    pub rows: Vec<(String, Verdict, Verdict)>,
    /// Whether a signal stopped it before the end.
    pub aborted: bool,
}

/// Runs every suite against the naive then the hardened shop, until `stop`.
pub async fn run_both(
    suites: &[Suite],
    seed: u64,
    stop: &CancellationToken,
) -> Result<SideBySide, RunError> {
    let mut rows = Vec::new();
    for suite in suites {
        let naive = run_suite(
            suite,
            TargetOverride::Demo(Profile::Naive),
            seed,
            stop,
            None,
        )
        .await?;
        let hardened = run_suite(
            suite,
            TargetOverride::Demo(Profile::Hardened),
            seed,
            stop,
            None,
        )
        .await?;
        rows.extend(
            naive
                .verdicts
                .into_iter()
                .zip(hardened.verdicts)
                .map(|(n, h)| (suite.name.clone(), n, h)),
        );
        if naive.aborted.is_some() || hardened.aborted.is_some() {
            return Ok(SideBySide {
                rows,
                aborted: true,
            });
        }
    }
    Ok(SideBySide {
        rows,
        aborted: false,
    })
}

#[derive(Tabled)]
struct Row<'a> {
    suite: &'a str,
    property: &'a str,
    phase: &'a str,
    naive: String,
    hardened: String,
}

fn cell(verdict: &Verdict) -> String {
    format!("{} ({})", verdict_word(verdict.outcome), observed(verdict))
}

impl SideBySide {
    /// One row per property: its verdict and observed value under each profile.
    pub fn table(&self) -> String {
        let rows = self.rows.iter().map(|(suite, naive, hardened)| Row {
            suite,
            property: &hardened.property,
            phase: &hardened.phase,
            naive: cell(naive),
            hardened: cell(hardened),
        });
        Table::new(rows).with(Style::sharp()).to_string()
    }

    /// 0 when the hardened shop held every property, else as `faultline run`
    /// would exit for it; 4 when stopped early.
    pub fn exit_code(&self) -> u8 {
        if self.aborted {
            return crate::report::exit::STOPPED;
        }
        crate::report::RunOutcome::of_verdicts(self.rows.iter().map(|(_, _, h)| h.outcome))
            .exit_code()
    }
}
