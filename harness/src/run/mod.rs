//! Running a suite: a fault server for its dependencies, its load through
//! its phases, and a verdict for every expectation.

use std::collections::BTreeMap;

use fault_server::StartError;

use crate::fault_control::{FaultControl, FaultControlError};
use crate::load::{Arrival, Endpoint, Load};
use crate::suite::Suite;
use crate::timeline::{run_until, Limits, PhasePlan};

mod dependencies;

use crate::Verdict;
use dependencies::dependencies;
use tokio_util::sync::CancellationToken;

/// Why a suite could not be run (as opposed to a property failing, which is a verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Neither the suite nor the command line names a target.
    #[error(
        "{suite}: no target: set [target] base_url, command or demo in the suite, or pass --target-url or --demo"
    )]
    NoTarget {
        /// The suite's name.
        suite: String,
    },
    /// An endpoint's URL does not parse.
    #[error("{suite}: endpoint `{endpoint}`: `{url}` is not a URL")]
    BadUrl {
        /// The suite's name.
        suite: String,
        /// The endpoint's name.
        endpoint: String,
        /// The URL built from the target and the path.
        url: String,
    },
    /// The fault server did not start.
    #[error("{suite}: {source}")]
    Start {
        /// The suite's name.
        suite: String,
        /// Why.
        #[source]
        source: StartError,
    },
    /// The target command did not start or become ready.
    #[error("{suite}: {source}")]
    Target {
        /// The suite's name.
        suite: String,
        /// Why.
        #[source]
        source: crate::target::TargetError,
    },
    /// The fault server refused an operation, or a remote one could not be reached.
    #[error("{suite}: {source}")]
    Control {
        /// The suite's name.
        suite: String,
        /// Why.
        #[source]
        source: FaultControlError,
    },
    /// The target is not on loopback and the suite's `allow_hosts` does not name it.
    #[error(
        "{suite}: the target `{host}` is not on loopback; load goes elsewhere only to hosts the suite names in allow_hosts"
    )]
    HostNotAllowed {
        /// The suite's name.
        suite: String,
        /// The target's host.
        host: String,
    },
    /// Not one request reached the target: a run with no answer to judge is broken.
    #[error(
        "{suite}: the target at {url} never answered: all {requests} requests failed to connect (is it running, and on that port?)"
    )]
    TargetDown {
        /// The suite's name.
        suite: String,
        /// The target's base URL.
        url: String,
        /// Requests sent.
        requests: u64,
    },
    /// A remote fault server has a dependency of the suite's name whose
    /// settings differ from the suite's, and the suite does not say to reuse it.
    #[error(
        "{suite}: the fault server at {server} has a dependency `{dependency}` whose {what}; \
         a dependency left by another run? Remove it, make the suite match, or set [fault_server] reuse = true to run against it as it is"
    )]
    DependencyDiffers {
        /// The suite's name.
        suite: String,
        /// The control URL.
        server: String,
        /// The dependency.
        dependency: String,
        /// What differs.
        what: String,
    },
    /// The suite's closed loops have more clients than this process can hold
    /// connections for.
    #[error(
        "{suite}: its closed loops have {clients} clients, each on a connection of its own, \
         but this process may open {limit} files (ulimit -n), {reserve} of them kept for everything else: \
         raise the limit or split the load"
    )]
    TooManyClients {
        /// The suite's name.
        suite: String,
        /// Clients over every closed loop.
        clients: u64,
        /// The process's soft open-file limit.
        limit: u64,
        /// Descriptors kept for the rest of the run.
        reserve: u64,
    },
    /// `[fault_server] token_env` names a variable that is not set.
    #[error("{suite}: [fault_server] token_env: environment variable `{var}` is not set")]
    MissingToken {
        /// The suite's name.
        suite: String,
        /// The variable.
        var: String,
    },
}

impl RunError {
    /// Whether the fault is in the suite or command line (exit 2) rather than the run (exit 4).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RunError::NoTarget { .. }
                | RunError::BadUrl { .. }
                | RunError::MissingToken { .. }
                | RunError::HostNotAllowed { .. }
                | RunError::DependencyDiffers { .. }
                | RunError::TooManyClients { .. }
        )
    }
}

/// Descriptors a run keeps beside its closed-loop clients' connections:
/// listeners, the fault server's connections from the target, the control
/// API, files.
const CLIENT_RESERVE: u64 = 512;

/// Refuses a suite whose closed loops want more connections than this
/// process may open (its soft `RLIMIT_NOFILE`, less [`CLIENT_RESERVE`]):
/// such a run would fail part-way with "too many open files".
fn check_clients(suite: &Suite) -> Result<(), RunError> {
    let clients: u64 = suite
        .load
        .iter()
        .filter_map(|l| l.clients)
        .map(|c| c as u64)
        .sum();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    if clients.saturating_add(CLIENT_RESERVE) > limit {
        return Err(RunError::TooManyClients {
            suite: suite.name.clone(),
            clients,
            limit,
            reserve: CLIENT_RESERVE,
        });
    }
    Ok(())
}

/// Load goes to loopback (127.0.0.0/8, ::1, localhost) and to the hosts a
/// suite allows by name, nowhere else: the host refused, if it is refused.
fn check_host(base: &str, allowed: &[String]) -> Result<(), String> {
    let host = base
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(|h| h.trim_matches(['[', ']']).to_owned()))
        .unwrap_or_else(|| base.to_owned());
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if loopback || allowed.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        Ok(())
    } else {
        Err(host)
    }
}

/// What a run of a suite does, resolved before any of it starts: a load per
/// `[[load]]` entry, the phases with each dependency's faults (its standing
/// faults first), and the limits that end it early (no progress bar).
#[derive(Debug)]
pub struct RunPlan {
    /// The loads, each lasting the whole run.
    pub loads: Vec<Load>,
    /// The phases, in order.
    pub phases: Vec<PhasePlan>,
    /// `abort_when`, the request cap and the grace past the last phase.
    pub limits: Limits,
}

/// Resolves `suite` against the target at `base` (a URL with no trailing
/// `/`) into the [`RunPlan`] that [`run_suite`] follows: pure, it starts
/// nothing and sends nothing. Refuses a target beyond loopback the suite
/// does not allow, and an endpoint whose URL does not parse.
///
/// ```
/// let suite = harness::suite::Suite::load("../suites/examples/payments-bulkhead.toml".as_ref()).unwrap();
/// let plan = harness::run::plan(&suite, "http://127.0.0.1:8080").unwrap();
/// assert_eq!(plan.phases.len(), suite.phases.len());
/// assert!(harness::run::plan(&suite, "http://shop.example.com").is_err());
/// ```
pub fn plan(suite: &Suite, base: &str) -> Result<RunPlan, RunError> {
    let name = || suite.name.clone();
    check_host(base, &suite.allow_hosts).map_err(|host| RunError::HostNotAllowed {
        suite: name(),
        host,
    })?;
    let mut loads = Vec::with_capacity(suite.load.len());
    for spec in &suite.load {
        let url = format!("{base}{}", spec.path);
        let parsed = url.parse().map_err(|_| RunError::BadUrl {
            suite: name(),
            endpoint: spec.endpoint.clone(),
            url: url.clone(),
        })?;
        let mut endpoint = Endpoint::get(spec.endpoint.clone(), parsed).with_timeout(spec.timeout);
        endpoint.method = http::Method::from_bytes(spec.method.as_bytes()).unwrap_or_default();
        let arrival = match (spec.rate, spec.clients) {
            (Some(rate), _) => match spec.ramp_to {
                Some(to) => Arrival::Ramp { from: rate, to },
                None => Arrival::Open { rate },
            },
            (None, Some(clients)) => Arrival::Closed { clients },
            (None, None) => Arrival::Closed { clients: 1 },
        };
        loads.push(Load {
            endpoint,
            arrival,
            duration: std::time::Duration::ZERO,
        });
    }
    // A dependency's own `faults` stand in every phase, before the phase's.
    let phases: Vec<PhasePlan> = suite
        .phases
        .iter()
        .map(|p| {
            let mut faults = p.faults.clone();
            for dependency in suite.dependencies.iter().filter(|d| !d.faults.is_empty()) {
                let phase_faults = faults.remove(&dependency.name).unwrap_or_default();
                let standing = dependency.faults.iter().cloned().chain(phase_faults);
                faults.insert(dependency.name.clone(), standing.collect());
            }
            PhasePlan {
                name: p.name.clone(),
                duration: p.duration,
                faults,
            }
        })
        .collect();
    let grace = suite
        .load
        .iter()
        .map(|l| l.timeout)
        .max()
        .unwrap_or_default()
        + std::time::Duration::from_secs(5);
    let limits = Limits {
        abort_when: suite.abort_when.clone(),
        max_requests: Some(suite.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS)),
        grace,
        progress: None,
    };
    Ok(RunPlan {
        loads,
        phases,
        limits,
    })
}

/// Requests a suite sends at most unless it says otherwise (`max_requests`).
pub const DEFAULT_MAX_REQUESTS: u64 = 2_000_000;

/// What the command line says about the target, over each suite's own `[target]`.
#[derive(Debug, Clone, Copy, Default)]
pub enum TargetOverride<'a> {
    /// Each suite's own target.
    #[default]
    None,
    /// An already running system (`--target-url`).
    Url(&'a str),
    /// The demo shop in this profile (`--demo`).
    Demo(demo_target::Profile),
}

/// A suite's verdicts, and whether it was stopped before its end.
#[derive(Debug)]
pub struct SuiteRun {
    /// One per expectation, judged on what was observed (up to the abort, if any).
    pub verdicts: Vec<Verdict>,
    /// Why it ended early, if it did: the caller's `stop`, a hard cap, or
    /// the suite's `abort_when`.
    pub aborted: Option<crate::timeline::Abort>,
    /// What the run observed, for the reports.
    pub observations: crate::Observations,
    /// What the run could not leave as it found it (a remote server's
    /// standing faults it could not put back), for the user to see to.
    pub warnings: Vec<String>,
}

/// Runs `suite` against its target, or the one the command line gives, and
/// judges every expectation. Cancelling `stop` ends it early: the load stops,
/// every fault is cleared, and what was seen so far is judged. `progress`,
/// when given, shows where the run stands as it goes.
pub async fn run_suite(
    suite: &Suite,
    target: TargetOverride<'_>,
    seed: u64,
    stop: &CancellationToken,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<SuiteRun, RunError> {
    check_clients(suite)?;
    let (dependencies, urls) = dependencies(suite, seed, stop).await?;
    if let Some(bar) = progress {
        bar.set_prefix(suite.name.clone());
    }
    let settings = (stop, progress);
    let outcome = run_against(suite, target, seed, dependencies.control(), &urls, settings).await;
    let warnings = dependencies.close().await;
    outcome.map(|mut run| {
        run.warnings = warnings;
        run
    })
}

async fn run_against(
    suite: &Suite,
    target: TargetOverride<'_>,
    seed: u64,
    control: FaultControl<'_>,
    urls: &BTreeMap<String, String>,
    (stop, progress): (&CancellationToken, Option<&indicatif::ProgressBar>),
) -> Result<SuiteRun, RunError> {
    let name = || suite.name.clone();
    let started_failed = |source| RunError::Target {
        suite: name(),
        source,
    };
    let demo = match target {
        TargetOverride::Demo(profile) => Some(profile),
        TargetOverride::Url(_) => None,
        TargetOverride::None => suite.target.demo,
    };
    let target_url = match target {
        TargetOverride::Url(url) => Some(url),
        _ => None,
    };
    // Kept alive for the run; dropping it stops the target.
    let mut started = None;
    let base = match (
        target_url,
        demo,
        &suite.target.command,
        &suite.target.base_url,
    ) {
        (Some(url), _, _, _) => url.to_owned(),
        (None, Some(profile), _, _) => {
            let target = crate::target::start_demo(profile, urls)
                .await
                .map_err(started_failed)?;
            started.insert(target).base_url.clone()
        }
        (None, None, Some(command), _) => {
            let target = crate::target::start(&suite.target, command, urls)
                .await
                .map_err(started_failed)?;
            started.insert(target).base_url.clone()
        }
        (None, None, None, Some(url)) => url.clone(),
        (None, None, None, None) => return Err(RunError::NoTarget { suite: name() }),
    };
    let base = base.trim_end_matches('/');
    let RunPlan {
        loads,
        phases,
        mut limits,
    } = plan(suite, base)?;
    limits.progress = progress.cloned();
    let result = run_until(control, &phases, loads, seed, stop.clone(), &limits)
        .await
        .map_err(|source| RunError::Control {
            suite: name(),
            source,
        })?;
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
            .get(&crate::EdgeOutcome::ConnectError)
            .copied()
            .unwrap_or(0);
    }
    if sent > 0 && refused == sent {
        return Err(RunError::TargetDown {
            suite: name(),
            url: base.to_owned(),
            requests: sent,
        });
    }
    Ok(SuiteRun {
        verdicts: suite
            .expect
            .iter()
            .map(|expect| expect.check(&result.observations))
            .collect(),
        aborted: result.aborted,
        observations: result.observations,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::check_host;

    #[test]
    fn load_goes_to_loopback_or_to_hosts_the_suite_allows() {
        for local in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:80",
            "http://localhost:1",
            "http://[::ffff:127.0.0.1]:8080",
        ] {
            assert_eq!(check_host(local, &[]), Ok(()), "{local}");
        }
        assert_eq!(
            check_host("http://shop.example.com:8080", &[]),
            Err("shop.example.com".to_owned())
        );
        assert_eq!(
            check_host("http://10.0.0.1", &[]),
            Err("10.0.0.1".to_owned())
        );
        let allowed = ["SHOP.example.com".to_owned()];
        assert_eq!(check_host("http://shop.example.com:8080", &allowed), Ok(()));
    }
}
