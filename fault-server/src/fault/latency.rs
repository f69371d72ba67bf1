//! `latency`: delay the answer by a draw from a distribution.

use serde::{Deserialize, Serialize};

use rand::Rng;

use super::kind::{ActsOn, Call, Kind};
use crate::Distribution;

/// Delays each affected call by a draw from its distribution, then lets the
/// rest of the fault set decide the answer. Several latency faults add up.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// latency = { log_normal = { p50 = "200ms", p99 = "2s" } }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LatencyFault(pub Distribution);

impl Kind for LatencyFault {
    const ACTS_ON: ActsOn = ActsOn::Both;

    fn validate(&self) -> Result<(), String> {
        self.0.validate()
    }

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        call.decision.delay += self.0.sample(call.rng);
        true
    }
}
