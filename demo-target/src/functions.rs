//! The shop's functions and the gateway in front of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::load_shed::error::Overloaded;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

use crate::breaker::BreakerOpen;
use crate::call::{self, Call, Correlation, Dependency};
use crate::queue::{Job, Queue};
use crate::reserve::{reserve_of, Gauge, RESERVES};
use crate::{Profile, DEADLINE_HEADER, GATEWAY_LIMIT, HARDENED_BUDGET, NAIVE_ATTEMPTS, POOL};

/// The answer a function gives.
pub(crate) type Reply = Response<Full<Bytes>>;

/// A function, what it calls, and how.
struct Function {
    name: &'static str,
    /// The dependency it calls, the method and the path there.
    calls: Option<(&'static str, Method, &'static str)>,
}

const FUNCTIONS: [Function; 5] = [
    Function {
        name: "checkout",
        calls: Some(("payments", Method::POST, "/charge")),
    },
    Function {
        name: "search",
        calls: Some(("catalog", Method::GET, "/search")),
    },
    Function {
        name: "profile",
        calls: Some(("profiles", Method::GET, "/profile")),
    },
    Function {
        name: "webhook",
        calls: None,
    },
    Function {
        name: "crm_sync",
        calls: Some(("crm", Method::POST, "/contacts")),
    },
];

/// One invocation: which function, for which edge request, by when.
#[derive(Clone)]
pub(crate) struct Invocation {
    function: &'static Function,
    correlation: Correlation,
    deadline: Option<Instant>,
}

type Reserved = BoxCloneSyncService<Invocation, Reply, BoxError>;

/// The whole shop.
pub(crate) struct Shop {
    profile: Profile,
    dependencies: BTreeMap<&'static str, Dependency>,
    /// Naive: the one account pool.
    pool: Arc<Semaphore>,
    /// Hardened: each function behind its reserve.
    reserved: BTreeMap<&'static str, Reserved>,
    pub(crate) gauges: BTreeMap<&'static str, Arc<Gauge>>,
    queue: Option<Queue>,
    orders: AtomicU64,
}

impl Shop {
    pub(crate) fn new(
        profile: Profile,
        dependencies: BTreeMap<&'static str, Dependency>,
        queue: Option<Queue>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|shop: &std::sync::Weak<Shop>| {
            let gauges: BTreeMap<_, _> = FUNCTIONS
                .iter()
                .map(|f| (f.name, Arc::new(Gauge::default())))
                .collect();
            let mut reserved = BTreeMap::new();
            if profile == Profile::Hardened {
                for (name, reserve) in RESERVES {
                    let shop = shop.clone();
                    let run = tower::service_fn(move |invocation: Invocation| {
                        let shop = shop.clone();
                        async move {
                            let Some(shop) = shop.upgrade() else {
                                return Ok::<_, BoxError>(status(StatusCode::SERVICE_UNAVAILABLE));
                            };
                            Ok(shop.invoke(invocation).await)
                        }
                    });
                    let service = ServiceBuilder::new()
                        .load_shed()
                        .concurrency_limit(reserve)
                        .service(run);
                    reserved.insert(name, BoxCloneSyncService::new(service));
                }
            }
            Shop {
                profile,
                dependencies,
                pool: Arc::new(Semaphore::new(POOL)),
                reserved,
                gauges,
                queue,
                orders: AtomicU64::new(0),
            }
        })
    }

    /// Answers one edge request.
    pub(crate) async fn handle(self: &Arc<Self>, path: &str, headers: &http::HeaderMap) -> Reply {
        let Some(function) = FUNCTIONS
            .iter()
            .find(|f| path.trim_start_matches('/') == f.name)
        else {
            return status(StatusCode::NOT_FOUND);
        };
        let correlation = Correlation::of(headers);
        match self.profile {
            Profile::Naive => self.naive_gateway(function, correlation).await,
            Profile::Hardened => {
                let budget = headers
                    .get(DEADLINE_HEADER)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .map_or(HARDENED_BUDGET, |ms| {
                        Duration::from_millis(ms).min(HARDENED_BUDGET)
                    });
                let invocation = Invocation {
                    function,
                    correlation,
                    deadline: Some(Instant::now() + budget),
                };
                let Some(reserved) = self.reserved.get(function.name) else {
                    return status(StatusCode::NOT_FOUND);
                };
                match reserved.clone().oneshot(invocation).await {
                    Ok(reply) => reply,
                    Err(error) if error.is::<Overloaded>() => shed(),
                    Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
        }
    }

    /// The naive gateway: takes a slot from the shared pool (429 when there
    /// is none, as the platform throttles), invokes the function in a task
    /// of its own, and gives up after [`GATEWAY_LIMIT`] with 504 while the
    /// function runs on, still holding its slot. Throttles and failures are
    /// tried again at once, up to [`NAIVE_ATTEMPTS`] in all.
    async fn naive_gateway(
        self: &Arc<Self>,
        function: &'static Function,
        correlation: Correlation,
    ) -> Reply {
        let gives_up = Instant::now() + GATEWAY_LIMIT;
        let mut last = StatusCode::TOO_MANY_REQUESTS;
        for _ in 0..NAIVE_ATTEMPTS {
            let Ok(slot) = Arc::clone(&self.pool).try_acquire_owned() else {
                last = StatusCode::TOO_MANY_REQUESTS;
                continue;
            };
            let (done, answer) = tokio::sync::oneshot::channel();
            let (shop, invocation) = (
                Arc::clone(self),
                Invocation {
                    function,
                    correlation: correlation.clone(),
                    deadline: None,
                },
            );
            tokio::spawn(async move {
                let reply = shop.invoke(invocation).await;
                drop(slot);
                let _ = done.send(reply);
            });
            match tokio::time::timeout_at(gives_up, answer).await {
                Err(_) => return status(StatusCode::GATEWAY_TIMEOUT),
                Ok(Ok(reply)) if reply.status().is_server_error() => last = reply.status(),
                Ok(Ok(reply)) => return reply,
                Ok(Err(_)) => last = StatusCode::BAD_GATEWAY,
            }
        }
        status(last)
    }

    /// Runs the function.
    async fn invoke(&self, invocation: Invocation) -> Reply {
        let function = invocation.function;
        let _running = self.gauges.get(function.name).map(Gauge::enter);
        let Some((dependency, method, path)) = &function.calls else {
            // A webhook: accept the event (a moment's work).
            tokio::time::sleep(Duration::from_millis(2)).await;
            return status(StatusCode::OK);
        };
        let order = self.orders.fetch_add(1, Ordering::Relaxed);
        let key = invocation
            .correlation
            .request_id
            .as_ref()
            .and_then(|id| HeaderValue::from_str(&format!("order-{}", id.to_str().ok()?)).ok())
            .unwrap_or_else(|| HeaderValue::from(order));
        if let (Some(queue), "crm_sync") = (&self.queue, function.name) {
            let job = Job {
                key: key.clone(),
                correlation: invocation.correlation,
            };
            if !queue.offer(job) {
                return shed();
            }
            let mut accepted = status(StatusCode::ACCEPTED);
            *accepted.body_mut() = Full::new(Bytes::from(format!(
                "{{\"order_id\": \"{}\"}}",
                key.to_str().unwrap_or_default()
            )));
            return accepted;
        }
        let Some(stack) = self.dependencies.get(dependency) else {
            return status(StatusCode::BAD_GATEWAY);
        };
        let call = Call {
            method: method.clone(),
            path,
            correlation: invocation.correlation,
            idempotency_key: (function.name == "crm_sync").then_some(key),
            deadline: invocation.deadline,
            attempt: 1,
        };
        match call::call(stack, call).await {
            Ok(_) => status(StatusCode::OK),
            // Open: refused like a shed request, with when to come back.
            Err(error) if error.is::<BreakerOpen>() => shed(),
            Err(error)
                if error.is::<tower::timeout::error::Elapsed>() || error.is::<call::NoBudget>() =>
            {
                status(StatusCode::GATEWAY_TIMEOUT)
            }
            Err(_) => status(StatusCode::BAD_GATEWAY),
        }
    }
}

/// What each function has reserved, for the alert watch.
pub(crate) fn reserves(shop: &Shop) -> Vec<(&'static str, usize, Arc<Gauge>)> {
    shop.gauges
        .iter()
        .map(|(name, gauge)| (*name, reserve_of(name), Arc::clone(gauge)))
        .collect()
}

fn status(code: StatusCode) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = code;
    reply
}

/// 503 with Retry-After: shed at once rather than start work that cannot finish.
fn shed() -> Reply {
    let mut reply = status(StatusCode::SERVICE_UNAVAILABLE);
    reply
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    reply
}
