//! Answers without a body on the wire (a `HEAD`, a 204, a 304) are journaled
//! as `responded` with their status, and 1xx statuses are refused wherever a
//! status is configured.

use std::time::Duration;

use fault_server::{CallOutcome, DependencySpec, FaultServer, StubResponse};
use http::{Method, StatusCode};

use crate::common::{control, eventually, fault, send};

fn stub_answering(status: u16) -> FaultServer {
    let mut response = StubResponse::ok("a body the protocol may not send");
    response.status = status;
    FaultServer::builder()
        .dependency(DependencySpec::stub("dep").with_response(response))
        .control("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap()
}

/// Waits for the one call to end and checks its record and the counters.
async fn assert_responded(server: &FaultServer, calls: u64, status: u16) {
    let ended = eventually(Duration::from_secs(10), || {
        server.stats("dep").unwrap().total.completed == calls
    })
    .await;
    assert!(ended, "{:?}", server.journal("dep").unwrap());
    let records = server.journal("dep").unwrap();
    let last = records.last().unwrap();
    assert_eq!(
        (last.outcome, last.status),
        (CallOutcome::Responded, Some(status))
    );
    let total = server.stats("dep").unwrap().total;
    assert_eq!(
        total.outcomes.get(&CallOutcome::ClientGone),
        None,
        "{total:?}"
    );
    assert_eq!(total.outcomes[&CallOutcome::Responded], calls, "{total:?}");
}

#[tokio::test]
async fn a_head_is_journaled_as_responded_with_the_length_a_get_would_have() {
    let server = stub_answering(200);
    let url = server.url("dep").unwrap();
    let answer = send(Method::HEAD, &url, &[]).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_empty());
    assert_eq!(answer.headers["content-length"], "32");
    assert_responded(&server, 1, 200).await;
    // The connection stays usable: a GET after it gets the whole body.
    let answer = send(Method::GET, &url, &[]).await.unwrap();
    assert_eq!(answer.body.len(), 32);
    assert_responded(&server, 2, 200).await;
}

#[tokio::test]
async fn a_204_and_a_304_with_a_configured_body_are_journaled_as_responded() {
    for status in [204, 304] {
        let server = stub_answering(status);
        let url = server.url("dep").unwrap();
        for method in [Method::GET, Method::HEAD, Method::POST] {
            let answer = send(method, &url, &[]).await.unwrap();
            assert_eq!(answer.status.as_u16(), status);
            assert!(answer.body.is_empty());
        }
        assert_responded(&server, 3, status).await;
        assert_eq!(server.stats("dep").unwrap().total.statuses[&status], 3);
    }
}

#[tokio::test]
async fn an_error_fault_answering_204_or_a_slow_body_to_a_head_is_responded() {
    let server = stub_answering(200);
    let url = server.url("dep").unwrap();
    server
        .add_fault("dep", fault(r#"{"slow_body": {"bytes_per_second": 1}}"#))
        .unwrap();
    send(Method::HEAD, &url, &[]).await.unwrap();
    assert_responded(&server, 1, 200).await;
    server.clear_faults("dep").unwrap();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 204, "body": "not sent"}}"#),
        )
        .unwrap();
    let answer = send(Method::GET, &url, &[]).await.unwrap();
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_responded(&server, 2, 204).await;
}

#[tokio::test]
async fn a_1xx_status_is_refused_for_stubs_errors_and_throttles() {
    let server = stub_answering(200);
    for status in [100, 101, 103, 199] {
        let mut response = StubResponse::ok("");
        response.status = status;
        let err = server.set_response("dep", response).unwrap_err();
        assert!(err.to_string().contains("1xx"), "{err}");

        let body = format!(r#"{{"name": "x{status}", "response": {{"status": {status}}}}}"#);
        let (code, problem) = control(&server, Method::POST, "/dependencies", Some(&body)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["status"], 400);

        let body = format!(r#"{{"error": {{"status": {status}}}}}"#);
        let (code, problem) = control(
            &server,
            Method::POST,
            "/dependencies/dep/faults",
            Some(&body),
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{problem}");
        assert!(
            problem["error"].as_str().unwrap().contains("status"),
            "{problem}"
        );

        let body = format!(r#"{{"throttle": {{"max_in_flight": 1, "status": {status}}}}}"#);
        let (code, problem) = control(
            &server,
            Method::POST,
            "/dependencies/dep/faults",
            Some(&body),
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{problem}");
    }
}
