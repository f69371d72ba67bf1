//! Running a suite: a fault server for its dependencies, its load through
//! its phases, and a verdict for every expectation.

use fault_server::{ControlError, FaultServer, StartError};

use crate::load::{Arrival, Endpoint, Load};
use crate::suite::Suite;
use crate::timeline::{run, PhasePlan};
use crate::Verdict;

/// Why a suite could not be run (as opposed to a property failing, which is a verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Neither the suite nor the command line names a target.
    #[error(
        "{suite}: no target: set [target] base_url or command in the suite, or pass --target-url"
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
    /// The fault server refused an operation during the run.
    #[error("{suite}: {source}")]
    Control {
        /// The suite's name.
        suite: String,
        /// Why.
        #[source]
        source: ControlError,
    },
}

impl RunError {
    /// Whether the fault is in the suite or command line (exit 2) rather than the run (exit 4).
    pub fn is_usage(&self) -> bool {
        matches!(self, RunError::NoTarget { .. } | RunError::BadUrl { .. })
    }
}

/// Runs `suite` against `target_url` (else the suite's own base URL) and
/// judges every expectation.
pub async fn run_suite(
    suite: &Suite,
    target_url: Option<&str>,
    seed: u64,
) -> Result<Vec<Verdict>, RunError> {
    let name = || suite.name.clone();
    let mut builder = FaultServer::builder().seed(seed);
    for dependency in &suite.dependencies {
        builder = builder.dependency(dependency.clone());
    }
    let server = builder.start().map_err(|source| RunError::Start {
        suite: name(),
        source,
    })?;
    // Kept alive for the run; dropping it stops the target.
    let mut started = None;
    let base = match (target_url, &suite.target.command, &suite.target.base_url) {
        (Some(url), _, _) => url.to_owned(),
        (None, Some(command), _) => {
            let urls = server
                .addrs()
                .into_iter()
                .map(|(name, addr)| (name, format!("http://{addr}")))
                .collect();
            let target = crate::target::start(&suite.target, command, &urls)
                .await
                .map_err(|source| RunError::Target {
                    suite: name(),
                    source,
                })?;
            started.insert(target).base_url.clone()
        }
        (None, None, Some(url)) => url.clone(),
        (None, None, None) => return Err(RunError::NoTarget { suite: name() }),
    };
    let base = base.trim_end_matches('/');
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
    let phases: Vec<PhasePlan> = suite
        .phases
        .iter()
        .map(|p| PhasePlan {
            name: p.name.clone(),
            duration: p.duration,
            faults: p.faults.clone(),
        })
        .collect();
    let result = run(&server, &phases, loads, seed)
        .await
        .map_err(|source| RunError::Control {
            suite: name(),
            source,
        })?;
    server.shutdown();
    drop(started);
    Ok(suite
        .expect
        .iter()
        .map(|expect| expect.property().check(&result.observations))
        .collect())
}
