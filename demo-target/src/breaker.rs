//! A circuit breaker as a tower layer (tower has none). Closed, it passes
//! calls and counts failures in a row; after `failures` it opens for
//! `reset`, refusing calls at once; then it lets one probe through
//! (half-open) and closes if the probe succeeds, else opens for another
//! interval. The demo's is the seed's breaker: [`FAILURES`] failures, 30 s
//! open (scaled to [`RESET`]), one probe.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Failures in a row that open the demo's breakers.
pub const FAILURES: u32 = 5;
/// How long the demo's breakers stay open before a probe.
pub const RESET: Duration = Duration::from_secs(1);

/// Refused by an open breaker: no call was made.
#[derive(Debug, thiserror::Error)]
#[error("the circuit breaker is open")]
pub struct BreakerOpen;

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

/// One breaker, shared by every call through the services it wraps.
///
/// ```
/// use faultline_demo::breaker::BreakerLayer;
/// let layer = BreakerLayer::new(5, std::time::Duration::from_secs(1));
/// let service = tower::ServiceBuilder::new()
///     .layer(layer)
///     .service(tower::service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }));
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    state: Arc<Mutex<State>>,
    failures: u32,
    reset: Duration,
}

impl BreakerLayer {
    /// Opens after `failures` in a row, for `reset`, then probes once.
    pub fn new(failures: u32, reset: Duration) -> Self {
        BreakerLayer {
            state: Arc::default(),
            failures,
            reset,
        }
    }

    /// Closed: yes. Open: no until the interval has passed; then one probe,
    /// with the breaker open for another interval until the probe reports.
    fn allows(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.open_until {
            Some(until) if now < until => false,
            Some(_) => {
                state.open_until = Some(now + self.reset);
                true
            }
            None => true,
        }
    }

    fn record(&self, succeeded: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if succeeded {
            *state = State::default();
        } else {
            state.failures = state.failures.saturating_add(1);
            if state.failures >= self.failures && state.open_until.is_none() {
                state.open_until = Some(Instant::now() + self.reset);
            }
        }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = Breaker<S>;

    fn layer(&self, inner: S) -> Breaker<S> {
        Breaker {
            inner,
            breaker: self.clone(),
        }
    }
}

/// A service behind a breaker.
#[derive(Debug, Clone)]
pub struct Breaker<S> {
    inner: S,
    breaker: BreakerLayer,
}

impl<S, R> Service<R> for Breaker<S>
where
    S: Service<R> + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if !self.breaker.allows() {
            return Box::pin(std::future::ready(Err(BreakerOpen.into())));
        }
        let breaker = self.breaker.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            breaker.record(result.is_ok());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_five_failures_then_probes_once_per_interval() {
        let breaker = BreakerLayer::new(FAILURES, RESET);
        for _ in 0..FAILURES {
            assert!(breaker.allows());
            breaker.record(false);
        }
        assert!(!breaker.allows(), "open");
        tokio::time::advance(RESET).await;
        assert!(breaker.allows(), "the probe");
        assert!(!breaker.allows(), "one probe at a time");
        breaker.record(false);
        tokio::time::advance(RESET).await;
        assert!(breaker.allows());
        breaker.record(true);
        assert!(breaker.allows() && breaker.allows(), "closed again");
    }
}
