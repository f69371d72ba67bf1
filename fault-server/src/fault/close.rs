//! `close`: close the connection without a response.

use serde::{Deserialize, Serialize};

/// Reads the request, then closes the connection cleanly (FIN) without
/// writing a byte: the client sees end-of-file where the response should be.
///
/// ```toml
/// [[faults]]
/// close = {}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseFault {}
