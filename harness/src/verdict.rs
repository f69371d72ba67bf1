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

/// A quantity as observed or as a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// A count of calls or requests.
    Count(u64),
    /// A ratio (amplification, success rate as a fraction).
    Ratio(f64),
    /// A latency.
    #[serde(with = "humantime_serde")]
    Duration(Duration),
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
}

impl Verdict {
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
        }
    }
}
