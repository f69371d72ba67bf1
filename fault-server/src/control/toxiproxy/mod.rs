//! The Toxiproxy 2.x REST API, beside ours on the same control port, so
//! that Toxiproxy's clients drive the fault server unchanged. A Toxiproxy
//! proxy is a proxy dependency (TCP, or HTTP with `"protocol": "http"`), a
//! toxic one of its faults, named; both are the same objects our own routes
//! show, with the same journal, stats, metrics and leases.
//!
//! | route | does |
//! |---|---|
//! | `GET /proxies` | every proxy dependency, by name |
//! | `POST /proxies` | create one (201); 409 when the name is taken |
//! | `POST /populate` | create or replace several (201, `{"proxies": [...]}`): each is checked before any changes; one whose listen and upstream are unchanged keeps its toxics and connections |
//! | `GET`, `POST`/`PATCH`, `DELETE /proxies/{name}` | show, update (only the fields sent), delete (204) |
//! | `GET`, `POST /proxies/{name}/toxics` | list, create (200; named `<type>_<stream>` by default, 409 when the name is taken) |
//! | `GET`, `POST`/`PATCH`, `DELETE /proxies/{name}/toxics/{toxic}` | show, update (attributes merged, toxicity), delete (204) |
//! | `POST /reset`, `GET /version` | shared with our API: reset also enables every proxy; version answers `{"version": "2.12.0", ...}` |
//!
//! Where this differs from Toxiproxy: a disabled proxy's connections are
//! journaled `closed`; `toxics` sent on create are created (Toxiproxy drops
//! them), and on update are not applied (as Toxiproxy: toxics change through
//! their own routes); a listen address must be an IP address or
//! `localhost`, loopback unless the server has a token, and defaults to
//! `127.0.0.1:0` (the port bound is shown); an HTTP proxy's upstream cannot
//! change (delete and create it). Errors are Toxiproxy's
//! `{"error": "...", "status": N}`.

pub(crate) mod model;

use std::sync::Arc;

use http::{Method, StatusCode};

use super::problem::Problem;
use super::routes::{empty, json, Reply};
use crate::registry::Registry;
use crate::{ControlError, DependencyView};
use model::{bad, NewProxy, ProxyIn, ProxyJson, ToxicIn, ToxicJson};

/// The version `GET /version` claims: the Toxiproxy API this implements, so
/// that clients that check it use its routes (PATCH among them).
pub(crate) const TOXIPROXY_VERSION: &str = "2.12.0";

/// Answers a Toxiproxy route (`/proxies...`, `/populate`).
pub(crate) fn respond(
    registry: &Arc<Registry>,
    tokened: bool,
    method: &Method,
    segments: &[&str],
    body: &[u8],
) -> Result<Reply, Problem> {
    match (method, segments) {
        (&Method::GET, ["proxies"]) => {
            let proxies: serde_json::Map<String, serde_json::Value> = registry
                .views()
                .iter()
                .filter_map(ProxyJson::of)
                .map(|p| Ok((p.name.clone(), serde_json::to_value(&p).map_err(internal)?)))
                .collect::<Result<_, Problem>>()?;
            json(StatusCode::OK, &proxies)
        }
        (&Method::POST, ["proxies"]) => {
            let input: ProxyIn = parse_object(body)?;
            let new = input.to_new("")?;
            let view = create(registry, tokened, new)?;
            json(StatusCode::CREATED, &proxy(&view)?)
        }
        (&Method::POST, ["populate"]) => populate(registry, tokened, body),
        (&Method::GET, ["proxies", name]) => json(StatusCode::OK, &proxy(&found(registry, name)?)?),
        (&Method::POST | &Method::PATCH, ["proxies", name]) => {
            let current = found(registry, name)?;
            let input: ProxyIn = parse_object(body)?;
            let view = update(registry, tokened, &current, input)?;
            json(StatusCode::OK, &proxy(&view)?)
        }
        (&Method::DELETE, ["proxies", name]) => {
            found(registry, name)?;
            registry.remove(name)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["proxies", name, "toxics"]) => {
            json(StatusCode::OK, &proxy(&found(registry, name)?)?.toxics)
        }
        (&Method::POST, ["proxies", name, "toxics"]) => {
            let view = found(registry, name)?;
            let input: ToxicIn = parse_object(body)?;
            let fault = input.to_fault(view.tcp.is_some(), None)?;
            let added = registry.add_named_fault(name, fault).map_err(toxic_error)?;
            json(StatusCode::OK, &ToxicJson::of(&added))
        }
        (&Method::GET, ["proxies", name, "toxics", toxic]) => {
            found(registry, name)?;
            let active = registry.fault_named(name, toxic).map_err(toxic_error)?;
            json(StatusCode::OK, &ToxicJson::of(&active))
        }
        (&Method::POST | &Method::PATCH, ["proxies", name, "toxics", toxic]) => {
            let view = found(registry, name)?;
            let current = registry.fault_named(name, toxic).map_err(toxic_error)?;
            let input: ToxicIn = parse_object(body)?;
            let fault = model::updated(&current, input, view.tcp.is_some())?;
            let updated = registry
                .update_fault(name, toxic, fault)
                .map_err(toxic_error)?;
            json(StatusCode::OK, &ToxicJson::of(&updated))
        }
        (&Method::DELETE, ["proxies", name, "toxics", toxic]) => {
            found(registry, name)?;
            registry.remove_fault(name, toxic).map_err(toxic_error)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no route {method} /{}", segments.join("/")),
        )),
    }
}

/// Creates the proxies of a Toxiproxy config file (`toxiproxy-server
/// -config`, `POST /populate`): a JSON array of proxies. Every proxy is
/// checked before any is created; the proxies as they stand after, or the
/// first error with those applied before it.
pub(crate) fn populate_from(
    registry: &Arc<Registry>,
    tokened: bool,
    body: &[u8],
) -> Result<Vec<ProxyJson>, (Problem, Vec<ProxyJson>)> {
    let values: Vec<serde_json::Value> = parse(body).map_err(|p| (p, Vec::new()))?;
    let inputs = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            if !value.is_object() {
                return Err(bad(format!(
                    "bad request body: proxy {}: not a JSON object",
                    i + 1
                )));
            }
            serde_json::from_value::<ProxyIn>(value)
                .map_err(|e| bad(format!("bad request body: proxy {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|p| (p, Vec::new()))?;
    let mut checked = Vec::with_capacity(inputs.len());
    let mut names = std::collections::BTreeSet::new();
    for (i, input) in inputs.iter().enumerate() {
        let new = input
            .to_new(&format!(" at proxy {}", i + 1))
            .map_err(|p| (p, Vec::new()))?;
        new.spec
            .validate()
            .map_err(|e| (Problem::from(e), Vec::new()))?;
        super::check_listen(new.spec.listen_addr(), tokened).map_err(|p| (p, Vec::new()))?;
        if let Ok(current) = registry.view(&new.spec.name) {
            if current.tcp.is_none() && current.proxy.is_none() {
                let message = format!(
                    "`{}` is a dependency that is not a proxy (a stub): remove it first",
                    current.name
                );
                return Err((Problem::new(StatusCode::CONFLICT, message), Vec::new()));
            }
        }
        if !names.insert(new.spec.name.clone()) {
            let message = format!("duplicate proxy name `{}`", new.spec.name);
            return Err((bad(message), Vec::new()));
        }
        checked.push(new);
    }
    let mut applied = Vec::with_capacity(checked.len());
    for new in checked {
        let view = match registry.view(&new.spec.name) {
            // Kept, with its connections; toxics sent with it replace its own.
            Ok(current) if unchanged(&current, &new) => {
                let name = &current.name;
                let toxics = (!new.spec.faults.is_empty())
                    .then(|| registry.set_faults(name, new.spec.faults.clone(), None))
                    .transpose();
                toxics.and_then(|_| registry.set_enabled(name, new.enabled))
            }
            Ok(current) => registry
                .remove(&current.name)
                .and_then(|()| add(registry, &new)),
            Err(_) => add(registry, &new),
        };
        match view.map_err(Problem::from).and_then(|v| proxy(&v)) {
            Ok(proxy) => applied.push(proxy),
            Err(problem) => return Err((problem, applied)),
        }
    }
    Ok(applied)
}

fn populate(registry: &Arc<Registry>, tokened: bool, body: &[u8]) -> Result<Reply, Problem> {
    match populate_from(registry, tokened, body) {
        Ok(proxies) => json(
            StatusCode::CREATED,
            &serde_json::json!({ "proxies": proxies }),
        ),
        Err((problem, proxies)) => json(
            problem.status,
            &serde_json::json!({
                "error": problem.message,
                "status": problem.status.as_u16(),
                "proxies": proxies,
            }),
        ),
    }
}

/// Whether a proxy in force is the one asked for: same kind, upstream and
/// listen address (port 0 asks for any).
fn unchanged(current: &DependencyView, new: &NewProxy) -> bool {
    let listen = new.spec.listen_addr();
    let same_listen =
        current.addr == listen || (listen.port() == 0 && current.addr.ip() == listen.ip());
    let same_upstream = match (&new.spec.tcp, &new.spec.proxy, &current.tcp, &current.proxy) {
        (Some(want), None, Some(have), None) => want == have,
        (None, Some(want), None, Some(have)) => want.url == have.url,
        _ => false,
    };
    same_listen && same_upstream
}

fn create(
    registry: &Arc<Registry>,
    tokened: bool,
    new: NewProxy,
) -> Result<DependencyView, Problem> {
    super::check_listen(new.spec.listen_addr(), tokened)?;
    add(registry, &new).map_err(|e| match e {
        ControlError::DuplicateDependency(_) => {
            Problem::new(StatusCode::CONFLICT, "proxy already exists")
        }
        other => other.into(),
    })
}

/// Adds the proxy dependency, disabled at once when asked.
fn add(registry: &Arc<Registry>, new: &NewProxy) -> Result<DependencyView, ControlError> {
    let view = registry.add(&new.spec)?;
    if new.enabled {
        Ok(view)
    } else {
        registry.set_enabled(&view.name, false)
    }
}

/// An update: only the fields sent change.
fn update(
    registry: &Arc<Registry>,
    tokened: bool,
    current: &DependencyView,
    input: ProxyIn,
) -> Result<DependencyView, Problem> {
    let name = current.name.as_str();
    if input.name.as_deref().is_some_and(|n| n != name) {
        return Err(bad(format!(
            "name: a proxy cannot be renamed (it is `{name}`); delete it and create another"
        )));
    }
    let http = current.proxy.is_some();
    if input.protocol.is_some() && input.http()? != http {
        return Err(bad(
            "protocol: a proxy's protocol cannot change; delete it and create another",
        ));
    }
    // Everything that can be refused is checked before anything changes;
    // the listener (which can fail to bind) moves first.
    let upstream = input.upstream.as_deref().filter(|u| !u.is_empty());
    let new_upstream =
        match (upstream, &current.proxy) {
            (None, _) => None,
            (Some(upstream), Some(proxy)) if model::same_http(proxy, upstream) => None,
            (Some(_), Some(_)) => return Err(bad(
                "upstream: an HTTP proxy's upstream cannot change; delete it and create another",
            )),
            (Some(upstream), None) if current.tcp.as_deref() == Some(upstream) => None,
            (Some(upstream), None) => {
                crate::dependency::check_tcp_upstream(upstream)
                    .map_err(|e| bad(format!("upstream: {e}")))?;
                Some(upstream)
            }
        };
    let listen = input
        .listen
        .as_deref()
        .filter(|l| !l.is_empty())
        .map(model::parse_listen)
        .transpose()?
        .filter(|listen| {
            *listen != current.addr && !(listen.port() == 0 && listen.ip() == current.addr.ip())
        });
    if let Some(listen) = listen {
        super::check_listen(listen, tokened)?;
    }
    let mut view = current.clone();
    if let Some(listen) = listen {
        view = registry.relisten(name, listen)?;
    }
    if let Some(enabled) = input.enabled {
        view = registry.set_enabled(name, enabled)?;
    }
    if let Some(upstream) = new_upstream {
        view = registry.set_upstream(name, upstream)?;
    }
    Ok(view)
}

/// The proxy dependency named `name`: 404 `proxy not found` for none or a stub.
fn found(registry: &Registry, name: &str) -> Result<DependencyView, Problem> {
    registry
        .view(name)
        .ok()
        .filter(|view| view.tcp.is_some() || view.proxy.is_some())
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "proxy not found"))
}

fn proxy(view: &DependencyView) -> Result<ProxyJson, Problem> {
    ProxyJson::of(view).ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "proxy not found"))
}

/// Toxiproxy's words for a fault that is missing or taken.
fn toxic_error(error: ControlError) -> Problem {
    match error {
        ControlError::UnknownFault { .. } => Problem::new(StatusCode::NOT_FOUND, "toxic not found"),
        ControlError::DuplicateFault { .. } => {
            Problem::new(StatusCode::CONFLICT, "toxic already exists")
        }
        other => other.into(),
    }
}

/// A JSON body, whatever its Content-Type says; errors as Toxiproxy's
/// `bad request body: ...`.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    super::routes::parse_json(body).map_err(|p| bad(format!("bad request body: {}", p.message)))
}

/// A JSON object's body (an array in its place is refused, though serde
/// would read a struct from one).
fn parse_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(bad("bad request body: expected a JSON object"));
    }
    parse(body)
}

fn internal(error: serde_json::Error) -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}
