//! Every control route over real HTTP, and each of its error cases.

use std::time::Duration;

use fault_server::{DependencySpec, FaultServer, StartError};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{control, control_with, get, one_stub};

#[tokio::test]
async fn healthz_version_and_metrics_answer() {
    let server = one_stub();
    let (status, body) = control(&server, Method::GET, "/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = control(&server, Method::GET, "/version", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["fault_server"], env!("CARGO_PKG_VERSION"));
    let before = server.clock().now_ns();
    let (status, body) = control(&server, Method::GET, "/clock", None).await;
    assert_eq!(status, StatusCode::OK);
    let now = body["now_ns"].as_u64().unwrap();
    assert!(now >= before && now <= server.clock().now_ns(), "{body}");
    get(&server.url("dep").unwrap()).await.unwrap();
    let (status, Value::String(text)) = control(&server, Method::GET, "/metrics", None).await
    else {
        panic!("metrics are text");
    };
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"fault_server_calls_total{dependency="dep",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fault_server_peak_in_flight{dependency="dep"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fault_server_calls_received_total{dependency="dep"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn dependencies_are_listed_added_shown_patched_and_deleted() {
    let server = one_stub();
    let (status, list) = control(&server, Method::GET, "/dependencies", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (status, added) = control(
        &server,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "crm", "response": {"status": 201, "body": "made"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let url = added["url"].as_str().unwrap().to_owned();
    let answer = get(&url).await.unwrap();
    assert_eq!(
        (answer.status.as_u16(), &answer.body[..]),
        (201, &b"made"[..])
    );

    let (status, shown) = control(&server, Method::GET, "/dependencies/crm", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["calls"], 1);

    let (status, patched) = control(
        &server,
        Method::PATCH,
        "/dependencies/crm",
        Some(r#"{"response": {"body": "changed"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(get(&url).await.unwrap().body, "changed");

    let (status, _) = control(&server, Method::DELETE, "/dependencies/crm", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = control(&server, Method::GET, "/dependencies/crm", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "no dependency named `crm`", "status": 404})
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        get(&url).await.is_err(),
        "a deleted dependency stops listening"
    );
}

/// What an error answer's message must say.
#[derive(Debug, Clone, Copy)]
enum Says {
    /// Anything: the status is the point.
    Anything,
    /// This message.
    Exactly(&'static str),
    /// A message that starts so.
    StartsWith(&'static str),
    /// A message with this in it.
    Contains(&'static str),
}

/// Each request the control API refuses (method, path, body), with the
/// status it answers and what its error says. Every error answer is
/// `{"error": "...", "status": N}`.
#[tokio::test]
async fn each_bad_request_gets_its_status_and_an_error_naming_what_is_wrong() {
    use Says::*;
    let server = one_stub();
    let taken = format!(
        r#"{{"name": "y", "listen": "{}"}}"#,
        server.addr("dep").unwrap()
    );
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let no_dep = Exactly("no dependency named `nope`");
    let bad_faults = r#"{"faults": [{"reset": {}}, {"throttle": {"rate": -1}}]}"#;
    #[rustfmt::skip]
    let cases = [
        // Adding or changing a dependency.
        ("POST",   "/dependencies",                       r#"{"name": "dep"}"#,                          409, Anything),
        ("POST",   "/dependencies",                       r#"{"name": "a b"}"#,                          400, StartsWith("name:")),
        ("POST",   "/dependencies",                       r#"{"name": "x", "respons": {}}"#,             400, Contains("respons")),
        ("POST",   "/dependencies",                       "{not json",                                   400, StartsWith("body:")),
        ("POST",   "/dependencies",                       &taken,                                        409, Contains("cannot listen")),
        ("POST",   "/dependencies",                       r#"{"name": "x", "lease": "0s"}"#,             400, Contains("lease: must be above zero")),
        ("POST",   "/dependencies",                       r#"{"name": "x", "lease": "soon"}"#,           400, Contains("lease:")),
        ("POST",   "/dependencies",                       r#"{"name": "x", "lease": "2s", "leese": 1}"#, 400, Contains("unknown field `leese`")),
        ("PATCH",  "/dependencies/dep",                   r#"{"response": {"status": 1000}}"#,           400, Contains("status")),
        // Faults.
        ("PUT",    "/dependencies/dep/faults",            bad_faults,                                    400, StartsWith("faults[1]: throttle: rate")),
        ("PUT",    "/dependencies/dep/faults",            r#"{"faults": [], "lease": "0s"}"#,            400, StartsWith("lease")),
        ("POST",   "/dependencies/dep/faults",            r#"{"probability": 2}"#,                       400, Anything),
        // The journal, marks, routes, bodies.
        ("GET",    "/dependencies/dep/journal?since=abc", "",                                            400, StartsWith("since")),
        ("POST",   "/marks",                              r#"{"name": ""}"#,                             400, Anything),
        ("POST",   "/marks",                              "{}",                                          400, Anything),
        ("POST",   "/marks",                              &huge,                                         413, Anything),
        ("GET",    "/proxy",                              "",                                            404, Anything),
        // Every route of an unknown dependency.
        ("GET",    "/dependencies/nope",                  "",                                            404, no_dep),
        ("PATCH",  "/dependencies/nope",                  r#"{"response": {}}"#,                         404, no_dep),
        ("DELETE", "/dependencies/nope",                  "",                                            404, no_dep),
        ("PUT",    "/dependencies/nope/faults",           r#"{"faults": []}"#,                           404, no_dep),
        ("POST",   "/dependencies/nope/faults",           r#"{"reset": {}}"#,                            404, no_dep),
        ("POST",   "/dependencies/nope/faults",           r#"{"faults": []}"#,                           404, Anything),
        ("DELETE", "/dependencies/nope/faults",           "",                                            404, no_dep),
        ("DELETE", "/dependencies/nope/faults",           r#"{"faults": []}"#,                           404, Anything),
        ("GET",    "/dependencies/nope/journal",          "",                                            404, no_dep),
        ("GET",    "/dependencies/nope/stats",            "",                                            404, no_dep),
    ];
    for (method, path, body, status, says) in cases {
        let method: Method = method.parse().unwrap();
        let case = format!("{method} {path} {body:.80}");
        let (answered, reply) = control(&server, method, path, Some(body)).await;
        assert_eq!(answered, status, "{case}: {reply}");
        assert_eq!(reply["status"], status, "{case}: {reply}");
        let error = reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: {reply}"));
        let holds = match says {
            Anything => true,
            Exactly(text) => error == text,
            StartsWith(text) => error.starts_with(text),
            Contains(text) => error.contains(text),
        };
        assert!(holds, "{case}: {error:?} should say {says:?}");
    }
}

#[tokio::test]
async fn faults_are_replaced_with_a_lease_added_and_cleared() {
    let server = one_stub();
    let (status, view) = control(
        &server,
        Method::PUT,
        "/dependencies/dep/faults",
        Some(r#"{"faults": [{"error": {"status": 503}}], "lease": "1m"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let expires_in = view["faults"][0]["expires_in"].as_str().unwrap();
    assert!(
        expires_in.starts_with("59s") || expires_in.starts_with("1m"),
        "{expires_in}"
    );
    assert_eq!(get(&server.url("dep").unwrap()).await.unwrap().status, 503);

    let (status, view) = control(
        &server,
        Method::POST,
        "/dependencies/dep/faults",
        Some(r#"{"latency": {"fixed": "10ms"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(view["faults"].as_array().unwrap().len(), 2);
    assert_eq!(view["faults"][0]["applied"], 1);

    // A lease renewed keeps the faults' state; the unleased fault stays unleased.
    let (status, view) = control(
        &server,
        Method::PUT,
        "/dependencies/dep/faults/lease",
        Some(r#"{"lease": "5s"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert!(
        view["faults"][0]["expires_in"]
            .as_str()
            .unwrap()
            .starts_with('4'),
        "{view}"
    );
    assert_eq!(view["faults"][0]["applied"], 1);
    assert!(view["faults"][1].get("expires_in").is_none(), "{view}");
    let (status, _) = control(
        &server,
        Method::PUT,
        "/dependencies/dep/faults/lease",
        Some(r#"{"lease": "0s"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = control(&server, Method::DELETE, "/dependencies/dep/faults", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(server.dependency("dep").unwrap().faults.is_empty());
    assert_eq!(get(&server.url("dep").unwrap()).await.unwrap().status, 200);
}

/// A dependency added with a lease lives while the lease is renewed and is
/// removed (listener closed, journal gone) once it lapses: what a killed run
/// added to a server it does not own does not outlive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_dependency_lives_while_renewed_and_goes_when_its_lease_lapses() {
    let server = one_stub();
    let (status, view) = control(
        &server,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "temp", "lease": "1s", "response": {"status": 201}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert!(view["expires_in"].as_str().is_some(), "{view}");
    let url = view["url"].as_str().unwrap().to_owned();
    assert_eq!(get(&url).await.unwrap().status, 201);
    // Renewed every 200 ms for 2 s: twice the lease, and still there.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, view) = control(
            &server,
            Method::PUT,
            "/dependencies/temp/lease",
            Some(r#"{"lease": "1s"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{view}");
    }
    assert_eq!(get(&url).await.unwrap().status, 201);
    // Left alone, it goes within its lease (and some slack for a busy machine).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = control(&server, Method::GET, "/dependencies/temp", None).await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still there after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(get(&url).await.is_err(), "its listener closed");
    // The name is free again; one added without a lease cannot be renewed.
    let (status, _) = control(
        &server,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "temp"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = control(
        &server,
        Method::PUT,
        "/dependencies/temp/lease",
        Some(r#"{"lease": "1s"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("without a lease"),
        "{body}"
    );
}

#[tokio::test]
async fn the_journal_pages_by_sequence_and_stats_count_exactly() {
    let server = one_stub();
    let url = server.url("dep").unwrap();
    for _ in 0..3 {
        get(&url).await.unwrap();
    }
    let (status, Value::String(lines)) = control(
        &server,
        Method::GET,
        "/dependencies/dep/journal?since=1&limit=1",
        None,
    )
    .await
    else {
        panic!("the journal is JSON lines");
    };
    assert_eq!(status, StatusCode::OK);
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["seq"], 1);
    assert_eq!(records[0]["outcome"], "responded");

    let (status, stats) = control(&server, Method::GET, "/dependencies/dep/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["total"]["calls"], 3);
    assert_eq!(stats["total"]["statuses"]["200"], 3);
    assert_eq!(stats["windows"][0]["name"], "start");
}

#[tokio::test]
async fn marks_open_windows_and_reset_clears_faults_and_journals() {
    let server = one_stub();
    let (status, mark) = control(
        &server,
        Method::POST,
        "/marks",
        Some(r#"{"name": "baseline"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(mark["windows"]["dep"], 1);

    server
        .add_fault("dep", crate::common::fault(r#"{"error": {"status": 500}}"#))
        .unwrap();
    get(&server.url("dep").unwrap()).await.unwrap();
    let (status, _) = control(&server, Method::POST, "/reset", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let view = server.dependency("dep").unwrap();
    assert!(view.faults.is_empty());
    assert_eq!(view.calls, 0);
    assert!(server.journal("dep").unwrap().is_empty());
    assert_eq!(server.stats("dep").unwrap().windows.len(), 1);
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let server = one_stub();
    let url = format!("http://{}/reset", server.control_addr().unwrap());
    let response = crate::common::client()
        .request(http::Request::get(url).body(Default::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn browsers_are_refused_and_a_token_is_enforced() {
    let server = one_stub();
    let (status, body) = control_with(
        &server,
        Method::GET,
        "/healthz",
        None,
        &[("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let guarded = FaultServer::builder()
        .control("127.0.0.1:0".parse().unwrap())
        .token("s3cret")
        .start()
        .unwrap();
    let (status, _) = control(&guarded, Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = control_with(
        &guarded,
        Method::GET,
        "/healthz",
        None,
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = control_with(
        &guarded,
        Method::GET,
        "/healthz",
        None,
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn binding_beyond_loopback_without_a_token_is_refused() {
    let refused = FaultServer::builder()
        .control("0.0.0.0:0".parse().unwrap())
        .start()
        .unwrap_err();
    assert!(matches!(refused, StartError::TokenRequired(_)), "{refused}");
}

#[tokio::test]
async fn a_dependency_added_from_rust_shows_over_http() {
    let server = one_stub();
    server
        .add_dependency(&DependencySpec::stub("later"))
        .unwrap();
    let (status, view) = control(&server, Method::GET, "/dependencies/later", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["url"], server.url("later").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_fault_json_over_http_gets_a_400_or_is_accepted_never_a_500() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let server = one_stub();
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::btree_map(
        proptest::sample::select(vec![
            "latency",
            "error",
            "reset",
            "probability",
            "first",
            "lease",
            "match",
            "x",
        ]),
        proptest::prop_oneof![
            proptest::strategy::Just(json!({})),
            proptest::strategy::Just(json!({"fixed": "1ms"})),
            proptest::strategy::Just(json!({"status": 503})),
            proptest::strategy::Just(json!(0.5)),
            proptest::strategy::Just(json!(-3)),
            proptest::strategy::Just(json!("1s")),
            proptest::strategy::Just(json!(null)),
            proptest::strategy::Just(json!([1, 2])),
        ],
        0..4,
    );
    for _ in 0..64 {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        let body = serde_json::to_string(&value).unwrap();
        let (status, reply) = control(
            &server,
            Method::POST,
            "/dependencies/dep/faults",
            Some(&body),
        )
        .await;
        match status {
            StatusCode::CREATED => {}
            StatusCode::BAD_REQUEST => assert!(
                reply["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{reply}"
            ),
            other => panic!("{body} got {other}: {reply}"),
        }
        server.clear_faults("dep").unwrap();
    }
}

#[tokio::test]
async fn an_alert_sink_keeps_the_alerts_of_each_webhook() {
    let server = one_stub();
    server
        .add_dependency(&DependencySpec::stub("alerts").as_alert_sink())
        .unwrap();
    let webhook = r#"{"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "ConcurrencyHigh"}}]}"#;
    let url = format!("{}/api/v2/alerts", server.url("alerts").unwrap());
    let response = crate::common::client()
        .request(
            http::Request::post(url)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    webhook.as_bytes(),
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let alerts = server.alerts("alerts").unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alertname, "ConcurrencyHigh");
    let (status, body) = control(&server, Method::GET, "/dependencies/alerts/alerts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["status"], "firing");
    // A plain stub ignores bodies.
    assert!(server.alerts("dep").unwrap().is_empty());
}
