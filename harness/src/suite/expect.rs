//! `[[expect]]` entries: a property by name, its phase and its parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use fault_server::RequestMatch;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::location::suggest;
use crate::properties::{
    AlertFired, Backoff, Breaker, CallSelector, Calls, Deadline, Delivered, FastAccept, Jitter,
    LatencyBound, LatencyLimit, MaxAttempts, MaxInFlight, Property, RecoversWithin,
    RetryAmplification, Scope, ShedFast, StatusShare, SuccessRate,
};

/// The properties a suite can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyKind {
    /// At most N calls in flight at a dependency.
    MaxInFlight,
    /// Dependency calls per edge request at most k.
    RetryAmplification,
    /// Calls per correlated request at most A.
    MaxAttempts,
    /// A latency percentile within a bound.
    Latency,
    /// A success rate at least x.
    SuccessRate,
    /// Back to a success rate within T after the fault.
    RecoversWithin,
    /// No correlated dependency call after its request's budget ran out.
    Deadline,
    /// A circuit breaker opens, holds calls back, and probes again.
    Breaker,
    /// Overload is shed with a fast 503/429 and Retry-After.
    ShedFast,
    /// Retries wait inside an exponential envelope, with jitter.
    Backoff,
    /// Offloaded work is answered 202 at once.
    FastAccept,
    /// Offloaded work reaches its dependency exactly once, in time.
    Delivered,
    /// An alert reaches an alert sink soon after the fault starts.
    AlertFired,
    /// At most N calls reach a dependency in the phase.
    Calls,
    /// At most a share of answers has a status (or class).
    StatusShare,
}

impl PropertyKind {
    /// The name as a suite writes it (`max_in_flight`).
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyKind::MaxInFlight => "max_in_flight",
            PropertyKind::RetryAmplification => "retry_amplification",
            PropertyKind::MaxAttempts => "max_attempts",
            PropertyKind::Latency => "latency",
            PropertyKind::SuccessRate => "success_rate",
            PropertyKind::RecoversWithin => "recovers_within",
            PropertyKind::Deadline => "deadline",
            PropertyKind::Breaker => "breaker",
            PropertyKind::ShedFast => "shed_fast",
            PropertyKind::Backoff => "backoff",
            PropertyKind::FastAccept => "fast_accept",
            PropertyKind::Delivered => "delivered",
            PropertyKind::AlertFired => "alert_fired",
            PropertyKind::Calls => "calls",
            PropertyKind::StatusShare => "status_share",
        }
    }
}

/// One `[[expect]]` entry.
///
/// ```toml
/// [[expect]]
/// property = "latency"
/// endpoint = "search"
/// percentile = 99
/// at_most = "250ms"          # or: baseline = "baseline", factor = 1.5
/// phase = "crm slow"
/// settle = "1s"              # skip the first second of the phase
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Which property.
    #[serde(rename = "property")]
    pub kind: PropertyKind,
    /// The phase it judges.
    pub phase: String,
    /// Skipped at the start of the phase.
    #[serde(default, with = "humantime_serde::option")]
    pub settle: Option<Duration>,
    /// Samples needed to judge (default 10).
    #[serde(default)]
    pub min_samples: Option<u64>,
    /// The dependency (max_in_flight, retry_amplification, max_attempts).
    #[serde(default)]
    pub dependency: Option<String>,
    /// The endpoint; every endpoint when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The upper bound: a number, or a duration for `latency`.
    #[serde(default)]
    pub at_most: Option<Bound>,
    /// The lower bound on a success rate, 0 to 1.
    #[serde(default)]
    pub at_least: Option<f64>,
    /// Which latency percentile (default 99; 100 is the maximum).
    #[serde(default)]
    pub percentile: Option<f64>,
    /// `latency` relative to this phase...
    #[serde(default)]
    pub baseline: Option<String>,
    /// ...times this factor.
    #[serde(default)]
    pub factor: Option<f64>,
    /// `recovers_within`: how long recovery may take; `deadline`: the request's budget.
    #[serde(default, with = "humantime_serde::option")]
    pub within: Option<Duration>,
    /// `recovers_within`: the sliding window (default 1 s).
    #[serde(default, with = "humantime_serde::option")]
    pub window: Option<Duration>,
    /// `breaker`: consecutive failures that open it.
    #[serde(default)]
    pub failures: Option<u64>,
    /// `breaker`: how long it stays open.
    #[serde(default, with = "humantime_serde::option")]
    pub reset: Option<Duration>,
    /// `breaker`: calls allowed per reset interval while open (default 1).
    #[serde(default)]
    pub probes: Option<u64>,
    /// `shed_fast`: bound on the p99 of rejections.
    #[serde(default, with = "humantime_serde::option")]
    pub rejected_within: Option<Duration>,
    /// `shed_fast`: bound on the p99 of accepted requests.
    #[serde(default, with = "humantime_serde::option")]
    pub accepted_within: Option<Duration>,
    /// `backoff`: the first retry's envelope.
    #[serde(default, with = "humantime_serde::option")]
    pub base: Option<Duration>,
    /// `backoff`: growth per retry (default 2).
    #[serde(default)]
    pub multiplier: Option<f64>,
    /// `backoff`: the largest envelope.
    #[serde(default, with = "humantime_serde::option")]
    pub max: Option<Duration>,
    /// `backoff`: `none`, `full` (default) or `equal`.
    #[serde(default)]
    pub jitter: Option<Jitter>,
    /// `alert_fired`: the alert's `alertname`.
    #[serde(default)]
    pub alert: Option<String>,
    /// `status_share`: a status code (`429` or `"429"`) or class (`"5xx"`).
    #[serde(default, deserialize_with = "status_text")]
    pub status: Option<String>,
    /// Dependency properties: judge only the calls this selects (a fault's
    /// `match` syntax: `method`, `path`; not `headers`).
    #[serde(default, rename = "match")]
    pub calls_match: Option<RequestMatch>,
    /// Dependency properties: ...and none this selects (a load balancer's
    /// health checks: `exclude = { path = "=/__health" }`).
    #[serde(default)]
    pub exclude: Option<RequestMatch>,
}

/// A status written as a number (`504`) or a string (`"504"`, `"5xx"`).
fn status_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct StatusVisitor;
    impl Visitor<'_> for StatusVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a status code (504) or class (\"5xx\")")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
    }
    deserializer.deserialize_any(StatusVisitor)
}

/// An upper bound: a number (count or ratio) or a duration (`"250ms"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A count or ratio.
    Number(f64),
    /// A latency.
    Duration(Duration),
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundVisitor;
        impl Visitor<'_> for BoundVisitor {
            type Value = Bound;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a duration like \"250ms\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bound, E> {
                Ok(Bound::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bound, E> {
                humantime::parse_duration(v)
                    .map(Bound::Duration)
                    .map_err(|e| E::custom(format!("`{v}` is not a duration: {e}")))
            }
        }
        deserializer.deserialize_any(BoundVisitor)
    }
}

impl Expect {
    /// Checks that the names it uses exist and it has what its property needs.
    pub(super) fn check(
        &self,
        phase_durations: &BTreeMap<&str, Duration>,
        endpoints: &[&str],
        dependencies: &BTreeSet<String>,
    ) -> Result<(), String> {
        let phases: Vec<&str> = phase_durations.keys().copied().collect();
        let phases = &phases[..];
        let known = |kind: &str, name: &str, names: &[&str]| {
            if names.contains(&name) {
                Ok(())
            } else {
                let hint = suggest(name, names.iter().copied())
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                Err(format!("no {kind} named `{name}`{hint}"))
            }
        };
        known("phase", &self.phase, phases)?;
        if let Some(baseline) = &self.baseline {
            known("phase", baseline, phases)?;
        }
        if let Some(endpoint) = &self.endpoint {
            known("endpoint", endpoint, endpoints)?;
        }
        let dependency_names: Vec<&str> = dependencies.iter().map(String::as_str).collect();
        if let Some(dependency) = &self.dependency {
            known("dependency", dependency, &dependency_names)?;
        }
        self.check_values(phase_durations)?;
        self.check_selector()?;
        let needs = |present: bool, key: &str| {
            if present {
                Ok(())
            } else {
                Err(format!("{} needs `{key}`", self.kind.as_str()))
            }
        };
        match self.kind {
            PropertyKind::MaxInFlight | PropertyKind::MaxAttempts => {
                needs(self.dependency.is_some(), "dependency")?;
                needs(
                    matches!(self.at_most, Some(Bound::Number(n)) if n >= 0.0 && n.fract() == 0.0),
                    "at_most (a whole number)",
                )
            }
            PropertyKind::RetryAmplification => {
                needs(self.dependency.is_some(), "dependency")?;
                needs(
                    matches!(self.at_most, Some(Bound::Number(n)) if n >= 0.0),
                    "at_most (a number)",
                )
            }
            PropertyKind::Latency => needs(
                matches!(self.at_most, Some(Bound::Duration(_)))
                    || (self.baseline.is_some() && self.factor.is_some_and(|f| f > 0.0)),
                "at_most (a duration) or baseline and factor",
            ),
            PropertyKind::SuccessRate => needs(
                self.at_least.is_some_and(|x| (0.0..=1.0).contains(&x)),
                "at_least (0 to 1)",
            ),
            PropertyKind::RecoversWithin => {
                needs(
                    self.at_least.is_some_and(|x| (0.0..=1.0).contains(&x)),
                    "at_least (0 to 1)",
                )?;
                needs(self.within.is_some(), "within")
            }
            PropertyKind::Deadline => {
                needs(self.dependency.is_some(), "dependency")?;
                needs(self.within.is_some(), "within (the request's budget)")
            }
            PropertyKind::Calls => {
                needs(self.dependency.is_some(), "dependency")?;
                needs(
                    matches!(self.at_most, Some(Bound::Number(n)) if n >= 0.0 && n.fract() == 0.0),
                    "at_most (a whole number)",
                )
            }
            PropertyKind::StatusShare => {
                let status = self.status.as_deref().unwrap_or_default();
                crate::properties::status_range(status).map_err(|e| format!("status: {e}"))?;
                needs(
                    matches!(self.at_most, Some(Bound::Number(n)) if (0.0..=1.0).contains(&n)),
                    "at_most (0 to 1)",
                )
            }
            PropertyKind::AlertFired => {
                needs(self.alert.is_some(), "alert (its alertname)")?;
                needs(self.within.is_some(), "within")
            }
            PropertyKind::FastAccept => {
                needs(self.endpoint.is_some(), "endpoint")?;
                needs(self.within.is_some(), "within")
            }
            PropertyKind::Delivered => {
                needs(self.endpoint.is_some(), "endpoint")?;
                needs(self.dependency.is_some(), "dependency")?;
                needs(self.within.is_some(), "within (after the phase ends)")
            }
            PropertyKind::Backoff => {
                needs(self.dependency.is_some(), "dependency")?;
                needs(self.base.is_some_and(|b| !b.is_zero()), "base (above 0)")?;
                needs(self.max.is_some(), "max")?;
                if self.multiplier.is_some_and(|m| m <= 1.0) {
                    return Err(
                        "backoff: multiplier must be above 1 (an exponential envelope grows)"
                            .into(),
                    );
                }
                if self.base > self.max {
                    return Err("backoff: base must not exceed max".into());
                }
                Ok(())
            }
            PropertyKind::ShedFast => {
                needs(self.rejected_within.is_some(), "rejected_within")?;
                needs(self.accepted_within.is_some(), "accepted_within")
            }
            PropertyKind::Breaker => {
                needs(self.dependency.is_some(), "dependency")?;
                needs(
                    self.failures.is_some_and(|n| n > 0),
                    "failures (at least 1)",
                )?;
                needs(
                    self.reset.is_some_and(|r| !r.is_zero()),
                    "reset (a duration)",
                )
            }
        }
    }

    /// Whether the property reads a dependency's calls (and so takes `match`
    /// and `exclude`).
    fn reads_calls(&self) -> bool {
        matches!(
            self.kind,
            PropertyKind::MaxInFlight
                | PropertyKind::RetryAmplification
                | PropertyKind::MaxAttempts
                | PropertyKind::Deadline
                | PropertyKind::Breaker
                | PropertyKind::Backoff
                | PropertyKind::Delivered
                | PropertyKind::Calls
        )
    }

    /// `match` and `exclude` only where calls are judged.
    fn check_selector(&self) -> Result<(), String> {
        if !self.reads_calls() && (self.calls_match.is_some() || self.exclude.is_some()) {
            return Err(format!(
                "`match` and `exclude` select a dependency's calls; {} judges none",
                self.kind.as_str()
            ));
        }
        Ok(())
    }

    /// The dependency whose records must keep headers for this expectation's
    /// selection, and those headers.
    pub(crate) fn kept_headers(&self) -> Option<(&str, Vec<String>)> {
        let names = self.selector().header_names();
        let dependency = self.dependency.as_deref()?;
        (!names.is_empty()).then_some((dependency, names))
    }

    fn selector(&self) -> CallSelector {
        CallSelector::new(self.calls_match.clone(), self.exclude.clone())
    }

    /// Numbers that mean something: finite, in range, durations above zero
    /// where zero is meaningless and never past [`super::MAX_DURATION`],
    /// `settle` shorter than its phase.
    fn check_values(&self, phase_durations: &BTreeMap<&str, Duration>) -> Result<(), String> {
        if self.min_samples == Some(0) {
            return Err(
                "min_samples must be at least 1: a verdict on no samples is no verdict".into(),
            );
        }
        if let Some(p) = self.percentile {
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!(
                    "percentile must be above 0 and at most 100, not {p}"
                ));
            }
        }
        let numbers = [
            ("at_least", self.at_least),
            ("factor", self.factor),
            ("multiplier", self.multiplier),
            (
                "at_most",
                match self.at_most {
                    Some(Bound::Number(n)) => Some(n),
                    _ => None,
                },
            ),
        ];
        for (key, value) in numbers {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(format!("{key} must be a finite number"));
            }
        }
        let durations = [
            ("settle", self.settle),
            ("within", self.within),
            ("window", self.window),
            ("reset", self.reset),
            ("rejected_within", self.rejected_within),
            ("accepted_within", self.accepted_within),
            ("base", self.base),
            ("max", self.max),
            (
                "at_most",
                match self.at_most {
                    Some(Bound::Duration(d)) => Some(d),
                    _ => None,
                },
            ),
        ];
        let most = humantime::format_duration(super::MAX_DURATION);
        for (key, value) in durations {
            if value.is_some_and(|d| d > super::MAX_DURATION) {
                return Err(format!("{key} is at most {most}"));
            }
        }
        for (key, value) in [("within", self.within), ("window", self.window)] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(format!("{key} must be above 0"));
            }
        }
        if let (Some(settle), Some(phase)) = (self.settle, phase_durations.get(self.phase.as_str()))
        {
            if settle >= *phase {
                return Err(format!(
                    "settle ({}) must be shorter than phase `{}` ({}): nothing would be judged",
                    humantime::format_duration(settle),
                    self.phase,
                    humantime::format_duration(*phase)
                ));
            }
        }
        Ok(())
    }

    /// The property to check.
    pub fn property(&self) -> Box<dyn Property + Send + Sync> {
        let mut scope =
            Scope::phase(self.phase.clone()).with_settle(self.settle.unwrap_or_default());
        if let Some(samples) = self.min_samples {
            scope = scope.with_min_samples(samples);
        }
        scope = scope.with_select(self.selector());
        let dependency = self.dependency.clone().unwrap_or_default();
        let number = match self.at_most {
            Some(Bound::Number(n)) => n,
            _ => 0.0,
        };
        match self.kind {
            PropertyKind::MaxInFlight => {
                Box::new(MaxInFlight::new(dependency, number as u64, scope))
            }
            PropertyKind::MaxAttempts => {
                Box::new(MaxAttempts::new(dependency, number as u64, scope))
            }
            PropertyKind::RetryAmplification => {
                let mut property = RetryAmplification::new(dependency, number, scope);
                property.endpoint = self.endpoint.clone();
                Box::new(property)
            }
            PropertyKind::Latency => {
                let limit = match (self.at_most, &self.baseline) {
                    (Some(Bound::Duration(bound)), _) => LatencyLimit::Absolute(bound),
                    (_, Some(phase)) => LatencyLimit::Baseline {
                        phase: phase.clone(),
                        factor: self.factor.unwrap_or(1.0),
                    },
                    _ => LatencyLimit::Absolute(Duration::ZERO),
                };
                let mut property = LatencyBound::new(self.percentile.unwrap_or(99.0), limit, scope);
                property.endpoint = self.endpoint.clone();
                Box::new(property)
            }
            PropertyKind::SuccessRate => {
                let mut property = SuccessRate::new(self.at_least.unwrap_or(1.0), scope);
                property.endpoint = self.endpoint.clone();
                Box::new(property)
            }
            PropertyKind::Calls => Box::new(Calls::new(dependency, number as u64, scope)),
            PropertyKind::StatusShare => {
                // Checked when the suite was read.
                let status = self.status.as_deref().unwrap_or("5xx");
                let range = crate::properties::status_range(status).unwrap_or((500, 599));
                let mut property = StatusShare::with_range(status, range, number, scope);
                property.endpoint = self.endpoint.clone();
                Box::new(property)
            }
            PropertyKind::AlertFired => Box::new(AlertFired::new(
                self.alert.clone().unwrap_or_default(),
                self.within.unwrap_or_default(),
                scope,
            )),
            PropertyKind::FastAccept => Box::new(FastAccept::new(
                self.endpoint.clone().unwrap_or_default(),
                self.within.unwrap_or_default(),
                scope,
            )),
            PropertyKind::Delivered => Box::new(Delivered::new(
                self.endpoint.clone().unwrap_or_default(),
                dependency,
                self.within.unwrap_or_default(),
                scope,
            )),
            PropertyKind::Backoff => Box::new(Backoff::new(
                dependency,
                self.base.unwrap_or_default(),
                self.multiplier.unwrap_or(2.0),
                self.max.unwrap_or_default(),
                self.jitter.unwrap_or(Jitter::Full),
                scope,
            )),
            PropertyKind::ShedFast => {
                let mut property = ShedFast::new(
                    self.rejected_within.unwrap_or_default(),
                    self.accepted_within.unwrap_or_default(),
                    scope,
                );
                property.endpoint = self.endpoint.clone();
                Box::new(property)
            }
            PropertyKind::Breaker => Box::new(Breaker::new(
                dependency,
                self.failures.unwrap_or(1),
                self.reset.unwrap_or_default(),
                self.probes.unwrap_or(1),
                scope,
            )),
            PropertyKind::Deadline => Box::new(Deadline::new(
                dependency,
                self.within.unwrap_or_default(),
                scope,
            )),
            PropertyKind::RecoversWithin => {
                let mut property = RecoversWithin::new(
                    self.at_least.unwrap_or(1.0),
                    self.within.unwrap_or_default(),
                    scope,
                );
                property.endpoint = self.endpoint.clone();
                if let Some(window) = self.window {
                    property = property.with_window(window);
                }
                Box::new(property)
            }
        }
    }
}
