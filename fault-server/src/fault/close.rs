//! `close`: close the connection without a response.

use serde::{Deserialize, Serialize};

/// Reads the request, then closes the connection cleanly (FIN) without
/// writing a byte: the client sees end-of-file where the response should be.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// close = {}
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseFault {}
