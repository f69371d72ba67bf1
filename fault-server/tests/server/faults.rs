//! Every fault kind, seen from a real client over a real loopback socket.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use fault_server::{CallOutcome, StubResponse};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{eventually, fault, get, one_stub, raw_get, send};

#[tokio::test]
async fn a_fixed_latency_delays_the_answer_by_its_delay() {
    let server = one_stub();
    server
        .add_fault("dep", fault(r#"{"latency": {"fixed": "300ms"}}"#))
        .unwrap();
    let start = Instant::now();
    let answer = get(&server.url("dep").unwrap()).await.unwrap();
    let took = start.elapsed();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1_500), "{took:?}");
}

#[tokio::test]
async fn an_error_answers_with_its_status_body_headers_and_retry_after() {
    let server = one_stub();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 503, "body": "down", "headers": {"x-why": "test"}, "retry_after": "1500ms"}}"#),
        )
        .unwrap();
    let answer = get(&server.url("dep").unwrap()).await.unwrap();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "down");
    assert_eq!(answer.headers["x-why"], "test");
    assert_eq!(answer.headers["retry-after"], "2");
}

#[tokio::test]
async fn a_token_bucket_answers_429_with_retry_after_past_its_burst() {
    let server = one_stub();
    server
        .add_fault("dep", fault(r#"{"throttle": {"rate": 0.5, "burst": 2}}"#))
        .unwrap();
    let url = server.url("dep").unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&url).await.unwrap());
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(codes, [200, 200, 429, 429]);
    assert_eq!(statuses[2].headers["retry-after"], "2");
}

#[tokio::test]
async fn an_in_flight_cap_answers_503_once_the_cap_is_reached() {
    let server = one_stub();
    server
        .set_faults(
            "dep",
            vec![
                fault(r#"{"throttle": {"max_in_flight": 2, "status": 503}}"#),
                fault(r#"{"hang": {"after": "2s"}}"#),
            ],
            None,
        )
        .unwrap();
    let url = server.url("dep").unwrap();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(get_owned(url.clone())))
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || server
            .stats("dep")
            .unwrap()
            .in_flight
            == 2)
        .await
    );
    let start = Instant::now();
    let rejected = get(&url).await.unwrap();
    assert_eq!(rejected.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers["retry-after"], "1");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a rejection is immediate"
    );
    for call in held {
        assert_eq!(call.await.unwrap().unwrap().status, StatusCode::OK);
    }
}

async fn get_owned(url: String) -> Result<crate::common::Answer, String> {
    get(&url).await
}

#[tokio::test]
async fn a_hang_holds_the_call_until_the_client_gives_up_and_journals_it_as_client_gone() {
    let server = one_stub();
    server.add_fault("dep", fault(r#"{"hang": {}}"#)).unwrap();
    let mut stream = TcpStream::connect(server.addr("dep").unwrap())
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
    assert!(read.is_err(), "a hang sends nothing");
    drop(stream);
    let gone = eventually(Duration::from_secs(5), || {
        server.journal("dep").unwrap()[0].outcome == CallOutcome::ClientGone
    })
    .await;
    assert!(gone, "{:?}", server.journal("dep").unwrap());
    assert_eq!(server.stats("dep").unwrap().in_flight, 0);
}

#[tokio::test]
async fn a_hang_with_after_then_close_closes_without_a_response() {
    let server = one_stub();
    server
        .add_fault(
            "dep",
            fault(r#"{"hang": {"after": "200ms", "then": "close"}}"#),
        )
        .unwrap();
    let start = Instant::now();
    let bytes = raw_get(server.addr("dep").unwrap(), "/").await.unwrap();
    assert!(bytes.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        server.journal("dep").unwrap()[0].outcome,
        CallOutcome::Closed
    );
}

#[tokio::test]
async fn a_reset_is_econnreset_for_a_raw_client() {
    let server = one_stub();
    server.add_fault("dep", fault(r#"{"reset": {}}"#)).unwrap();
    let error = raw_get(server.addr("dep").unwrap(), "/").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    assert!(get(&server.url("dep").unwrap()).await.is_err());
    assert!(
        eventually(Duration::from_secs(2), || {
            server
                .stats("dep")
                .unwrap()
                .total
                .outcomes
                .get(&CallOutcome::Reset)
                == Some(&2)
        })
        .await
    );
}

#[tokio::test]
async fn a_close_is_end_of_file_where_the_response_should_be() {
    let server = one_stub();
    server.add_fault("dep", fault(r#"{"close": {}}"#)).unwrap();
    let bytes = raw_get(server.addr("dep").unwrap(), "/").await.unwrap();
    assert!(bytes.is_empty(), "{bytes:?}");
    let error = get(&server.url("dep").unwrap()).await.unwrap_err();
    assert!(
        error.contains("IncompleteMessage") || error.contains("closed"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_bytes_are_not_parseable_http() {
    let server = one_stub();
    server
        .add_fault("dep", fault(r#"{"malformed": {}}"#))
        .unwrap();
    let bytes = raw_get(server.addr("dep").unwrap(), "/").await.unwrap();
    assert!(!bytes.is_empty());
    assert!(!bytes.starts_with(b"HTTP/"), "{bytes:?}");
    let error = get(&server.url("dep").unwrap()).await.unwrap_err();
    assert!(error.contains("Parse"), "{error}");
    assert_eq!(
        server.journal("dep").unwrap()[0].outcome,
        CallOutcome::Malformed
    );
}

#[tokio::test]
async fn a_slow_body_arrives_whole_at_its_byte_rate() {
    let server = one_stub();
    server
        .set_response("dep", StubResponse::ok("x".repeat(100)))
        .unwrap();
    server
        .add_fault("dep", fault(r#"{"slow_body": {"bytes_per_second": 200}}"#))
        .unwrap();
    let start = Instant::now();
    let answer = get(&server.url("dep").unwrap()).await.unwrap();
    let took = start.elapsed();
    assert_eq!(answer.body.len(), 100);
    assert_eq!(answer.headers["content-length"], "100");
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn saturation_latency_grows_with_the_calls_in_flight() {
    let server = one_stub();
    server
        .add_fault(
            "dep",
            fault(r#"{"saturation": {"base": "200ms", "workers": 1}}"#),
        )
        .unwrap();
    let url = server.url("dep").unwrap();
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(get_owned(url.clone())))
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let mut durations: Vec<(u64, u64)> = server
        .journal("dep")
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.in_flight,
                (r.departure_ns.unwrap() - r.arrival_ns) / 1_000_000,
            )
        })
        .collect();
    durations.sort();
    assert_eq!(durations.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 2, 3]);
    for (in_flight, millis) in durations {
        let expected = 200 * in_flight;
        assert!(
            millis >= expected && millis < expected + 500,
            "{in_flight} in flight took {millis} ms"
        );
    }
}

#[tokio::test]
async fn a_matcher_limits_a_fault_to_matching_requests() {
    let server = one_stub();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 500}, "match": {"method": "GET", "path": "/pay/*"}}"#),
        )
        .unwrap();
    let url = server.url("dep").unwrap();
    assert_eq!(get(&format!("{url}/pay/42")).await.unwrap().status, 500);
    assert_eq!(get(&format!("{url}/pay/42/x")).await.unwrap().status, 200);
    assert_eq!(get(&format!("{url}/search")).await.unwrap().status, 200);
}

#[tokio::test]
async fn first_three_fail_then_every_call_succeeds() {
    let server = one_stub();
    server
        .add_fault("dep", fault(r#"{"error": {"status": 503}, "first": 3}"#))
        .unwrap();
    let url = server.url("dep").unwrap();
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(get(&url).await.unwrap().status.as_u16());
    }
    assert_eq!(codes, [503, 503, 503, 200, 200, 200]);
}

#[tokio::test]
async fn a_leased_fault_is_gone_once_its_lease_runs_out() {
    let server = one_stub();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 500}, "lease": "300ms"}"#),
        )
        .unwrap();
    let url = server.url("dep").unwrap();
    assert_eq!(get(&url).await.unwrap().status, 500);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(&url).await.unwrap().status, 200);
    assert!(server.dependency("dep").unwrap().faults.is_empty());
}

#[tokio::test]
async fn latency_before_an_error_makes_a_slow_error() {
    let server = one_stub();
    server
        .set_faults(
            "dep",
            vec![
                fault(r#"{"latency": {"fixed": "200ms"}}"#),
                fault(r#"{"error": {"status": 502}}"#),
            ],
            None,
        )
        .unwrap();
    let start = Instant::now();
    let answer = get(&server.url("dep").unwrap()).await.unwrap();
    assert_eq!(answer.status, 502);
    assert!(start.elapsed() >= Duration::from_millis(200));
    let record = &server.journal("dep").unwrap()[0];
    assert_eq!(
        serde_json::to_string(&record.faults).unwrap(),
        r#"["latency","error"]"#
    );
}

/// `first` per request: each request's first 2 calls fail and its third
/// succeeds, however the requests' calls interleave (the retry that
/// recovers); by correlation id and by idempotency key alike, the typed
/// form and the file form the same. A call with no key is a request of its own.
#[tokio::test]
async fn first_per_request_fails_each_request_s_first_calls_and_lets_its_retry_through() {
    use fault_server::fault::Per;
    use fault_server::Fault;
    for (per, header, json) in [
        (
            Per::Request,
            "x-faultline-request",
            r#"{"error": {"status": 503}, "first": 2, "per": "request"}"#,
        ),
        (
            Per::IdempotencyKey,
            "idempotency-key",
            r#"{"error": {"status": 503}, "first": 2, "per": "idempotency_key"}"#,
        ),
    ] {
        assert_eq!(fault(json), Fault::error(503).first(2).per(per));
        let server = one_stub();
        server.add_fault("dep", fault(json)).unwrap();
        let url = server.url("dep").unwrap();
        let ids: Vec<String> = (1..=4).map(|i| format!("{i:032x}")).collect();
        let mut statuses = vec![Vec::new(); ids.len()];
        // Round-robin: the first attempt of every request, then the second, ...
        for _attempt in 0..3 {
            for (i, id) in ids.iter().enumerate() {
                let answer = send(http::Method::GET, &url, &[(header, id)])
                    .await
                    .unwrap();
                statuses[i].push(answer.status.as_u16());
            }
        }
        for (i, seen) in statuses.iter().enumerate() {
            assert_eq!(seen, &[503, 503, 200], "{per:?}: request {i}");
        }
        let lone = get(&url).await.unwrap();
        assert_eq!(
            lone.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{per:?}: no key, its own first call"
        );
    }
}

/// `probability` per request: every call of a request shares one draw, so a
/// request either fails on each attempt or on none; about the given share
/// of requests do, the same ones for the same seed.
#[tokio::test]
async fn probability_per_request_draws_once_for_all_a_request_s_attempts() {
    let draw = || async {
        let server = one_stub();
        server
            .add_fault(
                "dep",
                fault(r#"{"error": {"status": 503}, "probability": 0.3, "per": "request"}"#),
            )
            .unwrap();
        let url = server.url("dep").unwrap();
        let mut failed = Vec::new();
        for i in 0..200u32 {
            let id = format!("{i:032x}");
            let mut seen = Vec::new();
            for _ in 0..3 {
                let answer = send(http::Method::GET, &url, &[("x-faultline-request", &id)])
                    .await
                    .unwrap();
                seen.push(answer.status.as_u16());
            }
            assert!(
                seen == [503; 3] || seen == [200; 3],
                "request {i}: {seen:?}"
            );
            failed.push(seen[0] == 503);
        }
        failed
    };
    let first = draw().await;
    let share = first.iter().filter(|f| **f).count();
    assert!((40..=80).contains(&share), "{share} of 200 at 0.3");
    assert_eq!(first, draw().await, "the same seed draws the same requests");
}

#[tokio::test]
async fn per_without_a_count_or_a_draw_or_on_a_tcp_proxy_is_refused() {
    let err = serde_json::from_str::<fault_server::Fault>(
        r#"{"error": {"status": 503}, "per": "request"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("per: goes with `first` or a `probability` under 1"),
        "{err}"
    );
    let err = serde_json::from_str::<fault_server::Fault>(
        r#"{"reset_peer": {"timeout": "0s"}, "first": 1, "per": "request"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("per: `reset_peer` acts on a TCP proxy's connections"),
        "{err}"
    );
    let latency = fault(r#"{"latency": {"fixed": "1ms"}, "first": 1, "per": "request"}"#);
    assert!(latency
        .check_for(true)
        .unwrap_err()
        .contains("`per` counts HTTP requests"));
}

/// What a raw client that sends `Expect: 100-continue` and holds its body
/// back reads first: the status line of the first answer.
async fn first_answer_to_expect_continue(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /charge HTTP/1.1\r\nhost: dep\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut read = Vec::new();
    let mut buf = [0u8; 512];
    while !read.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "closed before any answer");
        read.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&read).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

/// A fault that rejects decides at the headers: a client that asked to be
/// told before sending its body (`Expect: 100-continue`) reads the
/// rejection, not `100 Continue`; with no fault it is asked for the body.
#[tokio::test]
async fn a_rejecting_fault_answers_expect_continue_before_the_body_is_sent() {
    let server = one_stub();
    let addr = server.addr("dep").unwrap();
    assert_eq!(
        first_answer_to_expect_continue(addr).await,
        "HTTP/1.1 100 Continue"
    );
    server
        .add_fault("dep", fault(r#"{"error": {"status": 503}}"#))
        .unwrap();
    assert_eq!(
        first_answer_to_expect_continue(addr).await,
        "HTTP/1.1 503 Service Unavailable"
    );
    server.clear_faults("dep").unwrap();
    server
        .add_fault("dep", fault(r#"{"throttle": {"rate": 0.001, "burst": 1}}"#))
        .unwrap();
    assert_eq!(
        first_answer_to_expect_continue(addr).await,
        "HTTP/1.1 100 Continue",
        "within the burst"
    );
    assert_eq!(
        first_answer_to_expect_continue(addr).await,
        "HTTP/1.1 429 Too Many Requests"
    );
}
