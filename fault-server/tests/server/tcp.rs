//! A TCP proxy dependency in front of a real TCP server (an echo server in
//! the test): bytes through both ways, each connection-level fault, faults
//! that act on live connections, and the journal of connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_server::{CallOutcome, DependencySpec, FaultServer};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{control, fault};

/// An echo server: writes back what it reads, closes when the client does.
async fn echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

fn proxy(upstream: SocketAddr, faults: &[&str]) -> FaultServer {
    let mut spec = DependencySpec::tcp("db", upstream.to_string());
    for f in faults {
        spec = spec.with_fault(fault(f));
    }
    FaultServer::builder()
        .dependency(spec)
        .control("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap()
}

/// Whether a connection to `addr` was refused: reset at connect, or ended
/// before any byte came back (the reset can beat the connect's completion).
async fn refused(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return true;
    };
    let _ = stream.write_all(b"x").await;
    let mut buf = [0u8; 1];
    matches!(stream.read(&mut buf).await, Ok(0) | Err(_))
}

/// Sends `message` and reads it back: how long the round trip took.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Duration {
    let started = Instant::now();
    stream.write_all(message).await.unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, message);
    started.elapsed()
}

async fn journaled(server: &FaultServer, ended: usize) -> Vec<fault_server::CallRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = server.journal("db").unwrap();
        if records.iter().filter(|r| r.departure_ns.is_some()).count() >= ended
            || Instant::now() > deadline
        {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_go_through_both_ways_and_each_connection_is_journaled() {
    let upstream = echo().await;
    let server = proxy(upstream, &[]);
    let addr = server.addr("db").unwrap();
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    let big = vec![7u8; 1 << 20];
    round_trip(&mut streams[0], &big).await;
    for stream in &mut streams[1..] {
        round_trip(stream, b"ping").await;
    }
    drop(streams);
    let records = journaled(&server, 5).await;
    assert_eq!(records.len(), 5);
    assert_eq!(records[0].method, Method::CONNECT);
    assert_eq!(records[0].path, upstream.to_string());
    assert_eq!(records.iter().map(|r| r.in_flight).max(), Some(5));
    // Connections are numbered as their tasks start, not strictly in accept order.
    let mut carried: Vec<(u64, u64)> = records
        .iter()
        .map(|r| r.bytes.map(|b| (b.upstream, b.downstream)).unwrap())
        .collect();
    carried.sort_unstable();
    assert_eq!(
        carried,
        [(4, 4), (4, 4), (4, 4), (4, 4), (1 << 20, 1 << 20)]
    );
    assert!(
        records
            .iter()
            .all(|r| r.outcome == CallOutcome::ClientClosed),
        "{records:?}"
    );
    assert_eq!(server.stats("db").unwrap().total.peak_in_flight, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_fault_acts_on_live_connections_as_it_comes_and_goes() {
    let upstream = echo().await;
    let server = proxy(upstream, &[]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    assert!(round_trip(&mut stream, b"a").await < Duration::from_millis(50));
    server
        .set_faults(
            "db",
            vec![fault(r#"{"latency": {"fixed": "100ms"}}"#)],
            None,
        )
        .unwrap();
    let slow = round_trip(&mut stream, b"b").await;
    assert!(slow >= Duration::from_millis(100), "{slow:?}");
    assert!(slow < Duration::from_millis(400), "{slow:?}");
    server.clear_faults("db").unwrap();
    assert!(round_trip(&mut stream, b"c").await < Duration::from_millis(50));
    drop(stream);
    let records = journaled(&server, 1).await;
    assert_eq!(
        records[0]
            .faults
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>(),
        ["latency"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_cuts_the_connection_at_the_limit() {
    let upstream = echo().await;
    let server = proxy(upstream, &[r#"{"limit_data": {"bytes": 10}}"#]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    stream.write_all(&[1u8; 100]).await.unwrap();
    let mut back = Vec::new();
    let _ = stream.read_to_end(&mut back).await;
    assert_eq!(back.len(), 10);
    let records = journaled(&server, 1).await;
    assert_eq!(records[0].outcome, CallOutcome::Closed);
    assert_eq!(records[0].bytes.unwrap().downstream, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_resets_and_a_roll_of_no_leaves_the_connection_alone() {
    let upstream = echo().await;
    let server = proxy(upstream, &[r#"{"reset_peer": {"timeout": "100ms"}}"#]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    let _ = stream.write_all(b"x").await;
    let mut buf = [0u8; 8];
    // The echo comes back, then the reset: an RST, not a FIN.
    assert_eq!(stream.read(&mut buf).await.unwrap(), 1);
    let read = stream.read(&mut buf).await;
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert_eq!(journaled(&server, 1).await[0].outcome, CallOutcome::Reset);
    // Toxicity 0 (Toxiproxy's issue #603 still resets): no effect at all.
    let server = proxy(upstream, &[r#"{"reset_peer": {}, "probability": 0.0}"#]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    round_trip(&mut stream, b"still here").await;
    drop(stream);
    let records = journaled(&server, 1).await;
    assert_eq!(records[0].outcome, CallOutcome::ClientClosed);
    assert!(records[0].faults.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_holds_data_then_closes_or_holds_until_removed() {
    let upstream = echo().await;
    let server = proxy(upstream, &[r#"{"timeout": {"timeout": "200ms"}}"#]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    stream.write_all(b"lost").await.unwrap();
    let mut back = Vec::new();
    let _ = stream.read_to_end(&mut back).await;
    assert!(back.is_empty(), "no data got through");
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        journaled(&server, 1).await[0].outcome,
        CallOutcome::TimedOut
    );

    // timeout 0: held open, the data waits until the fault goes.
    let server = proxy(upstream, &[r#"{"timeout": {"timeout": "0s"}}"#]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    stream.write_all(b"held").await.unwrap();
    let mut back = [0u8; 4];
    let early =
        tokio::time::timeout(Duration::from_millis(200), stream.read_exact(&mut back)).await;
    assert!(early.is_err(), "nothing while the fault is in force");
    server.clear_faults("db").unwrap();
    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back))
        .await
        .expect("delivered once the fault went")
        .unwrap();
    assert_eq!(&back, b"held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_refuses_new_connections_while_open_ones_live() {
    let upstream = echo().await;
    let server = proxy(upstream, &[]);
    let addr = server.addr("db").unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut open, b"before").await;
    server
        .set_faults("db", vec![fault(r#"{"down": {}}"#)], None)
        .unwrap();
    assert!(refused(addr).await, "a new connection is refused");
    round_trip(&mut open, b"after").await;
    let records = server.journal("db").unwrap();
    assert_eq!(records[1].outcome, CallOutcome::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_and_slicer_pace_the_data() {
    let upstream = echo().await;
    // 50 KB at 100 KB/s downstream: about half a second. Data is paced in
    // pieces of a tenth of a second's worth, each written then waited out,
    // so the last piece arrives 0.4 s in at the soonest (a timer never fires
    // early; how the echo's reads cut the data only adds pieces).
    let server = proxy(upstream, &[r#"{"bandwidth": {"rate": 100}}"#]);
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    let took = round_trip(&mut stream, &vec![1u8; 50_000]).await;
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // 100 bytes in 10-byte slices 10 ms apart: at least 90 ms.
    let server = proxy(
        upstream,
        &[r#"{"slicer": {"average_size": 10, "delay": "10ms"}, "stream": "upstream"}"#],
    );
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    let took = round_trip(&mut stream, &[2u8; 100]).await;
    assert!(took >= Duration::from_millis(90), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_close_holds_a_close_back() {
    let upstream = echo().await;
    let server = proxy(
        upstream,
        &[r#"{"slow_close": {"delay": "300ms"}, "stream": "upstream"}"#],
    );
    let mut stream = TcpStream::connect(server.addr("db").unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_cannot_be_reached_resets_the_client() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = proxy(closed, &[]);
    assert!(refused(server.addr("db").unwrap()).await);
    assert_eq!(
        journaled(&server, 1).await[0].outcome,
        CallOutcome::UpstreamError
    );
}

#[tokio::test]
async fn faults_of_the_wrong_kind_for_a_dependency_are_refused() {
    let upstream = echo().await;
    let server = proxy(upstream, &[]);
    for (body, says) in [
        (
            r#"{"faults": [{"error": {"status": 503}}]}"#,
            "acts on HTTP requests",
        ),
        (
            r#"{"faults": [{"latency": {"fixed": "1ms"}, "match": {"path": "/x"}}]}"#,
            "a TCP proxy has none",
        ),
    ] {
        let (status, problem) =
            control(&server, Method::PUT, "/dependencies/db/faults", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            problem["error"].as_str().unwrap().contains(says),
            "{problem}"
        );
    }
    let stub = crate::common::one_stub();
    for (body, says) in [
        (
            r#"{"faults": [{"reset_peer": {}}]}"#,
            "acts on a TCP proxy's connections",
        ),
        (
            r#"{"faults": [{"latency": {"fixed": "1ms"}, "stream": "upstream"}]}"#,
            "HTTP faults have none",
        ),
    ] {
        let (status, problem) =
            control(&stub, Method::PUT, "/dependencies/dep/faults", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            problem["error"].as_str().unwrap().contains(says),
            "{problem}"
        );
    }
    let (status, view) = control(
        &stub,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "cache", "tcp": "127.0.0.1:6379"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["tcp"], "127.0.0.1:6379");
}
