//! Where a property looks ([`Scope`]), and whether what it reads there is
//! all in the run ([`Scope::missing`]): a verdict is never judged on part
//! of the evidence.

use std::collections::BTreeMap;
use std::time::Duration;

use fault_server::CallRecord;

use crate::observations::Attributed;
use crate::{CallSelector, Reads};
use crate::{EdgeStats, Observations, Phase};

/// Samples a property needs before it will judge, unless told otherwise.
pub const DEFAULT_MIN_SAMPLES: u64 = 10;

/// Where a property looks: a phase, minus its first `settle`, and how many
/// samples it needs there before a pass or a fail means anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// The phase's name.
    pub phase: String,
    /// Skipped at the start of the phase (let the system reach its steady state).
    pub settle: Duration,
    /// Fewer samples than this make the verdict inconclusive.
    pub min_samples: u64,
    /// Which of a dependency's calls a dependency property judges (every call by default).
    pub select: CallSelector,
}

impl Scope {
    /// The whole of `phase`, with [`DEFAULT_MIN_SAMPLES`].
    pub fn phase(name: impl Into<String>) -> Self {
        Scope {
            phase: name.into(),
            settle: Duration::ZERO,
            min_samples: DEFAULT_MIN_SAMPLES,
            select: CallSelector::all(),
        }
    }

    /// Skips the first `settle` of the phase.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Needs at least `samples` to judge.
    pub fn with_min_samples(mut self, samples: u64) -> Self {
        self.min_samples = samples;
        self
    }

    /// Judges only the dependency calls `select` selects.
    pub fn with_select(mut self, select: CallSelector) -> Self {
        self.select = select;
        self
    }
}

impl Scope {
    /// `dependency` as a verdict names it: with the selection, when there is one
    /// (`crm [not =/__health]`).
    pub(crate) fn subject(&self, dependency: &str) -> String {
        if self.select.is_all() {
            dependency.to_owned()
        } else {
            format!("{dependency} [{}]", self.select)
        }
    }

    /// Every selected call at `dependency` in the run.
    pub(crate) fn calls<'a>(
        &'a self,
        seen: &'a Observations,
        dependency: &str,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        seen.dependencies
            .get(dependency)
            .into_iter()
            .flatten()
            .filter(|c| self.select.selects(c))
    }

    /// The selected calls at `dependency` that met the phase's faults
    /// ([`Observations::calls_in`]).
    pub(crate) fn calls_in<'a>(
        &'a self,
        seen: &'a Observations,
        dependency: &str,
        phase: &'a Phase,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        seen.calls_in(dependency, phase, self.settle)
            .filter(|c| self.select.selects(c))
    }

    /// The selected calls made for the phase's requests ([`Observations::attributed`]).
    pub(crate) fn attributed<'a>(
        &'a self,
        seen: &'a Observations,
        dependency: &str,
        phase: &'a Phase,
        endpoint: Option<&str>,
    ) -> Attributed<'a> {
        seen.attributed(dependency, phase, self.settle, endpoint, |c| {
            self.select.selects(c)
        })
    }
}

impl Scope {
    /// Why what a property `reads` in `phase` is not all in the run, when it
    /// is not: edge records cut by the cap on kept records,
    /// or a dependency's calls lost or never seen.
    pub fn missing(&self, seen: &Observations, phase: &Phase, reads: Reads<'_>) -> Option<String> {
        let edge = match reads {
            Reads::Edge | Reads::EdgeAndCalls(_) => edge_cut(seen, phase),
            Reads::Phase | Reads::Calls(_) => None,
        };
        edge.or_else(|| match reads {
            Reads::Calls(dependency) | Reads::EdgeAndCalls(dependency) => {
                calls_missing(seen, phase, dependency, &self.select)
            }
            Reads::Phase | Reads::Edge => None,
        })
    }
}

/// Why `dependency`'s calls in `phase` cannot be judged, when they cannot:
/// the journal counted calls whose records were lost before the run read
/// them, or no call reached the dependency in the whole run although
/// requests were sent (a target down, or calling somewhere else, is no
/// evidence that it behaves).
pub(crate) fn calls_missing(
    seen: &Observations,
    phase: &Phase,
    dependency: &str,
    select: &CallSelector,
) -> Option<String> {
    if let Some(why) = seen.unread.get(dependency) {
        return Some(format!(
            "the journal of `{dependency}` could not be read to the end while the run was stopping ({why})"
        ));
    }
    let lost = seen.lost_calls.get(dependency);
    if let Some(n) = lost.and_then(|phases| phases.get(&phase.name)) {
        return Some(format!(
            "{n} calls at `{dependency}` in this phase were counted by its journal, \
             but their records were overwritten before the run could read them \
             (the fault server keeps journal_capacity records per dependency): \
             raise journal_capacity there"
        ));
    }
    let sent = seen
        .edge_stats
        .values()
        .flat_map(BTreeMap::values)
        .map(EdgeStats::requests)
        .sum::<u64>()
        .max(seen.edge.len() as u64);
    let calls = seen
        .dependencies
        .get(dependency)
        .map_or(&[][..], Vec::as_slice);
    let called = calls.iter().any(|c| select.selects(c));
    (sent > 0 && !called && lost.is_none()).then(|| {
        if calls.is_empty() {
            format!(
                "no call reached `{dependency}` in the whole run while {sent} requests were sent: \
                 is the target up, and configured to call `{dependency}` at the address the fault server gave it?"
            )
        } else {
            format!(
                "none of the {} calls at `{dependency}` in the whole run was one the property selects ({select}), \
                 while {sent} requests were sent: is the target up, and does the selection name its calls?",
                calls.len()
            )
        }
    })
}

/// Why the edge records of `phase` are incomplete, when the run outgrew its
/// cap on kept records before the phase ended.
pub(crate) fn edge_cut(seen: &Observations, phase: &Phase) -> Option<String> {
    let cut = seen.edge_truncated_ns?;
    (cut < phase.end_ns).then(|| {
        format!(
            "the run sent more requests than it keeps records for ({}); \
             requests of this phase past the cap count in the histograms only",
            seen.edge.len()
        )
    })
}
