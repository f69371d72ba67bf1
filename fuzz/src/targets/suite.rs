//! `suite`: mutated suite files into `Suite::parse`; for each that validates,
//! the run's plan (`Suite::plan`), each dependency started in-process and
//! called once per phase with that phase's faults (on a paused clock, so a
//! fault's delay costs nothing), and every expectation's property checked
//! on what those calls recorded. A suite that validates must plan against
//! a loopback target unless an endpoint's URL does not parse, and every
//! dependency it names must start and take its phases' faults.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use fault_server::InProcessDependency;
use faultline_harness::run::TargetOverride;
use faultline_harness::suite::Suite;
use faultline_properties::{Observations, Phase};
use tower::ServiceExt;

use crate::engine::{fuzz, Seen};
use crate::mutate::{text, Text};
use crate::{corpus, Common, Failure, Figures};

const TARGET: &str = "suite";

/// Runs the target.
pub fn run(common: &Common) -> Result<Figures, Failure> {
    let runtime = super::paused_runtime(TARGET)?;
    let seeds = corpus::SUITES.iter().map(|s| (*s).to_owned()).collect();
    let mut planned = 0u64;
    let mut calls = 0u64;
    let mut figures = fuzz(
        TARGET,
        common.inputs,
        common.seed,
        text(seeds),
        |input: &Text| {
            let suite = match Suite::parse(&input.0, Path::new("fuzz.toml")) {
                Ok(suite) => suite,
                Err(error) if error.message.trim().is_empty() => {
                    return Err(format!("an error without a message: {error}"));
                }
                Err(_) => return Ok(Seen::Refused),
            };
            let Some(made) = start_up(&suite, &runtime)? else {
                return Ok(Seen::Accepted);
            };
            planned += 1;
            calls += made;
            Ok(Seen::Accepted)
        },
    )?;
    figures.notes.push(format!("{planned} planned"));
    figures.notes.push(format!("{calls} in-process calls"));
    Ok(figures)
}

/// What a run does before its load, without sockets: the plan against the
/// suite's own target (refusals are fine: a host beyond loopback), then
/// against loopback (which must plan, but for an endpoint path that is no
/// URL), its dependencies called once per phase. The calls made, or `None`
/// when the suite's paths do not make URLs.
fn start_up(suite: &Suite, runtime: &tokio::runtime::Runtime) -> Result<Option<u64>, String> {
    if let Some(base) = &suite.target.base_url {
        let _ = suite.plan(TargetOverride::Url(base));
    }
    let plan = match suite.plan(TargetOverride::Url("http://127.0.0.1:8080")) {
        Ok(plan) => plan,
        Err(e) if matches!(e.kind, faultline_harness::run::RunErrorKind::BadUrl { .. }) => {
            return Ok(None)
        }
        Err(e) => return Err(format!("a valid suite does not plan against loopback: {e}")),
    };
    if plan.phases.len() != suite.phases.len() || plan.loads.len() != suite.load.len() {
        return Err("the plan lost phases or loads".to_owned());
    }
    let mut seen = Observations::default();
    let mut start = 0u64;
    for phase in &plan.phases {
        let end = start + u64::try_from(phase.duration.as_nanos()).unwrap_or(u64::MAX);
        seen.phases.push(Phase::new(phase.name.clone(), start, end));
        start = end;
    }
    let mut calls = 0;
    runtime.block_on(async {
        for spec in &suite.dependencies {
            let dependency = InProcessDependency::new(spec, 7).map_err(|e| {
                format!(
                    "dependency `{}` validated but does not start: {e}",
                    spec.name
                )
            })?;
            let schedule = plan
                .phases
                .iter()
                .map(|p| p.faults.get(&spec.name).cloned().unwrap_or_default())
                .collect();
            dependency.schedule(schedule).map_err(|e| {
                format!("dependency `{}` refuses its phases' faults: {e}", spec.name)
            })?;
            for (i, _) in plan.phases.iter().enumerate() {
                let load = &suite.load[i % suite.load.len()];
                // The load's path, or its first variant's.
                let (method, path) = match (&load.path, load.variants.first()) {
                    (Some(path), _) => (load.method.as_str(), path.as_str()),
                    (None, Some(variant)) => (variant.method.as_str(), variant.path.as_str()),
                    (None, None) => (load.method.as_str(), "/"),
                };
                let request = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("x-test", "abc")
                    .body(Bytes::from_static(b"{}"))
                    .or_else(|_| http::Request::builder().body(Bytes::new()))
                    .map_err(|e| e.to_string())?;
                // A day and more of paused time: every delay and hang ends.
                let call = dependency.clone().oneshot(request);
                let _ = tokio::time::timeout(Duration::from_secs(3 * 86_400), call).await;
                calls += 1;
            }
            seen.dependencies
                .insert(spec.name.clone(), dependency.calls());
        }
        Ok::<(), String>(())
    })?;
    for expect in &suite.expect {
        expect.check(&seen);
    }
    Ok(Some(calls))
}
