//! `junit.xml`: one test case per property, as CI systems' JUnit readers
//! (GitHub, GitLab, Jenkins) expect. The classname is the suite; each name is
//! unique within the file (readers drop duplicates), so a property judged
//! twice is numbered. A failure states observed value,
//! threshold, phase, samples and witness in its body as well as its message;
//! an inconclusive verdict is a skipped case with the reason.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::json::SuiteReport;
use super::observed_and_threshold;
use faultline_properties::{Outcome, Verdict};

/// The JUnit XML of a run.
pub fn junit(suites: &[SuiteReport]) -> String {
    let mut report = Report::new("faultline");
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for suite in suites {
        let mut test_suite = TestSuite::new(suite.name.as_str());
        for verdict in &suite.verdicts {
            let base = format!("{} [{}]", verdict.property, verdict.phase);
            let count = seen.entry(base.clone()).or_default();
            *count += 1;
            let name = if *count == 1 {
                base
            } else {
                format!("{base} #{count}")
            };
            let mut case = TestCase::new(name, status(verdict));
            case.set_classname(suite.name.as_str());
            test_suite.add_test_case(case);
        }
        report.add_test_suite(test_suite);
    }
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- the JUnit report could not be written: {e} -->"))
}

fn status(verdict: &Verdict) -> TestCaseStatus {
    match verdict.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Fail => {
            let mut failed = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let (observed, threshold) = observed_and_threshold(verdict);
            failed.set_message(format!(
                "observed {observed} against {threshold} in phase `{}`",
                verdict.phase
            ));
            failed.set_type("property failed");
            failed.set_description(verdict.evidence_lines());
            failed
        }
        Outcome::Inconclusive => {
            let mut skipped = TestCaseStatus::skipped();
            skipped.set_message(
                verdict
                    .note
                    .clone()
                    .unwrap_or_else(|| "too few samples to judge".to_owned()),
            );
            skipped.set_description(verdict.evidence_lines());
            skipped
        }
    }
}
