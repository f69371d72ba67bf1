//! Helpers shared by the fault server's integration tests: real clients on
//! real loopback sockets, and the binary's start line.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fault_server::{DependencySpec, FaultServer, StubResponse};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `fault-server` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_fault-server");

/// Reads the first line `child` (spawned with its stdout piped) prints: its
/// start line, JSON naming its addresses.
pub fn start_line(child: &mut std::process::Child) -> serde_json::Value {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

/// A server with one stub, `dep`, answering 200 "ok", and the control API on port 0.
pub fn one_stub() -> FaultServer {
    FaultServer::builder()
        .dependency(DependencySpec::stub("dep").with_response(StubResponse::ok("ok")))
        .control("127.0.0.1:0".parse().unwrap())
        .seed(1)
        .start()
        .unwrap()
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response as a test reads it.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub async fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> Result<Answer, String> {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client()
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

pub async fn get(url: &str) -> Result<Answer, String> {
    send(Method::GET, url, &[]).await
}

/// Writes one GET over a fresh connection and reads until the server closes it.
pub async fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    Ok(out)
}

/// Calls the control API and returns the status and the body: parsed when it
/// is JSON, a string when it is not, Null when empty.
pub async fn control(
    server: &FaultServer,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    control_with(server, method, path, body, &[]).await
}

pub async fn control_with(
    server: &FaultServer,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let url = format!("http://{}{path}", server.control_addr().unwrap());
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
    let response = client().request(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/json");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else if is_json {
        serde_json::from_slice(&bytes).unwrap()
    } else {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    (status, value)
}

/// Waits until `check` holds, polling every 10 ms, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

/// Parses a fault from JSON, as a user writes it.
pub fn fault(json: &str) -> fault_server::Fault {
    serde_json::from_str(json).unwrap()
}
