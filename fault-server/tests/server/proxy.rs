//! A proxy dependency in front of a real HTTP upstream (a hyper server in
//! the test): what is forwarded and how, every fault kind, and the upstream's
//! own call count proving whether a call was forwarded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_server::{CallOutcome, DependencySpec, FaultServer, HttpProxy};
use futures_util::stream;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::common::{client, control, fault, send};

/// A real upstream: `/echo` answers JSON describing the request it got,
/// `/stream` five 1,000-byte frames 10 ms apart, `/die` a head and a frame,
/// then drops the connection; `calls` counts every request.
struct Upstream {
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
}

type Body = BoxBody<Bytes, std::io::Error>;

async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let calls = Arc::clone(&counted);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    handle(request)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr, calls }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let full = |bytes: Bytes| Full::new(bytes).map_err(|never| match never {}).boxed();
    let response = match parts.uri.path() {
        "/stream" => {
            let frames = stream::unfold(0, |i| async move {
                if i == 5 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some((Ok(Frame::data(Bytes::from(vec![b'x'; 1_000]))), i + 1))
            });
            Response::new(StreamBody::new(frames).boxed())
        }
        "/die" => {
            // The head and a first frame go out; 50 ms later, the end.
            let frames = stream::unfold(0, |i| async move {
                match i {
                    0 => Some((Ok(Frame::data(Bytes::from_static(b"part"))), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((Err(std::io::Error::other("the upstream died")), 2))
                    }
                    _ => None,
                }
            });
            Response::new(StreamBody::new(frames).boxed())
        }
        _ => {
            let headers: serde_json::Map<String, serde_json::Value> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
                .collect();
            let echo = serde_json::json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query(),
                "headers": headers,
                "body_len": body.len(),
            });
            let mut response = Response::new(full(echo.to_string().into()));
            *response.status_mut() = StatusCode::CREATED;
            let headers = response.headers_mut();
            headers.insert("x-upstream", "yes".parse().unwrap());
            headers.insert("x-hop", "drop me".parse().unwrap());
            headers.insert("connection", "x-hop".parse().unwrap());
            response
        }
    };
    Ok(response)
}

fn proxy_server(upstream: &str, faults: &[&str]) -> FaultServer {
    let mut spec = DependencySpec::proxy("api", upstream);
    for f in faults {
        spec = spec.with_fault(fault(f));
    }
    FaultServer::builder()
        .dependency(spec)
        .control("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap()
}

fn last_call(server: &FaultServer) -> fault_server::CallRecord {
    server.journal("api").unwrap().pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_forwarded_whole_and_the_answer_comes_back_whole() {
    let up = upstream().await;
    let server = proxy_server(&format!("http://{}/base", up.addr), &[]);
    let url = format!("{}/orders?id=7", server.url("api").unwrap());
    let body = vec![b'b'; 1 << 20];
    let request = Request::post(&url)
        .header("x-tenant", "acme")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "hop")
        .header("x-faultline-request", "00000000000000000000000000000007")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert!(
        !response.headers().contains_key("x-hop"),
        "hop-by-hop dropped"
    );
    let echo: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/base/orders");
    assert_eq!(echo["query"], "id=7");
    assert_eq!(echo["body_len"], 1 << 20);
    assert_eq!(echo["headers"]["x-tenant"], "acme");
    assert_eq!(
        echo["headers"]["host"],
        up.addr.to_string(),
        "Host is the upstream's"
    );
    assert!(echo["headers"].get("x-secret").is_none(), "{echo}");
    assert_eq!(up.calls.load(Ordering::SeqCst), 1);
    let record = last_call(&server);
    assert_eq!(record.outcome, CallOutcome::Responded);
    assert_eq!(record.status, Some(201));
    assert!(record.upstream_ns.is_some_and(|ns| ns > 0), "{record:?}");
    assert_eq!(
        record.correlation_id.as_deref(),
        Some("00000000000000000000000000000007")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_host_sends_the_client_host_upstream() {
    let up = upstream().await;
    let server = FaultServer::builder()
        .dependency(DependencySpec {
            proxy: Some(HttpProxy {
                keep_host: true,
                ..HttpProxy::to(format!("http://{}", up.addr))
            }),
            ..DependencySpec::stub("api")
        })
        .start()
        .unwrap();
    let url = format!("{}/echo", server.url("api").unwrap());
    let answer = send(Method::GET, &url, &[("host", "shop.example")])
        .await
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(echo["headers"]["host"], "shop.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_that_answer_never_call_the_upstream_and_delays_come_before_it() {
    let up = upstream().await;
    let target = format!("http://{}", up.addr);
    let cases: &[(&str, Option<u16>)] = &[
        (r#"{"error": {"status": 503}}"#, Some(503)),
        (r#"{"reset": {}}"#, None),
        (r#"{"close": {}}"#, None),
        (r#"{"malformed": {}}"#, None),
    ];
    for (json, status) in cases {
        let server = proxy_server(&target, &[json]);
        let before = up.calls.load(Ordering::SeqCst);
        let answer = send(
            Method::GET,
            &format!("{}/echo", server.url("api").unwrap()),
            &[],
        )
        .await;
        if let Some(status) = status {
            assert_eq!(answer.unwrap().status.as_u16(), *status, "{json}");
        }
        // Every answer came from the fault server: the upstream saw nothing.
        assert_eq!(up.calls.load(Ordering::SeqCst), before, "{json}");
        let record = last_call(&server);
        assert!(record.upstream_ns.is_none(), "{json}: {record:?}");
    }
    // A throttle over its limit answers 429 itself; within it, calls go through.
    let server = proxy_server(&target, &[r#"{"throttle": {"rate": 0.001, "burst": 1}}"#]);
    let before = up.calls.load(Ordering::SeqCst);
    let url = format!("{}/echo", server.url("api").unwrap());
    assert_eq!(
        send(Method::GET, &url, &[]).await.unwrap().status,
        StatusCode::CREATED
    );
    assert_eq!(
        send(Method::GET, &url, &[]).await.unwrap().status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(up.calls.load(Ordering::SeqCst), before + 1);
    // A delay comes first, then the call goes through.
    let server = proxy_server(&target, &[r#"{"latency": {"fixed": "200ms"}}"#]);
    let started = Instant::now();
    let answer = send(
        Method::GET,
        &format!("{}/echo", server.url("api").unwrap()),
        &[],
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(answer.status, StatusCode::CREATED);
    let record = last_call(&server);
    assert!(
        record.upstream_ns.is_some_and(|ns| ns < 200_000_000),
        "{record:?}"
    );
    // A timed hang that ends by answering forwards once it is over.
    let server = proxy_server(
        &target,
        &[r#"{"hang": {"after": "100ms", "then": "respond"}}"#],
    );
    let before = up.calls.load(Ordering::SeqCst);
    let answer = send(
        Method::GET,
        &format!("{}/echo", server.url("api").unwrap()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(up.calls.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_dribbles_the_upstream_answer_as_it_streams() {
    let up = upstream().await;
    let server = proxy_server(
        &format!("http://{}", up.addr),
        &[r#"{"slow_body": {"bytes_per_second": 10000}}"#],
    );
    let started = Instant::now();
    let answer = send(
        Method::GET,
        &format!("{}/stream", server.url("api").unwrap()),
        &[],
    )
    .await
    .unwrap();
    let took = started.elapsed();
    assert_eq!(answer.body.len(), 5_000);
    // 5,000 bytes at 10,000 bytes/s: half a second, not the 50 ms the upstream took.
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let record = last_call(&server);
    assert_eq!(record.outcome, CallOutcome::Responded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_cannot_be_reached_or_dies_is_an_upstream_error() {
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = proxy_server(&format!("http://{closed}"), &[]);
    let answer = send(
        Method::GET,
        &format!("{}/x", server.url("api").unwrap()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let problem: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(problem["status"], 502);
    assert!(
        problem["error"]
            .as_str()
            .unwrap()
            .contains(&closed.to_string()),
        "{problem}"
    );
    let record = last_call(&server);
    assert_eq!(record.outcome, CallOutcome::UpstreamError);
    assert_eq!(record.status, Some(502));
    assert!(record.upstream_ns.is_some());
    let stats = server.stats("api").unwrap();
    assert_eq!(
        stats.total.outcomes.get(&CallOutcome::UpstreamError),
        Some(&1),
        "{stats:?}"
    );

    // One that dies half-way through its body: the client's answer is cut off.
    let up = upstream().await;
    let server = proxy_server(&format!("http://{}", up.addr), &[]);
    let answer = send(
        Method::GET,
        &format!("{}/die", server.url("api").unwrap()),
        &[],
    )
    .await;
    assert!(answer.is_err(), "{answer:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while last_call(&server).departure_ns.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let record = last_call(&server);
    assert_eq!(record.outcome, CallOutcome::UpstreamError, "{record:?}");
}

#[tokio::test]
async fn proxies_are_added_shown_and_refused_over_the_control_api() {
    let server = crate::common::one_stub();
    let (status, view) = control(
        &server,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "pay", "proxy": "http://127.0.0.1:9"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["proxy"]["url"], "http://127.0.0.1:9");
    for (body, says) in [
        (
            r#"{"name": "a", "proxy": "ftp://x"}"#,
            "only http:// and https://",
        ),
        (
            r#"{"name": "a", "proxy": {"url": "http://x", "keep": true}}"#,
            "unknown field `keep`",
        ),
        (
            r#"{"name": "a", "proxy": "http://x", "response": {"status": 201}}"#,
            "a proxy answers with its upstream's response",
        ),
        (
            r#"{"name": "a", "proxy": {"url": "https://x", "ca_file": "/nonexistent.pem"}}"#,
            "cannot read `/nonexistent.pem`",
        ),
        (
            r#"{"name": "a", "proxy": {"url": "https://x", "ca_file": "/dev/zero"}}"#,
            "is not a PEM file",
        ),
    ] {
        let (status, problem) = control(&server, Method::POST, "/dependencies", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert!(
            problem["error"].as_str().unwrap().contains(says),
            "{body}: {problem}"
        );
    }
}

/// An `https://` upstream with a certificate from a private CA: trusted
/// through `ca_file`, refused (an upstream error naming the certificate)
/// without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_reached_through_rustls_trusting_a_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("fault-server-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });

    let url = format!("https://localhost:{port}");
    let trusted = FaultServer::builder()
        .dependency(DependencySpec {
            proxy: Some(HttpProxy {
                ca_file: Some(ca_file),
                ..HttpProxy::to(url.clone())
            }),
            ..DependencySpec::stub("api")
        })
        .start()
        .unwrap();
    let answer = send(
        Method::GET,
        &format!("{}/echo", trusted.url("api").unwrap()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    let echo: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(echo["headers"]["host"], format!("localhost:{port}"));

    let untrusted = proxy_server(&url, &[]);
    let answer = send(
        Method::GET,
        &format!("{}/echo", untrusted.url("api").unwrap()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let problem = String::from_utf8_lossy(&answer.body);
    assert!(problem.contains("certificate"), "{problem}");
    assert_eq!(
        untrusted.journal("api").unwrap()[0].outcome,
        CallOutcome::UpstreamError
    );
}
