//! Running suites one after another: each planned ([`Suite::plan`]) and
//! run ([`run_plan`]), until one is stopped part-way or cannot run.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Suite;
use crate::run::progress::Progress;
use crate::run::{run_plan, Ended, Finished, Runs, TargetOverride};

/// Plans and runs each suite in turn against its target, or the one the
/// command line gives, until one is stopped part-way or cannot run.
/// `progress`, when given, is told which suite runs and where it stands.
pub async fn run_suites(
    suites: &[Suite],
    target: TargetOverride<'_>,
    seed: u64,
    stop: &CancellationToken,
    progress: Option<&watch::Sender<Progress>>,
) -> Runs {
    let mut runs = Runs::default();
    for suite in suites {
        let run = match suite.plan(target) {
            Ok(plan) => run_plan(&plan, seed, stop, progress).await,
            Err(error) => Err(error),
        };
        match run {
            Ok(run) => {
                let aborted = run.aborted.clone();
                runs.suites.push(Finished {
                    name: suite.name.clone(),
                    path: suite.path.display().to_string(),
                    run,
                });
                if let Some(cause) = aborted {
                    runs.ended = Some(Ended::Aborted {
                        suite: suite.name.clone(),
                        cause,
                    });
                    break;
                }
            }
            Err(error) => {
                runs.ended = Some(Ended::Failed(error));
                break;
            }
        }
    }
    runs
}
