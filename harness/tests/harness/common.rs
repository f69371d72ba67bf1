//! Helpers shared by the harness's integration tests.
//!
//! - A small checkout service: every request calls the `payments` dependency
//!   through a tower stack holding whichever defences it is given. tower's
//!   own middleware where it has one (ConcurrencyLimit, LoadShed, Retry with
//!   its exponential backoff and retry budget, Timeout); tower has no circuit
//!   breaker, so the demo shop's is used.
//! - The `faultline` binary as a user runs it: [`faultline`] runs it to its
//!   end and returns its [`Outcome`]; [`write_suite`] writes a suite file for
//!   it in this process's scratch folder; [`spawn_reporting`] starts a
//!   long-lived one and reads its start line.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::rng::HasherRng;
use tower::util::{BoxCloneService, ServiceExt};
use tower::{BoxError, Service, ServiceBuilder};

use faultline_demo::breaker::{BreakerLayer, BreakerOpen};

/// The defences a checkout service may have.
#[derive(Debug, Clone, Copy, Default)]
pub struct Defences {
    /// At most this many payments calls at once (tower's ConcurrencyLimit);
    /// calls beyond wait for a permit, unless `shed`.
    pub bulkhead: Option<usize>,
    /// With a bulkhead: answer at once with 429 and Retry-After when it is
    /// full (tower's LoadShed) rather than wait.
    pub shed: bool,
    /// Retries after a failed payments call (tower's Retry).
    pub retries: Retries,
    /// A timeout on each payments call (tower's Timeout).
    pub timeout: Option<Duration>,
    /// A circuit breaker: open after this many failures in a row, for this long,
    /// then one probe at a time.
    pub breaker: Option<(u32, Duration)>,
}

/// How failed payments calls are retried.
#[derive(Debug, Clone, Copy, Default)]
pub enum Retries {
    /// Not at all.
    #[default]
    None,
    /// This many times, at once: the retry storm.
    Immediate(u32),
    /// Up to this many times, after tower's exponential backoff (`min`
    /// doubling to `max`, plus up to as much again at random), and only
    /// while tower's retry budget (20% of requests over the last second, and
    /// 1 a second besides) allows.
    Backoff {
        /// Retries at most.
        times: u32,
        /// The first wait, before jitter.
        min: Duration,
        /// The longest wait, before jitter.
        max: Duration,
        /// Whether each request's backoff draws from a random generator of
        /// its own. Without it, the `ExponentialBackoff` is made once and
        /// cloned with the policy for every request, random state and all,
        /// so every request waits the same "random" time: requests that
        /// failed together retry together. An easy mistake with tower's
        /// Retry, and one the `backoff` property catches.
        fresh_jitter: bool,
    },
}

/// What the checkout handler calls: the correlation id to pass on, in;
/// payments' status, out.
type PaymentsStack = BoxCloneService<Option<HeaderValue>, StatusCode, BoxError>;

/// Starts the service on a loopback port; it calls `payments` (a URL).
pub async fn checkout_service(payments: String, defences: Defences) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stack = payments_stack(payments, defences);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let stack = stack.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let stack = stack.clone();
                    async move { Ok::<_, Infallible>(checkout(stack, request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn payments_stack(url: String, defences: Defences) -> PaymentsStack {
    let call = Payments {
        client: Client::builder(TokioExecutor::new()).build_http(),
        url,
    };
    let retry = RetryPolicy::new(defences.retries);
    let stack = ServiceBuilder::new()
        .option_layer(defences.shed.then(tower::load_shed::LoadShedLayer::new))
        .option_layer(
            defences
                .bulkhead
                .map(tower::limit::ConcurrencyLimitLayer::new),
        )
        .layer(tower::retry::RetryLayer::new(retry))
        .option_layer(
            defences
                .breaker
                .map(|(failures, reset)| BreakerLayer::new(failures, reset)),
        )
        .option_layer(defences.timeout.map(tower::timeout::TimeoutLayer::new))
        .service(call)
        .map_err(BoxError::from);
    BoxCloneService::new(stack)
}

/// The edge: checkout answers with payments' status, 429 with Retry-After
/// when shed, 503 when the breaker is open, 504 when payments timed out.
async fn checkout(stack: PaymentsStack, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let id = request.headers().get("x-faultline-request").cloned();
    match stack.oneshot(id).await {
        Ok(code) => status(code),
        Err(error) if error.is::<tower::load_shed::error::Overloaded>() => {
            let mut shed = status(StatusCode::TOO_MANY_REQUESTS);
            shed.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            shed
        }
        Err(error) if error.is::<BreakerOpen>() => status(StatusCode::SERVICE_UNAVAILABLE),
        Err(error) if error.is::<tower::timeout::error::Elapsed>() => {
            status(StatusCode::GATEWAY_TIMEOUT)
        }
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// One call to payments, carrying the edge request's correlation id.
#[derive(Clone)]
struct Payments {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
}

/// A 5xx from payments, as an error so the retry policy and breaker see it.
#[derive(Debug, thiserror::Error)]
#[error("payments answered {0}")]
struct Failed(StatusCode);

impl Service<Option<HeaderValue>> for Payments {
    type Response = StatusCode;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<StatusCode, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, id: Option<HeaderValue>) -> Self::Future {
        let mut call = Request::post(format!("{}/charge", self.url));
        if let Some(id) = id {
            call = call.header("x-faultline-request", id);
        }
        let request = call.body(Full::new(Bytes::new()));
        let client = self.client.clone();
        Box::pin(async move {
            let response = client.request(request?).await?;
            let code = response.status();
            response.into_body().collect().await?;
            if code.is_server_error() {
                return Err(Failed(code).into());
            }
            Ok(code)
        })
    }
}

/// tower's Retry policy for [`Retries`]: never past the breaker, and with
/// backoff, only while the budget allows. tower clones it for each request.
struct RetryPolicy {
    /// Whether the call just made was the request's first (each request
    /// deposits into the budget once, as finagle's and tower's budgets mean).
    first: bool,
    left: u32,
    backoff: Option<ExponentialBackoff>,
    /// Set to make each clone's backoff anew, with a fresh random generator.
    fresh: Option<(Duration, Duration)>,
    budget: Option<Arc<TpsBudget>>,
}

fn backoff(min: Duration, max: Duration) -> Option<ExponentialBackoff> {
    ExponentialBackoffMaker::new(min, max, 1.0, HasherRng::default())
        .ok()
        .map(|mut maker| maker.make_backoff())
}

impl Clone for RetryPolicy {
    fn clone(&self) -> Self {
        RetryPolicy {
            first: self.first,
            left: self.left,
            backoff: match self.fresh {
                Some((min, max)) => backoff(min, max),
                None => self.backoff.clone(),
            },
            fresh: self.fresh,
            budget: self.budget.clone(),
        }
    }
}

impl RetryPolicy {
    fn new(retries: Retries) -> Self {
        match retries {
            Retries::None => RetryPolicy {
                first: true,
                left: 0,
                backoff: None,
                fresh: None,
                budget: None,
            },
            Retries::Immediate(times) => RetryPolicy {
                first: true,
                left: times,
                backoff: None,
                fresh: None,
                budget: None,
            },
            Retries::Backoff {
                times,
                min,
                max,
                fresh_jitter,
            } => RetryPolicy {
                first: true,
                left: times,
                backoff: backoff(min, max),
                fresh: fresh_jitter.then_some((min, max)),
                budget: Some(Arc::new(TpsBudget::new(Duration::from_secs(1), 1, 0.2))),
            },
        }
    }
}

impl tower::retry::Policy<Option<HeaderValue>, StatusCode, BoxError> for RetryPolicy {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        _: &mut Option<HeaderValue>,
        result: &mut Result<StatusCode, BoxError>,
    ) -> Option<Self::Future> {
        if std::mem::take(&mut self.first) {
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
        }
        match result {
            Ok(_) => None,
            Err(error) if error.is::<BreakerOpen>() || self.left == 0 => None,
            Err(_) => {
                if let Some(budget) = &self.budget {
                    if !budget.withdraw() {
                        return None;
                    }
                }
                self.left -= 1;
                match &mut self.backoff {
                    Some(backoff) => Some(Box::pin(backoff.next_backoff())),
                    None => Some(Box::pin(std::future::ready(()))),
                }
            }
        }
    }

    fn clone_request(&mut self, id: &Option<HeaderValue>) -> Option<Option<HeaderValue>> {
        Some(id.clone())
    }
}

/// A target that answers every request with `status` after `delay`.
pub async fn answering(status: u16, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    *response.status_mut() = StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The `faultline` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_faultline");

/// How a `faultline` that ran to its end ended: its exit code and what it
/// printed.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// Everything it printed: standard output, then standard error.
    pub fn printed(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Standard output as JSON: the report, with `--output json`.
    ///
    /// # Panics
    ///
    /// When standard output is not JSON.
    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "standard output is not a JSON report ({e}):\n{}",
                self.printed()
            )
        })
    }
}

impl From<std::process::Output> for Outcome {
    fn from(output: std::process::Output) -> Self {
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `faultline` with `args` to its end.
pub async fn faultline(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Outcome {
    faultline_with(args, std::iter::empty::<(&str, &str)>()).await
}

/// Runs `faultline` with `args` and the environment variables `envs` to its end.
pub async fn faultline_with(
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    envs: impl IntoIterator<Item = (impl AsRef<OsStr>, impl AsRef<OsStr>)>,
) -> Outcome {
    tokio::process::Command::new(BIN)
        .args(args)
        .envs(envs)
        .output()
        .await
        .unwrap()
        .into()
}

/// This test process's scratch folder, `faultline-tests-<pid>` in the
/// temporary directory.
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("faultline-tests-{}", std::process::id()))
}

/// A fresh, empty folder `name` in this process's scratch folder: each test
/// that needs one names its own.
pub fn scratch(name: &str) -> PathBuf {
    let dir = scratch_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes suite `text` to `<name>.toml` in this process's scratch folder, and
/// returns its path. Names are the tests' to keep apart; the file name is
/// the suite's name when the text gives none.
pub fn write_suite(name: &str, text: &str) -> PathBuf {
    let dir = scratch_root();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The verdict in the first suite of `report` whose property starts with
/// `starts_with`.
pub fn verdict<'a>(report: &'a serde_json::Value, starts_with: &str) -> &'a serde_json::Value {
    report["suites"][0]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["property"].as_str().unwrap().starts_with(starts_with))
        .unwrap_or_else(|| panic!("no verdict {starts_with} in {report}"))
}

/// Spawns `command` with its output piped, and reads the JSON line it
/// prints first (its addresses).
pub async fn spawn_reporting(
    command: &mut tokio::process::Command,
) -> (tokio::process::Child, serde_json::Value) {
    use tokio::io::AsyncBufReadExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

/// `faultline serve` with `config` (which must have a `payments`
/// dependency), its control API on a free port: the process, the control
/// address and payments' URL.
pub async fn standalone_fault_server(
    dir: &Path,
    config: &str,
) -> (tokio::process::Child, String, String) {
    let path = dir.join("fault-server.toml");
    std::fs::write(&path, config).unwrap();
    let (child, started) = spawn_reporting(
        tokio::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--control", "127.0.0.1:0"]),
    )
    .await;
    let control = started["control"].as_str().unwrap().to_owned();
    let payments = format!(
        "http://{}",
        started["dependencies"]["payments"].as_str().unwrap()
    );
    (child, control, payments)
}
