//! [`FaultServerBuilder`]: what a fault server starts with.

use std::io;
#[cfg(feature = "control")]
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use super::FaultServer;
#[cfg(feature = "control")]
use crate::control;
use crate::journal::DEFAULT_JOURNAL_CAPACITY;
use crate::registry::{Registry, Settings};
use crate::{ControlError, DependencySpec};

/// Why a fault server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `on_current_runtime` was asked for outside a tokio runtime.
    #[error("on_current_runtime: the fault server was started outside a tokio runtime")]
    NoRuntime,
    /// Its own runtime could not be built.
    #[error("cannot start the fault server's runtime: {0}")]
    Runtime(#[source] io::Error),
    /// A dependency was invalid or could not listen.
    #[error("dependency `{name}`: {source}")]
    Dependency {
        /// Its name.
        name: String,
        /// What went wrong.
        #[source]
        source: ControlError,
    },
    /// The control API could not listen.
    #[cfg(feature = "control")]
    #[error("control API on {addr}: {source}")]
    Control {
        /// The address asked for.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The control API would listen beyond loopback without a token.
    #[cfg(feature = "control")]
    #[error(
        "the control API on {0} is reachable beyond this machine: set a token (--token) to bind it"
    )]
    TokenRequired(SocketAddr),
}

/// Configures and starts a [`FaultServer`].
#[derive(Debug, Clone)]
pub struct FaultServerBuilder {
    dependencies: Vec<DependencySpec>,
    settings: Settings,
    #[cfg(feature = "control")]
    control: Option<SocketAddr>,
    #[cfg(feature = "control")]
    token: Option<String>,
    #[cfg(feature = "control")]
    allow_hosts: Vec<String>,
}

impl FaultServerBuilder {
    /// No dependencies, seed 0, no control API.
    pub(super) fn new() -> Self {
        FaultServerBuilder {
            dependencies: Vec::new(),
            settings: Settings {
                seed: 0,
                journal_capacity: DEFAULT_JOURNAL_CAPACITY,
                max_connections: crate::dataplane::default_max_connections(),
                idle_timeout: None,
                own_runtime: true,
            },
            #[cfg(feature = "control")]
            control: None,
            #[cfg(feature = "control")]
            token: None,
            #[cfg(feature = "control")]
            allow_hosts: Vec::new(),
        }
    }

    /// Adds a dependency.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder()
    ///     .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
    ///     .dependency(DependencySpec::stub("crm"))
    ///     .start()?;
    /// assert_eq!(server.addrs().len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dependency(mut self, spec: DependencySpec) -> Self {
        self.dependencies.push(spec);
        self
    }

    /// Seeds every random decision (default 0).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// // The same seed and arrival order give the same probabilistic decisions.
    /// let server = FaultServer::builder().seed(42).start()?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = seed;
        self
    }

    /// Caps each journal's records (default [`DEFAULT_JOURNAL_CAPACITY`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder()
    ///     .dependency(DependencySpec::stub("crm"))
    ///     .journal_capacity(1_000)
    ///     .start()?;
    /// assert_eq!(server.stats("crm")?.capacity, 1_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn journal_capacity(mut self, records: usize) -> Self {
        self.settings.journal_capacity = records;
        self
    }

    /// Caps the data plane's connections at once, over every dependency
    /// (default [`crate::default_max_connections`]: the open-file limit less
    /// a reserve, so that the control API can still answer while idle
    /// connections hold every data-plane slot). A connection beyond the cap
    /// is reset at accept and counted (`connections_refused`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().max_connections(10_000).start()?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.settings.max_connections = connections;
        self
    }

    /// Closes a data-plane connection with no call in flight and none
    /// arriving or ending for `timeout` (default: never, as a stand-in must
    /// not close a client's pooled connection unless a fault says so).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = Some(timeout);
        self
    }

    /// Also serves the control API on `addr` (its own thread and runtime;
    /// feature `control`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().control("127.0.0.1:0".parse()?).start()?;
    /// assert!(server.control_addr().unwrap().port() > 0);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "control")]
    pub fn control(mut self, addr: SocketAddr) -> Self {
        self.control = Some(addr);
        self
    }

    /// Requires `Authorization: Bearer <token>` on the control API; needed to bind it beyond loopback.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// // Beyond loopback the control API needs a token.
    /// let refused = FaultServer::builder().control("0.0.0.0:0".parse()?).start();
    /// assert!(matches!(refused, Err(StartError::TokenRequired(_))));
    /// let server = FaultServer::builder().control("0.0.0.0:0".parse()?).token("s3cret").start()?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "control")]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Accepts `name` in the control API's `Host` header, beside its bound
    /// address and `localhost` (others are refused with 403: DNS rebinding).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder()
    ///     .control("127.0.0.1:0".parse()?)
    ///     .allow_host("faults.internal")
    ///     .start()?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "control")]
    pub fn allow_host(mut self, name: impl Into<String>) -> Self {
        self.allow_hosts.push(name.into());
        self
    }

    /// Serves on the tokio runtime `start` is called from, rather than on a
    /// runtime of its own: for a program that is itself a server on a
    /// runtime it tunes (the `fault-server` binary, the harness). Calls then
    /// run only while that runtime does: a blocking client on a
    /// current-thread runtime would wait for ever.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use fault_server::*;
    /// let server = FaultServer::builder().on_current_runtime().start()?;
    /// # drop(server);
    /// // Outside a runtime there is nothing to serve on.
    /// std::thread::spawn(|| assert!(matches!(
    ///     FaultServer::builder().on_current_runtime().start(),
    ///     Err(StartError::NoRuntime)
    /// )))
    /// .join()
    /// .unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_current_runtime(mut self) -> Self {
        self.settings.own_runtime = false;
        self
    }

    /// Binds every listener and starts serving: on a runtime of its own
    /// (two worker threads named `fault-server`, as wiremock-rs does), so
    /// that it answers whatever the caller does — from a plain `#[test]`,
    /// a current-thread or multi-thread `#[tokio::test]`, with a blocking
    /// client or an async one; or, with [`FaultServerBuilder::on_current_runtime`],
    /// on the caller's. Dropping the server stops its runtime.
    ///
    /// ```
    /// use fault_server::*;
    ///
    /// // A plain test, no runtime of its own, and a blocking client.
    /// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
    /// let mut crm = std::net::TcpStream::connect(server.addr("crm")?)?;
    /// std::io::Write::write_all(&mut crm, b"GET / HTTP/1.1\r\nhost: crm\r\nconnection: close\r\n\r\n")?;
    /// let mut answer = String::new();
    /// std::io::Read::read_to_string(&mut crm, &mut answer)?;
    /// assert!(answer.starts_with("HTTP/1.1 200"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(self) -> Result<FaultServer, StartError> {
        #[cfg(feature = "control")]
        if let Some(addr) = self.control {
            if !control::is_loopback(addr.ip()) && self.token.is_none() {
                return Err(StartError::TokenRequired(addr));
            }
        }
        let (runtime, own) = if !self.settings.own_runtime {
            (
                Handle::try_current().map_err(|_| StartError::NoRuntime)?,
                None,
            )
        } else {
            let own = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(crate::registry::OWN_RUNTIME_THREADS)
                .enable_all()
                .build()
                .map_err(StartError::Runtime)?;
            (own.handle().clone(), Some(own))
        };
        // Listeners bind, and instants are read, on the server's runtime.
        let handle = runtime.clone();
        let _entered = handle.enter();
        let registry = Arc::new(Registry::new(self.settings.clone(), runtime.clone()));
        let started = self
            .add_dependencies(&registry)
            .and_then(|()| self.start_control(&registry));
        match started {
            Ok(control) => Ok(FaultServer {
                registry,
                control,
                runtime,
                own,
                expected: std::sync::Mutex::default(),
            }),
            Err(e) => {
                registry.shutdown();
                if let Some(own) = own {
                    own.shutdown_background();
                }
                Err(e)
            }
        }
    }

    fn add_dependencies(&self, registry: &Registry) -> Result<(), StartError> {
        for spec in &self.dependencies {
            registry
                .add(spec)
                .map_err(|source| StartError::Dependency {
                    name: spec.name.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    #[cfg(feature = "control")]
    fn start_control(&self, registry: &Arc<Registry>) -> Result<super::ControlSlot, StartError> {
        self.control
            .map(|addr| {
                control::spawn(
                    Arc::clone(registry),
                    addr,
                    self.token.clone(),
                    &self.allow_hosts,
                )
                .map_err(|source| StartError::Control { addr, source })
            })
            .transpose()
    }

    #[cfg(not(feature = "control"))]
    fn start_control(&self, _registry: &Arc<Registry>) -> Result<super::ControlSlot, StartError> {
        Ok(())
    }
}
