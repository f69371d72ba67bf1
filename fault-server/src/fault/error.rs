//! `error`: answer with an error status instead of the stub's response.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use rand::Rng;

use super::kind::{ActsOn, Call, Kind};
use super::set::Ending;
use crate::response::ResponseTemplate;

/// Answers with `status`, `body` and `headers`, plus `Retry-After` in whole
/// seconds (rounded up) when `retry_after` is set.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// error = { status = 503, body = "unavailable", retry_after = "30s" }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    /// HTTP status, 200 to 599 (a 1xx is not a final answer; a 204 or 304 goes out without the body).
    pub status: u16,
    /// Response body.
    #[serde(default)]
    pub body: String,
    /// Extra response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Retry-After` (seconds, rounded up).
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<Duration>,
}

impl Kind for ErrorFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn validate(&self) -> Result<(), String> {
        if let Some(after) = self.retry_after {
            super::check_duration("retry_after", after)?;
        }
        self.template().map(|_| ())
    }

    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        let Ok(template) = self.template() else {
            return false;
        };
        call.decision.terminal = Some(Ending::Respond(template));
        true
    }
}

impl ErrorFault {
    pub(crate) fn template(&self) -> Result<ResponseTemplate, String> {
        ResponseTemplate::new(self.status, &self.headers, &self.body, self.retry_after)
    }
}
