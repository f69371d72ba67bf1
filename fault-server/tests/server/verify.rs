//! Waiting until a dependency's calls settle, and expectations on how many
//! calls it gets, verified when the server is dropped: from plain tests with
//! a blocking client, as a service's integration test would use them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use fault_server::{CallOutcome, DependencySpec, Fault, FaultServer};

fn payments() -> FaultServer {
    FaultServer::builder()
        .dependency(DependencySpec::stub("payments"))
        .start()
        .unwrap()
}

fn call(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(
            b"POST /charge HTTP/1.1\r\nhost: p\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_client_that_gave_up_is_journaled_once_the_wait_until_idle_returns() {
    let server = payments();
    server.add_fault("payments", Fault::hang()).unwrap();
    let addr = server.addr("payments").unwrap();
    for i in 0..20 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: p\r\n\r\n")
            .unwrap();
        // The call has arrived (and hangs) before the client gives up.
        while server.stats("payments").unwrap().total.calls <= i {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(stream); // the client gives up
        server
            .wait_until_idle_blocking("payments", Duration::from_secs(5))
            .unwrap();
        let last = server.journal("payments").unwrap().pop().unwrap();
        assert_eq!(
            last.outcome,
            CallOutcome::ClientGone,
            "read straight after the wait"
        );
    }
}

#[tokio::test]
async fn a_wait_until_idle_runs_out_while_a_call_is_held() {
    let server = payments();
    server.add_fault("payments", Fault::hang()).unwrap();
    let mut held = tokio::net::TcpStream::connect(server.addr("payments").unwrap())
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut held, b"GET / HTTP/1.1\r\nhost: p\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let error = server
        .wait_until_idle("payments", Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("1 call still in flight"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_on_a_paused_test_clock_is_in_the_server_s_time_and_leaves_the_test_s_clock_alone() {
    let server = payments();
    let held = Fault::hang().after(
        Duration::from_millis(100),
        fault_server::fault::HangEnd::Respond,
    );
    server.add_fault("payments", held).unwrap();
    let addr = server.addr("payments").unwrap();
    let client = std::thread::spawn(move || call(addr));
    while server.stats("payments").unwrap().total.calls == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = tokio::time::Instant::now();
    server
        .wait_until_idle("payments", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(client.join().unwrap().starts_with("HTTP/1.1 200"));
    let moved = before.elapsed();
    assert!(
        moved < Duration::from_secs(1),
        "the test's clock raced ahead by {moved:?}"
    );
}

#[test]
fn an_unmet_expectation_fails_the_test_when_the_server_is_dropped_and_says_what_was_seen() {
    let server = payments();
    server.expect_calls("payments", 2);
    server
        .add_fault("payments", Fault::error(503).first(1))
        .unwrap();
    let addr = server.addr("payments").unwrap();
    let answer = call(addr);
    assert!(answer.starts_with("HTTP/1.1 503"));
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(server)));
    // The panic comes after the server stopped: nothing is left listening.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening");
        std::thread::sleep(Duration::from_millis(10));
    }
    let panic = dropped.expect_err("an unmet expectation panics on drop");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(
        message,
        "fault server: expected exactly 2 calls at `payments`, saw 1\n  #0 POST /charge: answered 503, faults: error"
    );
}

#[test]
fn met_expectations_pass_and_verify_checks_them_at_once() {
    let server = payments();
    server.expect_calls("payments", 1..=2);
    server.expect_calls("payments", ..3);
    call(server.addr("payments").unwrap());
    assert_eq!(server.verify(), Ok(()));
    server.expect_calls("payments", 3..);
    let unmet = server.verify().unwrap_err();
    assert!(
        unmet
            .to_string()
            .starts_with("expected at least 3 calls at `payments`, saw 1"),
        "{unmet}"
    );
    drop(server); // verified already: nothing left to fail
}
