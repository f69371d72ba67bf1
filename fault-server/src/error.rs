//! What can go wrong when the fault server is controlled, from Rust or over HTTP.
//!
//! # How faultline reports errors
//!
//! The same rules hold in both crates (the harness's `RunError` and suite
//! errors follow them too):
//!
//! 1. **An error says what is wrong, and where it knows, what to do**
//!    ("raise journal_capacity there", "did you mean `dependency`?").
//! 2. **Each layer adds only what it knows.** A check returns a message
//!    relative to the value it checks (`rate must be a positive number`);
//!    its caller names the field (`throttle: ...`), the entry
//!    (`dependency `crm`: ...`), the suite (`bulkhead: ...`) or the place
//!    in a file (`suite.toml:12:3: ...`) — each once.
//! 3. **Input from a file is located**: one type, [`crate::LocatedError`]
//!    (`file:line:col: message`, with the key most likely meant for a
//!    misspelt one), for the fault server's configuration and the
//!    harness's suites alike.
//! 4. **Errors callers act on are enums with data** ([`ControlError`], the
//!    harness's `RunErrorKind`), their `Display` written for people; the
//!    control API sends `{"error": "<Display>", "status": N}` with
//!    [`ControlError::status`] (400 bad input, 404 unknown name, 409 a
//!    conflict with what is there, 403 refused by policy).
//! 5. **Input never panics**: what is accepted is honoured or refused with
//!    one of the above, never silently ignored.

use std::io;
use std::net::SocketAddr;

use http::StatusCode;

/// An error from controlling the fault server. The control API sends it as
/// `{"error": "<message>", "status": N}` with [`ControlError::status`].
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No dependency has this name.
    #[error("no dependency named `{0}`")]
    UnknownDependency(String),
    /// A dependency with this name exists already.
    #[error("a dependency named `{0}` exists already")]
    DuplicateDependency(String),
    /// The dependency has no fault with this name.
    #[error("`{dependency}` has no fault named `{name}`")]
    UnknownFault {
        /// The dependency.
        dependency: String,
        /// The fault's name.
        name: String,
    },
    /// The dependency has a fault with this name already.
    #[error("`{dependency}` has a fault named `{name}` already")]
    DuplicateFault {
        /// The dependency.
        dependency: String,
        /// The fault's name.
        name: String,
    },
    /// A field of the request is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// Where in the input (`faults[0].latency`), or what (`name`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A dependency's listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the bind failed.
        #[source]
        source: io::Error,
    },
    /// The journal has numbered as many windows as a `u32` counts.
    #[error("the journal has run out of window numbers; reset to start again")]
    TooManyWindows,
    /// The server is stopping.
    #[error("the fault server is shutting down")]
    ShuttingDown,
}

impl ControlError {
    /// An invalid-input error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ControlError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status the control API answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ControlError::UnknownDependency(_) | ControlError::UnknownFault { .. } => {
                StatusCode::NOT_FOUND
            }
            ControlError::DuplicateDependency(_)
            | ControlError::DuplicateFault { .. }
            | ControlError::TooManyWindows => StatusCode::CONFLICT,
            ControlError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ControlError::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse => {
                StatusCode::CONFLICT
            }
            ControlError::Bind { .. } => StatusCode::BAD_REQUEST,
            ControlError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}
