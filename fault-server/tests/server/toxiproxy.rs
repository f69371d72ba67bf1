//! The Toxiproxy 2.x API on the control port, route by route, with
//! Toxiproxy's status codes, bodies and errors, as its clients send them
//! (partial updates, no JSON Content-Type, `"toxics": null`); and what it
//! does to real connections through an echo server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_server::{CallOutcome, DependencySpec, FaultServer, StubResponse};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{control, control_with, get};

/// A server with no dependencies and its control API on port 0.
fn server() -> FaultServer {
    FaultServer::builder()
        .control("127.0.0.1:0".parse().unwrap())
        .seed(3)
        .start()
        .unwrap()
}

/// A TCP server that greets each connection with `banner`, then echoes.
async fn upstream(banner: &'static [u8]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(banner).await;
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Connects and reads the banner.
async fn connect(listen: &str, banner: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let mut got = vec![0; banner.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, banner);
    stream
}

async fn round_trip(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
    started.elapsed()
}

/// Whether connecting to `addr` is refused within 2 s (the listener closes
/// on the data plane's runtime just after the API answered).
async fn refused(addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

fn error(status: u16, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(status).unwrap(),
        json!({"error": message, "status": status}),
    )
}

async fn create(server: &FaultServer, body: Value) -> Value {
    let (status, proxy) = control(server, Method::POST, "/proxies", Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{proxy}");
    proxy
}

#[tokio::test]
async fn proxies_are_created_listed_shown_and_deleted_with_toxiproxy_s_answers() {
    let server = server();
    let up = upstream(b"hi").await;
    assert_eq!(
        control(&server, Method::GET, "/proxies", None).await,
        (StatusCode::OK, json!({}))
    );
    // As curl sends it: no JSON Content-Type, `"toxics": null`.
    let body = json!({"name": "redis", "listen": "127.0.0.1:0", "upstream": up.to_string(), "enabled": true, "toxics": null});
    let (status, proxy) = control_with(
        &server,
        Method::POST,
        "/proxies",
        Some(&body.to_string()),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{proxy}");
    let listen = proxy["listen"].as_str().unwrap().to_owned();
    assert!(!listen.ends_with(":0"), "the port bound is shown: {listen}");
    assert_eq!(
        proxy,
        json!({"name": "redis", "listen": listen, "upstream": up.to_string(), "enabled": true, "toxics": []})
    );
    let mut stream = connect(&listen, b"hi").await;
    round_trip(&mut stream).await;

    assert_eq!(
        control(&server, Method::POST, "/proxies", Some(&body.to_string())).await,
        error(409, "proxy already exists")
    );
    assert_eq!(
        control(
            &server,
            Method::POST,
            "/proxies",
            Some(r#"{"upstream": "127.0.0.1:1"}"#)
        )
        .await,
        error(400, "missing required field: name")
    );
    assert_eq!(
        control(&server, Method::POST, "/proxies", Some(r#"{"name": "x"}"#)).await,
        error(400, "missing required field: upstream")
    );
    let (status, body) = control(&server, Method::POST, "/proxies", Some("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body: "),
        "{body}"
    );
    let (status, body) = control(
        &server,
        Method::POST,
        "/proxies",
        Some(r#"{"name": "x", "upstream": "127.0.0.1:1", "upstrem": "y"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("upstrem"),
        "{body}"
    );
    for (listen, status, says) in [
        ("0.0.0.0:0", StatusCode::FORBIDDEN, "beyond this machine"),
        (
            "example.com:80",
            StatusCode::BAD_REQUEST,
            "names are not resolved",
        ),
    ] {
        let body = json!({"name": "x", "upstream": "127.0.0.1:1", "listen": listen});
        let (got, body) = control(&server, Method::POST, "/proxies", Some(&body.to_string())).await;
        assert_eq!(got, status, "{listen}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, body) = control(
        &server,
        Method::POST,
        "/proxies",
        Some(r#"{"name": "x", "upstream": "nowhere"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, all) = control(&server, Method::GET, "/proxies", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all, json!({"redis": proxy}));
    assert_eq!(
        control(&server, Method::GET, "/proxies/redis", None).await,
        (StatusCode::OK, proxy.clone())
    );
    assert_eq!(
        control(&server, Method::GET, "/proxies/nope", None).await,
        error(404, "proxy not found")
    );
    // The same object our own routes show.
    let (_, dependency) = control(&server, Method::GET, "/dependencies/redis", None).await;
    assert_eq!(dependency["tcp"], up.to_string());
    // A stub is not a proxy.
    server
        .add_dependency(&DependencySpec::stub("stub").with_response(StubResponse::ok("ok")))
        .unwrap();
    assert_eq!(
        control(&server, Method::GET, "/proxies/stub", None).await,
        error(404, "proxy not found")
    );
    assert_eq!(
        control(&server, Method::GET, "/proxies", None).await.1,
        json!({"redis": proxy})
    );
    let (status, _) = control(&server, Method::PUT, "/proxies/redis", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(
        control(&server, Method::DELETE, "/proxies/redis", None).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_eq!(
        control(&server, Method::DELETE, "/proxies/redis", None).await,
        error(404, "proxy not found")
    );
    assert!(refused(&listen).await, "a deleted proxy stops listening");
}

#[tokio::test]
async fn toxics_are_created_with_toxiproxy_s_defaults_updated_in_part_and_deleted() {
    let server = server();
    let up = upstream(b"").await;
    let proxy = create(&server, json!({"name": "db", "upstream": up.to_string()})).await;
    let listen = proxy["listen"].as_str().unwrap();
    assert!(
        listen.starts_with("127.0.0.1:"),
        "listen defaults to loopback: {listen}"
    );
    let mut stream = TcpStream::connect(listen).await.unwrap();
    assert!(round_trip(&mut stream).await < Duration::from_millis(100));

    let toxics = "/proxies/db/toxics";
    let (status, toxic) = control(
        &server,
        Method::POST,
        toxics,
        Some(r#"{"type": "latency", "attributes": {"latency": 150}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "create answers 200: {toxic}");
    let expected = json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
        "toxicity": 1.0, "attributes": {"latency": 150, "jitter": 0}});
    assert_eq!(toxic, expected);
    let took = round_trip(&mut stream).await;
    assert!(
        took >= Duration::from_millis(150),
        "on the live connection: {took:?}"
    );

    for (body, status, message) in [
        (r#"{"type": "latency"}"#, 409, "toxic already exists"),
        (r#"{"type": "nope"}"#, 400, "invalid toxic type"),
        (r#"{"attributes": {}}"#, 400, "invalid toxic type"),
        (
            r#"{"type": "error", "name": "e"}"#,
            400,
            "invalid toxic type",
        ),
        (
            r#"{"type": "latency", "stream": "sideways"}"#,
            400,
            "stream was invalid",
        ),
        (
            r#"{"type": "latency", "name": "l", "attributes": {"latncy": 1}}"#,
            400,
            "latncy",
        ),
        (
            r#"{"type": "latency", "name": "l", "toxicity": 1.5}"#,
            400,
            "probability",
        ),
        (
            r#"{"type": "bandwidth", "name": "b", "attributes": {"rate": -1}}"#,
            400,
            "attributes",
        ),
        (
            r#"{"type": "latency", "name": "l", "flavour": 1}"#,
            400,
            "flavour",
        ),
    ] {
        let (got, answer) = control(&server, Method::POST, toxics, Some(body)).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_eq!(answer["status"], status, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{body}: {answer}"
        );
    }
    let (status, named) = control(
        &server,
        Method::POST,
        toxics,
        Some(r#"{"name": "cut", "type": "limit_data", "stream": "upstream", "toxicity": 0, "attributes": {"bytes": 1}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(named["stream"], "upstream");
    assert_eq!(named["toxicity"], 0.0);

    let (status, list) = control(&server, Method::GET, toxics, None).await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 2)
    );
    assert_eq!(
        control(
            &server,
            Method::GET,
            "/proxies/db/toxics/latency_downstream",
            None
        )
        .await,
        (StatusCode::OK, expected.clone())
    );
    assert_eq!(
        control(&server, Method::GET, "/proxies/db/toxics/nope", None).await,
        error(404, "toxic not found")
    );
    assert_eq!(
        control(&server, Method::GET, "/proxies/nope/toxics", None).await,
        error(404, "proxy not found")
    );
    assert_eq!(
        control(&server, Method::GET, "/proxies/nope/toxics/x", None).await,
        error(404, "proxy not found")
    );

    // A partial update: jitter and toxicity stay as they were.
    let (status, updated) = control(
        &server,
        Method::PATCH,
        "/proxies/db/toxics/latency_downstream",
        Some(r#"{"attributes": {"latency": 0}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["attributes"], json!({"latency": 0, "jitter": 0}));
    assert_eq!(updated["toxicity"], 1.0);
    assert!(round_trip(&mut stream).await < Duration::from_millis(100));
    // The older POST updates too, and the whole toxic sent back is fine.
    let mut whole = updated.clone();
    whole["attributes"]["latency"] = json!(120);
    let (status, updated) = control(
        &server,
        Method::POST,
        "/proxies/db/toxics/latency_downstream",
        Some(&whole.to_string()),
    )
    .await;
    assert_eq!((status, &updated), (StatusCode::OK, &whole));
    assert!(round_trip(&mut stream).await >= Duration::from_millis(120));
    let (status, answer) = control(
        &server,
        Method::PATCH,
        "/proxies/db/toxics/latency_downstream",
        Some(r#"{"type": "bandwidth"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        control(
            &server,
            Method::PATCH,
            "/proxies/db/toxics/nope",
            Some("{}")
        )
        .await,
        error(404, "toxic not found")
    );

    assert_eq!(
        control(
            &server,
            Method::DELETE,
            "/proxies/db/toxics/latency_downstream",
            None
        )
        .await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_eq!(
        control(
            &server,
            Method::DELETE,
            "/proxies/db/toxics/latency_downstream",
            None
        )
        .await,
        error(404, "toxic not found")
    );
    assert!(round_trip(&mut stream).await < Duration::from_millis(100));

    // A fault added through our API is a toxic too, labelled by kind and id,
    // and Toxiproxy's routes find it by that label.
    let (status, _) = control(
        &server,
        Method::POST,
        "/dependencies/db/faults",
        Some(r#"{"latency": {"fixed": "5ms"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = control(&server, Method::GET, toxics, None).await;
    let label = list[1]["name"].as_str().unwrap().to_owned();
    assert!(label.starts_with("latency-"), "{list}");
    assert_eq!(list[1]["attributes"], json!({"latency": 5, "jitter": 0}));
    let path = format!("/proxies/db/toxics/{label}");
    assert_eq!(
        control(&server, Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, dependency) = control(&server, Method::GET, "/dependencies/db", None).await;
    assert_eq!(
        dependency["faults"].as_array().unwrap().len(),
        1,
        "{dependency}"
    );
    assert_eq!(dependency["faults"][0]["name"], "cut");
}

#[tokio::test]
async fn a_disabled_proxy_closes_its_connections_and_refuses_new_ones_until_enabled_or_reset() {
    let server = server();
    let up = upstream(b"hi").await;
    let proxy = create(&server, json!({"name": "db", "upstream": up.to_string()})).await;
    let listen = proxy["listen"].as_str().unwrap().to_owned();
    let mut open = connect(&listen, b"hi").await;
    round_trip(&mut open).await;

    let (status, proxy) = control(
        &server,
        Method::PATCH,
        "/proxies/db",
        Some(r#"{"enabled": false}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proxy["enabled"], false);
    assert_eq!(proxy["listen"], listen.as_str(), "it keeps its address");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the open connection is closed: {read:?}"
    );
    assert!(refused(&listen).await, "new connections are refused");
    let record = server.journal("db").unwrap().remove(0);
    assert_eq!(record.outcome, CallOutcome::Closed, "{record:?}");

    // The older POST updates too; only the fields sent change.
    let (status, proxy) = control(
        &server,
        Method::POST,
        "/proxies/db",
        Some(r#"{"enabled": true}"#),
    )
    .await;
    assert_eq!((status, &proxy["enabled"]), (StatusCode::OK, &json!(true)));
    assert_eq!(proxy["upstream"], up.to_string());
    connect(&listen, b"hi").await;

    // Reset enables every proxy and removes every toxic.
    control(
        &server,
        Method::POST,
        "/proxies/db/toxics",
        Some(r#"{"type": "timeout"}"#),
    )
    .await;
    control(
        &server,
        Method::PATCH,
        "/proxies/db",
        Some(r#"{"enabled": false}"#),
    )
    .await;
    assert!(refused(&listen).await);
    assert_eq!(
        control(&server, Method::POST, "/reset", None).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let (_, proxy) = control(&server, Method::GET, "/proxies/db", None).await;
    assert_eq!(
        (&proxy["enabled"], &proxy["toxics"]),
        (&json!(true), &json!([]))
    );
    connect(&listen, b"hi").await;

    // Created disabled, it does not listen until enabled.
    let proxy = create(
        &server,
        json!({"name": "off", "upstream": up.to_string(), "listen": "localhost:0", "enabled": false}),
    )
    .await;
    assert_eq!(proxy["enabled"], false);
    assert!(refused(proxy["listen"].as_str().unwrap()).await);
}

#[tokio::test]
async fn an_update_moves_the_listener_and_points_new_connections_at_a_new_upstream() {
    let server = server();
    let (first, second) = (upstream(b"one").await, upstream(b"two").await);
    let proxy = create(
        &server,
        json!({"name": "db", "upstream": first.to_string()}),
    )
    .await;
    let old = proxy["listen"].as_str().unwrap().to_owned();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let body = json!({"listen": free.to_string(), "upstream": second.to_string()});
    let (status, proxy) = control(
        &server,
        Method::PATCH,
        "/proxies/db",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{proxy}");
    assert_eq!(proxy["listen"], free.to_string());
    assert_eq!(proxy["upstream"], second.to_string());
    connect(&free.to_string(), b"two").await;
    assert!(refused(&old).await, "the old address is given up");
    for (body, says) in [
        (r#"{"name": "other"}"#, "cannot be renamed"),
        (r#"{"protocol": "http"}"#, "protocol cannot change"),
        (r#"{"upstream": "nowhere"}"#, "host:port"),
        (r#"{"enabled": "yes"}"#, "bad request body"),
    ] {
        let (status, answer) = control(&server, Method::PATCH, "/proxies/db", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        control(&server, Method::PATCH, "/proxies/nope", Some("{}")).await,
        error(404, "proxy not found")
    );
}

#[tokio::test]
async fn populate_checks_everything_first_keeps_unchanged_proxies_and_replaces_changed_ones() {
    let server = server();
    let (first, second) = (upstream(b"one").await, upstream(b"two").await);
    let body = json!([
        {"name": "a", "listen": "127.0.0.1:0", "upstream": first.to_string()},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": first.to_string(), "enabled": false},
    ]);
    let (status, answer) =
        control(&server, Method::POST, "/populate", Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let proxies = answer["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 2);
    assert_eq!(proxies[1]["enabled"], false);
    let a_listen = proxies[0]["listen"].as_str().unwrap().to_owned();
    control(
        &server,
        Method::POST,
        "/proxies/a/toxics",
        Some(r#"{"type": "latency", "attributes": {"latency": 1}}"#),
    )
    .await;
    let mut open = connect(&a_listen, b"one").await;

    let body = json!([
        {"name": "a", "listen": "127.0.0.1:0", "upstream": first.to_string()},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": second.to_string()},
    ]);
    let (status, answer) =
        control(&server, Method::POST, "/populate", Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let proxies = answer["proxies"].as_array().unwrap();
    assert_eq!(proxies[0]["listen"], a_listen.as_str(), "unchanged: kept");
    assert_eq!(
        proxies[0]["toxics"].as_array().unwrap().len(),
        1,
        "with its toxics"
    );
    round_trip(&mut open).await;
    assert_eq!(
        proxies[1]["upstream"],
        second.to_string(),
        "changed: replaced"
    );
    assert_eq!(proxies[1]["enabled"], true);
    connect(proxies[1]["listen"].as_str().unwrap(), b"two").await;

    for (body, says) in [
        (
            json!([{"name": "c", "upstream": first.to_string()}, {"name": "d"}]),
            "missing required field: upstream at proxy 2",
        ),
        (
            json!([{"name": "c", "upstream": first.to_string()}, {"name": "c", "upstream": first.to_string()}]),
            "duplicate proxy name",
        ),
        (json!({"proxies": []}), "bad request body"),
    ] {
        let (status, answer) =
            control(&server, Method::POST, "/populate", Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
        assert_eq!(answer["proxies"], json!([]));
    }
    assert_eq!(
        control(&server, Method::GET, "/proxies/c", None).await.0,
        StatusCode::NOT_FOUND,
        "nothing is created when one proxy is wrong"
    );
}

/// The real upstream (a stub answering `real` on another server, whose
/// journal counts the calls that reached it), a server, and the Toxiproxy
/// proxy `api` made on it with `"protocol": "http"` in front of the upstream.
async fn http_proxy() -> (FaultServer, FaultServer, Value) {
    let upstream = FaultServer::builder()
        .dependency(DependencySpec::stub("api").with_response(StubResponse::ok("real")))
        .start()
        .unwrap();
    let server = server();
    let up = upstream.addr("api").unwrap();
    let proxy = create(
        &server,
        json!({"name": "api", "upstream": up.to_string(), "protocol": "http"}),
    )
    .await;
    (upstream, server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_protocol_proxy_takes_our_http_faults_as_toxics() {
    let (upstream, server, proxy) = http_proxy().await;
    let up = upstream.addr("api").unwrap();
    assert_eq!(proxy["protocol"], "http");
    assert_eq!(proxy["upstream"], format!("http://{up}"));
    let url = format!("http://{}/charge", proxy["listen"].as_str().unwrap());
    let answer = get(&url).await.unwrap();
    assert_eq!(
        (answer.status, &answer.body[..]),
        (StatusCode::OK, &b"real"[..])
    );
    assert_eq!(upstream.journal("api").unwrap().len(), 1);

    let (status, toxic) = control(
        &server,
        Method::POST,
        "/proxies/api/toxics",
        Some(r#"{"type": "error", "attributes": {"status": 503}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{toxic}");
    assert_eq!(toxic["name"], "error_downstream");
    assert_eq!(toxic["attributes"]["status"], 503);
    assert_eq!(
        get(&url).await.unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(upstream.journal("api").unwrap().len(), 1, "not forwarded");
    control(
        &server,
        Method::DELETE,
        "/proxies/api/toxics/error_downstream",
        None,
    )
    .await;

    control(
        &server,
        Method::POST,
        "/proxies/api/toxics",
        Some(r#"{"type": "latency", "attributes": {"latency": 120}}"#),
    )
    .await;
    let started = Instant::now();
    assert_eq!(get(&url).await.unwrap().status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert_eq!(
        upstream.journal("api").unwrap().len(),
        2,
        "forwarded after the delay"
    );

    for (body, says) in [
        (
            r#"{"type": "bandwidth", "attributes": {"rate": 1}}"#,
            "invalid toxic type",
        ),
        (
            r#"{"type": "error", "name": "e2", "stream": "upstream", "attributes": {"status": 500}}"#,
            "stream must be downstream",
        ),
        (
            r#"{"type": "error", "name": "e3", "attributes": {"stauts": 500}}"#,
            "stauts",
        ),
    ] {
        let (status, answer) =
            control(&server, Method::POST, "/proxies/api/toxics", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (status, answer) = control(
        &server,
        Method::PATCH,
        "/proxies/api",
        Some(r#"{"upstream": "127.0.0.1:1"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("cannot change"),
        "{answer}"
    );
    let (status, answer) = control(
        &server,
        Method::POST,
        "/proxies",
        Some(r#"{"name": "x", "upstream": "127.0.0.1:1", "protocol": "udp"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("udp"),
        "{answer}"
    );
}

#[tokio::test]
async fn version_answers_a_toxiproxy_version_clients_accept_and_ours_beside_it() {
    let server = server();
    let (status, body) = control(&server, Method::GET, "/version", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], "2.12.0");
    assert_eq!(body["fault_server"], env!("CARGO_PKG_VERSION"));
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_let_go_is_free_at_once_for_the_next_bind() {
    let server = server();
    let (first, second) = (upstream(b"one").await, upstream(b"two").await);
    let listen = free_port();
    // Populate replacing a proxy on a fixed port: the old listener is closed
    // before the new one binds.
    for (round, up) in [first, second].iter().cycle().take(20).enumerate() {
        let body = json!([{"name": "pp", "listen": listen, "upstream": up.to_string()}]);
        let (status, answer) =
            control(&server, Method::POST, "/populate", Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "round {round}: {answer}");
        assert_eq!(answer["proxies"][0]["listen"], listen.as_str());
    }
    connect(&listen, b"two").await;
    // Disabled and enabled again, many times over.
    for round in 0..50 {
        for enabled in [false, true] {
            let body = json!({"enabled": enabled}).to_string();
            let (status, answer) =
                control(&server, Method::PATCH, "/proxies/pp", Some(&body)).await;
            assert_eq!(status, StatusCode::OK, "round {round}: {answer}");
        }
    }
    // Deleted and created again on the same port.
    for round in 0..20 {
        control(&server, Method::DELETE, "/proxies/pp", None).await;
        let body = json!({"name": "pp", "listen": listen, "upstream": first.to_string()});
        let (status, answer) =
            control(&server, Method::POST, "/proxies", Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "round {round}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_done_is_refused_before_anything_changes() {
    let server = server();
    let (first, second) = (upstream(b"one").await, upstream(b"two").await);
    let proxy = create(
        &server,
        json!({"name": "db", "upstream": first.to_string()}),
    )
    .await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    // An update whose listen cannot be bound changes nothing.
    let body = json!({"upstream": second.to_string(), "listen": busy_addr});
    let (status, answer) = control(
        &server,
        Method::PATCH,
        "/proxies/db",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (_, now) = control(&server, Method::GET, "/proxies/db", None).await;
    assert_eq!(now, proxy, "nothing changed");
    // A disabled proxy cannot be moved to an address in use either.
    control(
        &server,
        Method::PATCH,
        "/proxies/db",
        Some(r#"{"enabled": false}"#),
    )
    .await;
    let body = json!({"listen": busy_addr}).to_string();
    let (status, _) = control(&server, Method::PATCH, "/proxies/db", Some(&body)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Reset says which proxy it could not enable again.
    let listen = proxy["listen"].as_str().unwrap().to_owned();
    let taken = std::net::TcpListener::bind(&listen).unwrap();
    let (status, answer) = control(&server, Method::POST, "/reset", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains(&listen),
        "{answer}"
    );
    drop(taken);
    assert_eq!(
        control(&server, Method::POST, "/reset", None).await.0,
        StatusCode::NO_CONTENT
    );
    connect(&listen, b"one").await;
    // Populate does not replace a dependency that is not a proxy.
    server
        .add_dependency(&DependencySpec::stub("stub").with_response(StubResponse::ok("ok")))
        .unwrap();
    let body = json!([{"name": "stub", "upstream": first.to_string()}]).to_string();
    let (status, answer) = control(&server, Method::POST, "/populate", Some(&body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        server.dependency("stub").unwrap().tcp.is_none(),
        "the stub stays"
    );
    // Arrays where objects belong are refused, whatever serde would read.
    for (path, body) in [
        (
            "/proxies",
            r#"["x", "127.0.0.1:0", "127.0.0.1:1", true, null, null]"#,
        ),
        (
            "/proxies/db/toxics",
            r#"["t", "latency", "downstream", 1.0, {"latency": 1}]"#,
        ),
        ("/proxies/db", r#"[null, null, null, false, null, null]"#),
        (
            "/populate",
            r#"[["x", "127.0.0.1:0", "127.0.0.1:1", true, null, null]]"#,
        ),
    ] {
        let (status, answer) = control(&server, Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("object"),
            "{answer}"
        );
    }
    // Names a client could not address, or that an unnamed fault's label takes.
    let (status, _) = control(
        &server,
        Method::POST,
        "/proxies",
        Some(&json!({"name": "..", "upstream": first.to_string()}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, answer) = control(
        &server,
        Method::POST,
        "/proxies/db/toxics",
        Some(r#"{"name": "latency-7", "type": "latency"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // A name with a space is reached percent-encoded.
    let (status, _) = control(
        &server,
        Method::POST,
        "/proxies/db/toxics",
        Some(r#"{"name": "my toxic", "type": "latency"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, toxic) =
        control(&server, Method::GET, "/proxies/db/toxics/my%20toxic", None).await;
    assert_eq!(
        (status, &toxic["name"]),
        (StatusCode::OK, &json!("my toxic"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toxic_removed_lets_what_it_held_go_at_once() {
    let server = server();
    let up = upstream(b"").await;
    let proxy = create(&server, json!({"name": "db", "upstream": up.to_string()})).await;
    let listen = proxy["listen"].as_str().unwrap().to_owned();
    for toxic in [
        r#"{"name": "t", "type": "latency", "attributes": {"latency": 60000}}"#,
        r#"{"name": "t", "type": "slicer", "attributes": {"average_size": 1, "delay": 10000000}}"#,
        r#"{"name": "t", "type": "bandwidth", "attributes": {"rate": 1}}"#,
    ] {
        let mut stream = TcpStream::connect(&listen).await.unwrap();
        round_trip(&mut stream).await;
        control(&server, Method::POST, "/proxies/db/toxics", Some(toxic)).await;
        let message = vec![b'x'; 4_000];
        stream.write_all(&message).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        control(&server, Method::DELETE, "/proxies/db/toxics/t", None).await;
        let mut back = vec![0; message.len()];
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back))
            .await
            .unwrap_or_else(|_| panic!("{toxic}: the held data never came"))
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{toxic}");
    }
    // A close held back by slow_close goes once the toxic does.
    control(
        &server,
        Method::POST,
        "/proxies/db/toxics",
        Some(r#"{"name": "t", "type": "slow_close", "attributes": {"delay": 60000}}"#),
    )
    .await;
    let mut stream = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut stream).await;
    stream.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    control(&server, Method::DELETE, "/proxies/db/toxics/t", None).await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "the close came through: {read:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_keeps_what_the_toxiproxy_api_cannot_say() {
    let (_upstream, server, proxy) = http_proxy().await;
    let fault = r#"{"error": {"status": 503}, "match": {"path": "/x"}, "first": 2, "lease": "1h", "name": "flaky"}"#;
    let (status, _) = control(
        &server,
        Method::POST,
        "/dependencies/api/faults",
        Some(fault),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, toxic) = control(
        &server,
        Method::PATCH,
        "/proxies/api/toxics/flaky",
        Some(r#"{"toxicity": 0.5}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{toxic}");
    assert_eq!(toxic["toxicity"], 0.5);
    let (_, view) = control(&server, Method::GET, "/dependencies/api", None).await;
    let kept = &view["faults"][0];
    assert_eq!(kept["match"], json!({"path": "/x"}), "{view}");
    assert_eq!(
        (&kept["first"], &kept["lease"]),
        (&json!(2), &json!("1h")),
        "{view}"
    );
    assert_eq!(kept["probability"], 0.5);
    // A latency drawn log-normally takes Toxiproxy attributes in its place.
    let (status, _) = control(
        &server,
        Method::POST,
        "/dependencies/api/faults",
        Some(r#"{"latency": {"log_normal": {"p50": "5ms", "p99": "50ms"}}, "name": "slow"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, toxic) = control(
        &server,
        Method::PATCH,
        "/proxies/api/toxics/slow",
        Some(r#"{"toxicity": 0.25}"#),
    )
    .await;
    assert_eq!(
        (status, &toxic["toxicity"]),
        (StatusCode::OK, &json!(0.25)),
        "{toxic}"
    );
    let (status, toxic) = control(
        &server,
        Method::PATCH,
        "/proxies/api/toxics/slow",
        Some(r#"{"attributes": {"latency": 7}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{toxic}");
    assert_eq!(toxic["attributes"], json!({"latency": 7, "jitter": 0}));
    drop(proxy);
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408() {
    let server = server();
    let addr = server.control_addr().unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST /proxies HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 100\r\n\r\n{{\"name\"");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer within the body timeout");
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_renewed_or_a_fault_on_the_other_direction_does_not_cut_a_delay_short() {
    let server = server();
    let up = upstream(b"").await;
    let proxy = create(&server, json!({"name": "db", "upstream": up.to_string()})).await;
    let mut stream = TcpStream::connect(proxy["listen"].as_str().unwrap())
        .await
        .unwrap();
    round_trip(&mut stream).await;
    // As a harness run holds its faults: leased, renewed every 100 ms here.
    let latency: fault_server::Fault =
        serde_json::from_str(r#"{"latency": {"fixed": "600ms"}}"#).unwrap();
    server
        .set_faults("db", vec![latency], Some(Duration::from_secs(2)))
        .unwrap();
    let renewing = {
        let server_control = server.control_addr().unwrap();
        tokio::spawn(async move {
            for i in 0..8 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let url = format!("http://{server_control}/dependencies/db/faults/lease");
                let body = r#"{"lease": "2s"}"#;
                let _ = crate::common::client()
                    .request(
                        http::Request::put(&url)
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                            .unwrap(),
                    )
                    .await;
                if i == 3 {
                    // A fault on the other direction.
                    let fault = r#"{"name": "up", "type": "latency", "stream": "upstream", "attributes": {"latency": 0}}"#;
                    let url = format!("http://{server_control}/proxies/db/toxics");
                    let _ = crate::common::client()
                        .request(
                            http::Request::post(&url)
                                .body(http_body_util::Full::new(bytes::Bytes::from(fault)))
                                .unwrap(),
                        )
                        .await;
                }
            }
        })
    };
    let took = round_trip(&mut stream).await;
    renewing.await.unwrap();
    assert!(took >= Duration::from_millis(600), "cut short: {took:?}");
}
