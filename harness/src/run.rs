//! Running a suite: a fault server for its dependencies, its load through
//! its phases, and a verdict for every expectation.

use std::collections::BTreeMap;

use fault_server::{Clock, FaultServer, StartError};

use crate::fault_control::{FaultControl, FaultControlError};
use crate::load::{Arrival, Endpoint, Load};
use crate::remote::RemoteFaultServer;
use crate::suite::{RemoteSpec, Suite};
use crate::timeline::{run_until, Limits, PhasePlan};
use crate::Verdict;
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
        )
    }
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

/// The fault server a suite runs against, and the URL of each of its dependencies.
enum Dependencies {
    /// Started for the run, in this process.
    Local(FaultServer),
    /// Running elsewhere; `added` are the dependencies the run created there.
    Remote {
        server: RemoteFaultServer,
        names: Vec<String>,
        added: Vec<String>,
    },
}

impl Dependencies {
    fn control(&self) -> FaultControl<'_> {
        match self {
            Dependencies::Local(server) => FaultControl::Local(server),
            Dependencies::Remote { server, names, .. } => FaultControl::Remote(server, names),
        }
    }

    /// Leaves the fault server as the run found it.
    async fn close(self) {
        match self {
            Dependencies::Local(server) => server.shutdown(),
            Dependencies::Remote { server, added, .. } => {
                for name in added {
                    let _ = server.remove_dependency(&name).await;
                }
            }
        }
    }
}

/// Starts the suite's dependencies here, or finds (else adds) them on its remote fault server.
async fn dependencies(
    suite: &Suite,
    seed: u64,
) -> Result<(Dependencies, BTreeMap<String, String>), RunError> {
    let name = || suite.name.clone();
    let Some(RemoteSpec {
        control_url,
        token_env,
    }) = &suite.fault_server
    else {
        let mut builder = FaultServer::builder().seed(seed);
        for dependency in &suite.dependencies {
            builder = builder.dependency(dependency.clone());
        }
        let server = builder.start().map_err(|source| RunError::Start {
            suite: name(),
            source,
        })?;
        let urls = server
            .addrs()
            .into_iter()
            .map(|(name, addr)| (name, format!("http://{addr}")))
            .collect();
        return Ok((Dependencies::Local(server), urls));
    };
    let token = match token_env {
        Some(var) => Some(std::env::var(var).map_err(|_| RunError::MissingToken {
            suite: name(),
            var: var.clone(),
        })?),
        None => None,
    };
    let control = |source: crate::remote::RemoteError| RunError::Control {
        suite: name(),
        source: source.into(),
    };
    let server = RemoteFaultServer::connect(control_url, token, Clock::start())
        .await
        .map_err(control)?;
    let mut urls: BTreeMap<String, String> = server
        .dependencies()
        .await
        .map_err(control)?
        .into_iter()
        .map(|view| (view.name, view.url))
        .collect();
    let mut added = Vec::new();
    for spec in &suite.dependencies {
        if !urls.contains_key(&spec.name) {
            match server.add_dependency(spec).await {
                Ok(view) => {
                    added.push(view.name.clone());
                    urls.insert(view.name, view.url);
                }
                Err(error) => {
                    // Leave the server as found.
                    for name in &added {
                        let _ = server.remove_dependency(name).await;
                    }
                    return Err(control(error));
                }
            }
        }
    }
    let names: Vec<String> = suite.dependencies.iter().map(|d| d.name.clone()).collect();
    urls.retain(|name, _| names.contains(name));
    Ok((
        Dependencies::Remote {
            server,
            names,
            added,
        },
        urls,
    ))
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
    /// Why it ended early, if it did: `stopped` (the caller's `stop`), a
    /// hard cap, or the suite's `abort_when`.
    pub aborted: Option<String>,
    /// What the run observed, for the reports.
    pub observations: crate::Observations,
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
    let (dependencies, urls) = dependencies(suite, seed).await?;
    if let Some(bar) = progress {
        bar.set_prefix(suite.name.clone());
    }
    let settings = (stop, progress);
    let outcome = run_against(suite, target, seed, dependencies.control(), &urls, settings).await;
    dependencies.close().await;
    outcome
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
            .map(|expect| expect.property().check(&result.observations))
            .collect(),
        aborted: result.aborted_reason,
        observations: result.observations,
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
