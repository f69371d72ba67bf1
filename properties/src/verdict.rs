//! A property's verdict, always with its evidence.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Pass, fail, or inconclusive (too few samples to say: never a silent pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The claim held.
    Pass,
    /// The claim broke.
    Fail,
    /// Too little was observed to judge.
    Inconclusive,
}

/// A quantity as observed or as a threshold. In JSON, one key naming the
/// kind: `{"count": 3}`, `{"ratio": 0.98}`, `{"duration_ms": 2.65}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "MeasureJson", from = "MeasureJson")]
pub enum Measure {
    /// A count of calls or requests.
    Count(u64),
    /// A ratio (amplification, success rate as a fraction).
    Ratio(f64),
    /// A latency.
    Duration(Duration),
}

/// How a [`Measure`] reads in JSON: numbers only, durations in milliseconds.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MeasureJson {
    Count(u64),
    Ratio(f64),
    DurationMs(f64),
}

impl From<Measure> for MeasureJson {
    fn from(measure: Measure) -> Self {
        match measure {
            Measure::Count(n) => MeasureJson::Count(n),
            Measure::Ratio(r) => MeasureJson::Ratio(r),
            Measure::Duration(d) => MeasureJson::DurationMs(d.as_secs_f64() * 1_000.0),
        }
    }
}

impl From<MeasureJson> for Measure {
    fn from(json: MeasureJson) -> Self {
        match json {
            MeasureJson::Count(n) => Measure::Count(n),
            MeasureJson::Ratio(r) => Measure::Ratio(r),
            MeasureJson::DurationMs(ms) => {
                Measure::Duration(Duration::try_from_secs_f64(ms / 1_000.0).unwrap_or_default())
            }
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::Count(n) => write!(f, "{n}"),
            Measure::Ratio(r) => write!(f, "{r:.3}"),
            Measure::Duration(d) => write!(f, "{:.1}ms", d.as_secs_f64() * 1000.0),
        }
    }
}

impl Measure {
    /// `observed` and `threshold` as text, each with as many digits as it
    /// takes for two different values never to read the same (`1.000` and
    /// `1.000` become `1.0004` and `1.0000`): three decimals for a ratio and
    /// one for milliseconds, more only when needed. `-` when nothing was observed.
    pub fn pair(observed: Option<Measure>, threshold: Measure) -> (String, String) {
        let Some(observed) = observed else {
            return ("-".to_owned(), threshold.to_string());
        };
        let at = |m: Measure, digits: usize| match m {
            Measure::Count(n) => n.to_string(),
            Measure::Ratio(r) => format!("{r:.digits$}"),
            Measure::Duration(d) => format!("{:.digits$}ms", d.as_secs_f64() * 1000.0),
        };
        let (first, last) = match (observed, threshold) {
            (Measure::Duration(_), Measure::Duration(_)) => (1, 6),
            (Measure::Ratio(_), Measure::Ratio(_)) => (3, 17),
            _ => return (observed.to_string(), threshold.to_string()),
        };
        let differ = observed != threshold;
        (first..=last)
            .map(|digits| (at(observed, digits), at(threshold, digits)))
            .find(|(o, t)| !differ || o != t)
            .unwrap_or_else(|| (format!("{observed:?}"), format!("{threshold:?}")))
    }
}

/// A duration as a verdict's name and notes show it: the largest unit
/// that keeps it whole or short (`250ms`, `1.5s`, `2s`, `800µs`), at most
/// three decimals.
///
/// ```
/// use std::time::Duration;
/// use faultline_properties::Shown;
///
/// assert_eq!(Shown(Duration::from_millis(250)).to_string(), "250ms");
/// assert_eq!(Shown(Duration::from_millis(1_500)).to_string(), "1.5s");
/// assert_eq!(Shown(Duration::from_secs(2)).to_string(), "2s");
/// assert_eq!(Shown(Duration::from_micros(800)).to_string(), "800µs");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown(pub Duration);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos() as f64;
        let (value, unit) = if nanos >= 1e9 {
            (nanos / 1e9, "s")
        } else if nanos >= 1e6 {
            (nanos / 1e6, "ms")
        } else if nanos >= 1e3 {
            (nanos / 1e3, "µs")
        } else {
            (nanos, "ns")
        };
        let text = format!("{value:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{text}{unit}")
    }
}

/// What a verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was observed.
    pub observed: Option<Measure>,
    /// The bound it was held to.
    pub threshold: Measure,
    /// How many samples it rests on.
    pub samples: u64,
    /// When the claim first broke, in nanoseconds on the run's clock.
    pub first_broke_ns: Option<u64>,
    /// The correlation id of the worst request, where one applies.
    pub witness: Option<String>,
}

impl Evidence {
    /// Nothing seen yet, against `threshold`.
    pub fn against(threshold: Measure) -> Self {
        Evidence {
            observed: None,
            threshold,
            samples: 0,
            first_broke_ns: None,
            witness: None,
        }
    }
}

/// A property's judgement of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The property, as a checklist would name it (`max_in_flight(crm) <= 30`).
    pub property: String,
    /// The phase judged.
    pub phase: String,
    /// Pass, fail or inconclusive.
    pub outcome: Outcome,
    /// Why.
    pub evidence: Evidence,
    /// What made it inconclusive, or what a pass did not exercise.
    pub note: Option<String>,
    /// Whether the run met what the defence is for (the limit reached, the
    /// breaker opened), where the property says: a pass that never did tested
    /// nothing, and a property test should show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// Whether a verdict's defence was exercised, and how.
///
/// ```
/// use faultline_properties::{MaxInFlight, Property, Scope};
/// use faultline_properties::Observations;
///
/// let verdict = MaxInFlight::new("crm", 30, Scope::phase("slow")).check(&Observations::default());
/// assert!(verdict.coverage.is_none(), "nothing judged, nothing covered");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Whether the situation the defence guards against happened.
    pub exercised: bool,
    /// What happened, as a reader would say it (`the limit was reached: peak 5 of 5`).
    pub what: String,
}

impl Verdict {
    /// The evidence as lines of text (`property: ...`, `phase: ...`,
    /// `observed: ...`, `threshold: ...`, `samples: ...`, and when known
    /// `first broke at: ...`, `witness: ...`, `note: ...`): a JUnit
    /// failure's body, a failed simulated case's message.
    pub fn evidence_lines(&self) -> String {
        let e = &self.evidence;
        let (observed, threshold) = Measure::pair(e.observed, e.threshold);
        let mut lines = vec![
            format!("property: {}", self.property),
            format!("phase: {}", self.phase),
            format!("observed: {observed}"),
            format!("threshold: {threshold}"),
            format!("samples: {}", e.samples),
        ];
        if let Some(at) = e.first_broke_ns {
            lines.push(format!(
                "first broke at: {:.3} s into the run",
                at as f64 / 1e9
            ));
        }
        if let Some(witness) = &e.witness {
            lines.push(format!("witness: {witness}"));
        }
        if let Some(note) = &self.note {
            lines.push(format!("note: {note}"));
        }
        lines.join("\n")
    }

    /// Inconclusive because of `why`.
    pub(crate) fn inconclusive(
        property: String,
        phase: &str,
        evidence: Evidence,
        why: impl Into<String>,
    ) -> Self {
        Verdict {
            property,
            phase: phase.to_owned(),
            outcome: Outcome::Inconclusive,
            evidence,
            note: Some(why.into()),
            coverage: None,
        }
    }

    /// Pass or fail as `held` says.
    pub(crate) fn judged(property: String, phase: &str, held: bool, evidence: Evidence) -> Self {
        Verdict {
            property,
            phase: phase.to_owned(),
            outcome: if held { Outcome::Pass } else { Outcome::Fail },
            evidence,
            note: None,
            coverage: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Measure;

    #[test]
    fn a_failing_value_never_reads_as_its_threshold() {
        let pair = |o, t| Measure::pair(Some(o), t);
        assert_eq!(
            pair(Measure::Ratio(1.0004), Measure::Ratio(1.0)),
            ("1.0004".to_owned(), "1.0000".to_owned())
        );
        assert_eq!(
            pair(Measure::Ratio(0.95), Measure::Ratio(0.95)),
            ("0.950".to_owned(), "0.950".to_owned())
        );
        assert_eq!(
            pair(Measure::Ratio(3.0), Measure::Ratio(2.9)),
            ("3.000".to_owned(), "2.900".to_owned())
        );
        let ms = |ns| Measure::Duration(Duration::from_nanos(ns));
        assert_eq!(
            pair(ms(250_000_400), ms(250_000_000)),
            ("250.0004ms".to_owned(), "250.0000ms".to_owned())
        );
        let (o, t) = pair(Measure::Ratio(1.0 + f64::EPSILON), Measure::Ratio(1.0));
        assert_ne!(o, t);
        assert_eq!(
            Measure::pair(None, Measure::Count(3)),
            ("-".to_owned(), "3".to_owned())
        );
    }
}
