//! Where a run stands, published as it goes ([`Progress`]).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fault_control::FaultControl;
use super::plan::PhasePlan;
use crate::load::LiveCounts;

/// Where a run stands: published four times a second to whoever watches
/// (`faultline run` draws it as a line on a terminal).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The suite running.
    pub suite: String,
    /// The phase under way.
    pub phase: String,
    /// How long it has left.
    pub left: Duration,
    /// Requests sent per second, over the last quarter second.
    pub sent_per_s: u64,
    /// Requests ended per second, over the last quarter second.
    pub ended_per_s: u64,
    /// Requests ended so far that did not succeed.
    pub errors: u64,
    /// Calls in flight at each dependency.
    pub in_flight: Vec<(String, u64)>,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held: Vec<String> = self
            .in_flight
            .iter()
            .map(|(dependency, n)| format!("{dependency} {n}"))
            .collect();
        write!(
            f,
            "{}: {} ({:.0}s left) | sent {}/s, done {}/s, errors {} | in flight: {}",
            self.suite,
            self.phase,
            self.left.as_secs_f64().ceil(),
            self.sent_per_s,
            self.ended_per_s,
            self.errors,
            held.join(", ")
        )
    }
}

/// Publishes where the run stands on `watch` four times a second, until dropped.
pub(super) async fn publish_progress(
    watch: Option<&watch::Sender<Progress>>,
    server: FaultControl<'_>,
    dependencies: &[String],
    phases: &[PhasePlan],
    starts: &[Instant],
    live: &LiveCounts,
) -> std::convert::Infallible {
    let Some(watch) = watch else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let (mut last_sent, mut last_ended) = (0, 0);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let current = starts.partition_point(|s| *s <= now).saturating_sub(1);
        let (name, left) = phases.get(current).map_or(("", Duration::ZERO), |p| {
            let end = starts[current] + p.duration;
            (p.name.as_str(), end.saturating_duration_since(now))
        });
        let (sent, ended, ok) = live.totals();
        let mut in_flight = Vec::with_capacity(dependencies.len());
        for dependency in dependencies {
            if let Ok(n) = server.in_flight(dependency).await {
                in_flight.push((dependency.clone(), n));
            }
        }
        watch.send_modify(|progress| {
            *progress = Progress {
                suite: std::mem::take(&mut progress.suite),
                phase: name.to_owned(),
                left,
                sent_per_s: (sent - last_sent) * 4,
                ended_per_s: (ended - last_ended) * 4,
                errors: ended - ok,
                in_flight,
            }
        });
        (last_sent, last_ended) = (sent, ended);
    }
}
