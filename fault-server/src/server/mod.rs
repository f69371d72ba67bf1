//! [`FaultServer`]: the fault server as a Rust value, for tests and the harness.

mod builder;
#[cfg(feature = "control")]
mod toxiproxy;
mod verify;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use builder::{FaultServerBuilder, StartError};
pub use verify::{Times, Unmet};

#[cfg(feature = "control")]
use crate::control::ControlHandle;

/// A server's control API thread, when it serves one.
#[cfg(feature = "control")]
type ControlSlot = Option<ControlHandle>;
/// Without the `control` feature there is none.
#[cfg(not(feature = "control"))]
type ControlSlot = ();
use crate::journal::{CallRecord, JournalStats};
use crate::registry::{DependencyView, Mark, Registry};
use crate::{AlertRecord, Clock, ControlError, DependencySpec, Fault, StubResponse};

/// A running fault server: stub dependencies on their own loopback ports,
/// controlled from Rust (and over HTTP when the control API is on).
///
/// Dropping it stops every listener and the control API.
///
/// ```
/// use fault_server::{DependencySpec, Fault, FaultKind, ErrorFault, FaultServer, StubResponse};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Arrange: a payments stub that fails its first two calls.
/// let server = FaultServer::builder()
///     .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
///     .seed(7)
///     .start()?;
/// let fail = Fault::error(503).first(2);
/// server.add_fault("payments", fail)?;
///
/// // Act: call it three times, as the system under test would.
/// let url = server.url("payments")?;
/// # let addr = server.addr("payments")?;
/// # let mut statuses = Vec::new();
/// # for _ in 0..3 {
/// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// #     let mut s = tokio::net::TcpStream::connect(addr).await?;
/// #     s.write_all(b"GET /charge HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
/// #     let mut out = String::new();
/// #     s.read_to_string(&mut out).await?;
/// #     statuses.push(out[9..12].to_owned());
/// # }
/// # assert!(url.starts_with("http://127.0.0.1:"));
///
/// // Assert: the journal saw every call, and the first two failed.
/// let stats = server.stats("payments")?;
/// assert_eq!(stats.total.calls, 3);
/// assert_eq!(stats.total.statuses.get(&503), Some(&2));
/// # assert_eq!(statuses, ["503", "503", "200"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultServer {
    registry: Arc<Registry>,
    /// The control API, when it was asked for.
    #[cfg_attr(not(feature = "control"), allow(dead_code))]
    control: ControlSlot,
    /// The runtime it serves on, entered by every method, so that instants
    /// (leases, journal windows) are read on its clock whatever runtime,
    /// paused or not, the caller is on.
    runtime: tokio::runtime::Handle,
    /// Its own runtime, unless it serves on the caller's.
    own: Option<tokio::runtime::Runtime>,
    /// Calls expected at dependencies, checked when dropped.
    expected: std::sync::Mutex<Vec<verify::Expected>>,
}

impl FaultServer {
    /// A builder with no dependencies, seed 0 and no control API.
    pub fn builder() -> FaultServerBuilder {
        FaultServerBuilder::new()
    }

    /// The default control API address.
    pub const DEFAULT_CONTROL: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8474);

    /// The address a dependency listens on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// assert!(server.addr("crm")?.ip().is_loopback());
    /// assert!(matches!(server.addr("nope"), Err(ControlError::UnknownDependency(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self, dependency: &str) -> Result<SocketAddr, ControlError> {
        let _on = self.runtime.enter();
        self.registry.addr(dependency)
    }

    /// `http://host:port` of a dependency: what the system under test calls.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// assert_eq!(server.url("crm")?, format!("http://{}", server.addr("crm")?));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self, dependency: &str) -> Result<String, ControlError> {
        let _on = self.runtime.enter();
        Ok(format!("http://{}", self.addr(dependency)?))
    }

    /// Every dependency's address, by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// assert_eq!(server.addrs().keys().collect::<Vec<_>>(), ["crm"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        let _on = self.runtime.enter();
        self.registry.addrs()
    }

    /// Where the control API listens, when it is on (feature `control`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().start()?;
    /// assert_eq!(server.control_addr(), None, "the control API is off unless asked for");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "control")]
    pub fn control_addr(&self) -> Option<SocketAddr> {
        let _on = self.runtime.enter();
        self.control.as_ref().map(ControlHandle::addr)
    }

    /// The clock the journals' timestamps count from.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().start()?;
    /// let clock = server.clock();
    /// assert!(clock.now_ns() >= clock.ns_at(clock.origin()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn clock(&self) -> Clock {
        let _on = self.runtime.enter();
        self.registry.clock()
    }

    /// Its registry: for the control routes answered in-process by
    /// `fuzzing`, and the Toxiproxy operations.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Starts another dependency.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().start()?;
    /// let view = server.add_dependency(&DependencySpec::stub("search"))?;
    /// assert_eq!(view.url, server.url("search")?);
    /// assert!(matches!(
    ///     server.add_dependency(&DependencySpec::stub("search")),
    ///     Err(ControlError::DuplicateDependency(_))
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_dependency(&self, spec: &DependencySpec) -> Result<DependencyView, ControlError> {
        let _on = self.runtime.enter();
        self.registry.add(spec)
    }

    /// As [`FaultServer::add_dependency`], removed (listener and journal) once
    /// `lease` passes without [`FaultServer::renew_dependency`]; the control
    /// API's `POST /dependencies` with `"lease"`.
    ///
    /// # Errors
    /// As `add_dependency`, and a lease of zero or above a day.
    pub fn add_leased_dependency(
        &self,
        spec: &DependencySpec,
        lease: Duration,
    ) -> Result<DependencyView, ControlError> {
        let _on = self.runtime.enter();
        self.registry.add_leased(spec, lease)
    }

    /// Renews a leased dependency's lease for `lease` from now.
    ///
    /// # Errors
    /// No such dependency, one added without a lease, or a bad lease.
    pub fn renew_dependency(
        &self,
        dependency: &str,
        lease: Duration,
    ) -> Result<DependencyView, ControlError> {
        let _on = self.runtime.enter();
        self.registry.renew_dependency(dependency, lease)
    }

    /// Stops a dependency and forgets its journal.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// server.remove_dependency("crm")?;
    /// assert!(server.dependencies().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_dependency(&self, dependency: &str) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.remove(dependency)
    }

    /// A dependency's address, response, faults and counts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let view = server.dependency("crm")?;
    /// assert_eq!((view.calls, view.in_flight, view.faults.len()), (0, 0, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn dependency(&self, dependency: &str) -> Result<DependencyView, ControlError> {
        let _on = self.runtime.enter();
        self.registry.view(dependency)
    }

    /// Every dependency, by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// assert_eq!(server.dependencies()[0].name, "crm");
    /// # Ok(())
    /// # }
    /// ```
    pub fn dependencies(&self) -> Vec<DependencyView> {
        let _on = self.runtime.enter();
        self.registry.views()
    }

    /// Replaces a dependency's normal response.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// server.set_response("crm", StubResponse::ok("synced"))?;
    /// assert_eq!(server.dependency("crm")?.response.body, "synced");
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_response(
        &self,
        dependency: &str,
        response: StubResponse,
    ) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.set_response(dependency, response).map(drop)
    }

    /// Adds a fault after those in force at a dependency.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// # use std::time::Duration;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// server.add_fault("crm", Fault::latency(Duration::from_secs(8)))?;
    /// server.add_fault("crm", Fault::error(503).probability(0.3))?;
    /// assert_eq!(server.dependency("crm")?.faults.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_fault(&self, dependency: &str, fault: impl Into<Fault>) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.add_fault(dependency, fault.into()).map(drop)
    }

    /// Removes the fault `fault` names at a dependency: its `name`, or an
    /// unnamed fault's label (`<kind>-<id>`, as [`crate::fault::ActiveFault::label`]
    /// gives it). Other faults keep their state.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// # use std::time::Duration;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let slow = Fault::latency(Duration::from_secs(8)).named("slow");
    /// server.add_fault("crm", slow)?;
    /// server.add_fault("crm", Fault::reset())?;
    /// let reset = server.dependency("crm")?.faults[1].label();
    /// server.remove_fault("crm", &reset)?;
    /// server.remove_fault("crm", "slow")?;
    /// assert!(server.dependency("crm")?.faults.is_empty());
    /// assert!(server.remove_fault("crm", "slow").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_fault(&self, dependency: &str, fault: &str) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.remove_fault(dependency, fault)
    }

    /// Replaces every fault at a dependency; `lease`, when set, removes them all after it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// use std::time::Duration;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let slow = Fault::latency(Duration::from_secs(8)).into();
    /// server.set_faults("crm", vec![slow], Some(Duration::from_secs(60)))?;
    /// assert!(server.dependency("crm")?.faults[0].expires_in.unwrap() <= Duration::from_secs(60));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_faults(
        &self,
        dependency: &str,
        faults: Vec<Fault>,
        lease: Option<Duration>,
    ) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry
            .set_faults(dependency, faults, lease)
            .map(drop)
    }

    /// Renews the lease of a dependency's leased faults for `lease` from now,
    /// keeping their state; see [`FaultSet::renew`](crate::fault::FaultSet::renew).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// # use std::time::Duration;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let reset = Fault::reset().into();
    /// server.set_faults("crm", vec![reset], Some(Duration::from_millis(50)))?;
    /// server.renew_lease("crm", Duration::from_secs(30))?;
    /// tokio::time::sleep(Duration::from_millis(100)).await;
    /// assert_eq!(server.dependency("crm")?.faults.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn renew_lease(&self, dependency: &str, lease: Duration) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.renew_lease(dependency, lease).map(drop)
    }

    /// Removes every fault at a dependency.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// server.add_fault("crm", Fault::reset())?;
    /// server.clear_faults("crm")?;
    /// assert!(server.dependency("crm")?.faults.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear_faults(&self, dependency: &str) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.clear_faults(dependency)
    }

    /// Opens a journal window named `name` on every dependency.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let mark = server.mark("crm slow")?;
    /// assert_eq!(mark.windows["crm"], 1);
    /// assert_eq!(server.stats("crm")?.windows[1].name, "crm slow");
    /// # Ok(())
    /// # }
    /// ```
    pub fn mark(&self, name: &str) -> Result<Mark, ControlError> {
        let _on = self.runtime.enter();
        self.registry.mark(name)
    }

    /// Opens a window named `name` on every dependency (as [`FaultServer::mark`])
    /// and, at each dependency named in `faults`, replaces its faults (leased
    /// for `lease`) in the same critical section as its window opens: a phase
    /// switch. Every call in the new window met the new faults, and every call
    /// before it the old ones. Nothing changes when a name is unknown or a
    /// fault invalid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// use std::collections::BTreeMap;
    /// use std::time::Duration;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let slow = Fault::latency(Duration::from_secs(8)).into();
    /// let mark = server.switch("crm slow", BTreeMap::from([("crm".to_owned(), vec![slow])]), None)?;
    /// assert_eq!(mark.windows["crm"], 1);
    /// assert_eq!(server.dependency("crm")?.faults.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn switch(
        &self,
        name: &str,
        faults: BTreeMap<String, Vec<Fault>>,
        lease: Option<Duration>,
    ) -> Result<Mark, ControlError> {
        let _on = self.runtime.enter();
        self.registry.switch(name, faults, lease)
    }

    /// Starts a dependency's journal *tape*: from now on its journal drops no
    /// record (whatever its capacity), and the record of every call that ends
    /// is kept for [`FaultServer::take_tape`]. For a reader that must see every
    /// call at any rate (the harness, on its own server). Calls still in flight
    /// stay readable with [`FaultServer::journal_since`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).journal_capacity(0).start()?;
    /// server.start_tape("crm")?;
    /// let mut stream = tokio::net::TcpStream::connect(server.addr("crm")?).await?;
    /// stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
    /// stream.read_to_end(&mut Vec::new()).await?;
    /// assert_eq!(server.take_tape("crm")?.len(), 1, "kept although the ring keeps nothing");
    /// assert!(server.take_tape("crm")?.is_empty(), "taken once");
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_tape(&self, dependency: &str) -> Result<(), ControlError> {
        let _on = self.runtime.enter();
        self.registry.start_tape(dependency)
    }

    /// The records of the dependency's calls that ended since the last take,
    /// in the order they ended; see [`FaultServer::start_tape`].
    pub fn take_tape(&self, dependency: &str) -> Result<Vec<CallRecord>, ControlError> {
        let _on = self.runtime.enter();
        self.registry.take_tape(dependency)
    }

    /// Every record a dependency's journal holds, oldest first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let mut stream = tokio::net::TcpStream::connect(server.addr("crm")?).await?;
    /// stream.write_all(b"POST /sync HTTP/1.1\r\nhost: x\r\nidempotency-key: order-7\r\nconnection: close\r\n\r\n").await?;
    /// stream.read_to_end(&mut Vec::new()).await?;
    /// let record = &server.journal("crm")?[0];
    /// assert_eq!((record.path.as_str(), record.idempotency_key.as_deref()), ("/sync", Some("order-7")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn journal(&self, dependency: &str) -> Result<Vec<CallRecord>, ControlError> {
        let _on = self.runtime.enter();
        self.registry.journal(dependency, 0, usize::MAX)
    }

    /// Up to `limit` records with `seq >= since`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// // Poll from the sequence number after the last record seen.
    /// let next = server.stats("crm")?.next_seq;
    /// assert!(server.journal_since("crm", next, 100)?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn journal_since(
        &self,
        dependency: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<CallRecord>, ControlError> {
        let _on = self.runtime.enter();
        self.registry.journal(dependency, since, limit)
    }

    /// The alerts an alert sink received, oldest first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("alerts").as_alert_sink()).start()?;
    /// assert!(server.alerts("alerts")?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn alerts(&self, dependency: &str) -> Result<Vec<AlertRecord>, ControlError> {
        let _on = self.runtime.enter();
        self.registry.alerts(dependency)
    }

    /// Calls in flight at a dependency now (the one counter of
    /// [`FaultServer::stats`], without building the rest).
    pub fn in_flight(&self, dependency: &str) -> Result<u64, ControlError> {
        self.registry.in_flight(dependency)
    }

    /// A dependency's exact counters, overall and per window.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let stats = server.stats("crm")?;
    /// assert_eq!((stats.total.calls, stats.total.peak_in_flight, stats.in_flight), (0, 0, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self, dependency: &str) -> Result<JournalStats, ControlError> {
        let _on = self.runtime.enter();
        self.registry.stats(dependency)
    }

    /// Clears every fault and journal, and enables every disabled dependency
    /// (one whose address was taken meanwhile stays disabled).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// server.add_fault("crm", Fault::close())?;
    /// server.mark("phase")?;
    /// server.reset();
    /// assert!(server.dependency("crm")?.faults.is_empty());
    /// assert_eq!(server.stats("crm")?.windows.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reset(&self) {
        let _on = self.runtime.enter();
        // A dependency disabled and whose address was taken stays disabled;
        // `set_enabled` says why.
        let _ = self.registry.reset();
    }

    /// Disables a dependency (`false`: its listener is closed, so new
    /// connections are refused, and its connections are closed, journaled
    /// `closed`) or enables it again on the same address (Toxiproxy's
    /// `enabled`). Faults and journal are kept.
    ///
    /// # Errors
    /// [`ControlError::UnknownDependency`]; [`ControlError::Bind`] when its
    /// address was taken while it was disabled.
    pub fn set_enabled(
        &self,
        dependency: &str,
        enabled: bool,
    ) -> Result<DependencyView, ControlError> {
        let _on = self.runtime.enter();
        self.registry().set_enabled(dependency, enabled)
    }

    /// Stops every listener, every connection and the control API, and waits
    /// until every dependency's port is free and the control thread has
    /// finished. (Dropping the server stops them too, without waiting.)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let crm = server.addr("crm")?;
    /// server.shutdown();
    /// assert!(std::net::TcpStream::connect(crm).is_err(), "nothing listens any more");
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(mut self) {
        self.registry.shutdown_and_wait();
        #[cfg(feature = "control")]
        if let Some(control) = self.control.take() {
            control.stop_and_join();
        }
        if let Some(own) = self.own.take() {
            own.shutdown_background();
        }
    }
}

impl FaultServer {
    /// What the expectations ([`FaultServer::expect_calls`]) that did not
    /// hold say, unless the thread is panicking already.
    fn unmet_expectations(&self) -> Option<Unmet> {
        if std::thread::panicking() {
            return None;
        }
        let _on = self.runtime.enter();
        self.verify().err()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        // Read before the server stops; reported after, so a failed
        // expectation still leaves no listener or control thread behind.
        let unmet = self.unmet_expectations();
        self.registry.shutdown();
        #[cfg(feature = "control")]
        if let Some(control) = &self.control {
            control.stop();
        }
        // Without waiting: a server dropped inside an async test must not block it.
        if let Some(own) = self.own.take() {
            own.shutdown_background();
        }
        if let Some(unmet) = unmet {
            panic!("fault server: {unmet}");
        }
    }
}
