//! A suite's dependencies: a fault server started for the run, or a remote
//! one whose dependencies the run finds (checked against the suite) or adds
//! (leased, so that they go with the run however it ends), and which the run
//! leaves as it found it.

use std::collections::BTreeMap;

use fault_server::{Clock, DependencySpec, DependencyView, Fault, FaultServer, StubResponse};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lease::{LEASE, RENEW_EVERY};
use super::plan::{Plan, RemoteSpec};
use super::{RunError, RunErrorKind};
use crate::run::fault_control::FaultControl;
use crate::run::remote::RemoteFaultServer;

/// The fault server a suite runs against.
pub(super) enum Dependencies {
    /// Started for the run, in this process.
    Local(FaultServer),
    /// Running elsewhere.
    Remote(Box<Remote>),
}

pub(super) struct Remote {
    server: RemoteFaultServer,
    /// The suite's dependencies.
    names: Vec<String>,
    /// Those the run added, leased; `keeper` renews their lease.
    added: Vec<String>,
    keeper: Option<JoinHandle<()>>,
    /// The standing (unleased) faults of those the run found, to put back.
    found_faults: BTreeMap<String, Vec<Fault>>,
}

impl Dependencies {
    pub(super) fn control(&self) -> FaultControl<'_> {
        match self {
            Dependencies::Local(server) => FaultControl::Local(server),
            Dependencies::Remote(remote) => FaultControl::Remote(&remote.server, &remote.names),
        }
    }

    /// Leaves the fault server as the run found it: the dependencies it added
    /// removed, the standing faults it found put back. Returns what could not
    /// be done (the added dependencies lapse by their lease anyway).
    pub(super) async fn close(self) -> Vec<String> {
        let remote = match self {
            Dependencies::Local(server) => {
                server.shutdown();
                return Vec::new();
            }
            Dependencies::Remote(remote) => remote,
        };
        if let Some(keeper) = remote.keeper {
            keeper.abort();
        }
        for name in &remote.added {
            let _ = remote.server.remove_dependency(name).await;
        }
        let mut warnings = Vec::new();
        for (name, faults) in &remote.found_faults {
            if let Err(error) = remote.server.restore_faults(name, faults).await {
                warnings.push(format!(
                    "could not put back the {} standing fault(s) `{name}` had at {} before the run: {error}",
                    faults.len(),
                    remote.server.url()
                ));
            }
        }
        warnings
    }
}

/// Starts the plan's dependencies here, or finds (else adds) them on its
/// remote fault server; with their URLs. Once `stop` is cancelled, calls to
/// a remote server are hurried ([`RemoteFaultServer::hurry_when`]).
pub(super) async fn dependencies(
    plan: &Plan,
    seed: u64,
    stop: &CancellationToken,
) -> Result<(Dependencies, BTreeMap<String, String>), RunError> {
    let name = || plan.suite.clone();
    let specs = &plan.dependencies;
    let Some(RemoteSpec {
        control_url,
        token_env,
        reuse,
    }) = &plan.fault_server
    else {
        // On the run's runtime: the data plane shares its workers, as measured.
        let mut builder = FaultServer::builder().on_current_runtime().seed(seed);
        for dependency in specs {
            builder = builder.dependency(dependency.clone());
        }
        let server = builder
            .start()
            .map_err(|source| RunError::new(name(), RunErrorKind::Start { source }))?;
        let urls = server
            .addrs()
            .into_iter()
            .map(|(name, addr)| (name, format!("http://{addr}")))
            .collect();
        return Ok((Dependencies::Local(server), urls));
    };
    let token =
        match token_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                RunError::new(name(), RunErrorKind::MissingToken { var: var.clone() })
            })?),
            None => None,
        };
    let control = |source: crate::run::remote::RemoteError| {
        RunError::new(
            name(),
            RunErrorKind::Control {
                source: source.into(),
            },
        )
    };
    let mut server = RemoteFaultServer::connect(control_url, token, Clock::start())
        .await
        .map_err(control)?;
    server.hurry_when(stop.clone());
    let existing: BTreeMap<String, DependencyView> = server
        .dependencies()
        .await
        .map_err(control)?
        .into_iter()
        .map(|view| (view.name.clone(), view))
        .collect();
    let mut urls = BTreeMap::new();
    let mut found_faults = BTreeMap::new();
    for spec in specs {
        let Some(view) = existing.get(&spec.name) else {
            continue;
        };
        if let Some(missing) = spec
            .keep_headers
            .iter()
            .find(|h| !view.keep_headers.contains(h))
        {
            return Err(RunError::new(
name(),
 RunErrorKind::DependencyDiffers {
                server: server.url().to_owned(),
                dependency: spec.name.clone(),
                what: format!(
                    "records keep no `{missing}` header, which the suite selects calls by (add it to the dependency's keep_headers there)"
                ),
            },
));
        }
        if let (false, Some(what)) = (*reuse, differs(spec, view)) {
            return Err(RunError::new(
                name(),
                RunErrorKind::DependencyDiffers {
                    server: server.url().to_owned(),
                    dependency: spec.name.clone(),
                    what,
                },
            ));
        }
        urls.insert(view.name.clone(), view.url.clone());
        let standing: Vec<Fault> = view
            .faults
            .iter()
            .filter(|f| f.expires_in.is_none())
            .map(|f| f.fault.clone())
            .collect();
        if !standing.is_empty() {
            found_faults.insert(view.name.clone(), standing);
        }
    }
    let mut added = Vec::new();
    for spec in specs.iter().filter(|d| !existing.contains_key(&d.name)) {
        match server.add_dependency(spec, LEASE).await {
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
    let keeper =
        (!added.is_empty()).then(|| tokio::spawn(keep_leased(server.clone(), added.clone())));
    let names = specs.iter().map(|d| d.name.clone()).collect();
    let remote = Remote {
        server,
        names,
        added,
        keeper,
        found_faults,
    };
    Ok((Dependencies::Remote(Box::new(remote)), urls))
}

/// Renews the lease of the dependencies a run added, every [`RENEW_EVERY`],
/// until aborted (when the run closes). A failed renewal is tried again at
/// the next tick; a run that dies leaves them to lapse within [`LEASE`].
async fn keep_leased(server: RemoteFaultServer, names: Vec<String>) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for name in &names {
            let _ = server.renew_dependency(name, LEASE).await;
        }
    }
}

/// How an existing dependency differs from what the suite asks of it, in
/// what the suite sets: its `response` when not the default, its `listen`
/// address when given (port 0: any port). A suite that only names a
/// dependency takes it as it is.
fn differs(spec: &DependencySpec, view: &DependencyView) -> Option<String> {
    if spec.response != StubResponse::default() && spec.response != view.response {
        let json = |r: &StubResponse| serde_json::to_string(r).unwrap_or_default();
        return Some(format!(
            "response differs from the suite's: it has {}, the suite wants {}",
            json(&view.response),
            json(&spec.response)
        ));
    }
    let listen = spec.listen?;
    let same =
        listen.ip() == view.addr.ip() && (listen.port() == 0 || listen.port() == view.addr.port());
    (!same).then(|| format!("address is {}, not {listen} as the suite says", view.addr))
}
