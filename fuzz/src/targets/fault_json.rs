//! `fault-json`: mutated control-API bodies answered by the control routes'
//! own code (`fault_server::fuzzing::answer_control`: the same parsing,
//! validation and registry operations as over HTTP) on a live `FaultServer`
//! with one dependency, `crm`; every n-th body (`--over-http-every`, 100 by
//! default) also over a socket to the same server's control API on
//! 127.0.0.1. Every answer is a 2xx, or a 4xx whose JSON
//! body says what is wrong; never a 5xx. What a route accepted reads back
//! (`GET /dependencies/crm` answers 200), and an accepted fault serializes
//! to JSON that parses back to the same fault.
//!
//! The Toxiproxy routes get the same checks, on a TCP proxy `db` beside
//! `crm`: toxics, proxies, and populate.
//!
//! State stays bounded: the faults added one by one are cleared every 32,
//! the journal's windows reset every 5,000 marks, and each dependency
//! `POST /dependencies` starts is removed at once. A spec that would listen
//! on a fixed port is checked (validated and started in-process) but not
//! bound, so the fuzzer takes no port another program may want; a
//! Toxiproxy proxy's fixed port is made 0. After each Toxiproxy route the
//! server is put back as it was: proxies removed, `crm` and `db` as
//! configured, `db`'s toxics cleared.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fault_server::{fuzzing, DependencySpec, Fault, FaultServer, InProcessDependency};
use http::{Method, StatusCode};

use crate::corpus::Route;
use crate::engine::{fuzz, Seen};
use crate::json::{bodies, Body};
use crate::{Failure, FaultJsonArgs, Figures};

const TARGET: &str = "fault-json";

/// Runs the target.
pub fn run(args: &FaultJsonArgs) -> Result<Figures, Failure> {
    // A worker of its own: each dependency `POST /dependencies` starts
    // serves on this runtime, and stops (closing its listener) only when
    // its task runs again after the removal.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| super::setup_failed(TARGET, e))?;
    let _entered = runtime.enter();
    let server = FaultServer::builder()
        .on_current_runtime()
        .dependency(DependencySpec::stub("crm"))
        .dependency(db())
        .control(SocketAddr::from(([127, 0, 0, 1], 0)))
        .seed(1)
        .start()
        .map_err(|e| super::setup_failed(TARGET, e))?;
    let control = server.control_addr();
    let mut by_route = [(0u64, 0u64); Route::ALL.len()];
    let mut over_http = (0u64, 0u64);
    let mut drawn = 0u64;
    let mut pushed = 0u64;
    let mut marks = 0u64;
    let mut figures = fuzz(
        TARGET,
        args.common.inputs,
        args.common.seed,
        bodies(),
        |body: &Body| {
            let route = Route::ALL
                .iter()
                .position(|r| *r == body.route)
                .unwrap_or(0);
            // Every input in process; every n-th also through the control
            // API's socket (the HTTP layer and admission, then the same routes).
            let http = args.over_http_every > 0 && drawn.is_multiple_of(args.over_http_every);
            drawn += 1;
            let vias = if http {
                vec![None, control]
            } else {
                vec![None]
            };
            let mut in_process = Seen::Refused;
            for via in vias {
                let seen = answer(&server, body, via)?;
                if via.is_some() {
                    over_http.0 += u64::from(seen == Seen::Accepted);
                    over_http.1 += u64::from(seen == Seen::Refused);
                }
                if seen == Seen::Accepted {
                    match body.route {
                        Route::AddFault => {
                            pushed += 1;
                            if pushed.is_multiple_of(32) {
                                server.clear_faults("crm").map_err(|e| e.to_string())?;
                            }
                        }
                        Route::Mark => {
                            marks += 1;
                            if marks.is_multiple_of(5_000) {
                                server.reset();
                            }
                        }
                        _ => {}
                    }
                }
                if via.is_none() {
                    in_process = seen;
                    match seen {
                        Seen::Accepted => by_route[route].0 += 1,
                        Seen::Refused => by_route[route].1 += 1,
                    }
                }
            }
            Ok(in_process)
        },
    )?;
    for (route, (accepted, refused)) in Route::ALL.iter().zip(by_route) {
        let (method, path) = route.request();
        figures.notes.push(format!(
            "{method} {path}: {accepted} accepted, {refused} refused"
        ));
    }
    figures.notes.push(format!(
        "also over HTTP: {} accepted, {} refused",
        over_http.0, over_http.1
    ));
    Ok(figures)
}

/// The TCP proxy the toxic route acts on (its upstream is never called).
fn db() -> DependencySpec {
    DependencySpec::tcp("db", "127.0.0.1:9")
}

/// Puts the server back after a Toxiproxy route: only `crm` and `db`, as
/// configured, `db` without toxics.
fn restore(server: &FaultServer) -> Result<(), String> {
    for view in server.dependencies() {
        let original = match view.name.as_str() {
            "crm" => view.tcp.is_none() && view.proxy.is_none(),
            "db" => view.tcp.as_deref() == Some("127.0.0.1:9") && view.enabled,
            _ => false,
        };
        if !original {
            server
                .remove_dependency(&view.name)
                .map_err(|e| format!("cannot remove `{}`: {e}", view.name))?;
        }
    }
    let have: Vec<String> = server.dependencies().into_iter().map(|v| v.name).collect();
    for spec in [DependencySpec::stub("crm"), db()] {
        if !have.contains(&spec.name) {
            server
                .add_dependency(&spec)
                .map_err(|e| format!("cannot put `{}` back: {e}", spec.name))?;
        }
    }
    server.clear_faults("db").map_err(|e| e.to_string())
}

/// A Toxiproxy body whose `listen` names a fixed port, with port 0 instead.
fn any_port(bytes: &[u8]) -> Vec<u8> {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(listen)) = map.get_mut("listen") {
                    if let Some((host, _port)) = listen.rsplit_once(':') {
                        *listen = format!("{host}:0");
                    }
                }
            }
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut value) => {
            walk(&mut value);
            serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    }
}

/// One request over a socket to the control API at `addr`: its status and body.
fn over_socket(
    addr: SocketAddr,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<(StatusCode, Bytes), String> {
    let failed = |e: std::io::Error| format!("the control API at {addr}: {e}");
    let mut stream = std::net::TcpStream::connect(addr).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(failed)?;
    stream.write_all(body).map_err(failed)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(failed)?;
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("the control API answered no status: {text:?}"))?;
    let at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |p| p + 4);
    Ok((status, Bytes::copy_from_slice(&reply[at..])))
}

/// Sends one body, in process or over the socket at `via`, and checks the answer.
fn answer(server: &FaultServer, body: &Body, via: Option<SocketAddr>) -> Result<Seen, String> {
    if body.route == Route::AddDependency {
        if let Ok(spec) = serde_json::from_slice::<DependencySpec>(&body.bytes) {
            if spec.listen.is_some_and(|addr| addr.port() != 0) {
                // Not bound: checked as the route would before binding.
                return Ok(match spec.validate() {
                    Ok(()) => {
                        InProcessDependency::new(&spec, 0)
                            .map_err(|e| format!("a spec that validates does not start: {e}"))?;
                        Seen::Accepted
                    }
                    Err(_) => Seen::Refused,
                });
            }
        }
    }
    let (method, path) = body.route.request();
    let bytes = if body.route.toxiproxy() {
        any_port(&body.bytes)
    } else {
        body.bytes.clone()
    };
    let (status, reply) = match via {
        None => fuzzing::answer_control(server, &method, path, &bytes),
        Some(addr) => over_socket(addr, &method, path, &bytes)?,
    };
    if body.route.toxiproxy() {
        restore(server)?;
    }
    let reply_text = String::from_utf8_lossy(&reply);
    if status.is_client_error() {
        let problem: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|e| format!("a {status} whose body is not JSON ({e}): {reply_text}"))?;
        let message = problem.get("error").and_then(serde_json::Value::as_str);
        if message.is_none_or(|m| m.trim().is_empty()) {
            return Err(format!(
                "a {status} that does not say what is wrong: {reply_text}"
            ));
        }
        return Ok(Seen::Refused);
    }
    if !status.is_success() {
        return Err(format!("answered {status}: {reply_text}"));
    }
    match body.route {
        Route::AddDependency => {
            let view: serde_json::Value = serde_json::from_slice(&reply)
                .map_err(|e| format!("a 201 whose body is not JSON ({e}): {reply_text}"))?;
            let name = view
                .get("name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            server
                .remove_dependency(name)
                .map_err(|e| format!("the dependency just added is not there: {e}"))?;
        }
        Route::AddFault => {
            let fault: Fault = serde_json::from_slice(&body.bytes)
                .map_err(|e| format!("the route took a fault serde refuses: {e}"))?;
            let written = serde_json::to_string(&fault)
                .map_err(|e| format!("an accepted fault does not serialize: {e}"))?;
            let read: Fault = serde_json::from_str(&written).map_err(|e| {
                format!("an accepted fault written as {written} does not parse back: {e}")
            })?;
            if read != fault {
                return Err(format!(
                    "an accepted fault does not round-trip: {fault:?} became {read:?} through {written}"
                ));
            }
        }
        _ => {}
    }
    let (status, reply) = fuzzing::answer_control(server, &Method::GET, "/dependencies/crm", b"");
    if status != StatusCode::OK {
        return Err(format!(
            "after it, GET /dependencies/crm answered {status}: {}",
            String::from_utf8_lossy(&reply)
        ));
    }
    Ok(Seen::Accepted)
}
