//! A fault server in another process (`fault-server --config ...`, perhaps
//! beside the system under test), driven through its control API: what the
//! timeline does to an in-process server, over HTTP.
//!
//! Its journal stamps instants on its own monotonic clock. On connecting, the
//! harness reads that clock (`GET /clock`) a few times and keeps the offset
//! from the round trip that took least time, so journal records and alerts
//! are moved onto the harness's clock, within half that round trip (tens of
//! microseconds on loopback).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fault_server::{
    AlertRecord, CallRecord, Clock, DependencySpec, DependencyView, Fault, JournalStats,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How long one control request may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one may take once the run is stopping ([`RemoteFaultServer::hurry_when`]).
const HURRIED_TIMEOUT: Duration = Duration::from_millis(250);
/// Round trips made to read the remote clock; the quickest one counts.
const CLOCK_SAMPLES: usize = 5;

/// A fault server reached through its control API.
#[derive(Debug, Clone)]
pub struct RemoteFaultServer {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: Option<String>,
    clock: Clock,
    /// Add to a remote instant to get the same instant on `clock`.
    offset_ns: i128,
    /// Cancelled when the run is stopping: calls get [`HURRIED_TIMEOUT`].
    hurry: CancellationToken,
    /// Set when a hurried call went unanswered: later calls fail at once.
    gave_up: Arc<AtomicBool>,
}

/// Why the remote fault server could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The control URL is not an http:// URL.
    #[error("`{0}` is not an http:// URL of a fault server's control API")]
    BadUrl(String),
    /// No answer.
    #[error("{method} {url}: no answer: {reason}")]
    Unreachable {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An answer other than success; `detail` is the server's JSON error.
    #[error("{method} {url}: {status}: {detail}")]
    Refused {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The body, as sent.
        detail: String,
    },
    /// An answer that does not parse.
    #[error("{url}: unexpected answer: {reason}")]
    Decode {
        /// The request's URL.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl RemoteError {
    /// Whether the server answered 404: no such dependency.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RemoteError::Refused { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

#[derive(Deserialize)]
struct ClockReading {
    now_ns: u64,
}

/// The part of `GET /dependencies/{name}/stats` a run needs.
#[derive(Deserialize)]
struct StatsHead {
    next_seq: u64,
    in_flight: u64,
}

impl RemoteFaultServer {
    /// Connects to the control API at `control_url` (`http://host:port`),
    /// sending `token` as a Bearer token when given, and maps its clock onto
    /// `clock`.
    pub async fn connect(
        control_url: &str,
        token: Option<String>,
        clock: Clock,
    ) -> Result<Self, RemoteError> {
        let base = control_url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") || base.parse::<http::Uri>().is_err() {
            return Err(RemoteError::BadUrl(control_url.to_owned()));
        }
        let mut remote = RemoteFaultServer {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
            token,
            clock,
            offset_ns: 0,
            hurry: CancellationToken::new(),
            gave_up: Arc::new(AtomicBool::new(false)),
        };
        let mut best: Option<(u64, i128)> = None;
        for _ in 0..CLOCK_SAMPLES {
            let before = clock.now_ns();
            let reading: ClockReading = remote.json(Method::GET, "/clock", None).await?;
            let after = clock.now_ns();
            let round_trip = after.saturating_sub(before);
            let midpoint = i128::from(before) + i128::from(round_trip / 2);
            let offset = midpoint - i128::from(reading.now_ns);
            if best.is_none_or(|(quickest, _)| round_trip < quickest) {
                best = Some((round_trip, offset));
            }
        }
        remote.offset_ns = best.map_or(0, |(_, offset)| offset);
        Ok(remote)
    }

    /// Once `stop` is cancelled (the run is stopping: a signal, a cap), each
    /// control call may take 250 ms (`HURRIED_TIMEOUT`) at most, and once
    /// one went unanswered the rest fail at once: a run stopped while its
    /// fault server does not answer ends within about a second, with what
    /// it saw (the faults lapse by their lease anyway).
    pub fn hurry_when(&mut self, stop: CancellationToken) {
        self.hurry = stop;
    }

    /// The control API's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The harness's clock, onto which remote instants are moved.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// A remote instant on the harness's clock.
    fn local(&self, remote_ns: u64) -> u64 {
        u64::try_from((i128::from(remote_ns) + self.offset_ns).max(0)).unwrap_or(u64::MAX)
    }

    /// Every dependency it serves.
    pub async fn dependencies(&self) -> Result<Vec<DependencyView>, RemoteError> {
        self.json(Method::GET, "/dependencies", None).await
    }

    /// Adds a dependency, removed by the server once `lease` passes without
    /// [`RemoteFaultServer::renew_dependency`].
    pub async fn add_dependency(
        &self,
        spec: &DependencySpec,
        lease: Duration,
    ) -> Result<DependencyView, RemoteError> {
        let mut body = serde_json::to_value(spec).unwrap_or_default();
        if let Some(fields) = body.as_object_mut() {
            fields.insert(
                "lease".to_owned(),
                humantime::format_duration(lease).to_string().into(),
            );
        }
        let body = body.to_string().into_bytes();
        self.json(Method::POST, "/dependencies", Some(body)).await
    }

    /// Renews the lease of a dependency added with one, for `lease` from now.
    pub async fn renew_dependency(&self, name: &str, lease: Duration) -> Result<(), RemoteError> {
        let body = serde_json::json!({ "lease": humantime::format_duration(lease).to_string() });
        let path = format!("/dependencies/{name}/lease");
        self.call(Method::PUT, &path, Some(body.to_string().into_bytes()))
            .await
            .map(drop)
    }

    /// Replaces a dependency's faults with `faults`, unleased: how a run
    /// puts back the standing faults it found.
    pub async fn restore_faults(
        &self,
        dependency: &str,
        faults: &[Fault],
    ) -> Result<(), RemoteError> {
        let body = serde_json::json!({ "faults": faults });
        let path = format!("/dependencies/{dependency}/faults");
        self.call(Method::PUT, &path, Some(body.to_string().into_bytes()))
            .await
            .map(drop)
    }

    /// Removes a dependency.
    pub async fn remove_dependency(&self, name: &str) -> Result<(), RemoteError> {
        let path = format!("/dependencies/{name}");
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// The sequence number the dependency's next call will get.
    pub async fn next_seq(&self, dependency: &str) -> Result<u64, RemoteError> {
        Ok(self.stats_head(dependency).await?.next_seq)
    }

    /// Calls in flight at the dependency now.
    pub async fn in_flight(&self, dependency: &str) -> Result<u64, RemoteError> {
        Ok(self.stats_head(dependency).await?.in_flight)
    }

    async fn stats_head(&self, dependency: &str) -> Result<StatsHead, RemoteError> {
        let path = format!("/dependencies/{dependency}/stats");
        self.json(Method::GET, &path, None).await
    }

    /// Replaces a dependency's faults, leased for `lease`.
    pub async fn set_faults(
        &self,
        dependency: &str,
        faults: &[Fault],
        lease: Duration,
    ) -> Result<(), RemoteError> {
        let body = serde_json::json!({
            "faults": faults,
            "lease": humantime::format_duration(lease).to_string(),
        });
        let path = format!("/dependencies/{dependency}/faults");
        self.call(Method::PUT, &path, Some(body.to_string().into_bytes()))
            .await
            .map(drop)
    }

    /// Renews the lease of a dependency's leased faults for `lease` from now.
    pub async fn renew_lease(&self, dependency: &str, lease: Duration) -> Result<(), RemoteError> {
        let body = serde_json::json!({ "lease": humantime::format_duration(lease).to_string() });
        let path = format!("/dependencies/{dependency}/faults/lease");
        self.call(Method::PUT, &path, Some(body.to_string().into_bytes()))
            .await
            .map(drop)
    }

    /// Clears a dependency's faults.
    pub async fn clear_faults(&self, dependency: &str) -> Result<(), RemoteError> {
        let path = format!("/dependencies/{dependency}/faults");
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// Opens a named window in every journal.
    pub async fn mark(&self, name: &str) -> Result<(), RemoteError> {
        let body = serde_json::json!({ "name": name }).to_string().into_bytes();
        self.call(Method::POST, "/marks", Some(body))
            .await
            .map(drop)
    }

    /// Opens a window named `name` in every journal and puts `faults` in
    /// force (leased for `lease`) at the dependencies it names as their
    /// windows open (`POST /marks` with faults). Returns each dependency's
    /// window index.
    pub async fn switch(
        &self,
        name: &str,
        faults: &BTreeMap<String, Vec<Fault>>,
        lease: Duration,
    ) -> Result<BTreeMap<String, u32>, RemoteError> {
        let body = serde_json::json!({
            "name": name,
            "faults": faults,
            "lease": humantime::format_duration(lease).to_string(),
        });
        let mark: fault_server::Mark = self
            .json(Method::POST, "/marks", Some(body.to_string().into_bytes()))
            .await?;
        Ok(mark.windows)
    }

    /// A dependency's exact counters, overall and per window.
    pub async fn stats(&self, dependency: &str) -> Result<JournalStats, RemoteError> {
        let path = format!("/dependencies/{dependency}/stats");
        self.json(Method::GET, &path, None).await
    }

    /// The records from sequence number `since` on, on the harness's clock.
    pub async fn journal_since(
        &self,
        dependency: &str,
        since: u64,
    ) -> Result<Vec<CallRecord>, RemoteError> {
        let path = format!("/dependencies/{dependency}/journal?since={since}");
        let body = self.call(Method::GET, &path, None).await?;
        let mut records = Vec::new();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut record: CallRecord =
                serde_json::from_slice(line).map_err(|e| self.decode(&path, e))?;
            record.arrival_ns = self.local(record.arrival_ns);
            record.departure_ns = record.departure_ns.map(|ns| self.local(ns));
            records.push(record);
        }
        Ok(records)
    }

    /// The alerts an alert sink received, on the harness's clock.
    pub async fn alerts(&self, dependency: &str) -> Result<Vec<AlertRecord>, RemoteError> {
        let path = format!("/dependencies/{dependency}/alerts");
        let mut alerts: Vec<AlertRecord> = self.json(Method::GET, &path, None).await?;
        for alert in &mut alerts {
            alert.at_ns = self.local(alert.at_ns);
        }
        Ok(alerts)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, RemoteError> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| self.decode(path, e))
    }

    fn decode(&self, path: &str, error: serde_json::Error) -> RemoteError {
        RemoteError::Decode {
            url: format!("{}{path}", self.base),
            reason: error.to_string(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, RemoteError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |reason: String| RemoteError::Unreachable {
            method: method.clone(),
            url: url.clone(),
            reason,
        };
        let mut request = Request::builder().method(method.clone()).uri(&url);
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| unreachable(e.to_string()))?;
        if self.hurry.is_cancelled() && self.gave_up.load(Ordering::Relaxed) {
            return Err(unreachable(
                "it did not answer while the run was stopping".to_owned(),
            ));
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, RemoteError>((status, bytes))
        };
        // Bounded by CONTROL_TIMEOUT, or by HURRIED_TIMEOUT from when the
        // run began stopping, whichever comes first.
        let hurried = async {
            self.hurry.cancelled().await;
            tokio::time::sleep(HURRIED_TIMEOUT).await;
        };
        let (status, bytes) = tokio::select! {
            done = tokio::time::timeout(CONTROL_TIMEOUT, exchange) => done
                .map_err(|_| unreachable(format!("no answer within {CONTROL_TIMEOUT:?}")))??,
            () = hurried => {
                self.gave_up.store(true, Ordering::Relaxed);
                return Err(unreachable(format!(
                    "no answer within {HURRIED_TIMEOUT:?} while the run was stopping"
                )));
            }
        };
        if !status.is_success() {
            return Err(RemoteError::Refused {
                method,
                url,
                status,
                detail: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes)
    }
}
