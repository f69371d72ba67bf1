//! A second shrinking pass over a failing [`Scenario`]'s parts.
//!
//! proptest shrinks a scenario's parts in order — the requests, then the
//! calls' faults — and never goes back: once the calls are short, fewer
//! requests would often do, but the requests are done shrinking. When
//! proptest's pass stops, [`Minimising`] goes on with one of its own, a
//! delta-debugging walk over the failing scenario: it tries each edit that
//! makes it smaller (half the requests, one request, one call's faults, one
//! call's slot, the faults after the schedule) and keeps the first that
//! still fails, until none does. Each case is deterministic, so what still
//! fails is a scenario that fails.
//!
//! The protocol is proptest's [`ValueTree`]: `simplify` is asked after the
//! current value failed, `complicate` after it passed; whatever stops the
//! shrinking (no simpler value, or the shrink budget), the tree's value is
//! then the last one that failed.

use proptest::strategy::{BoxedStrategy, NewTree, Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::Scenario;

/// A scenario strategy whose shrinking goes on past proptest's own pass
/// (see the module docs). Made by [`crate::strategy::scenario`].
#[derive(Debug, Clone)]
pub(crate) struct Minimising {
    inner: BoxedStrategy<Scenario>,
}

impl Minimising {
    pub(crate) fn new(inner: BoxedStrategy<Scenario>) -> Self {
        Minimising { inner }
    }
}

impl Strategy for Minimising {
    type Tree = MinimisingTree;
    type Value = Scenario;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        Ok(MinimisingTree {
            inner: Box::new(self.inner.new_tree(runner)?),
            last_failing: None,
            edits: None,
        })
    }
}

/// The value tree behind [`Minimising`]: proptest's own, then the edits.
pub(crate) struct MinimisingTree {
    inner: Box<dyn ValueTree<Value = Scenario>>,
    /// While proptest's pass runs: the last value seen failing (recorded on
    /// each `simplify`, which is only asked after a failure).
    last_failing: Option<Scenario>,
    /// Once it stopped: the edit pass.
    edits: Option<Edits>,
}

impl std::fmt::Debug for MinimisingTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinimisingTree")
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

/// The edit pass: the last failing scenario, the edits of it not yet
/// tried, and the one being tried.
#[derive(Debug)]
struct Edits {
    failing: Scenario,
    untried: std::vec::IntoIter<Scenario>,
    current: Scenario,
}

impl Edits {
    /// The first edit of `failing` to try; `None` when it has none.
    fn of(failing: Scenario) -> (Self, bool) {
        let mut untried = smaller(&failing).into_iter();
        match untried.next() {
            Some(current) => (
                Edits {
                    failing,
                    untried,
                    current,
                },
                true,
            ),
            None => (
                Edits {
                    current: failing.clone(),
                    failing,
                    untried,
                },
                false,
            ),
        }
    }

    /// The edit tried passed: the next edit of the same failing scenario,
    /// or back to it when there is none.
    fn next(&mut self) -> bool {
        match self.untried.next() {
            Some(next) => {
                self.current = next;
                true
            }
            None => {
                self.current = self.failing.clone();
                false
            }
        }
    }
}

impl MinimisingTree {
    /// Proptest's pass stopped: start the edits from the last failing value.
    fn start_edits(&mut self) -> bool {
        let failing = self
            .last_failing
            .take()
            .unwrap_or_else(|| self.inner.current());
        let (edits, any) = Edits::of(failing);
        self.edits = Some(edits);
        any
    }
}

impl ValueTree for MinimisingTree {
    type Value = Scenario;

    fn current(&self) -> Scenario {
        match &self.edits {
            Some(edits) => edits.current.clone(),
            None => self.inner.current(),
        }
    }

    fn simplify(&mut self) -> bool {
        match &mut self.edits {
            // The edit tried still fails: edit it in turn.
            Some(edits) => {
                let (next, any) = Edits::of(edits.current.clone());
                *edits = next;
                any
            }
            None => {
                self.last_failing = Some(self.inner.current());
                self.inner.simplify() || self.start_edits()
            }
        }
    }

    fn complicate(&mut self) -> bool {
        match &mut self.edits {
            Some(edits) => edits.next(),
            None => self.inner.complicate() || self.start_edits(),
        }
    }
}

/// Every scenario one edit smaller than `s`, the biggest cuts first.
fn smaller(s: &Scenario) -> Vec<Scenario> {
    let mut edits = Vec::new();
    let with = |change: &dyn Fn(&mut Scenario)| {
        let mut edited = s.clone();
        change(&mut edited);
        edited
    };
    let n = s.requests.len();
    if n >= 2 {
        edits.push(with(&|e| e.requests.truncate(n / 2)));
        edits.push(with(&|e| {
            e.requests.drain(..n / 2);
        }));
    }
    for i in (0..n).rev() {
        edits.push(with(&|e| {
            e.requests.remove(i);
        }));
    }
    if !s.then.is_empty() {
        edits.push(with(&|e| e.then.clear()));
    }
    let calls = s.calls.len();
    if calls >= 2 {
        edits.push(with(&|e| e.calls.truncate(calls / 2)));
    }
    for i in (0..calls).rev() {
        edits.push(with(&|e| {
            e.calls.remove(i);
        }));
        if !s.calls[i].is_empty() {
            edits.push(with(&|e| e.calls[i].clear()));
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::test_runner::{Config, TestError};

    use super::*;
    use crate::strategy;
    use crate::EdgeRequest;

    /// A test that fails when at least `requests` requests and `faulted`
    /// faulted calls are in the scenario: the minimum is exactly that.
    fn fails_from(
        requests: usize,
        faulted: usize,
    ) -> impl Fn(Scenario) -> Result<(), proptest::test_runner::TestCaseError> {
        move |s: Scenario| {
            let with_faults = s.calls.iter().filter(|c| !c.is_empty()).count();
            if s.requests.len() >= requests && with_faults >= faulted {
                Err(proptest::test_runner::TestCaseError::fail("too many"))
            } else {
                Ok(())
            }
        }
    }

    /// A scenario proptest cannot shrink at all (`Just`): the edits alone
    /// take it to the minimum.
    #[test]
    fn past_a_pass_that_stopped_the_edits_reach_the_minimum() {
        let mut s = Scenario::new(Duration::from_secs(60));
        s.requests = (0..9)
            .map(|i| EdgeRequest::at(Duration::from_millis(i)))
            .collect();
        s.calls = vec![vec![strategy::latency(Duration::from_millis(1))]; 6];
        s.calls.insert(2, vec![]);
        s.then = vec![strategy::error(503)];
        let strategy = Minimising::new(proptest::strategy::Just(s).boxed());
        assert_minimal(&shrunk(&strategy, 5, 4), 5, 4);
    }

    #[test]
    fn a_failure_shrinks_to_the_fewest_requests_and_faulted_calls_that_fail() {
        let faults = strategy::schedule(30, strategy::slow_or_hung(Duration::from_secs(8)));
        let workload = strategy::Workload::new(1..=30, Duration::from_millis(100));
        let scenarios = strategy::scenario(faults, &workload, Duration::from_secs(60));
        assert_minimal(&shrunk(&scenarios, 5, 2), 5, 2);
    }

    /// What `scenarios` shrinks to under [`fails_from`]`(requests, faulted)`.
    fn shrunk(
        scenarios: &impl Strategy<Value = Scenario>,
        requests: usize,
        faulted: usize,
    ) -> Scenario {
        let mut runner = TestRunner::new(Config {
            failure_persistence: None,
            ..Config::default()
        });
        match runner.run(scenarios, fails_from(requests, faulted)) {
            Err(TestError::Fail(_, shrunk)) => shrunk,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// Exactly `requests` requests and `faulted` call slots, each faulted,
    /// nothing after.
    fn assert_minimal(shrunk: &Scenario, requests: usize, faulted: usize) {
        assert_eq!(shrunk.requests.len(), requests, "{shrunk:?}");
        assert_eq!(
            shrunk.calls.len(),
            faulted,
            "no slot beyond the faulted: {shrunk:?}"
        );
        assert!(shrunk.calls.iter().all(|c| !c.is_empty()), "{shrunk:?}");
        assert!(shrunk.then.is_empty(), "{shrunk:?}");
    }

    #[test]
    fn the_edits_of_a_scenario_are_each_smaller_by_one_cut() {
        let mut s = Scenario::new(Duration::from_secs(1));
        s.requests = vec![EdgeRequest::at(Duration::ZERO); 4];
        s.calls = vec![vec![strategy::error(503)], vec![]];
        let edits = smaller(&s);
        assert!(edits.iter().all(|e| e != &s));
        // Halves, then each request, then half the calls, then each call
        // slot (and the faulted one's faults).
        assert_eq!(edits.len(), 2 + 4 + 1 + 2 + 1, "{edits:?}");
        assert!(edits.iter().any(|e| e.requests.len() == 2));
        assert!(edits.iter().any(|e| e.calls == vec![vec![], vec![]]));
    }
}
