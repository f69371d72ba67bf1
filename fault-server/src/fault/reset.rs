//! `reset`: abort the connection with a TCP RST.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Call, Kind};
use super::set::{ConnAction, Ending};

/// Reads the request, then resets the connection (SO_LINGER 0 and close):
/// the client sees ECONNRESET and no response.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// reset = {}
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetFault {}

impl Kind for ResetFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        call.decision.terminal = Some(Ending::Connection(ConnAction::Reset));
        true
    }
}
