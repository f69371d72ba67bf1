//! A dependency as configured: what the config file, a suite, the control
//! API and the Rust builder give.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::{ControlError, StubResponse};

/// A dependency as configured: a name, where it listens, what it answers, and
/// the faults it starts with.
///
/// ```
/// use fault_server::{DependencySpec, StubResponse, Distribution};
/// use std::time::Duration;
///
/// let spec = DependencySpec::stub("payments")
///     .with_response(StubResponse::ok("{}").with_latency(Distribution::Fixed(Duration::from_millis(200))));
/// assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    /// Unique name: letters, digits, `-`, `_` and `.`, at most 64.
    pub name: String,
    /// Where to listen; 127.0.0.1 on a free port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// What it answers when no fault says otherwise.
    #[serde(default)]
    pub response: StubResponse,
    /// Faults in force from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Read each request body as an Alertmanager webhook and keep its alerts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alert_sink: bool,
}

impl DependencySpec {
    /// A stub answering 200 with an empty body, on a free loopback port.
    pub fn stub(name: impl Into<String>) -> Self {
        DependencySpec {
            name: name.into(),
            listen: None,
            response: StubResponse::default(),
            faults: Vec::new(),
            alert_sink: false,
        }
    }

    /// Makes it an alert sink (see [`crate::AlertRecord`]).
    pub fn as_alert_sink(mut self) -> Self {
        self.alert_sink = true;
        self
    }

    /// Sets the response.
    pub fn with_response(mut self, response: StubResponse) -> Self {
        self.response = response;
        self
    }

    /// Listens on this address.
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Adds a fault in force from the start.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Checks the name, response and faults.
    pub fn validate(&self) -> Result<(), ControlError> {
        validate_name(&self.name)?;
        self.response
            .validate()
            .map_err(|e| ControlError::invalid("response", e))?;
        for (i, fault) in self.faults.iter().enumerate() {
            fault
                .validate()
                .map_err(|e| ControlError::invalid(format!("faults[{i}]"), e))?;
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ControlError::invalid(
            "name",
            format!("`{name}` must be 1 to 64 letters, digits, `-`, `_` or `.`"),
        ))
    }
}

