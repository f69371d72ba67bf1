//! What a simulated case saw, in two views: what the edge saw (a record per
//! request) and what reached the dependency (its journal, with attempt
//! numbers derived from arrival order). Both sit in one [`Observations`], so
//! the live run's property checkers judge them unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use fault_server::CallRecord;
use proptest::test_runner::TestCaseError;

use faultline_properties::Property;
use faultline_properties::{EdgeRecord, Observations, Outcome, Verdict};

/// A simulated case's observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// One phase ([`crate::PHASE`], from 0 to the horizon), the edge records,
    /// and the dependency's calls under its name.
    pub observations: Observations,
    /// The dependency's name in `observations.dependencies`.
    pub dependency: String,
}

impl Trace {
    /// Every edge request, in the order they were sent.
    pub fn edge(&self) -> &[EdgeRecord] {
        &self.observations.edge
    }

    /// Every call that reached the dependency, in arrival order. `attempt` is
    /// the call's place among the calls carrying its edge request's id (1 for
    /// the first), whatever the client's headers said.
    pub fn calls(&self) -> &[CallRecord] {
        self.observations
            .dependencies
            .get(&self.dependency)
            .map_or(&[], Vec::as_slice)
    }

    /// Calls per edge request, by correlation id (requests that caused no call are absent).
    pub fn calls_per_request(&self) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for call in self.calls() {
            if let Some(id) = call.correlation_id.as_deref() {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }

    /// The most calls in flight at the dependency at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.calls().iter().map(|c| c.in_flight).max().unwrap_or(0)
    }

    /// Judges `property` against the trace.
    pub fn check(&self, property: &dyn Property) -> Verdict {
        property.check(&self.observations)
    }

    /// Judges `property`, failing the proptest case when it fails (with its
    /// evidence); a pass or an inconclusive verdict (nothing to judge in this
    /// case) comes back for a [`Tally`] to count.
    pub fn holds(&self, property: &dyn Property) -> Result<Verdict, TestCaseError> {
        let mut verdict = self.check(property);
        if verdict.outcome == Outcome::Fail {
            // The scenario's requests are a list: name the witness by its place in it.
            if let Some(witness) = verdict.evidence.witness.as_mut() {
                if let Ok(id) = witness.parse::<faultline_properties::CorrelationId>() {
                    let (run, index) = id.parts();
                    if run == crate::runner::SIM_RUN {
                        *witness =
                            format!("edge request {index} (requests[{index}] in the scenario)");
                    }
                }
            }
            return Err(TestCaseError::fail(format!(
                "{} failed\n{}",
                verdict.property,
                verdict.evidence_lines()
            )));
        }
        Ok(verdict)
    }
}

/// Counts, over the cases of a property test, how often each property was
/// judged and how often its defence was exercised: a test whose cases never
/// reached the limit or opened the breaker passed without testing anything,
/// and [`Tally::assert_exercised`] says so. Owned by the test: no state is
/// shared between tests or hidden between cases.
#[derive(Debug, Default)]
pub struct Tally {
    counts: Mutex<BTreeMap<String, Counts>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    cases: u64,
    passed: u64,
    exercised: u64,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Tally::default()
    }

    /// Counts one verdict.
    pub fn record(&self, verdict: &Verdict) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts.entry(verdict.property.clone()).or_default();
        entry.cases += 1;
        entry.passed += u64::from(verdict.outcome == Outcome::Pass);
        entry.exercised += u64::from(verdict.coverage.as_ref().is_some_and(|c| c.exercised));
    }

    /// Cases in which `property` (its full name, or a prefix such as
    /// `max_in_flight`) was exercised, and cases counted for it.
    pub fn exercised(&self, property: &str) -> (u64, u64) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .filter(|(name, _)| name.starts_with(property))
            .fold((0, 0), |(e, c), (_, n)| (e + n.exercised, c + n.cases))
    }

    /// Panics unless `property` was exercised in at least `share` (0 to 1)
    /// of the cases that judged it, and in at least one.
    #[track_caller]
    pub fn assert_exercised(&self, property: &str, share: f64) {
        let (exercised, cases) = self.exercised(property);
        assert!(
            cases > 0,
            "no verdict named `{property}...` was recorded (a property's name begins \
             as its verdicts do, e.g. `max_in_flight`); recorded:\n{self}"
        );
        assert!(
            exercised > 0 && exercised as f64 >= share * cases as f64,
            "`{property}` was exercised in {exercised} of {cases} cases (wanted {:.0}%): \
             the generated scenarios did not test the defence\n{self}",
            share * 100.0
        );
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (name, n) in counts.iter() {
            writeln!(
                f,
                "{name}: {} cases, {} passed, exercised in {}",
                n.cases, n.passed, n.exercised
            )?;
        }
        Ok(())
    }
}
