//! How a run ended, as one type: the exit code, `report.json`'s outcome
//! word and the Markdown summary are all read from it.
//!
//! | outcome | exit code | word |
//! |---|---|---|
//! | every property held | 0 | `pass` |
//! | a property failed | 1 | `fail` |
//! | bad usage: an invalid suite, a refused target or setting | 2 | `usage` |
//! | none failed, one inconclusive | 3 | `inconclusive` |
//! | stopped early (a signal, the hard cap, `abort_when`) | 4 | `aborted` |
//! | could not run: a target that never answered, a fault server gone, reports not written | 4 | `broken` |

use crate::run::timeline::Abort;
use crate::run::{Ended, Runs};
use faultline_properties::Outcome;

/// The process's exit codes.
pub mod exit {
    /// Every property held.
    pub const PASS: u8 = 0;
    /// A property failed.
    pub const FAIL: u8 = 1;
    /// Bad usage: arguments, an invalid suite, a refused setting.
    pub const USAGE: u8 = 2;
    /// Nothing failed, but a verdict was inconclusive.
    pub const INCONCLUSIVE: u8 = 3;
    /// Stopped early, or could not run.
    pub const STOPPED: u8 = 4;
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every property held.
    Pass,
    /// A property failed.
    Fail,
    /// Nothing failed, but a verdict was inconclusive.
    Inconclusive,
    /// Bad usage: the run was refused before it started.
    Usage,
    /// Stopped before its phases were over.
    Aborted(Abort),
    /// It could not run, or its reports could not be written.
    Broken,
}

impl RunOutcome {
    /// From the verdicts of a run that went to its end: any failure fails,
    /// else any inconclusive verdict makes it inconclusive.
    pub fn of_verdicts(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        let mut inconclusive = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Fail => return RunOutcome::Fail,
                Outcome::Inconclusive => inconclusive = true,
                Outcome::Pass => {}
            }
        }
        if inconclusive {
            RunOutcome::Inconclusive
        } else {
            RunOutcome::Pass
        }
    }

    /// How running suites ended: as what stopped them, if anything did
    /// (a refused plan is bad usage, a run that could not go on is broken),
    /// else as their verdicts say.
    pub fn of_runs(runs: &Runs) -> Self {
        match &runs.ended {
            Some(Ended::Aborted { cause, .. }) => RunOutcome::Aborted(cause.clone()),
            Some(Ended::Failed(error)) if error.is_usage() => RunOutcome::Usage,
            Some(Ended::Failed(_)) => RunOutcome::Broken,
            None => RunOutcome::of_verdicts(runs.verdicts().map(|(_, v)| v.outcome)),
        }
    }

    /// The process's exit code ([`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunOutcome::Pass => exit::PASS,
            RunOutcome::Fail => exit::FAIL,
            RunOutcome::Usage => exit::USAGE,
            RunOutcome::Inconclusive => exit::INCONCLUSIVE,
            RunOutcome::Aborted(_) | RunOutcome::Broken => exit::STOPPED,
        }
    }

    /// The word `report.json` and the summary give it.
    pub fn word(&self) -> &'static str {
        match self {
            RunOutcome::Pass => "pass",
            RunOutcome::Fail => "fail",
            RunOutcome::Inconclusive => "inconclusive",
            RunOutcome::Usage => "usage",
            RunOutcome::Aborted(_) => "aborted",
            RunOutcome::Broken => "broken",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_own_word_and_its_exit_code() {
        let all = [
            (RunOutcome::Pass, "pass", 0),
            (RunOutcome::Fail, "fail", 1),
            (RunOutcome::Usage, "usage", 2),
            (RunOutcome::Inconclusive, "inconclusive", 3),
            (RunOutcome::Aborted(Abort::Stopped), "aborted", 4),
            (RunOutcome::Broken, "broken", 4),
        ];
        for (outcome, word, code) in all {
            assert_eq!((outcome.word(), outcome.exit_code()), (word, code));
        }
    }

    #[test]
    fn a_failure_outweighs_an_inconclusive_verdict() {
        use Outcome::{Fail, Inconclusive, Pass};
        assert_eq!(
            RunOutcome::of_verdicts([Pass, Inconclusive, Fail]),
            RunOutcome::Fail
        );
        assert_eq!(
            RunOutcome::of_verdicts([Pass, Inconclusive]),
            RunOutcome::Inconclusive
        );
        assert_eq!(RunOutcome::of_verdicts([]), RunOutcome::Pass);
    }
}
