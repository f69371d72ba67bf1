//! `config`: mutated fault-server config files into `ServerConfig::parse`
//! (which validates every dependency); for each that validates, every
//! dependency is started in-process (what the server does with it, but the
//! socket), and a journal of the configured capacity takes a few calls.

use std::path::Path;

use fault_server::journal::Journal;
use fault_server::{CallInfo, CallOutcome, FaultKinds, InProcessDependency, ServerConfig};

use crate::engine::{fuzz, Seen};
use crate::mutate::{text, Text};
use crate::{corpus, Common, Failure, Figures};

const TARGET: &str = "config";

/// Runs the target.
pub fn run(common: &Common) -> Result<Figures, Failure> {
    let runtime = super::paused_runtime(TARGET)?;
    let _entered = runtime.enter();
    let mut dependencies = 0u64;
    let mut figures = fuzz(
        TARGET,
        common.inputs,
        common.seed,
        text(corpus::configs()),
        |input: &Text| {
            let config = match ServerConfig::parse(&input.0, Path::new("fuzz.toml")) {
                Ok(config) => config,
                Err(error) => {
                    if error.message.is_empty() {
                        return Err(format!("an error without a message: {error}"));
                    }
                    return Ok(Seen::Refused);
                }
            };
            for spec in &config.dependencies {
                let spec = spec.get_ref();
                InProcessDependency::new(spec, config.seed.unwrap_or(0)).map_err(|e| {
                    format!(
                        "dependency `{}` validated but does not start: {e}",
                        spec.name
                    )
                })?;
                dependencies += 1;
            }
            if let Some(capacity) = config.journal_capacity {
                let mut journal = Journal::new(capacity);
                let info = CallInfo {
                    method: &http::Method::GET,
                    path: "/x",
                    correlation_id: None,
                    idempotency_key: None,
                    attempt: None,
                    headers: None,
                };
                for now_ns in 0..3 {
                    let ticket = journal.arrive(&info, FaultKinds::default(), now_ns);
                    journal.depart(ticket, CallOutcome::Responded, Some(200), now_ns);
                }
                let _ = (journal.since(0, usize::MAX), journal.stats());
            }
            Ok(Seen::Accepted)
        },
    )?;
    figures
        .notes
        .push(format!("{dependencies} dependencies started"));
    Ok(figures)
}
