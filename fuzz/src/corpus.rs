//! The seed inputs every mutation starts from: the repository's own suite
//! files and config example (read at build time, so new ones join), plus
//! hand-written inputs that reach what those leave out (every fault kind,
//! matchers, command targets, every control route's body).

/// The suite files in `suites/`, plus one that uses every fault kind and
/// most keys.
pub const SUITES: &[&str] = &[
    include_str!("../../suites/checklist/1-reserved-concurrency.toml"),
    include_str!("../../suites/checklist/2-circuit-breakers.toml"),
    include_str!("../../suites/checklist/3-queue-offload.toml"),
    include_str!("../../suites/checklist/4-timeout-budgets.toml"),
    include_str!("../../suites/checklist/5-retries-backoff.toml"),
    include_str!("../../suites/checklist/6-load-shedding.toml"),
    include_str!("../../suites/checklist/7-alerts.toml"),
    include_str!("../../suites/checklist/cascade.toml"),
    include_str!("../../suites/examples/payments-bulkhead.toml"),
    KITCHEN_SINK_SUITE,
];

/// A suite touching every fault kind, matchers, a command target with
/// placeholders, `abort_when`, `max_requests` and the less common properties.
const KITCHEN_SINK_SUITE: &str = r#"
name = "kitchen sink"
max_requests = 1000
allow_hosts = ["shop.internal"]
abort_when = { phase = "baseline", success_rate_below = 0.5 }

[target]
command = ["./shop", "--port", "{port}", "--crm", "{crm}"]
env = { PAYMENTS_URL = "{payments}" }
ready = "/healthz"
ready_timeout = "5s"

[[dependencies]]
name = "crm"
response = { status = 200, body = '{"ok": true}', headers = { "content-type" = "application/json" }, latency = { uniform = { min = "1ms", max = "5ms" } } }
faults = [{ throttle = { rate = 50.0, burst = 10 }, match = { method = "POST", path = "/sync/*" } }]

[[dependencies]]
name = "payments"
response = { latency = { log_normal = { p50 = "50ms", p99 = "400ms" } } }

[[dependencies]]
name = "alerts"
alert_sink = true

[[load]]
endpoint = "checkout"
path = "/checkout?x=1"
method = "POST"
rate = 20.0
ramp_to = 40.0
timeout = "2s"

[[load]]
endpoint = "search"
path = "/search"
clients = 4

[[phases]]
name = "baseline"
duration = "2s"

[[phases]]
name = "chaos"
duration = "3s"
faults = { crm = [{ error = { status = 503, body = "down", retry_after = "1s", headers = { "x-why" = "fuzz" } }, probability = 0.5, first = 3 }, { hang = { after = "1s", then = "reset" }, match = { headers = { "x-test" = "a*" } } }, { reset = {} , probability = 0.1 }, { close = {}, lease = "2s" }], payments = [{ slow_body = { bytes_per_second = 100 } }, { malformed = { bytes = "HTTP/9 nope" } }, { saturation = { base = "10ms", workers = 4, max = "1s" } }, { throttle = { max_in_flight = 3, status = 503 } }, { latency = { fixed = "100ms" }, match = { path = "=/exact" } }] }

[[phases]]
name = "recovery"
duration = "2s"

[[expect]]
property = "breaker"
dependency = "crm"
failures = 5
reset = "1s"
probes = 1
phase = "chaos"

[[expect]]
property = "calls"
dependency = "payments"
at_most = 100
phase = "chaos"

[[expect]]
property = "latency"
endpoint = "checkout"
baseline = "baseline"
factor = 1.5
phase = "chaos"

[[expect]]
property = "alert_fired"
dependency = "alerts"
alert = "HighLatency"
within = "2s"
phase = "chaos"

[[expect]]
property = "status_share"
status = "5xx"
at_most = 0.5
phase = "chaos"
min_samples = 3
"#;

/// The fault server's example config, plus one with every fault kind it
/// shows commented out, uncommented (one dependency each).
pub fn configs() -> Vec<String> {
    let example = include_str!("../../fault-server/examples/dependencies.toml");
    let mut every_fault = String::from("seed = 7\njournal_capacity = 100\n");
    for (i, line) in example.lines().enumerate() {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let key = rest.split_whitespace().next().unwrap_or("");
        // Each commented fault kind (`first = 3` is an option, and `proxy`,
        // `tcp` or `name` lines are a dependency's, not kinds).
        let kind = fault_server::fault::FaultKindName::ALL
            .iter()
            .any(|k| k.as_str() == key);
        // The TCP proxy's kinds need a TCP dependency: HTTP ones only here.
        let http = !matches!(
            key,
            "bandwidth"
                | "slicer"
                | "timeout"
                | "reset_peer"
                | "slow_close"
                | "limit_data"
                | "down"
        );
        if rest.contains(" = ") && kind && http {
            let entry = rest.split(" #").next().unwrap_or(rest);
            every_fault.push_str(&format!(
                "\n[[dependencies]]\nname = \"d{i}\"\n[[dependencies.faults]]\n{entry}\n"
            ));
        }
    }
    vec![example.to_owned(), every_fault]
}

/// A control route that takes a JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /dependencies/crm/faults`: one fault.
    AddFault,
    /// `PUT /dependencies/crm/faults`: faults and a lease.
    ReplaceFaults,
    /// `PUT /dependencies/crm/faults/lease`.
    RenewLease,
    /// `PATCH /dependencies/crm`: a response.
    SetResponse,
    /// `POST /marks`: a window, maybe a phase switch.
    Mark,
    /// `POST /dependencies`: a dependency spec.
    AddDependency,
    /// `POST /proxies/db/toxics`: a Toxiproxy toxic on the TCP proxy `db`.
    AddToxic,
    /// `POST /proxies`: a Toxiproxy proxy.
    AddProxy,
    /// `POST /populate`: a Toxiproxy config (an array of proxies).
    Populate,
}

impl Route {
    /// Every route, in order.
    pub const ALL: [Route; 9] = [
        Route::AddFault,
        Route::ReplaceFaults,
        Route::RenewLease,
        Route::SetResponse,
        Route::Mark,
        Route::AddDependency,
        Route::AddToxic,
        Route::AddProxy,
        Route::Populate,
    ];

    /// Whether it is a Toxiproxy route (after which the fuzzer puts the
    /// server's dependencies back as they were).
    pub fn toxiproxy(self) -> bool {
        matches!(self, Route::AddToxic | Route::AddProxy | Route::Populate)
    }

    /// Method and path.
    pub fn request(self) -> (http::Method, &'static str) {
        use http::Method;
        match self {
            Route::AddFault => (Method::POST, "/dependencies/crm/faults"),
            Route::ReplaceFaults => (Method::PUT, "/dependencies/crm/faults"),
            Route::RenewLease => (Method::PUT, "/dependencies/crm/faults/lease"),
            Route::SetResponse => (Method::PATCH, "/dependencies/crm"),
            Route::Mark => (Method::POST, "/marks"),
            Route::AddDependency => (Method::POST, "/dependencies"),
            Route::AddToxic => (Method::POST, "/proxies/db/toxics"),
            Route::AddProxy => (Method::POST, "/proxies"),
            Route::Populate => (Method::POST, "/populate"),
        }
    }
}

/// Valid faults, one per kind and option.
pub const FAULTS: &[&str] = &[
    r#"{"latency": {"fixed": "8s"}}"#,
    r#"{"latency": {"uniform": {"min": "1ms", "max": "9ms"}}, "probability": 0.5}"#,
    r#"{"latency": {"normal": {"mean": "200ms", "stddev": "10ms"}}}"#,
    r#"{"latency": {"log_normal": {"p50": "50ms", "p99": "400ms"}}, "lease": "30s"}"#,
    r#"{"error": {"status": 503, "body": "down", "retry_after": "30s", "headers": {"x-a": "b"}}, "probability": 0.3, "first": 3}"#,
    r#"{"throttle": {"rate": 50.0, "burst": 10}}"#,
    r#"{"throttle": {"max_in_flight": 30, "status": 503, "retry_after": "1s"}}"#,
    r#"{"hang": {}}"#,
    r#"{"hang": {"after": "30s", "then": "close"}}"#,
    r#"{"hang": {"after": "1s", "then": "respond"}, "match": {"method": "GET"}}"#,
    r#"{"reset": {}, "match": {"path": "/charge/*", "headers": {"x-tenant": "a?c"}}}"#,
    r#"{"close": {}, "match": {"path": "=/exact path"}}"#,
    r#"{"slow_body": {"bytes_per_second": 100}}"#,
    r#"{"malformed": {}}"#,
    r#"{"malformed": {"bytes": "not http"}}"#,
    r#"{"saturation": {"base": "200ms", "workers": 10, "max": "8s"}, "match": {"path": "/**/x"}}"#,
];

/// Valid bodies for every route, each with its route.
pub fn bodies() -> Vec<(Route, String)> {
    let mut bodies: Vec<(Route, String)> = FAULTS
        .iter()
        .map(|f| (Route::AddFault, (*f).to_owned()))
        .collect();
    bodies.extend([
        (Route::ReplaceFaults, format!(r#"{{"faults": [{}, {}], "lease": "30s"}}"#, FAULTS[0], FAULTS[4])),
        (Route::ReplaceFaults, format!(r#"{{"faults": [{}, {}, {}]}}"#, FAULTS[5], FAULTS[10], FAULTS[15])),
        (Route::ReplaceFaults, r#"{"faults": []}"#.to_owned()),
        (Route::RenewLease, r#"{"lease": "2s"}"#.to_owned()),
        (Route::SetResponse, r#"{"response": {"status": 200, "body": "{\"paid\": true}", "headers": {"content-type": "application/json"}, "latency": {"normal": {"mean": "20ms", "stddev": "3ms"}}}}"#.to_owned()),
        (Route::SetResponse, r#"{"response": {"status": 204}}"#.to_owned()),
        (Route::Mark, r#"{"name": "crm slow"}"#.to_owned()),
        (Route::Mark, format!(r#"{{"name": "chaos", "faults": {{"crm": [{}, {}]}}, "lease": "2s"}}"#, FAULTS[8], FAULTS[12])),
        (Route::AddDependency, r#"{"name": "search"}"#.to_owned()),
        (Route::AddDependency, format!(r#"{{"name": "pay.v2", "listen": "127.0.0.1:0", "response": {{"status": 201, "body": "ok"}}, "faults": [{}]}}"#, FAULTS[2])),
        (Route::AddDependency, r#"{"name": "alerts", "alert_sink": true}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "latency", "attributes": {"latency": 100, "jitter": 10}}"#.to_owned()),
        (Route::AddToxic, r#"{"name": "cut", "type": "limit_data", "stream": "upstream", "toxicity": 0.5, "attributes": {"bytes": 10}}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "bandwidth", "attributes": {"rate": 100}}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "slicer", "attributes": {"average_size": 64, "size_variation": 32, "delay": 10}}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "timeout", "stream": "downstream", "attributes": {"timeout": 0}}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "reset_peer", "attributes": {"timeout": 100}}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "slow_close", "attributes": {"delay": 100}}"#.to_owned()),
        (Route::AddToxic, r#"{"type": "down"}"#.to_owned()),
        (Route::AddProxy, r#"{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379", "enabled": true, "toxics": null}"#.to_owned()),
        (Route::AddProxy, r#"{"name": "api", "upstream": "127.0.0.1:9000", "protocol": "http", "toxics": [{"type": "error", "attributes": {"status": 503}}]}"#.to_owned()),
        (Route::Populate, r#"[{"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}, {"name": "b", "listen": "localhost:0", "upstream": "localhost:2", "enabled": false}]"#.to_owned()),
    ]);
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_seed_is_a_valid_suite() {
        for (i, text) in SUITES.iter().enumerate() {
            if let Err(e) =
                faultline_harness::suite::Suite::parse(text, format!("seed{i}.toml").as_ref())
            {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn every_config_seed_is_a_valid_config() {
        for text in configs() {
            let parsed = fault_server::ServerConfig::parse(&text, "seed.toml".as_ref());
            assert!(parsed.is_ok(), "{parsed:?}\n{text}");
        }
        // The nine HTTP kinds the example shows, and the TCP example's latency.
        assert_eq!(
            configs()[1].matches("[[dependencies]]").count(),
            10,
            "every fault kind shown"
        );
    }

    #[test]
    fn every_fault_seed_is_a_valid_fault() {
        for text in FAULTS {
            let fault: fault_server::Fault = serde_json::from_str(text).unwrap();
            assert!(fault.validate().is_ok(), "{text}");
        }
    }
}
