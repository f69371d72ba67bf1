//! Requests hyper refuses before the service sees them (too many headers, a
//! head too large, a URI too long, bytes that are not HTTP) are journaled and
//! counted, with the status hyper sent.

use std::net::SocketAddr;
use std::time::Duration;

use fault_server::{CallOutcome, FaultServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{eventually, one_stub};

/// Writes `bytes` on a fresh connection and reads what comes back until the
/// server closes (a reset after a refusal ends the read early: what was read is kept).
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&chunk[..n]),
            _ => return out,
        }
    }
}

fn status_line(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn many_headers(count: usize) -> Vec<u8> {
    let mut head = String::from("GET /x HTTP/1.1\r\nhost: test\r\n");
    for i in 1..count {
        head.push_str(&format!("x-h{i}: v\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

async fn last_record_after(server: &FaultServer, calls: u64) -> fault_server::CallRecord {
    let ended = eventually(Duration::from_secs(10), || {
        server.stats("dep").unwrap().total.completed == calls
    })
    .await;
    assert!(ended, "{:?}", server.stats("dep").unwrap());
    server.journal("dep").unwrap().pop().unwrap()
}

#[tokio::test]
async fn each_refusal_is_journaled_with_the_status_hyper_sent() {
    let server = one_stub();
    let addr = server.addr("dep").unwrap();
    let long_uri = format!("GET /{} HTTP/1.1\r\nhost: t\r\n\r\n", "u".repeat(70_000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nhost: t\r\nx-big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    let cases: [(&str, Vec<u8>, Option<u16>); 6] = [
        ("101 headers", many_headers(101), Some(431)),
        ("a head over 400 KiB", big_head.into_bytes(), Some(431)),
        ("a URI over 65,534 bytes", long_uri.into_bytes(), Some(414)),
        (
            "garbage",
            b"\x16\x03\x01\x02\x00 hello\r\n\r\n".to_vec(),
            Some(400),
        ),
        (
            "a bad header",
            b"GET / HTTP/1.1\r\nbad header: x\r\n\r\n".to_vec(),
            Some(400),
        ),
        (
            "an HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            None,
        ),
    ];
    for (calls, (what, bytes, status)) in (1..).zip(cases) {
        let answer = exchange(addr, &bytes).await;
        if let Some(status) = status {
            // A refusal before the whole head was read may reach the client as a reset.
            if !answer.is_empty() {
                assert!(
                    status_line(&answer).starts_with(&format!("HTTP/1.1 {status}")),
                    "{what}: {}",
                    status_line(&answer)
                );
            }
        }
        let record = last_record_after(&server, calls).await;
        let outcome = if status.is_some() {
            CallOutcome::Responded
        } else {
            CallOutcome::Closed
        };
        assert_eq!((record.outcome, record.status), (outcome, status), "{what}");
        assert_eq!(record.method.as_str(), "-", "{what}");
        assert_eq!(record.path, "<refused by the HTTP layer>", "{what}");
    }
    let total = server.stats("dep").unwrap().total;
    assert_eq!(total.calls, 6);
    assert_eq!(total.statuses[&431], 2);
    assert_eq!(total.statuses[&414], 1);
    assert_eq!(total.statuses[&400], 2);
    assert_eq!(total.outcomes[&CallOutcome::Closed], 1);
}

#[tokio::test]
async fn a_request_within_the_limits_is_answered_and_journaled_as_itself() {
    let server = one_stub();
    let answer = exchange(server.addr("dep").unwrap(), &{
        let mut head = many_headers(100);
        head.splice(head.len() - 2..head.len() - 2, *b"connection: close\r\n");
        head
    })
    .await;
    // 101 lines with `connection: close`: over the limit as well.
    assert!(
        status_line(&answer).starts_with("HTTP/1.1 431"),
        "{}",
        status_line(&answer)
    );
    let answer = exchange(server.addr("dep").unwrap(), &{
        let mut head = many_headers(99);
        head.splice(head.len() - 2..head.len() - 2, *b"connection: close\r\n");
        head
    })
    .await;
    assert!(
        status_line(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        status_line(&answer)
    );
    let record = last_record_after(&server, 2).await;
    assert_eq!((record.path.as_str(), record.status), ("/x", Some(200)));
}
