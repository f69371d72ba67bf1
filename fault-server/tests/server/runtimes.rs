//! The fault server answers whatever runtime, if any, its user is on: it
//! serves on a runtime of its own (as wiremock-rs does), so a plain
//! `#[test]`, a current-thread `#[tokio::test]` with a blocking client (which
//! never got an answer when the server shared that one thread) and a
//! multi-thread one all work, with blocking and async clients alike.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use fault_server::{DependencySpec, Fault, FaultServer, StubResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REQUEST: &[u8] = b"GET /charge HTTP/1.1\r\nhost: payments\r\nconnection: close\r\n\r\n";

/// A payments stub whose first call fails with 503 after 50 ms.
fn server() -> FaultServer {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .start()
        .unwrap();
    let slow = Fault::latency(Duration::from_millis(50)).first(1);
    server.add_fault("payments", slow).unwrap();
    server
        .add_fault("payments", Fault::error(503).first(1))
        .unwrap();
    server
}

/// One call with std's blocking socket (at most 5 s): the status line.
fn blocking_call(addr: SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(REQUEST).unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("an answer within 5 s");
    answer.lines().next().unwrap_or_default().to_owned()
}

/// One call with tokio's socket: the status line.
async fn async_call(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(REQUEST).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// The first call failed, the second was the stub's, and both are in the journal.
fn check(server: &FaultServer, statuses: [String; 2]) {
    assert_eq!(
        statuses,
        ["HTTP/1.1 503 Service Unavailable", "HTTP/1.1 200 OK"]
    );
    let records = server.journal("payments").unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].status, Some(503));
}

#[test]
fn a_plain_test_with_a_blocking_client() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    check(&server, [blocking_call(addr), blocking_call(addr)]);
}

#[tokio::test]
async fn a_current_thread_test_with_a_blocking_client() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    check(&server, [blocking_call(addr), blocking_call(addr)]);
}

#[tokio::test]
async fn a_current_thread_test_with_an_async_client() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    check(&server, [async_call(addr).await, async_call(addr).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_thread_test_with_a_blocking_client() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    check(&server, [blocking_call(addr), blocking_call(addr)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_thread_test_with_an_async_client() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    check(&server, [async_call(addr).await, async_call(addr).await]);
}

#[test]
fn a_server_on_its_own_runtime_is_stopped_when_dropped_and_its_port_let_go() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    drop(server);
    // Its runtime is shut down without waiting; the listener goes with it.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_dependency_removed_from_a_test_s_runtime_frees_its_port_before_the_answer() {
    let server = server();
    let addr = server.addr("payments").unwrap();
    server.remove_dependency("payments").unwrap();
    let rebound = std::net::TcpListener::bind(addr);
    assert!(rebound.is_ok(), "{rebound:?}");
}
