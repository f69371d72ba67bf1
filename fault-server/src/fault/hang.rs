//! `hang`: hold the call without answering.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Call, Kind};
use super::set::Ending;

/// Holds the call. Without `after` it never answers: the call ends when the
/// client gives up (journaled as `client_gone`). With `after`, it then does
/// what `then` says: `respond` (the stub's response, the default), `close`
/// or `reset`.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// hang = {}
/// [[faults]]
/// hang = { after = "30s", then = "close" }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangFault {
    /// How long to hold before `then`; absent: forever.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<Duration>,
    /// What to do once `after` has passed (not written when it is the
    /// default, so a hang for ever reads `{"hang": {}}`).
    #[serde(default, skip_serializing_if = "HangEnd::is_respond")]
    pub then: HangEnd,
}

/// How a hang with `after` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangEnd {
    /// Answer with the stub's response.
    #[default]
    Respond,
    /// Close the connection without a response.
    Close,
    /// Reset the connection.
    Reset,
}

impl Kind for HangFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn validate(&self) -> Result<(), String> {
        match self.after {
            Some(after) => super::check_duration("after", after),
            None => Ok(()),
        }
    }

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        call.decision.terminal = Some(Ending::Hang(*self));
        true
    }
}

impl HangEnd {
    fn is_respond(&self) -> bool {
        *self == HangEnd::Respond
    }
}
