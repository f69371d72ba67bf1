//! `summary.md`: the verdicts as a Markdown table with their key figures, for
//! a CI step summary (appended to `$GITHUB_STEP_SUMMARY` when it is set).

use super::json::Report;
use super::{observed_and_threshold, verdict_word};

/// The Markdown summary of a run.
pub fn summary(report: &Report) -> String {
    let mut text = format!(
        "## faultline: {} (exit {})\n\n",
        report.outcome, report.exit_code
    );
    if let Some(reason) = &report.aborted_reason {
        text.push_str(&format!("Aborted: {}\n\n", escape(reason)));
    }
    text.push_str("| suite | property | phase | verdict | observed | threshold | samples |\n");
    text.push_str("|---|---|---|---|---|---|---|\n");
    for suite in &report.suites {
        for v in &suite.verdicts {
            let verdict = match verdict_word(v.outcome) {
                "FAIL" => "**FAIL**".to_owned(),
                word => word.to_owned(),
            };
            let (observed, threshold) = observed_and_threshold(v);
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                escape(&suite.name),
                escape(&v.property),
                escape(&v.phase),
                verdict,
                escape(&observed),
                escape(&threshold),
                v.evidence.samples
            ));
        }
    }
    text
}

/// Table cells may not hold a bare `|`.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}
