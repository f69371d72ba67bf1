//! `close`: close the connection without a response.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Call, Kind};
use super::set::{ConnAction, Ending};

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

impl Kind for CloseFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        call.decision.terminal = Some(Ending::Connection(ConnAction::Close));
        true
    }
}
