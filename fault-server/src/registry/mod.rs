//! The server's dependencies by name, and every operation on them. Both the
//! Rust API ([`crate::FaultServer`]) and the control API call these, from any
//! thread: listeners are bound synchronously and served on the data plane's
//! runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dependency::Dependency;
use crate::fault::ActiveFault;
use crate::journal::{CallRecord, JournalStats};
mod proxies;

use crate::{dataplane, AlertRecord, Clock, ControlError, DependencySpec, Fault, StubResponse};

/// Settings shared by every dependency of a server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) seed: u64,
    pub(crate) journal_capacity: usize,
    /// Data-plane connections at once, over every dependency.
    pub(crate) max_connections: usize,
    /// Data-plane connections idle this long are closed.
    pub(crate) idle_timeout: Option<Duration>,
    /// Whether the server serves on a runtime of its own.
    pub(crate) own_runtime: bool,
}

#[derive(Debug)]
pub(crate) struct Registry {
    settings: Settings,
    clock: Clock,
    runtime: Handle,
    shutdown: CancellationToken,
    connections: dataplane::ConnectionLimits,
    dependencies: RwLock<BTreeMap<String, Running>>,
}

#[derive(Debug, Clone)]
struct Running {
    dependency: Arc<Dependency>,
    addr: SocketAddr,
    /// Cancelled when the dependency is removed (or the server stops).
    removed: CancellationToken,
    /// Its listener and connections: closed when removed, or disabled (made
    /// anew when enabled again).
    serving: Listening,
    /// When it lapses, for a dependency added with a lease.
    lease: Option<Arc<Mutex<Instant>>>,
}

/// A dependency as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyView {
    /// Its name.
    pub name: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://` + `addr`: what the system under test should call.
    pub url: String,
    /// What it answers when no fault says otherwise.
    pub response: StubResponse,
    /// Where it forwards calls, for a proxy dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::HttpProxy>,
    /// Where it pipes connections, for a TCP proxy dependency (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// The request headers each call's record keeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_headers: Vec<String>,
    /// The faults in force.
    pub faults: Vec<ActiveFault>,
    /// Calls received since the start or the last reset.
    pub calls: u64,
    /// Calls in flight now.
    pub in_flight: u64,
    /// Most calls in flight at once since the start or the last reset.
    pub peak_in_flight: u64,
    /// Time left before its lease runs out and it is removed; absent for a
    /// dependency added without a lease.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<Duration>,
    /// Connections reset at accept because the server held as many as its
    /// `max_connections` (over every dependency).
    #[serde(default)]
    pub connections_refused: u64,
    /// False while disabled (a Toxiproxy client's `enabled: false`): its
    /// listener is closed, so connections are refused.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// A dependency's listener being served: `stop` closes it (and its
/// connections); `closed` says when it has.
#[derive(Debug, Clone)]
struct Listening {
    stop: CancellationToken,
    closed: Arc<Closed>,
}

/// Set once a listener's task has ended, its socket closed.
#[derive(Debug, Default)]
struct Closed {
    done: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Closed {
    fn done(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    fn wait(&self, at_most: Duration) {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .changed
            .wait_timeout_while(done, at_most, |done| !*done);
    }
}

/// A window opened on every dependency at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// The window's name.
    pub name: String,
    /// When it opened, in nanoseconds on the server's clock.
    pub at_ns: u64,
    /// The window's index in each dependency's journal.
    pub windows: BTreeMap<String, u32>,
}

/// The name of the threads of a fault server's own runtime.
pub(crate) const OWN_RUNTIME_THREADS: &str = "fault-server";

impl Registry {
    pub(crate) fn new(settings: Settings, runtime: Handle) -> Self {
        Registry {
            connections: dataplane::ConnectionLimits::new(
                settings.max_connections,
                settings.idle_timeout,
            ),
            settings,
            clock: Clock::start(),
            runtime,
            shutdown: CancellationToken::new(),
            dependencies: RwLock::new(BTreeMap::new()),
        }
    }

    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    #[cfg(feature = "control")]
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Running>> {
        self.dependencies.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Running>> {
        self.dependencies.write().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self, name: &str) -> Result<Running, ControlError> {
        self.read()
            .get(name)
            .cloned()
            .ok_or_else(|| ControlError::UnknownDependency(name.to_owned()))
    }

    /// Starts a dependency: validates it, binds its listener, serves it.
    pub(crate) fn add(&self, spec: &DependencySpec) -> Result<DependencyView, ControlError> {
        self.insert(spec, None).map(|(view, _)| view)
    }

    /// As [`Registry::add`], removed once `lease` passes without a renewal
    /// ([`Registry::renew_dependency`]): what a run adds to a server it does
    /// not own goes away with the run, even a run killed without a word.
    pub(crate) fn add_leased(
        self: &Arc<Self>,
        spec: &DependencySpec,
        lease: Duration,
    ) -> Result<DependencyView, ControlError> {
        check_lease(lease)?;
        let (view, running) = self.insert(spec, Some(lease))?;
        let (Some(until), registry) = (running.lease.clone(), Arc::downgrade(self)) else {
            return Ok(view);
        };
        self.runtime.spawn(reap_when_lapsed(
            registry,
            running,
            until,
            spec.name.clone(),
        ));
        Ok(view)
    }

    /// Renews a leased dependency's lease for `lease` from now.
    pub(crate) fn renew_dependency(
        &self,
        name: &str,
        lease: Duration,
    ) -> Result<DependencyView, ControlError> {
        check_lease(lease)?;
        let running = self.running(name)?;
        let Some(until) = &running.lease else {
            return Err(ControlError::invalid(
                "lease",
                format!("`{name}` was added without a lease: it stays until removed"),
            ));
        };
        *until.lock().unwrap_or_else(PoisonError::into_inner) = later(lease)?;
        Ok(view(&running))
    }

    /// Removes `name` if it is still the dependency `running` (not one added
    /// again under the same name since).
    fn remove_lapsed(&self, name: &str, running: &Running) {
        let mut dependencies = self.write();
        if dependencies
            .get(name)
            .is_some_and(|r| Arc::ptr_eq(&r.dependency, &running.dependency))
        {
            if let Some(removed) = dependencies.remove(name) {
                removed.removed.cancel();
                self.closed(&removed.serving);
            }
        }
    }

    fn insert(
        &self,
        spec: &DependencySpec,
        lease: Option<Duration>,
    ) -> Result<(DependencyView, Running), ControlError> {
        let lease = lease
            .map(|lease| later(lease).map(|at| Arc::new(Mutex::new(at))))
            .transpose()?;
        if self.shutdown.is_cancelled() {
            return Err(ControlError::ShuttingDown);
        }
        let dependency = Arc::new(Dependency::new(
            spec,
            self.settings.seed,
            self.clock,
            self.settings.journal_capacity,
        )?);
        let mut dependencies = self.write();
        if dependencies.contains_key(&spec.name) {
            return Err(ControlError::DuplicateDependency(spec.name.clone()));
        }
        let removed = self.shutdown.child_token();
        let (addr, serving) = self.serve(&dependency, spec.listen_addr(), &removed)?;
        let running = Running {
            dependency,
            addr,
            removed,
            serving,
            lease,
        };
        let view = view(&running);
        dependencies.insert(spec.name.clone(), running.clone());
        Ok((view, running))
    }

    /// Stops a dependency and forgets it (its journal too).
    pub(crate) fn remove(&self, name: &str) -> Result<(), ControlError> {
        let running = self
            .write()
            .remove(name)
            .ok_or_else(|| ControlError::UnknownDependency(name.to_owned()))?;
        running.removed.cancel();
        self.closed(&running.serving);
        Ok(())
    }

    /// Closes a listener and its connections, and (except on the data
    /// plane's own runtime, which must run to close it) waits until the port
    /// is free: a client that re-creates a dependency on the same port at
    /// once must not find it taken.
    fn closed(&self, listening: &Listening) {
        listening.stop.cancel();
        // A runtime of the server's own names its workers (and a caller
        // that entered it to read its clock is not one); on a caller's
        // runtime, any thread in it may be one.
        let on_data_plane = tokio::runtime::Handle::try_current()
            .is_ok_and(|current| current.id() == self.runtime.id())
            && (!self.settings.own_runtime
                || std::thread::current().name() == Some(OWN_RUNTIME_THREADS));
        if !on_data_plane {
            listening.closed.wait(Duration::from_secs(2));
        }
    }

    /// Binds `wanted` and serves `dependency` there until `within` is
    /// cancelled or the listening handle is closed; the address bound.
    fn serve(
        &self,
        dependency: &Arc<Dependency>,
        wanted: SocketAddr,
        within: &CancellationToken,
    ) -> Result<(SocketAddr, Listening), ControlError> {
        let bind_error = |source| ControlError::Bind {
            addr: wanted,
            source,
        };
        let listener = dataplane::bind(wanted).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let listener = {
            let _entered = self.runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_error)?
        };
        let (served, limits) = (Arc::clone(dependency), self.connections.clone());
        let listening = Listening {
            stop: within.child_token(),
            closed: Arc::new(Closed::default()),
        };
        let (stop, closed) = (listening.stop.clone(), Arc::clone(&listening.closed));
        if dependency.tcp.is_some() {
            self.runtime.spawn(async move {
                crate::proxy::tcp::serve(listener, served, stop, limits).await;
                closed.done();
            });
        } else {
            self.runtime.spawn(async move {
                dataplane::serve(listener, served, stop, limits).await;
                closed.done();
            });
        }
        Ok((addr, listening))
    }

    pub(crate) fn view(&self, name: &str) -> Result<DependencyView, ControlError> {
        Ok(view(&self.running(name)?))
    }

    pub(crate) fn views(&self) -> Vec<DependencyView> {
        self.read().values().map(view).collect()
    }

    pub(crate) fn addr(&self, name: &str) -> Result<SocketAddr, ControlError> {
        Ok(self.running(name)?.addr)
    }

    pub(crate) fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.read()
            .iter()
            .map(|(name, running)| (name.clone(), running.addr))
            .collect()
    }

    pub(crate) fn set_response(
        &self,
        name: &str,
        response: StubResponse,
    ) -> Result<DependencyView, ControlError> {
        let running = self.running(name)?;
        running.dependency.set_response(response)?;
        Ok(view(&running))
    }

    /// Replaces a dependency's faults; `lease` bounds them all.
    pub(crate) fn set_faults(
        &self,
        name: &str,
        faults: Vec<Fault>,
        lease: Option<Duration>,
    ) -> Result<DependencyView, ControlError> {
        let running = self.running(name)?;
        validate_faults(&faults, &running.dependency)?;
        if let Some(lease) = lease {
            check_lease(lease)?;
        }
        running
            .dependency
            .state()
            .faults
            .replace(faults, lease, Instant::now());
        Ok(view(&running))
    }

    /// Renews the lease of the leased faults in force for `lease` from now.
    pub(crate) fn renew_lease(
        &self,
        name: &str,
        lease: Duration,
    ) -> Result<DependencyView, ControlError> {
        check_lease(lease)?;
        let running = self.running(name)?;
        running
            .dependency
            .state()
            .faults
            .renew(lease, Instant::now());
        Ok(view(&running))
    }

    /// Adds one fault after those in force.
    pub(crate) fn add_fault(
        &self,
        name: &str,
        fault: Fault,
    ) -> Result<DependencyView, ControlError> {
        let running = self.running(name)?;
        validate_faults(std::slice::from_ref(&fault), &running.dependency)?;
        running
            .dependency
            .state()
            .faults
            .push(fault, None, Instant::now());
        Ok(view(&running))
    }

    pub(crate) fn clear_faults(&self, name: &str) -> Result<(), ControlError> {
        self.running(name)?.dependency.state().faults.clear();
        Ok(())
    }

    pub(crate) fn journal(
        &self,
        name: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<CallRecord>, ControlError> {
        Ok(self
            .running(name)?
            .dependency
            .state()
            .journal
            .since(since, limit))
    }

    /// Starts a dependency's journal tape (see [`crate::journal::Journal::start_tape`]).
    pub(crate) fn start_tape(&self, name: &str) -> Result<(), ControlError> {
        self.running(name)?.dependency.state().journal.start_tape();
        Ok(())
    }

    /// Takes the records on a dependency's journal tape.
    pub(crate) fn take_tape(&self, name: &str) -> Result<Vec<CallRecord>, ControlError> {
        Ok(self.running(name)?.dependency.state().journal.take_tape())
    }

    pub(crate) fn alerts(&self, name: &str) -> Result<Vec<AlertRecord>, ControlError> {
        Ok(self.running(name)?.dependency.alerts())
    }

    /// Calls in flight at `name` now: one counter, no statistics built.
    pub(crate) fn in_flight(&self, name: &str) -> Result<u64, ControlError> {
        Ok(self.running(name)?.dependency.state().journal.in_flight())
    }

    pub(crate) fn stats(&self, name: &str) -> Result<JournalStats, ControlError> {
        Ok(self.running(name)?.dependency.state().journal.stats())
    }

    /// Opens a window named `name` on every dependency, at one instant.
    pub(crate) fn mark(&self, name: &str) -> Result<Mark, ControlError> {
        self.switch(name, BTreeMap::new(), None)
    }

    /// Opens a window named `name` on every dependency and, at each dependency
    /// named in `faults`, replaces its faults (leased for `lease`) in the same
    /// critical section: every call after the window opened meets the new
    /// faults, every call before it the old ones. Nothing changes when a
    /// name is unknown or a fault invalid.
    pub(crate) fn switch(
        &self,
        name: &str,
        mut faults: BTreeMap<String, Vec<Fault>>,
        lease: Option<Duration>,
    ) -> Result<Mark, ControlError> {
        if name.is_empty() || name.len() > 200 {
            return Err(ControlError::invalid("name", "must be 1 to 200 bytes"));
        }
        if let Some(lease) = lease {
            check_lease(lease)?;
        }
        let dependencies = self.read();
        for (dependency, set) in &faults {
            let running = dependencies
                .get(dependency)
                .ok_or_else(|| ControlError::UnknownDependency(dependency.clone()))?;
            validate_faults(set, &running.dependency)?;
        }
        let at_ns = self.clock.now_ns();
        let now = Instant::now();
        let mut windows = BTreeMap::new();
        for (dep_name, running) in dependencies.iter() {
            let mut state = running.dependency.state();
            if let Some(set) = faults.remove(dep_name) {
                state.faults.replace(set, lease, now);
            }
            let index = state
                .journal
                .mark(name, at_ns)
                .ok_or(ControlError::TooManyWindows)?;
            windows.insert(dep_name.clone(), index);
        }
        Ok(Mark {
            name: name.to_owned(),
            at_ns,
            windows,
        })
    }

    /// Clears every fault and every journal and enables every dependency
    /// (Toxiproxy's reset); dependencies keep running. The dependencies that
    /// could not be enabled again (their address taken meanwhile), with why.
    pub(crate) fn reset(&self) -> Vec<ControlError> {
        let disabled: Vec<String> = self
            .read()
            .iter()
            .filter(|(_, running)| !running.dependency.is_enabled())
            .map(|(name, _)| name.clone())
            .collect();
        let failed = disabled
            .iter()
            .filter_map(|name| self.set_enabled(name, true).err())
            .collect();
        let now_ns = self.clock.now_ns();
        for running in self.read().values() {
            let mut state = running.dependency.state();
            state.faults.clear();
            state.journal.clear(now_ns);
            running.dependency.clear_alerts();
        }
        failed
    }

    /// Snapshot of every dependency's counters, for metrics.
    #[cfg(feature = "metrics")]
    pub(crate) fn all_stats(&self) -> Vec<(String, JournalStats)> {
        self.read()
            .iter()
            .map(|(name, running)| (name.clone(), running.dependency.state().journal.stats()))
            .collect()
    }

    /// Stops every listener and connection without waiting.
    pub(crate) fn shutdown(&self) {
        self.shutdown.cancel();
        self.write().clear();
    }

    /// Stops every listener and connection, and waits (as [`Registry::remove`]
    /// does) until each dependency's port is free.
    pub(crate) fn shutdown_and_wait(&self) {
        self.shutdown.cancel();
        let running = std::mem::take(&mut *self.write());
        for dependency in running.values() {
            self.closed(&dependency.serving);
        }
    }
}

/// Every fault valid, and of a kind the dependency takes (a TCP proxy's
/// connection faults, or HTTP request faults).
fn validate_faults(faults: &[Fault], dependency: &Dependency) -> Result<(), ControlError> {
    for (i, fault) in faults.iter().enumerate() {
        fault
            .validate()
            .and_then(|()| fault.check_for(dependency.tcp.is_some()))
            .map_err(|e| ControlError::invalid(format!("faults[{i}]"), e))?;
    }
    crate::fault::check_names(faults)
        .map_err(|(i, e)| ControlError::invalid(format!("faults[{i}].name"), e))
}

fn view(running: &Running) -> DependencyView {
    let mut state = running.dependency.state();
    let faults = state.faults.active(Instant::now());
    let journal = &state.journal;
    DependencyView {
        name: running.dependency.name.clone(),
        addr: running.addr,
        url: format!("http://{}", running.addr),
        response: state.response.clone(),
        proxy: running.dependency.proxy.clone(),
        tcp: running.dependency.tcp_upstream(),
        keep_headers: running.dependency.keep_headers.clone(),
        faults,
        calls: journal.calls(),
        in_flight: journal.in_flight(),
        peak_in_flight: journal.peak_in_flight(),
        connections_refused: running.dependency.connections_refused(),
        enabled: running.dependency.is_enabled(),
        expires_in: running.lease.as_ref().map(|until| {
            let until = *until.lock().unwrap_or_else(PoisonError::into_inner);
            until.saturating_duration_since(Instant::now())
        }),
    }
}

/// `lease` from now.
fn later(lease: Duration) -> Result<Instant, ControlError> {
    Instant::now()
        .checked_add(lease)
        .ok_or_else(|| ControlError::invalid("lease", "too far in the future"))
}

/// Waits out a leased dependency's lease, renewals and all, and removes it
/// when it lapses; returns when it is removed some other way.
async fn reap_when_lapsed(
    registry: Weak<Registry>,
    running: Running,
    until: Arc<Mutex<Instant>>,
    name: String,
) {
    let read = || *until.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        tokio::select! {
            () = running.removed.cancelled() => return,
            () = tokio::time::sleep_until(read()) => {}
        }
        if read() <= Instant::now() {
            if let Some(registry) = registry.upgrade() {
                registry.remove_lapsed(&name, &running);
            }
            return;
        }
    }
}

/// A lease of zero would clear the faults it was meant to hold.
fn check_lease(lease: Duration) -> Result<(), ControlError> {
    if lease.is_zero() {
        return Err(ControlError::invalid("lease", "must be above zero"));
    }
    crate::fault::at_most_a_day(lease).map_err(|e| ControlError::invalid("lease", e))?;
    Ok(())
}
