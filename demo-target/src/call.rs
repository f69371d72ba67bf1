//! Calling a dependency: a tower stack per dependency and profile.
//!
//! - naive: tower's `Retry` (three attempts, at once) around tower's
//!   `Timeout` ([`NAIVE_CALL_TIMEOUT`]) around the HTTP call;
//! - hardened: tower's `Retry` (at most [`HARDENED_ATTEMPTS`], equal-jittered
//!   exponential backoff, never past the request's deadline) around the
//!   circuit breaker around the HTTP call, whose timeout is half the budget
//!   left (at most [`CALL_TIMEOUT_CAP`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tower::retry::{Policy, RetryLayer};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use crate::breaker::{BreakerLayer, BreakerOpen, FAILURES, RESET};
use crate::{Profile, DEADLINE_HEADER, HARDENED_ATTEMPTS, NAIVE_ATTEMPTS, NAIVE_CALL_TIMEOUT};

/// The longest a hardened call waits for one attempt.
pub(crate) const CALL_TIMEOUT_CAP: Duration = Duration::from_secs(1);
/// Below this much budget left, a hardened call is not made at all.
const MIN_USEFUL_BUDGET: Duration = Duration::from_millis(20);
/// The hardened backoff: retry n waits between half and all of
/// `min(BACKOFF_MAX, BACKOFF_BASE × 2^(n-1))`.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// See [`BACKOFF_BASE`].
pub(crate) const BACKOFF_MAX: Duration = Duration::from_millis(400);

/// The shop's HTTP client: hyper-util's, over TCP or over any connector
/// (the simulation's in-process pipes).
#[derive(Clone)]
pub(crate) struct HttpClient(
    BoxCloneSyncService<Request<Full<Bytes>>, Response<Incoming>, BoxError>,
);

impl HttpClient {
    pub(crate) fn new<C>(client: Client<C, Full<Bytes>>) -> Self
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        HttpClient(BoxCloneSyncService::new(client.map_err(BoxError::from)))
    }

    pub(crate) async fn request(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, BoxError> {
        self.0.clone().oneshot(request).await
    }
}

/// The edge request's ids, passed on to every call it causes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Correlation {
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) traceparent: Option<HeaderValue>,
}

impl Correlation {
    pub(crate) fn of(headers: &http::HeaderMap) -> Self {
        Correlation {
            request_id: headers.get("x-faultline-request").cloned(),
            traceparent: headers.get("traceparent").cloned(),
        }
    }
}

/// One call to a dependency.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) correlation: Correlation,
    pub(crate) idempotency_key: Option<HeaderValue>,
    /// The hardened request's deadline.
    pub(crate) deadline: Option<Instant>,
    /// 1 for the first try.
    pub(crate) attempt: u32,
}

/// The dependency answered with a failure (5xx or 429).
#[derive(Debug, thiserror::Error)]
#[error("the dependency answered {0}")]
pub(crate) struct Failed(pub(crate) StatusCode);

/// Too little of the budget is left to make the call.
#[derive(Debug, thiserror::Error)]
#[error("no time left in the request's budget")]
pub(crate) struct NoBudget;

/// A dependency as the functions see it.
pub(crate) type Dependency = BoxCloneSyncService<Call, StatusCode, BoxError>;

/// The stack for one dependency at `base` in `profile`.
pub(crate) fn dependency(profile: Profile, client: HttpClient, base: String) -> Dependency {
    let http = HttpCall {
        client,
        base,
        budgeted: profile == Profile::Hardened,
    };
    match profile {
        Profile::Naive => BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(RetryLayer::new(Immediately {
                    left: NAIVE_ATTEMPTS - 1,
                }))
                .layer(tower::timeout::TimeoutLayer::new(NAIVE_CALL_TIMEOUT))
                .service(http),
        ),
        Profile::Hardened => BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(RetryLayer::new(WithinBudget {
                    left: HARDENED_ATTEMPTS - 1,
                    retries: 0,
                }))
                .layer(BreakerLayer::new(FAILURES, RESET))
                .service(http),
        ),
    }
}

/// The HTTP exchange itself.
#[derive(Clone)]
struct HttpCall {
    client: HttpClient,
    base: String,
    budgeted: bool,
}

impl Service<Call> for HttpCall {
    type Response = StatusCode;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<StatusCode, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let client = self.client.clone();
        let url = format!("{}{}", self.base, call.path);
        let budgeted = self.budgeted;
        Box::pin(async move {
            let mut request = Request::builder().method(call.method).uri(url);
            let headers = request.headers_mut().ok_or("bad request")?;
            if let Some(id) = call.correlation.request_id {
                headers.insert("x-faultline-request", id);
            }
            if let Some(parent) = call.correlation.traceparent {
                headers.insert("traceparent", parent);
            }
            headers.insert("x-faultline-attempt", HeaderValue::from(call.attempt));
            if let Some(key) = call.idempotency_key {
                headers.insert("idempotency-key", key);
            }
            let limit = match (budgeted, call.deadline) {
                (true, Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left < MIN_USEFUL_BUDGET {
                        return Err(NoBudget.into());
                    }
                    let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                    headers.insert(DEADLINE_HEADER, HeaderValue::from(millis));
                    Some((left / 2).min(CALL_TIMEOUT_CAP))
                }
                _ => None,
            };
            let request = request.body(Full::new(Bytes::new()))?;
            let exchange = async {
                let response = client.request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    return Err(BoxError::from(Failed(status)));
                }
                Ok(status)
            };
            match limit {
                Some(limit) => tokio::time::timeout(limit, exchange)
                    .await
                    .map_err(|_| BoxError::from(tower::timeout::error::Elapsed::new()))?,
                None => exchange.await,
            }
        })
    }
}

/// Naive: retry any failure at once, while attempts are left.
#[derive(Clone)]
struct Immediately {
    left: u32,
}

impl Policy<Call, StatusCode, BoxError> for Immediately {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        call: &mut Call,
        result: &mut Result<StatusCode, BoxError>,
    ) -> Option<Self::Future> {
        if result.is_ok() || self.left == 0 {
            return None;
        }
        self.left -= 1;
        call.attempt += 1;
        Some(std::future::ready(()))
    }

    fn clone_request(&mut self, call: &Call) -> Option<Call> {
        Some(call.clone())
    }
}

/// Hardened: retry a failure after an equal-jittered exponential backoff,
/// never into an open breaker and never when the wait would leave too
/// little of the budget.
#[derive(Clone)]
struct WithinBudget {
    left: u32,
    retries: u32,
}

/// Retry `n` (from 1) of the request `id` waits between half and all of its envelope.
pub(crate) fn backoff(n: u32, id: Option<&HeaderValue>) -> Duration {
    let envelope = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)))
        .min(BACKOFF_MAX);
    envelope / 2 + envelope.mul_f64(jitter(n, id))
}

/// 0 to 0.5, drawn afresh for each wait of each request: no random state is
/// shared between requests, so requests that failed together do not retry
/// together. Seeded by the request's id where it has one, so that a replay
/// of the same requests waits the same (the simulation checks it does).
pub(crate) fn jitter(n: u32, id: Option<&HeaderValue>) -> f64 {
    match id {
        Some(id) => {
            let seed = id
                .as_bytes()
                .iter()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
            StdRng::seed_from_u64(seed ^ u64::from(n)).gen_range(0.0..0.5)
        }
        None => rand::thread_rng().gen_range(0.0..0.5),
    }
}

impl Policy<Call, StatusCode, BoxError> for WithinBudget {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        call: &mut Call,
        result: &mut Result<StatusCode, BoxError>,
    ) -> Option<Self::Future> {
        let error = result.as_ref().err()?;
        if self.left == 0 || error.is::<BreakerOpen>() || error.is::<NoBudget>() {
            return None;
        }
        self.retries += 1;
        let wait = backoff(self.retries, call.correlation.request_id.as_ref());
        if let Some(deadline) = call.deadline {
            if Instant::now() + wait + MIN_USEFUL_BUDGET * 2 > deadline {
                return None;
            }
        }
        self.left -= 1;
        call.attempt += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, call: &Call) -> Option<Call> {
        Some(call.clone())
    }
}

/// Calls `dependency` once (with its retries), as the functions do.
pub(crate) async fn call(dependency: &Dependency, call: Call) -> Result<StatusCode, BoxError> {
    dependency.clone().oneshot(call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_in_its_equal_jitter_envelope() {
        for n in 1..=5 {
            let envelope = (BACKOFF_BASE * 2u32.pow(n - 1)).min(BACKOFF_MAX);
            for i in 0..100 {
                let id = HeaderValue::from(i);
                for wait in [backoff(n, None), backoff(n, Some(&id))] {
                    assert!(wait >= envelope / 2 && wait <= envelope, "{n}: {wait:?}");
                }
            }
        }
    }

    #[test]
    fn a_request_id_fixes_its_waits_and_different_ids_wait_differently() {
        let (a, b) = (HeaderValue::from_static("a"), HeaderValue::from_static("b"));
        assert_eq!(backoff(2, Some(&a)), backoff(2, Some(&a)));
        let waits: std::collections::BTreeSet<_> = (0..20)
            .map(|i| backoff(1, Some(&HeaderValue::from(i))))
            .collect();
        assert!(waits.len() > 10, "{waits:?}");
        assert_ne!(backoff(1, Some(&a)), backoff(1, Some(&b)));
    }
}
