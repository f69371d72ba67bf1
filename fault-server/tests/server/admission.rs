//! Who the control API admits, over real sockets: the `Host` it is addressed
//! by (DNS rebinding), cross-site browser requests, its size limits with JSON
//! refusals, and adding a dependency beyond loopback without a token.

use std::net::SocketAddr;

use fault_server::{FaultServer, StartError};
use http::{Method, StatusCode};
use serde_json::Value;

use crate::common::{control_with, one_stub};
use crate::refused::exchange;

/// A case: what it is, the request's headers, the status expected.
type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16);
/// A case with its request target.
type TargetCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16);

/// Sends a raw request with exactly these headers (no others) and returns
/// the status and JSON body.
async fn raw(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut head = format!("GET {target} HTTP/1.1\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let answer = exchange(addr, head.as_bytes()).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_hosts_naming_the_control_api_and_same_site_requests_are_admitted() {
    let server = FaultServer::builder()
        .control("127.0.0.1:0".parse().unwrap())
        .allow_host("faults.internal")
        .start()
        .unwrap();
    let addr = server.control_addr().unwrap();
    let port = addr.port();
    let host = |h: &str| format!("{h}:{port}");
    let cases: Vec<Case> = vec![
        ("the bound ip:port", vec![("host", host("127.0.0.1"))], 200),
        ("localhost", vec![("host", host("localhost"))], 200),
        (
            "mapped loopback",
            vec![("host", host("[::ffff:127.0.0.1]"))],
            200,
        ),
        (
            "an allowed name",
            vec![("host", host("Faults.Internal"))],
            200,
        ),
        ("DNS rebinding", vec![("host", host("evil.example"))], 403),
        (
            "another port",
            vec![("host", format!("localhost:{}", port.wrapping_add(1)))],
            403,
        ),
        ("no port", vec![("host", "localhost".to_owned())], 403),
        ("no Host", vec![], 403),
        (
            "a same-origin Origin",
            vec![
                ("host", host("localhost")),
                ("origin", format!("http://localhost:{port}")),
            ],
            200,
        ),
        (
            "a cross-site Origin",
            vec![
                ("host", host("localhost")),
                ("origin", "http://evil.example".to_owned()),
            ],
            403,
        ),
        (
            "another local port's Origin",
            vec![
                ("host", host("localhost")),
                ("origin", "http://localhost:3000".to_owned()),
            ],
            403,
        ),
        (
            "Origin null",
            vec![("host", host("localhost")), ("origin", "null".to_owned())],
            403,
        ),
        (
            "Sec-Fetch-Site cross-site",
            vec![
                ("host", host("localhost")),
                ("sec-fetch-site", "cross-site".to_owned()),
            ],
            403,
        ),
        (
            "Sec-Fetch-Site same-site",
            vec![
                ("host", host("localhost")),
                ("sec-fetch-site", "same-site".to_owned()),
            ],
            403,
        ),
        (
            "Sec-Fetch-Site same-origin",
            vec![
                ("host", host("localhost")),
                ("sec-fetch-site", "same-origin".to_owned()),
            ],
            200,
        ),
        (
            "a browser",
            vec![
                ("host", host("localhost")),
                ("user-agent", "Mozilla/5.0".to_owned()),
            ],
            403,
        ),
    ];
    for (what, headers, expected) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, body) = raw(addr, "/healthz", &headers).await;
        assert_eq!(status, expected, "{what}: {body}");
        if expected == 403 {
            assert_eq!(body["status"], 403, "{what}: {body}");
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{what}"
            );
        }
    }
}

#[tokio::test]
async fn a_control_api_on_mapped_loopback_needs_no_token() {
    let server = FaultServer::builder()
        .control("[::ffff:127.0.0.1]:0".parse().unwrap())
        .start();
    // Binding may be refused by a host without IPv6; it must not be refused for want of a token.
    assert!(
        !matches!(server, Err(StartError::TokenRequired(_))),
        "{server:?}"
    );
}

#[tokio::test]
async fn heads_over_the_control_limits_are_refused_in_json() {
    let server = one_stub();
    let addr = server.control_addr().unwrap();
    let host = format!("127.0.0.1:{}", addr.port());
    let mut headers = vec![("host".to_owned(), host.clone())];
    for i in 0..100 {
        headers.push((format!("x-h{i}"), "v".to_owned()));
    }
    let many: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let big = "b".repeat(70_000);
    let long_target = format!("/healthz?{}", "q".repeat(9_000));
    let cases: Vec<TargetCase> = vec![
        ("101 headers", "/healthz".to_owned(), many, 431),
        (
            "70 KB of headers",
            "/healthz".to_owned(),
            vec![("host", &host), ("x-big", &big)],
            431,
        ),
        ("a 9 KB target", long_target, vec![("host", &host)], 414),
    ];
    for (what, target, headers, expected) in cases {
        let (status, body) = raw(addr, &target, &headers).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(body["status"], expected, "{what}: {body}");
    }
}

#[tokio::test]
async fn adding_a_dependency_beyond_loopback_needs_a_token() {
    let server = one_stub();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let body = format!(r#"{{"name": "open", "listen": "{listen}"}}"#);
        let (status, problem) =
            control_with(&server, Method::POST, "/dependencies", Some(&body), &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{listen}: {problem}");
        assert_eq!(problem["status"], 403);
        assert!(
            problem["error"].as_str().unwrap().starts_with("listen:"),
            "{problem}"
        );
    }
    let (status, added) = control_with(
        &server,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "local", "listen": "127.0.0.1:0"}"#),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");

    let with_token = FaultServer::builder()
        .control("127.0.0.1:0".parse().unwrap())
        .token("s3cret")
        .start()
        .unwrap();
    let (status, added) = control_with(
        &with_token,
        Method::POST,
        "/dependencies",
        Some(r#"{"name": "open", "listen": "0.0.0.0:0"}"#),
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
}
