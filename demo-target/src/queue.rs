//! The hardened shop's task queue for crm sync: the function enqueues an
//! event and answers 202 at once; a few workers deliver each event to crm
//! with its idempotency key, retrying failures after a jittered backoff until
//! crm takes it. A worker waits long enough for a slow crm to answer
//! ([`DELIVERY_TIMEOUT`]): each event reaches crm exactly once as long as crm
//! answers within it or not at all. A crm that answers at or after the
//! timeout gets the event again (the simulation shrank this to one call of
//! exactly 10 s); past that line exactly once is crm's to keep, by the
//! idempotency key. The queue is the backpressure: when it is full, the
//! function sheds with 503.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;

use crate::call::{jitter, Correlation, HttpClient};

/// Workers delivering to crm at once: all crm can be asked to hold.
pub(crate) const WORKERS: usize = 5;
/// Events waiting at most.
const CAPACITY: usize = 10_000;
/// How long a delivery waits for crm.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per event before it is given up (and counted lost).
const ATTEMPTS: u32 = 100;

/// One event to deliver.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) key: HeaderValue,
    pub(crate) correlation: Correlation,
}

/// The sending side; workers run until it is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    jobs: mpsc::Sender<Job>,
}

impl Queue {
    /// Starts the workers delivering to `crm` (a base URL).
    pub(crate) fn start(client: HttpClient, crm: String) -> Self {
        let (jobs, receiver) = mpsc::channel(CAPACITY);
        let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..WORKERS {
            let (client, crm, receiver) = (client.clone(), crm.clone(), receiver.clone());
            tokio::spawn(async move {
                loop {
                    let job = receiver.lock().await.recv().await;
                    let Some(job) = job else { break };
                    deliver(&client, &crm, job).await;
                }
            });
        }
        Queue { jobs }
    }

    /// Queues an event; false when the queue is full.
    pub(crate) fn offer(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }
}

async fn deliver(client: &HttpClient, crm: &str, job: Job) {
    for attempt in 1..=ATTEMPTS {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{crm}/contacts"))
            .header("idempotency-key", job.key.clone())
            .header("x-faultline-attempt", attempt);
        if let Some(id) = &job.correlation.request_id {
            request = request.header("x-faultline-request", id.clone());
        }
        if let Some(parent) = &job.correlation.traceparent {
            request = request.header("traceparent", parent.clone());
        }
        let Ok(request) = request.body(Full::new(Bytes::new())) else {
            return;
        };
        let exchange = async {
            let response = client.request(request).await.ok()?;
            let status = response.status();
            response.into_body().collect().await.ok()?;
            Some(status)
        };
        match tokio::time::timeout(DELIVERY_TIMEOUT, exchange).await {
            Ok(Some(status)) if status.is_success() => return,
            _ => {
                let envelope = Duration::from_millis(100)
                    .saturating_mul(2u32.saturating_pow(attempt - 1))
                    .min(Duration::from_secs(1));
                let jitter = jitter(attempt, Some(&job.key));
                tokio::time::sleep(envelope / 2 + envelope.mul_f64(jitter)).await;
            }
        }
    }
}
