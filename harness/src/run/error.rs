//! Why a suite could not be run, as opposed to a property failing (a
//! verdict). Errors follow the doctrine written at the top of
//! `fault_server`'s error module: the suite is named once, here, by
//! [`RunError`]; each [`RunErrorKind`] says what went wrong within it.

use fault_server::StartError;

use super::fault_control::FaultControlError;

/// Why a suite could not be run (as opposed to a property failing, which
/// is a verdict): the suite, and what went wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{suite}: {kind}")]
pub struct RunError {
    /// The suite's name.
    pub suite: String,
    /// What went wrong.
    pub kind: RunErrorKind,
}

impl RunError {
    /// `kind` in the suite named `suite`.
    pub fn new(suite: impl Into<String>, kind: RunErrorKind) -> Self {
        RunError {
            suite: suite.into(),
            kind,
        }
    }

    /// Whether the fault is in the suite or command line (exit 2) rather than the run (exit 4).
    pub fn is_usage(&self) -> bool {
        self.kind.is_usage()
    }
}

/// What went wrong with a suite that could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunErrorKind {
    /// Neither the suite nor the command line names a target.
    #[error(
        "no target: set [target] base_url, command or demo in the suite, or pass --target-url or --demo"
    )]
    NoTarget,
    /// An endpoint's URL does not parse.
    #[error("endpoint `{endpoint}`: `{url}` is not a URL")]
    BadUrl {
        /// The endpoint's name.
        endpoint: String,
        /// The URL built from the target and the path.
        url: String,
    },
    /// The fault server did not start.
    #[error("{source}")]
    Start {
        /// Why.
        #[source]
        source: StartError,
    },
    /// The target command did not start or become ready.
    #[error("{source}")]
    Target {
        /// Why.
        #[source]
        source: crate::run::target::TargetError,
    },
    /// The fault server refused an operation, or a remote one could not be reached.
    #[error("{source}")]
    Control {
        /// Why.
        #[source]
        source: FaultControlError,
    },
    /// The target is not on loopback and the suite's `allow_hosts` does not name it.
    #[error(
        "the target `{host}` is not on loopback; load goes elsewhere only to hosts the suite names in allow_hosts"
    )]
    HostNotAllowed {
        /// The target's host.
        host: String,
    },
    /// Not one request reached the target: a run with no answer to judge is broken.
    #[error(
        "the target at {url} never answered: all {requests} requests failed to connect (is it running, and on that port?)"
    )]
    TargetDown {
        /// The target's base URL.
        url: String,
        /// Requests sent.
        requests: u64,
    },
    /// A remote fault server has a dependency of the suite's name whose
    /// settings differ from the suite's, and the suite does not say to reuse it.
    #[error(
        "the fault server at {server} has a dependency `{dependency}` whose {what}; \
         a dependency left by another run? Remove it, make the suite match, or set [fault_server] reuse = true to run against it as it is"
    )]
    DependencyDiffers {
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
        "its closed loops have {clients} clients, each on a connection of its own, \
         but this process may open {limit} files (ulimit -n), {reserve} of them kept for everything else: \
         raise the limit or split the load"
    )]
    TooManyClients {
        /// Clients over every closed loop.
        clients: u64,
        /// The process's soft open-file limit.
        limit: u64,
        /// Descriptors kept for the rest of the run.
        reserve: u64,
    },
    /// `[fault_server] token_env` names a variable that is not set.
    #[error("[fault_server] token_env: environment variable `{var}` is not set")]
    MissingToken {
        /// The variable.
        var: String,
    },
}

impl RunErrorKind {
    /// Whether the fault is in the suite or command line (exit 2) rather than the run (exit 4).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RunErrorKind::NoTarget
                | RunErrorKind::BadUrl { .. }
                | RunErrorKind::MissingToken { .. }
                | RunErrorKind::HostNotAllowed { .. }
                | RunErrorKind::DependencyDiffers { .. }
                | RunErrorKind::TooManyClients { .. }
        )
    }
}
