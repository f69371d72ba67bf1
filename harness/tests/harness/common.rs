//! A small checkout service written for the tests: every request calls the
//! `payments` dependency, with whichever defences it is given.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The defences a checkout service may have.
#[derive(Debug, Clone, Copy, Default)]
pub struct Defences {
    /// At most this many payments calls at once; a fast 429 with Retry-After beyond.
    pub bulkhead: Option<usize>,
    /// Immediate retries after a failed payments call.
    pub retries: u32,
    /// A timeout on each payments call.
    pub timeout: Option<Duration>,
    /// A circuit breaker: open after this many failures in a row, for this long,
    /// then one probe at a time.
    pub breaker: Option<(u32, Duration)>,
}

/// A breaker's state: failures in a row, and until when it is open.
#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<tokio::time::Instant>,
}

#[derive(Clone)]
struct Checkout {
    client: Client<HttpConnector, Full<Bytes>>,
    payments: String,
    permits: Option<Arc<Semaphore>>,
    breaker: Arc<std::sync::Mutex<BreakerState>>,
    defences: Defences,
}

/// Starts the service on a loopback port; it calls `payments` (a URL).
pub async fn checkout_service(payments: String, defences: Defences) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let checkout = Checkout {
        client: Client::builder(TokioExecutor::new()).build_http(),
        payments,
        permits: defences.bulkhead.map(|n| Arc::new(Semaphore::new(n))),
        breaker: Arc::default(),
        defences,
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let checkout = checkout.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let checkout = checkout.clone();
                    async move { Ok::<_, Infallible>(checkout.handle(request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

impl Checkout {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let _permit = match &self.permits {
            Some(permits) => match permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    // Shed at once, and say when to come back.
                    let mut shed = status(StatusCode::TOO_MANY_REQUESTS);
                    shed.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static("1"),
                    );
                    return shed;
                }
            },
            None => None,
        };
        if !self.breaker_allows() {
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        let id = request.headers().get("x-faultline-request").cloned();
        let mut last = StatusCode::BAD_GATEWAY;
        for _attempt in 0..=self.defences.retries {
            let mut call = Request::post(format!("{}/charge", self.payments));
            if let Some(id) = &id {
                call = call.header("x-faultline-request", id);
            }
            let exchange = async {
                let response = self
                    .client
                    .request(call.body(Full::new(Bytes::new())).unwrap())
                    .await
                    .ok()?;
                let code = response.status();
                response.into_body().collect().await.ok()?;
                Some(code)
            };
            let answer = match self.defences.timeout {
                Some(limit) => tokio::time::timeout(limit, exchange).await.ok().flatten(),
                None => exchange.await,
            };
            self.breaker_records(answer.is_some_and(|code| code.is_success()));
            match answer {
                Some(code) if code.is_success() => return status(code),
                Some(code) => last = code,
                None => last = StatusCode::GATEWAY_TIMEOUT,
            }
        }
        status(last)
    }

    /// Closed: yes. Open: no, until the reset interval has passed; then one
    /// probe, and open again for another interval until it reports.
    fn breaker_allows(&self) -> bool {
        let Some((_, reset)) = self.defences.breaker else {
            return true;
        };
        let mut state = self.breaker.lock().unwrap();
        match state.open_until {
            Some(until) if tokio::time::Instant::now() < until => false,
            Some(_) => {
                state.open_until = Some(tokio::time::Instant::now() + reset);
                true
            }
            None => true,
        }
    }

    fn breaker_records(&self, succeeded: bool) {
        let Some((threshold, reset)) = self.defences.breaker else {
            return;
        };
        let mut state = self.breaker.lock().unwrap();
        if succeeded {
            *state = BreakerState::default();
        } else {
            state.failures += 1;
            if state.failures >= threshold && state.open_until.is_none() {
                state.open_until = Some(tokio::time::Instant::now() + reset);
            }
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
