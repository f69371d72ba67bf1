//! A simulation case as plain data: what the dependency does to each call,
//! what the edge sends and when, and how long the case may run. Saved as
//! JSON, a scenario replays exactly.

use std::time::Duration;

use fault_server::{Fault, StubResponse};
use serde::{Deserialize, Serialize};

/// One case: the dependency's faults by arrival, the edge workload, a horizon.
///
/// ```
/// use faultline_sim::Scenario;
///
/// let scenario: Scenario = serde_json::from_str(r#"{
///     "calls": [[], [{"hang": {}}], [{"error": {"status": 503}}]],
///     "then": [],
///     "requests": [{"at": "0s"}, {"at": "10ms", "key": "order-1"}, {"at": "10ms", "give_up_after": "2s"}],
///     "horizon": "30s"
/// }"#).unwrap();
/// assert_eq!(scenario.requests.len(), 3);
/// let printed = serde_json::to_string(&scenario).unwrap();
/// assert!(!printed.contains("then"), "an empty list is left out: {printed}");
/// let again: Scenario = serde_json::from_str(&printed).unwrap();
/// assert_eq!(again, scenario);
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The faults the k-th call to reach the dependency gets (`[]`: none).
    /// By arrival order, not time, so the schedule means the same whatever
    /// the middleware's timing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Vec<Fault>>,
    /// The faults every call after the list gets (`[]`: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<Fault>,
    /// What the dependency answers when no fault says otherwise (200, empty).
    #[serde(default, skip_serializing_if = "is_default_response")]
    pub response: StubResponse,
    /// The edge requests, each sent at its instant.
    pub requests: Vec<EdgeRequest>,
    /// The case ends here, in virtual time; a request still unanswered then hung.
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
}

/// One request the edge sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeRequest {
    /// When it is sent, from the start of the case.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Its `Idempotency-Key`, if it carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The edge client drops the request after this long (a cancellation).
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub give_up_after: Option<Duration>,
}

impl EdgeRequest {
    /// A request sent at `at`.
    pub fn at(at: Duration) -> Self {
        EdgeRequest {
            at,
            key: None,
            give_up_after: None,
        }
    }
}

impl Scenario {
    /// No faults, no requests, a horizon of `horizon`.
    pub fn new(horizon: Duration) -> Self {
        Scenario {
            calls: Vec::new(),
            then: Vec::new(),
            response: StubResponse::default(),
            requests: Vec::new(),
            horizon,
        }
    }

    /// The scenario as pretty JSON (to save a shrunk failure, or show it).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A scenario saved by [`Scenario::to_json`].
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// As its JSON, so that proptest's "minimal failing input" can be saved and
/// replayed as it is: indented with `{:#?}` (proptest's failure message), on
/// one line with `{:?}` (the comment beside a kept seed in a
/// `.regressions` file).
impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            f.write_str(&self.to_json())
        } else {
            let line =
                serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            f.write_str(&line)
        }
    }
}

fn is_default_response(response: &StubResponse) -> bool {
    *response == StubResponse::default()
}
