//! The demo shop against a real fault server on loopback: each profile does
//! what its documentation says to a single request.

use std::time::Duration;

use bytes::Bytes;
use fault_server::{DependencySpec, FaultServer, StubResponse};
use faultline_demo::{DemoConfig, Profile};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn fault_server() -> FaultServer {
    let mut builder = FaultServer::builder();
    for name in faultline_demo::DEPENDENCIES {
        builder =
            builder.dependency(DependencySpec::stub(name).with_response(StubResponse::ok("ok")));
    }
    builder.start().unwrap()
}

async fn shop(server: &FaultServer, profile: Profile) -> faultline_demo::Demo {
    let mut config = DemoConfig::new(profile);
    for name in faultline_demo::DEPENDENCIES {
        config
            .dependencies
            .insert(name.to_owned(), server.url(name).unwrap());
    }
    faultline_demo::start(config).await.unwrap()
}

/// POSTs `path` with a correlation id; the status and the Retry-After header.
async fn post(demo: &faultline_demo::Demo, path: &str, id: &str) -> (u16, Option<String>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("http://{}{path}", demo.addr()))
        .header("x-faultline-request", id)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    response.into_body().collect().await.unwrap();
    (status, retry_after)
}

/// The calls at `dependency` that carried the edge request `id`.
fn calls_with(server: &FaultServer, dependency: &str, id: &str) -> Vec<fault_server::CallRecord> {
    server
        .journal(dependency)
        .unwrap()
        .into_iter()
        .filter(|r| r.correlation_id.as_deref() == Some(id))
        .collect()
}

#[tokio::test]
async fn a_naive_checkout_calls_a_failing_payments_nine_times() {
    let server = fault_server();
    server
        .add_fault(
            "payments",
            serde_json::from_str::<fault_server::Fault>(r#"{"error": {"status": 503}}"#).unwrap(),
        )
        .unwrap();
    let demo = shop(&server, Profile::Naive).await;
    let (status, _) = post(&demo, "/checkout", "storm").await;
    assert_eq!(status, 502);
    // Three gateway attempts, each trying payments three times (attempts 1-3).
    let attempts: Vec<_> = calls_with(&server, "payments", "storm")
        .iter()
        .map(|call| call.attempt.unwrap_or(0))
        .collect();
    assert_eq!(attempts, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
}

#[tokio::test]
async fn a_hardened_checkout_tries_at_most_three_times_with_backoff_between() {
    let server = fault_server();
    server
        .add_fault(
            "payments",
            serde_json::from_str::<fault_server::Fault>(r#"{"error": {"status": 503}}"#).unwrap(),
        )
        .unwrap();
    let demo = shop(&server, Profile::Hardened).await;
    let (status, _) = post(&demo, "/checkout", "capped").await;
    assert_eq!(status, 502);
    let calls = calls_with(&server, "payments", "capped");
    assert_eq!(calls.len(), 3);
    for pair in calls.windows(2) {
        let waited = pair[1].arrival_ns - pair[0].departure_ns.unwrap();
        // The first retry waits 25-50 ms, the second 50-100 ms.
        assert!(waited >= 24_000_000, "waited {waited} ns");
    }
}

#[tokio::test]
async fn hardened_crm_sync_answers_202_and_delivers_once_with_an_idempotency_key() {
    let server = fault_server();
    let demo = shop(&server, Profile::Hardened).await;
    let (status, _) = post(&demo, "/crm_sync", "order").await;
    assert_eq!(status, 202);
    let mut delivered = Vec::new();
    for _ in 0..50 {
        delivered = calls_with(&server, "crm", "order");
        if !delivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].idempotency_key.as_deref(), Some("order-order"));
}

#[tokio::test]
async fn a_full_hardened_reserve_sheds_with_503_and_retry_after() {
    let server = fault_server();
    server
        .add_fault(
            "payments",
            serde_json::from_str::<fault_server::Fault>(r#"{"latency": {"fixed": "400ms"}}"#)
                .unwrap(),
        )
        .unwrap();
    let demo = std::sync::Arc::new(shop(&server, Profile::Hardened).await);
    // Checkout reserves 30: the 31st at once is shed.
    let held: Vec<_> = (0..30)
        .map(|i| {
            let demo = std::sync::Arc::clone(&demo);
            tokio::spawn(async move { post(&demo, "/checkout", &format!("held-{i}")).await })
        })
        .collect();
    // Until all 30 are at payments (each held 400 ms there, under the 500 ms a call may take).
    for _ in 0..1_000 {
        if server.stats("payments").unwrap().in_flight == 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        post(&demo, "/checkout", "shed").await,
        (503, Some("1".into()))
    );
    for request in held {
        assert_eq!(request.await.unwrap().0, 200);
    }
}
