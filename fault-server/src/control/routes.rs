//! Every control route, in one `match`.
//!
//! | route | does |
//! |---|---|
//! | `GET /healthz`, `GET /version`, `GET /metrics` | liveness, version, Prometheus text |
//! | `GET /clock` | `{"now_ns": ...}`: the journal's clock |
//! | `GET /dependencies`, `POST /dependencies` | list, start one (201); with `"lease": "2s"` in its body it is removed when the lease lapses |
//! | `PUT /dependencies/{name}/lease` | `{"lease": "2s"}`: renew a leased dependency's lease from now |
//! | `GET`, `PATCH`, `DELETE /dependencies/{name}` | show, replace its `response`, stop it |
//! | `PUT /dependencies/{name}/faults` | replace its faults: `{"faults": [...], "lease": "30s"}` |
//! | `PUT /dependencies/{name}/faults/lease` | `{"lease": "2s"}`: renew the leased faults' lease from now |
//! | `POST /dependencies/{name}/faults` | add one fault (201) |
//! | `DELETE /dependencies/{name}/faults` | clear its faults |
//! | `GET /dependencies/{name}/journal?since=SEQ&limit=N` | records as JSON lines |
//! | `GET /dependencies/{name}/stats` | exact counters, overall and per window |
//! | `GET /dependencies/{name}/alerts` | the alerts an alert sink received |
//! | `POST /marks` | `{"name": "..."}`: open a window on every dependency (201); with `"faults": {"crm": [...]}` (and `"lease"`), replace those dependencies' faults as their windows open (a phase switch) |
//! | `POST /reset` | clear every fault and journal; enable every dependency |
//! | `/proxies...`, `POST /populate` | the Toxiproxy 2.x API ([`super::toxiproxy`]) |

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::Request;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[cfg(feature = "metrics")]
use super::metrics;
use super::problem::Problem;
use super::ControlContext;
use crate::registry::Registry;
use crate::{DependencySpec, Fault, StubResponse};

/// The largest request body the control API reads.
const MAX_BODY: usize = 1024 * 1024;

pub(super) type Reply = Response<Full<Bytes>>;

pub(crate) async fn handle(
    context: Arc<ControlContext>,
    request: Request<Incoming>,
) -> Result<Reply, Infallible> {
    Ok(route(&context, request)
        .await
        .unwrap_or_else(Problem::into_response))
}

/// `PUT /dependencies/{name}/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    faults: Vec<Fault>,
    #[serde(default, with = "humantime_serde::option")]
    lease: Option<Duration>,
}

/// `PUT /dependencies/{name}/faults/lease`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseBody {
    #[serde(with = "humantime_serde")]
    lease: Duration,
}

/// `PATCH /dependencies/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    response: StubResponse,
}

/// `POST /marks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkBody {
    name: String,
    /// Faults to put in force at these dependencies as their windows open.
    #[serde(default)]
    faults: BTreeMap<String, Vec<Fault>>,
    #[serde(default, with = "humantime_serde::option")]
    lease: Option<Duration>,
}

async fn route(context: &ControlContext, request: Request<Incoming>) -> Result<Reply, Problem> {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    context.access.admit(target_len, request.headers())?;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    // A path no route has, or a method it does not take, is refused before
    // the body is read.
    allowed(&method, &path)?;
    let body = read_body(request).await?;
    let tokened = context.access.token.is_some();
    respond(&context.registry, tokened, &method, &path, &query, &body)
}

/// Refuses a path no route has (404), or a method the path does not take (405).
fn allowed(method: &Method, path: &str) -> Result<(), Problem> {
    let segments = segments(path)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let allowed = allowed_methods(&segments)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no route {path}")))?;
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        let mut problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}; use {allowed}"),
        );
        problem.allow = Some(allowed);
        return Err(problem);
    }
    Ok(())
}

/// Answers an admitted request whose body was read: every route, in one
/// `match`. No await in here: what a route does with a body is the same
/// whether it came over a socket or from `answer`. `tokened`: the API wants
/// a token, so a dependency may listen beyond loopback.
fn respond(
    registry: &Arc<Registry>,
    tokened: bool,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Reply, Problem> {
    allowed(method, path)?;
    let segments = segments(path)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        // `version` is the Toxiproxy API's, which clients read; ours beside it.
        (&Method::GET, ["version"]) => json(
            StatusCode::OK,
            &serde_json::json!({
                "version": super::toxiproxy::TOXIPROXY_VERSION,
                "name": "fault-server",
                "fault_server": env!("CARGO_PKG_VERSION"),
            }),
        ),
        #[cfg(feature = "metrics")]
        (&Method::GET, ["metrics"]) => Ok(text(metrics::render(registry), metrics::CONTENT_TYPE)),
        // The journal's clock, so a harness elsewhere can move records onto its own.
        (&Method::GET, ["clock"]) => json(
            StatusCode::OK,
            &serde_json::json!({"now_ns": registry.clock().now_ns()}),
        ),
        (&Method::GET, ["dependencies"]) => json(StatusCode::OK, &registry.views()),
        (&Method::POST, ["dependencies"]) => {
            let mut body: serde_json::Map<String, serde_json::Value> = parse_json(body)?;
            let lease = body
                .remove("lease")
                .map(|lease| {
                    humantime_serde::deserialize::<Duration, _>(lease)
                        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("lease: {e}")))
                })
                .transpose()?;
            // The rest is the dependency, read as strictly as ever.
            let rest = serde_json::to_vec(&body).map_err(internal)?;
            let spec: DependencySpec = parse_json(&rest)?;
            super::check_listen(spec.listen_addr(), tokened)?;
            let view = match lease {
                Some(lease) => registry.add_leased(&spec, lease)?,
                None => registry.add(&spec)?,
            };
            json(StatusCode::CREATED, &view)
        }
        (&Method::PUT, ["dependencies", name, "lease"]) => {
            registry.view(name)?;
            let body: LeaseBody = parse_json(body)?;
            json(
                StatusCode::OK,
                &registry.renew_dependency(name, body.lease)?,
            )
        }
        (&Method::GET, ["dependencies", name]) => json(StatusCode::OK, &registry.view(name)?),
        (&Method::PATCH, ["dependencies", name]) => {
            registry.view(name)?;
            let patch: PatchBody = parse_json(body)?;
            json(
                StatusCode::OK,
                &registry.set_response(name, patch.response)?,
            )
        }
        (&Method::DELETE, ["dependencies", name]) => {
            registry.remove(name)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::PUT, ["dependencies", name, "faults"]) => {
            registry.view(name)?;
            let body: FaultsBody = parse_json(body)?;
            json(
                StatusCode::OK,
                &registry.set_faults(name, body.faults, body.lease)?,
            )
        }
        (&Method::POST, ["dependencies", name, "faults"]) => {
            registry.view(name)?;
            let fault: Fault = parse_json(body)?;
            json(StatusCode::CREATED, &registry.add_fault(name, fault)?)
        }
        (&Method::PUT, ["dependencies", name, "faults", "lease"]) => {
            registry.view(name)?;
            let body: LeaseBody = parse_json(body)?;
            json(StatusCode::OK, &registry.renew_lease(name, body.lease)?)
        }
        (&Method::DELETE, ["dependencies", name, "faults"]) => {
            registry.clear_faults(name)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["dependencies", name, "journal"]) => {
            let since = query_number(query, "since")?.unwrap_or(0);
            let limit = query_number(query, "limit")?.unwrap_or(u64::MAX);
            let records =
                registry.journal(name, since, usize::try_from(limit).unwrap_or(usize::MAX))?;
            let mut lines = Vec::with_capacity(records.len() * 256);
            for record in &records {
                serde_json::to_writer(&mut lines, record).map_err(internal)?;
                lines.push(b'\n');
            }
            Ok(bytes(StatusCode::OK, lines, "application/x-ndjson"))
        }
        (&Method::GET, ["dependencies", name, "alerts"]) => {
            json(StatusCode::OK, &registry.alerts(name)?)
        }
        (&Method::GET, ["dependencies", name, "stats"]) => {
            json(StatusCode::OK, &registry.stats(name)?)
        }
        (&Method::POST, ["marks"]) => {
            let body: MarkBody = parse_json(body)?;
            json(
                StatusCode::CREATED,
                &registry.switch(&body.name, body.faults, body.lease)?,
            )
        }
        (_, ["proxies", ..] | ["populate"]) => {
            super::toxiproxy::respond(registry, tokened, method, &segments, body)
        }
        (&Method::POST, ["reset"]) => {
            let failed: Vec<String> = registry.reset().iter().map(ToString::to_string).collect();
            if failed.is_empty() {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Err(Problem::new(
                    StatusCode::CONFLICT,
                    format!("reset, but not enabled again: {}", failed.join("; ")),
                ))
            }
        }
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no route {method} {path}"),
        )),
    }
}

/// A path's segments, each percent-decoded (`/proxies/my%20db` names `my db`).
fn segments(path: &str) -> Result<Vec<String>, Problem> {
    path.trim_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        format!("`{segment}` is not UTF-8 once percent-decoded"),
                    )
                })
        })
        .collect()
}

/// Every route: a path (`{...}` a name in it) and the methods it takes.
const ROUTES: &[(&str, &str)] = &[
    ("/healthz", "GET"),
    ("/version", "GET"),
    ("/metrics", "GET"),
    ("/clock", "GET"),
    ("/dependencies", "GET, POST"),
    ("/dependencies/{name}", "GET, PATCH, DELETE"),
    ("/dependencies/{name}/lease", "PUT"),
    ("/dependencies/{name}/faults", "PUT, POST, DELETE"),
    ("/dependencies/{name}/faults/lease", "PUT"),
    ("/dependencies/{name}/journal", "GET"),
    ("/dependencies/{name}/stats", "GET"),
    ("/dependencies/{name}/alerts", "GET"),
    ("/marks", "POST"),
    ("/reset", "POST"),
    ("/populate", "POST"),
    ("/proxies", "GET, POST"),
    ("/proxies/{name}", "GET, POST, PATCH, DELETE"),
    ("/proxies/{name}/toxics", "GET, POST"),
    ("/proxies/{name}/toxics/{toxic}", "GET, POST, PATCH, DELETE"),
];

/// The methods a path takes, or `None` when no route has this path.
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    ROUTES.iter().find_map(|(pattern, methods)| {
        let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
        let fits = pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(segments)
                .all(|(want, got)| want.starts_with('{') || want == got);
        fits.then_some(*methods)
    })
}

/// How long a client may take to send a request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Problem> {
    let collected = tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(request.into_body(), MAX_BODY).collect(),
    )
    .await
    .map_err(|_| {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {BODY_TIMEOUT:?}"),
        )
    })?;
    Ok(collected
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {MAX_BODY} bytes"),
                )
            } else {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the body: {e}"),
                )
            }
        })?
        .to_bytes())
}

/// Answers one control request in this process, as the control API would
/// over HTTP once it admitted the request (as one without a token: no
/// dependency may listen beyond loopback): the route's status and body.
/// For the fuzz targets (`fuzz/`), which feed bodies to every route without
/// a socket.
#[cfg(feature = "fuzzing")]
pub(crate) fn answer(
    registry: &Arc<Registry>,
    method: &Method,
    target: &str,
    body: &[u8],
) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    respond(registry, false, method, path, query, body).unwrap_or_else(Problem::into_response)
}

/// Parses JSON, naming the field at fault (`faults[0].latency`) in the error.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut deserializer);
    if parsed.is_ok() {
        deserializer
            .end()
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
    }
    parsed.map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let message = if path == "." || path == "?" {
            format!("body: {message}")
        } else {
            format!("{path}: {message}")
        };
        Problem::new(StatusCode::BAD_REQUEST, message)
    })
}

fn query_number(query: &str, key: &str) -> Result<Option<u64>, Problem> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| {
            v.parse().map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("{key}: `{v}` is not a whole number"),
                )
            })
        })
        .transpose()
}

pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Reply, Problem> {
    let body = serde_json::to_vec(value).map_err(internal)?;
    Ok(bytes(status, body, "application/json"))
}

fn bytes(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(feature = "metrics")]
fn text(body: String, content_type: &'static str) -> Reply {
    bytes(StatusCode::OK, body.into_bytes(), content_type)
}

pub(super) fn empty(status: StatusCode) -> Reply {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn internal(error: serde_json::Error) -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "[a-z_]{0,12}".prop_map(serde_json::Value::from),
            prop::sample::select(vec!["8s", "200ms", "-1s", "1e9h", "", "1.5", "abc"])
                .prop_map(serde_json::Value::from),
        ];
        let keys = prop::sample::select(vec![
            "latency",
            "error",
            "throttle",
            "hang",
            "reset",
            "close",
            "slow_body",
            "malformed",
            "saturation",
            "probability",
            "match",
            "first",
            "lease",
            "fixed",
            "uniform",
            "normal",
            "log_normal",
            "min",
            "max",
            "mean",
            "stddev",
            "p50",
            "p99",
            "status",
            "body",
            "headers",
            "retry_after",
            "rate",
            "burst",
            "max_in_flight",
            "after",
            "then",
            "bytes_per_second",
            "bytes",
            "base",
            "workers",
            "method",
            "path",
            "x",
        ]);
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| {
                    serde_json::Value::Object(
                        m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn arbitrary_json_never_panics_the_fault_parser_and_errors_are_400s_with_a_message(value in arbitrary_json()) {
            let body = serde_json::to_vec(&value).unwrap();
            match parse_json::<Fault>(&body) {
                Ok(fault) => prop_assert!(fault.validate().is_ok()),
                Err(problem) => {
                    prop_assert_eq!(problem.status, StatusCode::BAD_REQUEST);
                    prop_assert!(problem.message.len() > 6, "{}", problem.message);
                }
            }
            let _ = parse_json::<FaultsBody>(&body);
        }
    }

    /// Every route served is in this module's table (or the Toxiproxy
    /// module's) and in the README's, each of its methods on a row with it.
    #[test]
    fn every_route_is_documented_with_each_of_its_methods() {
        let module_docs: String = [include_str!("routes.rs"), include_str!("toxiproxy/mod.rs")]
            .iter()
            .flat_map(|file| file.lines())
            .filter_map(|line| line.strip_prefix("//! "))
            .filter(|line| line.starts_with('|'))
            .map(|line| format!("{line}\n"))
            .collect();
        let readme = include_str!("../../../README.md");
        let rows = |text: &'static str| text.lines().filter(|line| line.starts_with('|'));
        let names_path = |row: &str, path: &str| {
            row.match_indices(path).any(|(at, _)| {
                let next = row[at + path.len()..].chars().next();
                let before = row[..at].chars().next_back();
                matches!(next, Some('`' | ' ' | '?' | ','))
                    && before != Some('}')
                    && !matches!(before, Some(c) if c.is_alphanumeric())
            })
        };
        let docs = [
            ("the module docs", module_docs.leak() as &'static str),
            ("README.md", readme),
        ];
        for (where_, text) in docs {
            for (path, methods) in ROUTES {
                for method in methods.split(", ") {
                    assert!(
                        rows(text).any(|row| names_path(row, path) && row.contains(method)),
                        "{method} {path} is not in {where_}'s route table"
                    );
                }
            }
        }
    }

    #[test]
    fn a_parse_error_names_the_field_at_fault() {
        let problem =
            parse_json::<FaultsBody>(br#"{"faults": [{"latency": {"fixd": "8s"}}]}"#).unwrap_err();
        assert!(
            problem.message.starts_with("faults[0].latency"),
            "{}",
            problem.message
        );
        assert!(problem.message.contains("fixd"), "{}", problem.message);
    }
}
