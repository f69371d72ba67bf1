//! What a run tells: the verdict table and the exit code (here), and the
//! reports for CI ([`json`], [`junit`], [`summary`], written by [`files`]).

pub mod files;
pub mod json;
pub mod junit;
pub mod outcome;
pub mod summary;

use tabled::settings::Style;
use tabled::{Table, Tabled};

pub use outcome::{exit, RunOutcome};

use faultline_properties::{Outcome, Verdict};

#[derive(Tabled)]
struct Row<'a> {
    suite: &'a str,
    property: &'a str,
    phase: &'a str,
    verdict: &'static str,
    observed: String,
    threshold: String,
    samples: u64,
    note: &'a str,
}

/// How a verdict reads in a table.
pub(crate) fn verdict_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::Inconclusive => "inconclusive",
    }
}

/// The observed value (or `-`) and the threshold, with enough digits that
/// different values never read the same ([`faultline_properties::Measure::pair`]).
pub(crate) fn observed_and_threshold(verdict: &Verdict) -> (String, String) {
    faultline_properties::Measure::pair(verdict.evidence.observed, verdict.evidence.threshold)
}

/// The observed value, or `-` (digits as [`observed_and_threshold`]).
pub(crate) fn observed(verdict: &Verdict) -> String {
    observed_and_threshold(verdict).0
}

/// One row per verdict: suite, property, phase, verdict, observed vs threshold.
pub fn table(verdicts: &[(String, Verdict)]) -> String {
    let rows = verdicts.iter().map(|(suite, v)| {
        let (observed, threshold) = observed_and_threshold(v);
        Row {
            suite,
            property: &v.property,
            phase: &v.phase,
            verdict: verdict_word(v.outcome),
            observed,
            threshold,
            samples: v.evidence.samples,
            note: v.note.as_deref().unwrap_or(""),
        }
    });
    Table::new(rows).with(Style::sharp()).to_string()
}
