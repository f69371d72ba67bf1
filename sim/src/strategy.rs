//! proptest strategies for scenarios. Every choice is ordered from benign to
//! severe and every number shrinks toward the benign end (no fault, fewer
//! calls failing, fewer requests, no gap, no cancellation), so a failure
//! shrinks to a short, readable schedule. No seed hides in a scenario: what
//! fails is the JSON you see.

use std::ops::RangeInclusive;
use std::time::Duration;

use fault_server::Fault;
use proptest::prelude::*;

use crate::minimise::Minimising;
use crate::{EdgeRequest, Scenario};

/// The faults one call gets, benign first: none, a delay of up to
/// `max_delay`, a 503, a 429, a hang (until the caller gives up), a reset, a close.
///
/// ```
/// use std::time::Duration;
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let mut runner = TestRunner::deterministic();
/// let faults = faultline_sim::strategy::call_faults(Duration::from_secs(8))
///     .new_tree(&mut runner).unwrap().current();
/// assert!(faults.len() <= 1);
/// ```
pub fn call_faults(max_delay: Duration) -> BoxedStrategy<Vec<Fault>> {
    prop_oneof![
        Just(Vec::new()),
        delay(max_delay).prop_map(|d| vec![latency(d)]),
        Just(vec![error(503)]),
        Just(vec![error(429)]),
        Just(vec![Fault::hang().into()]),
        Just(vec![Fault::reset().into()]),
        Just(vec![Fault::close().into()]),
    ]
    .boxed()
}

/// The faults one call gets when it fails fast: none, a 503, a 429, a reset.
pub fn fast_failures() -> BoxedStrategy<Vec<Fault>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec![error(503)]),
        Just(vec![error(429)]),
        Just(vec![Fault::reset().into()]),
    ]
    .boxed()
}

/// The faults one call gets when its dependency is slow or gone: none, a
/// delay of up to `max_delay`, a hang.
pub fn slow_or_hung(max_delay: Duration) -> BoxedStrategy<Vec<Fault>> {
    prop_oneof![
        Just(Vec::new()),
        delay(max_delay).prop_map(|d| vec![latency(d)]),
        Just(vec![Fault::hang().into()]),
    ]
    .boxed()
}

/// Up to `calls` calls' faults, each drawn from `each` (independently).
pub fn schedule(
    calls: usize,
    each: impl Strategy<Value = Vec<Fault>> + 'static,
) -> BoxedStrategy<Vec<Vec<Fault>>> {
    proptest::collection::vec(each, 0..=calls).boxed()
}

/// An outage: up to `healthy_before` calls go well, then a run of up to
/// `longest` calls all get the faults `failure` draws, then calls go well
/// again. Shrinks toward no outage, then a short one starting at once.
pub fn outage(
    healthy_before: usize,
    longest: usize,
    failure: impl Strategy<Value = Vec<Fault>> + 'static,
) -> BoxedStrategy<Vec<Vec<Fault>>> {
    (0..=longest, 0..=healthy_before, failure)
        .prop_map(|(length, before, faults)| {
            let mut calls = vec![Vec::new(); before];
            calls.extend(std::iter::repeat_n(faults, length));
            calls
        })
        .boxed()
}

/// The edge workload of a case.
#[derive(Debug, Clone)]
pub struct Workload {
    /// How many requests.
    pub count: RangeInclusive<usize>,
    /// The longest gap between two requests (requests may arrive together).
    pub max_gap: Duration,
    /// Whether and how soon the edge client gives up on a request.
    pub give_up: Option<GiveUp>,
    /// Whether each request carries an `Idempotency-Key` (`order-<n>`).
    pub keyed: bool,
}

impl Workload {
    /// `count` requests, at most `max_gap` apart, never cancelled, without keys.
    pub fn new(count: RangeInclusive<usize>, max_gap: Duration) -> Self {
        Workload {
            count,
            max_gap,
            give_up: None,
            keyed: false,
        }
    }

    /// Lets the edge client give up on some requests, each after a time in
    /// `patience` (shrinks toward giving up on none).
    pub fn cancelling(mut self, patience: RangeInclusive<Duration>) -> Self {
        self.give_up = Some(GiveUp {
            patience,
            always: false,
        });
        self
    }

    /// Has the edge client give up on every request still unanswered after
    /// a time in `patience`, as a client with a timeout does.
    pub fn patience(mut self, patience: RangeInclusive<Duration>) -> Self {
        self.give_up = Some(GiveUp {
            patience,
            always: true,
        });
        self
    }

    /// Gives each request an idempotency key.
    pub fn keyed(mut self) -> Self {
        self.keyed = true;
        self
    }

    /// The strategy: requests in time order, shrinking toward fewer, closer
    /// together and not cancelled.
    pub fn strategy(&self) -> BoxedStrategy<Vec<EdgeRequest>> {
        let give_up = match self.give_up.clone() {
            Some(GiveUp { patience, always }) => {
                let after = (millis(*patience.start())..=millis(*patience.end()))
                    .prop_map(Duration::from_millis);
                if always {
                    after.prop_map(Some).boxed()
                } else {
                    proptest::option::of(after).boxed()
                }
            }
            None => Just(None).boxed(),
        };
        let keyed = self.keyed;
        let one = (0..=millis(self.max_gap), give_up);
        proptest::collection::vec(one, self.count.clone())
            .prop_map(move |drawn| {
                let mut at = Duration::ZERO;
                drawn
                    .into_iter()
                    .enumerate()
                    .map(|(i, (gap, give_up_after))| {
                        at += Duration::from_millis(gap);
                        EdgeRequest {
                            at,
                            key: keyed.then(|| format!("order-{i}")),
                            give_up_after,
                        }
                    })
                    .collect()
            })
            .boxed()
    }
}

/// When the edge client gives up on a request.
#[derive(Debug, Clone)]
pub struct GiveUp {
    /// After how long (shrinks toward the shortest).
    pub patience: RangeInclusive<Duration>,
    /// On every request, or on some (shrinks toward none).
    pub always: bool,
}

/// Whole scenarios: the dependency's schedule, the workload, a horizon.
/// Calls past the schedule get no fault.
///
/// A failing scenario shrinks in two passes: proptest's own (the requests,
/// then the calls' faults, each toward the benign end), then, where that
/// stops, one over the scenario's parts that goes back to them — half the
/// requests, each request, each call's faults, each call's slot, the faults
/// after the schedule — keeping each cut that still fails, until none does.
/// So a bulkhead that lets 5 calls through where 4 may shrinks to 5
/// requests and the 4 calls held long enough to meet, not to the 9 requests
/// proptest's one pass leaves.
pub fn scenario(
    calls: impl Strategy<Value = Vec<Vec<Fault>>> + 'static,
    workload: &Workload,
    horizon: Duration,
) -> BoxedStrategy<Scenario> {
    // The workload first: proptest shrinks a tuple's parts in order and does
    // not go back, and faults can only shrink as far as the requests allow.
    let scenarios = (workload.strategy(), calls)
        .prop_map(move |(requests, calls)| Scenario {
            calls,
            requests,
            ..Scenario::new(horizon)
        })
        .boxed();
    Minimising::new(scenarios).boxed()
}

fn delay(max: Duration) -> impl Strategy<Value = Duration> {
    (1..=millis(max).max(1)).prop_map(Duration::from_millis)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A fixed delay.
pub fn latency(delay: Duration) -> Fault {
    Fault::latency(delay).into()
}

/// An error answer with `status`.
pub fn error(status: u16) -> Fault {
    Fault::error(status).into()
}
