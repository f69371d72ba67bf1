//! `malformed`: answer with bytes that are not HTTP, then close.

use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Call, Kind};
use super::set::{ConnAction, Ending};

/// What is sent when no `bytes` are given: no status line, a NUL, bytes that are
/// not UTF-8, a bare LF.
const GARBAGE: &[u8] = b"\x00\xff\xfeNOT-HTTP garbage from faultline\n\x00\r\n\r\n";

/// Reads the request, writes `bytes` (or a built-in run of garbage that no HTTP
/// parser accepts), then closes.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// malformed = { bytes = "HTTP/9.9 banana\r\n" }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MalformedFault {
    /// What to write instead of a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

impl MalformedFault {
    pub(crate) fn payload(&self) -> Bytes {
        match &self.bytes {
            Some(text) => Bytes::copy_from_slice(text.as_bytes()),
            None => Bytes::from_static(GARBAGE),
        }
    }
}

impl Kind for MalformedFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        let payload = ConnAction::Malformed(self.payload());
        call.decision.terminal = Some(Ending::Connection(payload));
        true
    }
}
