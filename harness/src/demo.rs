//! `faultline demo`: the checklist suites, built into the binary, against
//! the demo shop in both profiles, side by side.

use std::path::Path;

use faultline_demo::Profile;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use tokio_util::sync::CancellationToken;

use crate::report::RunOutcome;
use crate::report::{observed, verdict_word};
use crate::run::{Ended, Runs, TargetOverride};
use crate::suite::run_suites;
use crate::suite::{Suite, SuiteError};
use faultline_properties::Verdict;

/// The checklist suites as shipped in `suites/checklist/`, by file name.
pub const CHECKLIST: [(&str, &str); 8] = [
    (
        "1-reserved-concurrency.toml",
        include_str!("../checklist/1-reserved-concurrency.toml"),
    ),
    (
        "2-circuit-breakers.toml",
        include_str!("../checklist/2-circuit-breakers.toml"),
    ),
    (
        "3-queue-offload.toml",
        include_str!("../checklist/3-queue-offload.toml"),
    ),
    (
        "4-timeout-budgets.toml",
        include_str!("../checklist/4-timeout-budgets.toml"),
    ),
    (
        "5-retries-backoff.toml",
        include_str!("../checklist/5-retries-backoff.toml"),
    ),
    (
        "6-load-shedding.toml",
        include_str!("../checklist/6-load-shedding.toml"),
    ),
    ("7-alerts.toml", include_str!("../checklist/7-alerts.toml")),
    ("cascade.toml", include_str!("../checklist/cascade.toml")),
];

/// The built-in checklist, parsed.
pub fn checklist() -> Result<Vec<Suite>, SuiteError> {
    CHECKLIST
        .iter()
        .map(|(file, text)| Suite::parse(text, &Path::new("suites/checklist").join(file)))
        .collect()
}

/// The suites run against the naive and the hardened shop, in the
/// checklist's order, each profile's runs reported as `faultline run`'s are.
#[derive(Debug, Default)]
pub struct SideBySide {
    /// Against the naive shop.
    pub naive: Runs,
    /// Against the hardened shop.
    pub hardened: Runs,
}

/// Runs every suite against the naive then the hardened shop, until `stop`
/// or until a suite is stopped part-way or cannot run. A suite whose naive
/// run was stopped part-way still runs against the hardened shop (so each
/// row has both cells); one that could not run at all stops there.
pub async fn run_both(suites: &[Suite], seed: u64, stop: &CancellationToken) -> SideBySide {
    let mut both = SideBySide::default();
    for suite in suites {
        let one = std::slice::from_ref(suite);
        let naive = run_suites(one, TargetOverride::Demo(Profile::Naive), seed, stop, None).await;
        both.naive.suites.extend(naive.suites);
        both.naive.ended = naive.ended;
        if matches!(both.naive.ended, Some(Ended::Failed(_))) {
            break;
        }
        let hardened = run_suites(
            one,
            TargetOverride::Demo(Profile::Hardened),
            seed,
            stop,
            None,
        )
        .await;
        both.hardened.suites.extend(hardened.suites);
        both.hardened.ended = hardened.ended;
        if both.naive.ended.is_some() || both.hardened.ended.is_some() {
            break;
        }
    }
    both
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
        let rows = self.naive.verdicts().zip(self.hardened.verdicts()).map(
            |((suite, naive), (_, hardened))| Row {
                suite,
                property: &hardened.property,
                phase: &hardened.phase,
                naive: cell(naive),
                hardened: cell(hardened),
            },
        );
        Table::new(rows).with(Style::sharp()).to_string()
    }

    /// What stopped the suites early, if anything did.
    pub fn ended(&self) -> Option<&Ended> {
        self.naive.ended.as_ref().or(self.hardened.ended.as_ref())
    }

    /// How the demo ends: as the naive runs when they were stopped early or
    /// could not run, else as the hardened shop's runs (a pass when it held
    /// every property).
    pub fn outcome(&self) -> RunOutcome {
        if self.naive.ended.is_some() {
            RunOutcome::of_runs(&self.naive)
        } else {
            RunOutcome::of_runs(&self.hardened)
        }
    }
}
