//! The journal: exact peaks, seeded decisions, windows, correlation, the cap.

use std::time::Duration;

use fault_server::{CallOutcome, DependencySpec, FaultKindName, FaultServer, StubResponse};
use futures_util::stream::{self, StreamExt};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{client, eventually, fault, get, one_stub, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_in_flight_is_exactly_500_when_500_calls_are_held_by_latency() {
    let server = one_stub();
    server
        .add_fault("dep", fault(r#"{"latency": {"fixed": "3s"}}"#))
        .unwrap();
    let addr = server.addr("dep").unwrap();
    // Connect every client first, so the 500 requests arrive within a few
    // milliseconds of each other, well inside the 3 s hold.
    let mut streams = Vec::new();
    for _ in 0..500 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    for stream in &mut streams {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(2), || server
            .stats("dep")
            .unwrap()
            .in_flight
            == 500)
        .await
    );
    let reads = streams.into_iter().map(|mut s| async move {
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.map(|_| out)
    });
    let answers = futures_util::future::join_all(reads).await;
    assert!(answers
        .iter()
        .all(|a| a.as_ref().unwrap().starts_with(b"HTTP/1.1 200")));
    let stats = server.stats("dep").unwrap();
    assert_eq!(stats.total.peak_in_flight, 500);
    assert_eq!(stats.total.calls, 500);
    assert!(
        eventually(Duration::from_secs(2), || server
            .stats("dep")
            .unwrap()
            .total
            .completed
            == 500)
        .await
    );
}

/// Sends `n` calls, 32 at a time, and returns which sequence numbers got an error.
async fn errored_seqs(seed: u64, n: usize) -> Vec<u64> {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("dep"))
        .seed(seed)
        .journal_capacity(n)
        .start()
        .unwrap();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 500}, "probability": 0.3}"#),
        )
        .unwrap();
    let url = server.url("dep").unwrap();
    let client = client();
    stream::iter(0..n)
        .for_each_concurrent(32, |_| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let request = http::Request::get(url).body(Default::default()).unwrap();
                client.request(request).await.unwrap();
            }
        })
        .await;
    assert!(
        eventually(Duration::from_secs(5), || server
            .stats("dep")
            .unwrap()
            .total
            .completed
            == n as u64)
        .await
    );
    server
        .journal("dep")
        .unwrap()
        .iter()
        .filter(|r| r.faults.contains(FaultKindName::Error))
        .map(|r| r.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probability_lands_within_two_percent_and_the_same_seed_repeats_every_decision() {
    let first = errored_seqs(7, 10_000).await;
    let share = first.len() as f64 / 10_000.0;
    assert!((share - 0.3).abs() <= 0.02, "share {share}");
    let again = errored_seqs(7, 10_000).await;
    assert_eq!(first, again, "the same seed gives the same decisions");
    let other = errored_seqs(8, 10_000).await;
    assert_ne!(first, other, "another seed gives other decisions");
}

#[tokio::test]
async fn a_mark_opens_a_window_with_its_own_counts() {
    let server = one_stub();
    let url = server.url("dep").unwrap();
    get(&url).await.unwrap();
    let mark = server.mark("crm slow").unwrap();
    assert_eq!(mark.windows["dep"], 1);
    server
        .add_fault("dep", fault(r#"{"error": {"status": 503}}"#))
        .unwrap();
    get(&url).await.unwrap();
    get(&url).await.unwrap();
    let stats = server.stats("dep").unwrap();
    assert_eq!(stats.windows[0].name, "start");
    assert_eq!(stats.windows[0].counters.calls, 1);
    assert_eq!(stats.windows[0].ended_ns, Some(mark.at_ns));
    let slow = stats.window("crm slow").unwrap();
    assert_eq!(slow.counters.calls, 2);
    assert_eq!(slow.counters.statuses.get(&503), Some(&2));
    assert_eq!(stats.total.calls, 3);
    assert!(server
        .journal("dep")
        .unwrap()
        .iter()
        .skip(1)
        .all(|r| r.window == 1));
}

#[tokio::test]
async fn a_record_keeps_correlation_idempotency_and_attempt() {
    let server = one_stub();
    let url = server.url("dep").unwrap();
    send(
        Method::POST,
        &format!("{url}/orders?x=1"),
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("idempotency-key", "order-42"),
            ("x-faultline-attempt", "3"),
        ],
    )
    .await
    .unwrap();
    send(Method::GET, &url, &[("x-faultline-request", "req-9")])
        .await
        .unwrap();
    let journal = server.journal("dep").unwrap();
    assert_eq!(journal[0].method, "POST");
    assert_eq!(journal[0].path, "/orders");
    assert_eq!(
        journal[0].correlation_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(journal[0].idempotency_key.as_deref(), Some("order-42"));
    assert_eq!(journal[0].attempt, Some(3));
    assert_eq!(journal[0].outcome, CallOutcome::Responded);
    assert_eq!(journal[0].status, Some(200));
    assert!(journal[0].departure_ns.unwrap() >= journal[0].arrival_ns);
    assert_eq!(journal[1].correlation_id.as_deref(), Some("req-9"));
}

#[tokio::test]
async fn past_its_cap_a_journal_drops_the_oldest_records_and_keeps_exact_counts() {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("dep").with_response(StubResponse::ok("ok")))
        .journal_capacity(10)
        .start()
        .unwrap();
    let url = server.url("dep").unwrap();
    for _ in 0..25 {
        get(&url).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(2), || server
            .stats("dep")
            .unwrap()
            .total
            .completed
            == 25)
        .await
    );
    let stats = server.stats("dep").unwrap();
    assert_eq!(stats.total.calls, 25);
    assert_eq!(stats.total.statuses.get(&200), Some(&25));
    assert_eq!(stats.dropped_records, 15);
    let seqs: Vec<u64> = server
        .journal("dep")
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (15..25).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_client_that_leaves_during_a_latency_fault_is_journaled_as_gone() {
    let server = one_stub();
    server
        .add_fault("dep", fault(r#"{"latency": {"fixed": "10s"}}"#))
        .unwrap();
    let url = server.url("dep").unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(200), get(&url)).await;
    assert!(gave_up.is_err());
    assert!(
        eventually(Duration::from_secs(5), || {
            server.journal("dep").unwrap()[0].outcome == CallOutcome::ClientGone
        })
        .await
    );
}
