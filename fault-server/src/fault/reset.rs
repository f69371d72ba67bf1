//! `reset`: abort the connection with a TCP RST.

use serde::{Deserialize, Serialize};

/// Reads the request, then resets the connection (SO_LINGER 0 and close):
/// the client sees ECONNRESET and no response.
///
/// ```toml
/// [[faults]]
/// reset = {}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetFault {}
