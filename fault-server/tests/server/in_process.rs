//! The in-process dependency on tokio's paused clock: as a tower service and
//! through a hyper-util client over duplex pipes, with the same faults and
//! journal as over sockets, and no real time spent on injected delays.

use std::time::Duration;

use bytes::Bytes;
use fault_server::{
    CallError, CallOutcome, DependencySpec, Fault, InProcessDependency, StubResponse,
};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::ServiceExt;

fn fault(json: &str) -> Fault {
    serde_json::from_str(json).unwrap()
}

fn request(id: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .uri("/pay")
        .header("x-faultline-request", id)
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn scheduled_faults_go_by_arrival_then_the_standing_faults_apply() {
    let spec = DependencySpec::stub("payments")
        .with_response(StubResponse::ok("paid"))
        .with_fault(fault(r#"{"error": {"status": 500}}"#));
    let payments = InProcessDependency::new(&spec, 7).unwrap();
    payments
        .schedule(vec![
            vec![fault(r#"{"latency": {"fixed": "8s"}}"#)],
            vec![],
            vec![fault(r#"{"reset": {}}"#)],
        ])
        .unwrap();
    let wall = std::time::Instant::now();
    let started = Instant::now();
    let slow = payments.clone().oneshot(request("a")).await.unwrap();
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.body(), "paid");
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    assert_eq!(
        payments
            .clone()
            .oneshot(request("b"))
            .await
            .unwrap()
            .status(),
        200
    );
    let reset = payments.clone().oneshot(request("c")).await.unwrap_err();
    assert_eq!(reset, CallError::Reset);
    let after = payments.clone().oneshot(request("d")).await.unwrap();
    assert_eq!(after.status(), 500, "past the schedule, the standing fault");
    assert!(
        wall.elapsed() < Duration::from_secs(2),
        "8 s of faults cost no real time"
    );

    let calls = payments.calls();
    let outcomes: Vec<_> = calls.iter().map(|c| (c.outcome, c.status)).collect();
    assert_eq!(
        outcomes,
        [
            (CallOutcome::Responded, Some(200)),
            (CallOutcome::Responded, Some(200)),
            (CallOutcome::Reset, None),
            (CallOutcome::Responded, Some(500)),
        ]
    );
    assert_eq!(
        calls[0].departure_ns.unwrap() - calls[0].arrival_ns,
        8_000_000_000
    );
    assert_eq!(calls[3].correlation_id.as_deref(), Some("d"));
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_on_a_hang_is_journaled_as_gone_and_leaves_flight() {
    let spec = DependencySpec::stub("crm").with_fault(fault(r#"{"hang": {}}"#));
    let crm = InProcessDependency::new(&spec, 0).unwrap();
    let first = tokio::spawn(crm.clone().oneshot(request("held")));
    let timed_out = tokio::time::timeout(Duration::from_secs(3), crm.clone().oneshot(request("t")));
    tokio::task::yield_now().await;
    assert_eq!(crm.in_flight(), 1);
    assert!(timed_out.await.is_err(), "a hang never answers");
    assert_eq!(
        crm.in_flight(),
        1,
        "the timed-out call left, the held one stays"
    );
    first.abort();
    let _ = first.await;
    assert_eq!(crm.in_flight(), 0);
    let calls = crm.calls();
    assert!(
        calls.iter().all(|c| c.outcome == CallOutcome::ClientGone),
        "{calls:?}"
    );
    assert_eq!(calls[1].departure_ns, Some(3_000_000_000));
    assert_eq!(
        calls[1].in_flight, 2,
        "in flight at its arrival, itself included"
    );
    assert_eq!(crm.stats().total.peak_in_flight, 2);
}

#[tokio::test(start_paused = true)]
async fn a_hyper_client_over_duplex_pipes_meets_the_same_faults() {
    let spec = DependencySpec::stub("crm").with_response(StubResponse::ok("hello"));
    let crm = InProcessDependency::new(&spec, 0).unwrap();
    crm.schedule(vec![
        vec![fault(r#"{"latency": {"fixed": "8s"}}"#)],
        vec![fault(r#"{"reset": {}}"#)],
        vec![fault(r#"{"hang": {}}"#)],
        vec![fault(r#"{"malformed": {}}"#)],
    ])
    .unwrap();
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(crm.connector());
    let get = || client.get("http://crm/accounts".parse().unwrap());

    let started = Instant::now();
    let slow = get().await.unwrap();
    assert_eq!(
        slow.into_body().collect().await.unwrap().to_bytes(),
        "hello"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    assert!(get().await.is_err(), "a reset is an error to the client");
    assert!(
        tokio::time::timeout(Duration::from_secs(2), get())
            .await
            .is_err(),
        "a hang answers nothing"
    );
    assert!(get().await.is_err(), "garbage is not HTTP");
    assert_eq!(get().await.unwrap().status(), 200);
    // The hung call's connection task notices the client leaving on its own time.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let outcomes: Vec<_> = crm.calls().iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        [
            CallOutcome::Responded,
            CallOutcome::Reset,
            CallOutcome::ClientGone,
            CallOutcome::Malformed,
            CallOutcome::Responded,
        ]
    );
}

#[tokio::test]
async fn bad_schedules_are_refused_with_the_place_of_the_fault() {
    let crm = InProcessDependency::new(&DependencySpec::stub("crm"), 0).unwrap();
    let error = crm
        .schedule(vec![
            vec![],
            vec![fault(r#"{"error": {"status": 503}}"#).probability(1.5)],
        ])
        .unwrap_err();
    assert!(error.to_string().contains("schedule[1][0]"), "{error}");
}
