//! Toxiproxy 2.x's JSON shapes (a proxy, a toxic) and how they map onto
//! dependencies and faults.
//!
//! A toxic's attributes are in Toxiproxy's units: `latency` {latency, jitter}
//! in milliseconds (the delay drawn evenly from latency ± jitter),
//! `bandwidth` {rate} in KB/s, `slicer` {average_size, size_variation} in
//! bytes and {delay} in microseconds, `timeout` and `reset_peer` {timeout}
//! and `slow_close` {delay} in milliseconds, `limit_data` {bytes}. `down`
//! (no attributes) is ours. On a proxy created with `"protocol": "http"`,
//! the toxic types are our HTTP fault kinds with their own keys as
//! attributes (`{"type": "error", "attributes": {"status": 503}}`), and
//! `latency` takes Toxiproxy's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::problem::Problem;
use crate::fault::{
    ActiveFault, BandwidthFault, DownFault, FaultKind, FaultKindName, LatencyFault, LimitDataFault,
    ResetPeerFault, SlicerFault, SlowCloseFault, Stream, TimeoutFault,
};
use crate::{DependencySpec, DependencyView, Distribution, Fault, HttpProxy};

/// A proxy as Toxiproxy shows it.
#[derive(Debug, Serialize)]
pub(crate) struct ProxyJson {
    pub(crate) name: String,
    pub(crate) listen: String,
    pub(crate) upstream: String,
    pub(crate) enabled: bool,
    pub(crate) toxics: Vec<ToxicJson>,
    /// `"http"` for an HTTP proxy; absent for TCP, as Toxiproxy has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) protocol: Option<&'static str>,
}

impl ProxyJson {
    /// A proxy dependency as Toxiproxy shows it; `None` for a stub.
    pub(crate) fn of(view: &DependencyView) -> Option<Self> {
        let (upstream, protocol) = match (&view.tcp, &view.proxy) {
            (Some(tcp), _) => (tcp.clone(), None),
            (None, Some(proxy)) => (proxy.url.clone(), Some("http")),
            (None, None) => return None,
        };
        Some(ProxyJson {
            name: view.name.clone(),
            listen: view.addr.to_string(),
            upstream,
            enabled: view.enabled,
            toxics: view.faults.iter().map(ToxicJson::of).collect(),
            protocol,
        })
    }
}

/// A proxy as a client sends it: every field optional, so that an update
/// may carry only what changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProxyIn {
    pub(crate) name: Option<String>,
    pub(crate) listen: Option<String>,
    pub(crate) upstream: Option<String>,
    pub(crate) enabled: Option<bool>,
    /// On create, the toxics to start with (Toxiproxy ignores them); on
    /// update, not applied (toxics change through their own routes).
    pub(crate) toxics: Option<Vec<ToxicIn>>,
    /// `tcp` (the default) or `http`.
    pub(crate) protocol: Option<String>,
}

/// What a proxy to create comes to.
pub(crate) struct NewProxy {
    pub(crate) spec: DependencySpec,
    pub(crate) enabled: bool,
}

impl ProxyIn {
    /// Whether this describes an HTTP proxy.
    pub(crate) fn http(&self) -> Result<bool, Problem> {
        match self.protocol.as_deref() {
            None | Some("tcp") => Ok(false),
            Some("http") => Ok(true),
            Some(other) => Err(bad(format!("protocol: `{other}` is neither tcp nor http"))),
        }
    }

    /// The dependency to create; `at` names the proxy in errors (`proxy 2`).
    pub(crate) fn to_new(&self, at: &str) -> Result<NewProxy, Problem> {
        let name = self
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| missing(&format!("name{at}")))?;
        let upstream = self
            .upstream
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| missing(&format!("upstream{at}")))?;
        let http = self.http()?;
        let listen = match self.listen.as_deref() {
            None | Some("") => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            Some(listen) => parse_listen(listen)?,
        };
        let mut spec = if http {
            DependencySpec::proxy(name, http_url(upstream))
        } else {
            DependencySpec::tcp(name, upstream)
        }
        .with_listen(listen);
        for toxic in self.toxics.iter().flatten() {
            spec = spec.with_fault(toxic.to_fault(!http, None)?);
        }
        Ok(NewProxy {
            spec,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

/// An HTTP proxy's upstream as a URL: `host:port` is taken as `http://host:port`.
pub(crate) fn http_url(upstream: &str) -> String {
    if upstream.contains("://") {
        upstream.to_owned()
    } else {
        format!("http://{upstream}")
    }
}

/// The proxy an HTTP upstream comes to, for comparing with one in force.
pub(crate) fn same_http(proxy: &HttpProxy, upstream: &str) -> bool {
    proxy.url == http_url(upstream)
}

/// A listen address: `ip:port`, `localhost:port`, or `:port` (every
/// interface, as Go reads it). Names are not resolved.
pub(crate) fn parse_listen(listen: &str) -> Result<SocketAddr, Problem> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| bad(format!("listen: `{listen}` is not host:port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("listen: `{listen}`: the port must be 0 to 65535")))?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => {
            return Err(bad(format!(
                "listen: `{listen}`: give an IP address or localhost (names are not resolved)"
            )))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// A toxic as Toxiproxy shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ToxicJson {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) stream: &'static str,
    pub(crate) toxicity: f64,
    pub(crate) attributes: Map<String, Value>,
}

impl ToxicJson {
    /// A fault in force as a toxic: named by its label, attributes in
    /// Toxiproxy's units where the kind is Toxiproxy's (durations cut to
    /// whole milliseconds), else the kind's own keys.
    pub(crate) fn of(active: &ActiveFault) -> Self {
        let fault = &active.fault;
        let ms = |d: &Duration| Value::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let attributes = match &fault.kind {
            FaultKind::Latency(LatencyFault(Distribution::Fixed(d))) => {
                object([("latency", ms(d)), ("jitter", Value::from(0))])
            }
            FaultKind::Latency(LatencyFault(Distribution::Uniform { min, max })) => {
                let half = (*max - *min) / 2;
                object([("latency", ms(&(*min + half))), ("jitter", ms(&half))])
            }
            FaultKind::Bandwidth(f) => object([("rate", Value::from(f.rate))]),
            FaultKind::Slicer(f) => object([
                ("average_size", Value::from(f.average_size)),
                ("size_variation", Value::from(f.size_variation)),
                (
                    "delay",
                    Value::from(u64::try_from(f.delay.as_micros()).unwrap_or(u64::MAX)),
                ),
            ]),
            FaultKind::Timeout(f) => object([("timeout", ms(&f.timeout))]),
            FaultKind::ResetPeer(f) => object([("timeout", ms(&f.timeout))]),
            FaultKind::SlowClose(f) => object([("delay", ms(&f.delay))]),
            FaultKind::LimitData(f) => object([("bytes", Value::from(f.bytes))]),
            // The kind's own keys: our HTTP kinds, and latency drawn otherwise.
            kind => own_keys(kind),
        };
        ToxicJson {
            name: active.label(),
            kind: fault.kind.name().as_str().to_owned(),
            stream: stream_name(fault.stream.unwrap_or_default()),
            toxicity: fault.probability,
            attributes,
        }
    }
}

/// A toxic as a client sends it: on create, everything but `type` may be
/// left out; on update, only what changes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToxicIn {
    pub(crate) name: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) stream: Option<String>,
    pub(crate) toxicity: Option<f64>,
    pub(crate) attributes: Option<Map<String, Value>>,
}

impl ToxicIn {
    /// This update laid over the toxic in force: attributes merged key by
    /// key; a name, type or stream that differs from the toxic's is refused
    /// (Toxiproxy changes only attributes and toxicity).
    pub(crate) fn over(self, current: &ToxicJson) -> Result<ToxicIn, Problem> {
        let fixed = [
            ("name", self.name.as_deref(), current.name.as_str()),
            ("type", self.kind.as_deref(), current.kind.as_str()),
            ("stream", self.stream.as_deref(), current.stream),
        ];
        for (key, given, now) in fixed {
            if given.is_some_and(|given| given != now) {
                return Err(bad(format!(
                    "{key}: a toxic's {key} cannot change (it is `{now}`); delete it and create another"
                )));
            }
        }
        let mut attributes = current.attributes.clone();
        attributes.extend(self.attributes.unwrap_or_default());
        Ok(ToxicIn {
            name: Some(current.name.clone()),
            kind: Some(current.kind.clone()),
            stream: Some(current.stream.to_owned()),
            toxicity: Some(self.toxicity.unwrap_or(current.toxicity)),
            attributes: Some(attributes),
        })
    }

    /// The fault this toxic is, on a TCP proxy (`tcp`) or an HTTP one.
    /// Unnamed, it is named `<type>_<stream>`. `existing` is the name it
    /// replaces, on an update.
    pub(crate) fn to_fault(&self, tcp: bool, existing: Option<&str>) -> Result<Fault, Problem> {
        let kind_name = self
            .kind
            .as_deref()
            .ok_or_else(|| bad("invalid toxic type: missing required field: type"))?;
        let stream = match self.stream.as_deref() {
            None | Some("downstream") => Stream::Downstream,
            Some("upstream") => Stream::Upstream,
            Some(other) => {
                return Err(bad(format!(
                    "stream was invalid, can be either upstream or downstream (got `{other}`)"
                )))
            }
        };
        if !tcp && stream == Stream::Upstream {
            return Err(bad(
                "stream: an HTTP proxy's toxics act on each request; stream must be downstream",
            ));
        }
        // Ours and Toxiproxy's type names are the same words.
        let known = FaultKindName::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_name);
        if let Some(known) = known.filter(|k| *k != FaultKindName::Latency && k.tcp_only() != tcp) {
            let takes: Vec<&str> = FaultKindName::taken_by(tcp)
                .map(FaultKindName::as_str)
                .collect();
            let proxy = if tcp { "a TCP proxy" } else { "an HTTP proxy" };
            return Err(bad(format!(
                "invalid toxic type: `{known}`; {proxy} takes {}",
                takes.join(", ")
            )));
        }
        let toxicity = self.toxicity.unwrap_or(1.0);
        let attributes = Value::Object(self.attributes.clone().unwrap_or_default());
        let kind = kind(kind_name, attributes)?;
        let name = existing.map(str::to_owned).or_else(|| self.name.clone());
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{kind_name}_{}", stream_name(stream)));
        let mut fault = Fault::new(kind).probability(toxicity).named(name);
        if tcp {
            fault = fault.stream(stream);
        }
        fault
            .validate()
            .map_err(|e| bad(format!("toxicity or attributes: {e}")))?;
        fault
            .check_for(tcp)
            .map_err(|e| bad(format!("invalid toxic type: {e}")))?;
        Ok(fault)
    }
}

/// The fault in force `current`, updated as a Toxiproxy client asks:
/// `toxicity` and `attributes` (merged key by key) change, everything else
/// it had (`match`, `first`, `lease`, its direction, a latency's finer
/// durations when no attributes are sent) stays.
pub(crate) fn updated(current: &ActiveFault, input: ToxicIn, tcp: bool) -> Result<Fault, Problem> {
    let shown = ToxicJson::of(current);
    let attributes = input.attributes.clone();
    let merged = input.over(&shown)?;
    let mut fault = match attributes {
        // A latency shown with its own keys (a normal or log-normal one) is
        // replaced by the Toxiproxy attributes sent, not merged with them.
        Some(given) if !toxiproxy_units(&current.fault.kind) => ToxicIn {
            attributes: Some(given),
            ..merged.clone()
        }
        .to_fault(tcp, Some(&shown.name))?,
        Some(_) => merged.to_fault(tcp, Some(&shown.name))?,
        None => current.fault.clone(),
    };
    fault.probability = merged.toxicity.unwrap_or(current.fault.probability);
    fault.matcher = current.fault.matcher.clone();
    fault.first = current.fault.first;
    fault.per = current.fault.per;
    fault.lease = current.fault.lease;
    fault.stream = current.fault.stream;
    fault
        .validate()
        .map_err(|e| bad(format!("toxicity or attributes: {e}")))?;
    Ok(fault)
}

/// Whether a kind's attributes are shown in Toxiproxy's units (else in its
/// own keys, which a latency drawn other than evenly has).
fn toxiproxy_units(kind: &FaultKind) -> bool {
    !matches!(
        kind,
        FaultKind::Latency(LatencyFault(
            Distribution::Normal { .. } | Distribution::LogNormal { .. }
        ))
    )
}

/// Toxiproxy's attributes for its types, each field defaulting to zero.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct LatencyAttributes {
    latency: u64,
    jitter: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RateAttributes {
    rate: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SlicerAttributes {
    average_size: u64,
    size_variation: u64,
    delay: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TimeoutAttributes {
    timeout: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct DelayAttributes {
    delay: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BytesAttributes {
    bytes: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoAttributes {}

/// The fault kind a toxic type and its attributes make.
fn kind(kind: &str, attributes: Value) -> Result<FaultKind, Problem> {
    fn read<T: serde::de::DeserializeOwned>(attributes: Value) -> Result<T, Problem> {
        serde_json::from_value(attributes).map_err(|e| bad(format!("attributes: {e}")))
    }
    let ms = Duration::from_millis;
    Ok(match kind {
        "latency" => {
            let a: LatencyAttributes = read(attributes)?;
            let distribution = if a.jitter == 0 {
                Distribution::Fixed(ms(a.latency))
            } else {
                Distribution::Uniform {
                    min: ms(a.latency.saturating_sub(a.jitter)),
                    max: ms(a.latency.saturating_add(a.jitter)),
                }
            };
            FaultKind::Latency(LatencyFault(distribution))
        }
        "bandwidth" => FaultKind::Bandwidth(BandwidthFault {
            rate: read::<RateAttributes>(attributes)?.rate,
        }),
        "slicer" => {
            let a: SlicerAttributes = read(attributes)?;
            FaultKind::Slicer(SlicerFault {
                average_size: a.average_size,
                size_variation: a.size_variation,
                delay: Duration::from_micros(a.delay),
            })
        }
        "timeout" => FaultKind::Timeout(TimeoutFault {
            timeout: ms(read::<TimeoutAttributes>(attributes)?.timeout),
        }),
        "reset_peer" => FaultKind::ResetPeer(ResetPeerFault {
            timeout: ms(read::<TimeoutAttributes>(attributes)?.timeout),
        }),
        "slow_close" => FaultKind::SlowClose(SlowCloseFault {
            delay: ms(read::<DelayAttributes>(attributes)?.delay),
        }),
        "limit_data" => FaultKind::LimitData(LimitDataFault {
            bytes: read::<BytesAttributes>(attributes)?.bytes,
        }),
        "down" => {
            read::<NoAttributes>(attributes)?;
            FaultKind::Down(DownFault {})
        }
        // Our HTTP kinds, with their own keys.
        kind if FaultKindName::ALL
            .iter()
            .any(|k| k.as_str() == kind && !k.tcp_only()) =>
        {
            let mut fault = Map::new();
            fault.insert(kind.to_owned(), attributes);
            serde_json::from_value::<Fault>(Value::Object(fault))
                .map_err(|e| bad(format!("attributes: {e}")))?
                .kind
        }
        other => {
            return Err(bad(format!(
                "invalid toxic type: `{other}` (latency, bandwidth, slicer, timeout, reset_peer, slow_close, limit_data, down; on an HTTP proxy also error, throttle, hang, reset, close, slow_body, malformed, saturation)"
            )))
        }
    })
}

/// The kind's own keys, as our API writes them.
fn own_keys(kind: &FaultKind) -> Map<String, Value> {
    let name = kind.name().as_str();
    match serde_json::to_value(Fault::new(kind.clone())) {
        Ok(Value::Object(mut fault)) => match fault.remove(name) {
            Some(Value::Object(keys)) => keys,
            Some(other) => object([("value", other)]),
            None => Map::new(),
        },
        _ => Map::new(),
    }
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Upstream => "upstream",
        Stream::Downstream => "downstream",
    }
}

/// A 400 in Toxiproxy's shape.
pub(crate) fn bad(message: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, message)
}

/// Toxiproxy's `missing required field: <field>`.
pub(crate) fn missing(field: &str) -> Problem {
    bad(format!("missing required field: {field}"))
}
