//! What a run will do, resolved before any of it starts ([`Plan`]): made
//! by [`crate::suite::Suite::plan`] without starting or sending anything,
//! followed by [`super::run_plan`], and printed by `faultline validate
//! --plan` (a dry run).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use fault_server::{DependencySpec, Fault};
use serde::Deserialize;

use crate::load::{Arrival, Endpoint, Load, Pacing, Variants, REQUEST_ID};
use faultline_properties::Expectation;

/// Requests a suite sends at most unless it says otherwise (`max_requests`).
pub const DEFAULT_MAX_REQUESTS: u64 = 2_000_000;

/// What the command line says about the target, over each suite's own `[target]`.
#[derive(Debug, Clone, Copy, Default)]
pub enum TargetOverride<'a> {
    /// Each suite's own target.
    #[default]
    None,
    /// An already running system (`--target-url`).
    Url(&'a str),
    /// The demo shop in this profile (`--demo`).
    Demo(faultline_demo::Profile),
}

/// One run of a suite, resolved: what is under test, the fault server and
/// its dependencies, the load, the phases with every fault in force, what
/// ends the run early, and the properties judged after.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The suite's name.
    pub suite: String,
    /// What is under test.
    pub target: TargetPlan,
    /// A fault server in another process to use instead of one in this process.
    pub fault_server: Option<RemoteSpec>,
    /// The dependencies the fault server plays, each keeping the headers
    /// the properties' selections read.
    pub dependencies: Vec<DependencySpec>,
    /// The load, per endpoint, each lasting the whole run.
    pub loads: Vec<LoadPlan>,
    /// The phases, in order, each with the faults in force at each
    /// dependency (its standing faults first).
    pub phases: Vec<PhasePlan>,
    /// What ends the run early.
    pub limits: Limits,
    /// The properties to judge, in the order written.
    pub expect: Vec<Expectation>,
}

impl Plan {
    /// How long the phases last together.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// What is under test.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetPlan {
    /// An already running system at this base URL (no trailing `/`).
    Url(String),
    /// A command the harness starts, and stops at the end.
    Command(CommandTarget),
    /// The built-in demo shop in this profile, started by the harness.
    Demo(faultline_demo::Profile),
}

/// A target the harness starts: `{port}` in its command and environment is
/// a free loopback port it must listen on, `{name}` the URL of the
/// dependency `name`, `{name.addr}` its host:port.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTarget {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Environment, templated the same way.
    pub env: BTreeMap<String, String>,
    /// Path polled until it answers (any status under 500).
    pub ready: String,
    /// How long it may take to answer.
    pub ready_timeout: Duration,
}

/// The names between braces in `text`: `{port}`, `{payments}`, `{db.addr}`.
pub(crate) fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// The `[fault_server]` table: a running fault server, reached through its
/// control API. The suite's dependencies that it does not serve yet are
/// added for the run and removed after it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSpec {
    /// Its control API, `http://host:port`.
    pub control_url: String,
    /// The environment variable holding its Bearer token, if it wants one
    /// (a token never belongs in a suite file).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Run against the server's dependencies as they are even when their
    /// settings (response, address) differ from the suite's; without it,
    /// such a run is refused.
    #[serde(default)]
    pub reuse: bool,
}

/// Load at one endpoint, relative to the target (whose address a started
/// target has only once it runs).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// The endpoint's name in verdicts and reports.
    pub endpoint: String,
    /// What it sends: one request, or variants taken in turn by weight.
    pub requests: Vec<RequestPlan>,
    /// How requests arrive.
    pub arrival: Arrival,
    /// Client timeout.
    pub timeout: Duration,
    /// How long it lasts: the whole run.
    pub duration: Duration,
    /// When it sends (its phases' stretches of the run), how much, and a
    /// closed loop's pause.
    pub pacing: Pacing,
}

/// One request a load sends: its method, path, headers and body, and (among
/// a load's variants) its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPlan {
    /// Its share among the load's variants (1 for a load's one request).
    pub weight: u32,
    /// Request method.
    pub method: http::Method,
    /// Path and query, joined to the target's base URL.
    pub path: String,
    /// Headers it carries, checked when the suite was read; in a value,
    /// [`crate::load::REQUEST_ID`] is the request's own id.
    pub headers: Vec<(String, String)>,
    /// The body it carries, the same way.
    pub body: Option<String>,
}

impl LoadPlan {
    /// The load against the target at `base` (no trailing `/`).
    ///
    /// # Errors
    /// The URL `base` and a request's path do not make.
    pub fn at(&self, base: &str) -> Result<Load, String> {
        let mut endpoints = Vec::with_capacity(self.requests.len());
        for request in &self.requests {
            let url = format!("{base}{}", request.path);
            let endpoint = request
                .endpoint(&self.endpoint, &url, self.timeout)
                .ok_or(url)?;
            endpoints.push((request.weight, endpoint));
        }
        let endpoint = endpoints
            .first()
            .map(|(_, e)| e.clone())
            .ok_or_else(|| base.to_owned())?;
        Ok(Load {
            endpoint,
            arrival: self.arrival,
            duration: self.duration,
            pacing: self.pacing.clone(),
            variants: if endpoints.len() > 1 {
                Variants::weighted(endpoints)
            } else {
                Variants::default()
            },
        })
    }
}

impl RequestPlan {
    /// The request as the driver sends it, to `url`, named `name`; `None`
    /// when `url` is no URL.
    fn endpoint(&self, name: &str, url: &str, timeout: Duration) -> Option<Endpoint> {
        let mut endpoint = Endpoint::get(name.to_owned(), url.parse().ok()?).with_timeout(timeout);
        endpoint.method = self.method.clone();
        for (name, value) in &self.headers {
            let name = http::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
            if value.contains(REQUEST_ID) {
                endpoint.per_request.headers.push((name, value.clone()));
            } else {
                endpoint
                    .headers
                    .insert(name, http::HeaderValue::from_str(value).ok()?);
            }
        }
        match &self.body {
            Some(body) if body.contains(REQUEST_ID) => {
                endpoint.per_request.body = Some(body.clone())
            }
            Some(body) => endpoint.body = bytes::Bytes::from(body.clone()),
            None => {}
        }
        Some(endpoint)
    }
}

/// One phase: its name, how long it lasts, and the faults at each dependency
/// (a dependency it does not name has none). A suite's `[[phases]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhasePlan {
    /// Its name (`baseline`, `crm slow`, `recovery`).
    pub name: String,
    /// How long it lasts.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Faults by dependency name.
    #[serde(default)]
    pub faults: BTreeMap<String, Vec<Fault>>,
}

impl PhasePlan {
    /// A phase with no faults.
    pub fn calm(name: impl Into<String>, duration: Duration) -> Self {
        PhasePlan {
            name: name.into(),
            duration,
            faults: BTreeMap::new(),
        }
    }

    /// Adds a fault at `dependency`.
    pub fn with_fault(mut self, dependency: impl Into<String>, fault: Fault) -> Self {
        self.faults
            .entry(dependency.into())
            .or_default()
            .push(fault);
        self
    }
}

/// What ends a run early, besides its caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Stop at the end of a phase whose success rate was too low.
    pub abort_when: Option<AbortWhen>,
    /// Requests sent at most over the run.
    pub max_requests: Option<u64>,
    /// How long past its last phase a run may take (to let requests in
    /// flight end) before it is cut short.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            abort_when: None,
            max_requests: None,
            grace: Duration::from_secs(15),
        }
    }
}

/// Stop the run when `phase` is unhealthy: its success rate under
/// `success_rate_below`, or its `percentile` latency over `latency_above`
/// (over every endpoint, the requests ended so far). Judged as the phase
/// goes — every half second from `delay` into it, once it has
/// [`crate::run::timeline::MIN_LIVE_SAMPLES`] requests (k6's `abortOnFail`
/// with `delayAbortEval`) — and at its end: a target already unhealthy in
/// the baseline is not worth injecting faults into, and a run whose target
/// has fallen over need not run its course.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortWhen {
    /// The phase judged (the baseline, say).
    pub phase: String,
    /// The success rate under which the run stops (0 to 1).
    #[serde(default)]
    pub success_rate_below: Option<f64>,
    /// The latency over which the run stops...
    #[serde(default, with = "humantime_serde::option")]
    pub latency_above: Option<Duration>,
    /// ...at this percentile (99; 100 is the maximum).
    #[serde(default = "ninety_nine")]
    pub percentile: f64,
    /// How far into the phase judging starts (1s).
    #[serde(default = "one_second", with = "humantime_serde")]
    pub delay: Duration,
}

/// The plan as `faultline validate --plan` prints it: what will run, for
/// how long, at what rates, with which faults.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run_for = self.duration();
        let phases = self.phases.len();
        writeln!(
            f,
            "suite {}: {phases} phases over {}",
            self.suite,
            seconds(run_for)
        )?;
        match &self.target {
            TargetPlan::Url(url) => writeln!(f, "  target: {url} (already running)")?,
            TargetPlan::Command(command) => writeln!(
                f,
                "  target: `{}`, started on a free loopback port, ready when {} answers (within {})",
                command.command.join(" "),
                command.ready,
                seconds(command.ready_timeout)
            )?,
            TargetPlan::Demo(profile) => writeln!(f, "  target: the demo shop, {profile}")?,
        }
        match &self.fault_server {
            Some(remote) => writeln!(f, "  fault server: {}", remote.control_url)?,
            None => writeln!(f, "  fault server: in this process")?,
        }
        for dependency in &self.dependencies {
            let kind = match (&dependency.tcp, &dependency.proxy, dependency.alert_sink) {
                (Some(upstream), _, _) => format!("TCP proxy to {upstream}"),
                (None, Some(_), _) => "HTTP proxy".to_owned(),
                (None, None, true) => "alert sink".to_owned(),
                (None, None, false) => "stub".to_owned(),
            };
            writeln!(f, "  dependency {}: {kind}", dependency.name)?;
        }
        for load in &self.loads {
            let rate = match load.arrival {
                Arrival::Open { rate } => {
                    let requests = (rate * run_for.as_secs_f64()).floor();
                    format!("open loop, {rate}/s (about {requests} requests)")
                }
                Arrival::Ramp { from, to } => {
                    let requests = ((from + to) / 2.0 * run_for.as_secs_f64()).floor();
                    format!("open loop, {from}/s ramping to {to}/s (about {requests} requests)")
                }
                Arrival::Closed { clients } => format!("closed loop, {clients} clients"),
            };
            let shown = match load.requests.as_slice() {
                [one] => format!("{} {}", one.method, one.path),
                variants => format!("{} variants", variants.len()),
            };
            writeln!(
                f,
                "  load {}: {shown}, {rate}, timeout {}",
                load.endpoint,
                seconds(load.timeout)
            )?;
            for request in &load.requests {
                if load.requests.len() > 1 {
                    writeln!(
                        f,
                        "    variant {} {} (weight {})",
                        request.method, request.path, request.weight
                    )?;
                }
                for (name, value) in &request.headers {
                    writeln!(f, "    header {name}: {value}")?;
                }
                if let Some(body) = &request.body {
                    let per_request = if body.contains(REQUEST_ID) {
                        format!(", {REQUEST_ID} made per request")
                    } else {
                        String::new()
                    };
                    writeln!(f, "    body: {} bytes{per_request}", body.len())?;
                }
            }
            if !load.pacing.during.is_empty() {
                let stretches: Vec<String> = load
                    .pacing
                    .during
                    .iter()
                    .map(|(from, to)| format!("{}-{}", seconds(*from), seconds(*to)))
                    .collect();
                writeln!(f, "    sends during {}", stretches.join(", "))?;
            }
            if let Some(cap) = load.pacing.requests {
                writeln!(f, "    at most {cap} requests")?;
            }
            if !load.pacing.pause.is_zero() {
                writeln!(
                    f,
                    "    pause {} after each answer",
                    seconds(load.pacing.pause)
                )?;
            }
        }
        let mut at = Duration::ZERO;
        for phase in &self.phases {
            let end = at + phase.duration;
            write!(
                f,
                "  phase {} ({} to {}):",
                phase.name,
                seconds(at),
                seconds(end)
            )?;
            if phase.faults.values().all(Vec::is_empty) {
                write!(f, " no faults")?;
            }
            writeln!(f)?;
            for (dependency, faults) in &phase.faults {
                for fault in faults {
                    let json = serde_json::to_string(fault).map_err(|_| fmt::Error)?;
                    writeln!(f, "    {dependency}: {json}")?;
                }
            }
            at = end;
        }
        if let Some(max) = self.limits.max_requests {
            writeln!(f, "  at most {max} requests")?;
        }
        writeln!(
            f,
            "  cut short {} after the last phase if requests are still in flight",
            seconds(self.limits.grace)
        )?;
        if let Some(rule) = &self.limits.abort_when {
            let mut conditions = Vec::new();
            if let Some(rate) = rule.success_rate_below {
                conditions.push(format!("its success rate is under {rate}"));
            }
            if let Some(latency) = rule.latency_above {
                conditions.push(format!(
                    "its p{} is over {}",
                    rule.percentile,
                    seconds(latency)
                ));
            }
            writeln!(
                f,
                "  stops during or after phase {} (judged from {} into it) if {}",
                rule.phase,
                seconds(rule.delay),
                conditions.join(" or ")
            )?;
        }
        for expect in &self.expect {
            writeln!(f, "  expect {} in {}", expect.name(), expect.scope().phase)?;
        }
        Ok(())
    }
}

/// A duration in seconds as people write it (`2s`, `0.5s`).
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn ninety_nine() -> f64 {
    99.0
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}
