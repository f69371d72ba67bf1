//! Running a suite: its [`plan`] (made by
//! [`Suite::plan`](crate::suite::Suite::plan)), then the
//! run, which only does the I/O the plan says: the fault server and its
//! dependencies ([`fault_control`], [`remote`]), the target ([`target`]),
//! the load through the phases ([`timeline`]), and a verdict for every
//! expectation.

mod dependencies;
mod error;
pub mod fault_control;
mod journals;
pub mod lease;
pub mod plan;
pub mod progress;
pub mod remote;
pub mod target;
pub mod timeline;

use std::collections::BTreeMap;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use dependencies::dependencies;
pub use error::{RunError, RunErrorKind};
use fault_control::FaultControl;
use faultline_properties::Verdict;
use plan::{Plan, TargetPlan};
pub use plan::{TargetOverride, DEFAULT_MAX_REQUESTS};
use progress::Progress;
use timeline::run_until;

/// Descriptors a run keeps beside its closed-loop clients' connections:
/// listeners, the fault server's connections from the target, the control
/// API, files.
const CLIENT_RESERVE: u64 = 512;

/// Refuses a plan whose closed loops want more connections than this
/// process may open (its soft `RLIMIT_NOFILE`, less [`CLIENT_RESERVE`]):
/// such a run would fail part-way with "too many open files".
fn check_clients(plan: &Plan) -> Result<(), RunError> {
    let clients: u64 = plan
        .loads
        .iter()
        .filter_map(|l| match l.arrival {
            crate::load::Arrival::Closed { clients } => Some(clients as u64),
            _ => None,
        })
        .sum();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    if clients.saturating_add(CLIENT_RESERVE) > limit {
        return Err(RunError::new(
            plan.suite.clone(),
            RunErrorKind::TooManyClients {
                clients,
                limit,
                reserve: CLIENT_RESERVE,
            },
        ));
    }
    Ok(())
}

/// A suite's verdicts, and whether it was stopped before its end.
#[derive(Debug)]
pub struct SuiteRun {
    /// One per expectation, judged on what was observed (up to the abort, if any).
    pub verdicts: Vec<Verdict>,
    /// Why it ended early, if it did: the caller's `stop`, a hard cap, or
    /// the suite's `abort_when`.
    pub aborted: Option<crate::run::timeline::Abort>,
    /// What the run observed, for the reports.
    pub observations: faultline_properties::Observations,
    /// What the run could not leave as it found it (a remote server's
    /// standing faults it could not put back), for the user to see to.
    pub warnings: Vec<String>,
}

/// What running suites one after another came to ([`crate::suite::run_suites`]):
/// each suite's run, in order, and what ended them early. `faultline run` and `faultline demo`
/// both report from it ([`crate::report::RunOutcome::of_runs`],
/// [`crate::report::json::Report::of_runs`]).
#[derive(Debug, Default)]
pub struct Runs {
    /// Each suite that ran, in order.
    pub suites: Vec<Finished>,
    /// What stopped the suites before the last had run, if anything did.
    pub ended: Option<Ended>,
}

/// One suite that ran.
#[derive(Debug)]
pub struct Finished {
    /// Its name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// Its run.
    pub run: SuiteRun,
}

/// Why suites stopped before the last had run.
#[derive(Debug)]
pub enum Ended {
    /// The suite named was stopped part-way (its verdicts judge what was seen before).
    Aborted {
        /// The suite.
        suite: String,
        /// Why.
        cause: timeline::Abort,
    },
    /// A suite could not run.
    Failed(RunError),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Aborted { suite, cause } => write!(
                f,
                "`{suite}` aborted by {cause}; its faults are cleared, and its verdicts judge only what was seen before"
            ),
            Ended::Failed(error) => error.fmt(f),
        }
    }
}

impl Runs {
    /// Every verdict, with its suite's name, in order.
    pub fn verdicts(&self) -> impl Iterator<Item = (&str, &Verdict)> {
        self.suites
            .iter()
            .flat_map(|s| s.run.verdicts.iter().map(move |v| (s.name.as_str(), v)))
    }
}

/// Runs `plan` and judges every expectation. Cancelling `stop` ends it
/// early: the load stops, every fault is cleared, and what was seen so far
/// is judged. `progress`, when given, is told where the run stands as it
/// goes ([`Progress`]).
pub async fn run_plan(
    plan: &Plan,
    seed: u64,
    stop: &CancellationToken,
    progress: Option<&watch::Sender<Progress>>,
) -> Result<SuiteRun, RunError> {
    check_clients(plan)?;
    if let Some(progress) = progress {
        progress.send_modify(|p| p.suite.clone_from(&plan.suite));
    }
    let (dependencies, urls) = dependencies(plan, seed, stop).await?;
    let settings = (stop, progress);
    let outcome = run_against(plan, seed, dependencies.control(), &urls, settings).await;
    let warnings = dependencies.close().await;
    outcome.map(|mut run| {
        run.warnings = warnings;
        run
    })
}

async fn run_against(
    plan: &Plan,
    seed: u64,
    control: FaultControl<'_>,
    urls: &BTreeMap<String, String>,
    (stop, progress): (&CancellationToken, Option<&watch::Sender<Progress>>),
) -> Result<SuiteRun, RunError> {
    let name = || plan.suite.clone();
    let started_failed = |source| RunError::new(name(), RunErrorKind::Target { source });
    // Kept alive for the run; dropping it stops the target.
    let mut started = None;
    let base = match &plan.target {
        TargetPlan::Url(url) => url.clone(),
        TargetPlan::Demo(profile) => {
            let target = target::start_demo(*profile, urls)
                .await
                .map_err(started_failed)?;
            started.insert(target).base_url.clone()
        }
        TargetPlan::Command(command) => {
            let target = target::start(command, urls).await.map_err(started_failed)?;
            started.insert(target).base_url.clone()
        }
    };
    let mut loads = Vec::with_capacity(plan.loads.len());
    for load in &plan.loads {
        loads.push(load.at(&base).map_err(|url| {
            RunError::new(
                name(),
                RunErrorKind::BadUrl {
                    endpoint: load.endpoint.clone(),
                    url,
                },
            )
        })?);
    }
    let result = run_until(
        control,
        &plan.phases,
        loads,
        seed,
        stop.clone(),
        &plan.limits,
        progress,
    )
    .await
    .map_err(|source| RunError::new(name(), RunErrorKind::Control { source }))?;
    drop(started);
    let (mut sent, mut refused) = (0, 0);
    for stats in result
        .observations
        .edge_stats
        .values()
        .flat_map(|p| p.values())
    {
        sent += stats.requests();
        refused += stats
            .outcomes
            .get(&faultline_properties::EdgeOutcome::ConnectError)
            .copied()
            .unwrap_or(0);
    }
    if sent > 0 && refused == sent {
        return Err(RunError::new(
            name(),
            RunErrorKind::TargetDown {
                url: base,
                requests: sent,
            },
        ));
    }
    Ok(SuiteRun {
        verdicts: plan
            .expect
            .iter()
            .map(|expect| expect.check(&result.observations))
            .collect(),
        aborted: result.aborted,
        observations: result.observations,
        warnings: Vec::new(),
    })
}
