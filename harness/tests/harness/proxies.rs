//! Real nginx and HAProxy (Debian's packages; `.ci/run` installs them) as
//! targets with known behaviour: the figures the harness reads must be the
//! ones their configuration guarantees.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{faultline, scratch, verdict, write_suite, Outcome};

/// The program's path, or a failure that says how to get it: a test that
/// skipped itself when the program is missing could never fail.
fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("`{name}` is not installed: `apt-get install {name}` (.ci/run installs it)");
}

/// A loopback port free a moment ago, for a program that cannot bind port 0
/// and tell us which port it got.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the suite at `suite` with `--output json`.
async fn run(suite: &Path) -> Outcome {
    faultline(["run", suite.to_str().unwrap(), "--output", "json"]).await
}

/// HAProxy in front of `crm` with a bulkhead (`maxconn 10`), L7 retries (two
/// on a 503: three calls per request) and an HTTP health check every 100 ms
/// on the same port as live traffic, marked with a header. The suite judges
/// each figure with the health checks and without (excluded by path, and by
/// header): the truth is 10 in flight and 3.0 calls per request, and the
/// checks add to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_health_checks_are_excluded_by_path_and_its_figures_are_exact() {
    let haproxy = program("haproxy");
    let dir = scratch("proxies-haproxy");
    let crm = free_port();
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            r#"
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  timeout queue 10s
  timeout check 5s
  retries 2
  retry-on 503

frontend shop
  bind "127.0.0.1:${{PORT}}"
  default_backend crm

backend crm
  option httpchk
  http-check send meth GET uri /__health hdr x-health yes
  server crm 127.0.0.1:{crm} maxconn 10 check inter 100ms fall 1000
"#
        ),
    )
    .unwrap();
    let suite = write_suite(
        "proxies-haproxy",
        &format!(
            r#"
name = "haproxy"

[target]
command = ["{haproxy}", "-db", "-f", "{config}"]
env = {{ PORT = "{{port}}" }}
ready = "/sync"

[[dependencies]]
name = "crm"
listen = "127.0.0.1:{crm}"

[[load]]
endpoint = "sync"
path = "/sync"
clients = 30
timeout = "10s"

[[phases]]
name = "crm slow"
duration = "3s"
faults = {{ crm = [{{ latency = {{ fixed = "300ms" }} }}] }}

[[phases]]
name = "crm down"
duration = "2s"
faults = {{ crm = [{{ error = {{ status = 503 }}, match = {{ path = "/sync" }} }}] }}

[[phases]]
name = "crm flaky"
duration = "2s"
faults = {{ crm = [{{ error = {{ status = 503 }}, first = 2, per = "request", match = {{ path = "/sync" }} }}] }}

[[expect]]
property = "max_in_flight"
dependency = "crm"
at_most = 10
phase = "crm slow"
exclude = {{ path = "=/__health" }}

[[expect]]
property = "max_in_flight"
dependency = "crm"
at_most = 10
phase = "crm slow"

[[expect]]
property = "max_in_flight"
dependency = "crm"
at_most = 10
phase = "crm slow"
exclude = {{ headers = {{ "x-health" = "yes" }} }}

[[expect]]
property = "retry_amplification"
dependency = "crm"
at_most = 3
phase = "crm down"
exclude = {{ path = "=/__health" }}

[[expect]]
property = "max_attempts"
dependency = "crm"
at_most = 3
phase = "crm down"
match = {{ method = "GET", path = "=/sync" }}

[[expect]]
property = "retry_amplification"
dependency = "crm"
exactly = 3
phase = "crm down"
exclude = {{ path = "=/__health" }}

[[expect]]
property = "retry_amplification"
dependency = "crm"
exactly = 4
phase = "crm down"
exclude = {{ path = "=/__health" }}

[[expect]]
property = "max_attempts"
dependency = "crm"
exactly = 3
phase = "crm down"
match = {{ method = "GET", path = "=/sync" }}

[[expect]]
property = "max_attempts"
dependency = "crm"
at_least = 4
phase = "crm down"
match = {{ method = "GET", path = "=/sync" }}

[[expect]]
property = "success_rate"
endpoint = "sync"
phase = "crm flaky"
at_least = 1.0

[[expect]]
property = "max_attempts"
dependency = "crm"
exactly = 3
phase = "crm flaky"
exclude = {{ path = "=/__health" }}
"#,
            haproxy = haproxy.display(),
            config = config.display(),
        ),
    );
    let ran = run(&suite).await;
    let (code, printed) = (ran.code, ran.printed());
    let report = ran.report();
    let bulkhead = verdict(&report, "max_in_flight(crm [not =/__health]) <= 10");
    assert_eq!(bulkhead["outcome"], "pass", "{printed}");
    assert_eq!(bulkhead["evidence"]["observed"]["count"], 10, "{printed}");
    // The checks carry a header of their own: excluded by it, the same 10.
    let by_header = verdict(&report, "max_in_flight(crm [not x-health=yes]) <= 10");
    assert_eq!(by_header["outcome"], "pass", "{printed}");
    assert_eq!(by_header["evidence"]["observed"]["count"], 10, "{printed}");
    let with_checks = verdict(&report, "max_in_flight(crm) <= 10");
    assert_eq!(with_checks["outcome"], "fail", "{printed}");
    assert_eq!(
        with_checks["evidence"]["observed"]["count"], 11,
        "{printed}"
    );
    let amplification = verdict(&report, "retry_amplification(crm [not =/__health])");
    assert_eq!(amplification["outcome"], "pass", "{printed}");
    assert_eq!(
        amplification["evidence"]["observed"]["ratio"], 3.0,
        "{printed}"
    );
    let attempts = verdict(&report, "max_attempts(crm [GET =/sync]) <= 3");
    assert_eq!(attempts["outcome"], "pass", "{printed}");
    assert_eq!(attempts["evidence"]["observed"]["count"], 3, "{printed}");
    // Bounds both ways: `retries 2` makes exactly three calls a request,
    // neither more nor fewer, and a bound from below that asks for more
    // fails on the side it broke.
    let exactly = verdict(&report, "retry_amplification(crm [not =/__health]) == 3");
    assert_eq!(exactly["outcome"], "pass", "{printed}");
    let four = verdict(&report, "retry_amplification(crm [not =/__health]) == 4");
    assert_eq!(four["outcome"], "fail", "{printed}");
    assert_eq!(four["evidence"]["threshold"]["ratio"], 4.0, "{printed}");
    assert_eq!(four["evidence"]["observed"]["ratio"], 3.0, "{printed}");
    let each = verdict(&report, "attempts(crm [GET =/sync]) == 3 per request");
    assert_eq!(each["outcome"], "pass", "{printed}");
    let at_least = verdict(&report, "attempts(crm [GET =/sync]) >= 4 per request");
    assert_eq!(at_least["outcome"], "fail", "{printed}");
    assert_eq!(at_least["evidence"]["observed"]["count"], 3, "{printed}");
    assert_eq!(at_least["evidence"]["threshold"]["count"], 4, "{printed}");
    // Each request's first two calls fail (per = "request"): HAProxy's two
    // retries carry every request through, on exactly its third call.
    let recovered = verdict(&report, "success_rate(sync) >= 1");
    assert_eq!(recovered["outcome"], "pass", "{printed}");
    let third = verdict(&report, "attempts(crm [not =/__health]) == 3 per request");
    assert_eq!(third["outcome"], "pass", "{printed}");
    assert!(
        third["evidence"]["samples"].as_u64().unwrap() >= 20,
        "{printed}"
    );
    assert_eq!(code, Some(1), "one verdict fails: {printed}");
}

/// nginx as a gateway on `port` in front of `upstream`, with
/// `proxy_read_timeout 1s` and `proxy_next_upstream off` (each request one
/// call); listening when this returns, killed when the child is dropped.
async fn nginx(name: &str, port: u16, upstream: u16) -> tokio::process::Child {
    let nginx = program("nginx");
    let dir = scratch(name);
    let crm = upstream;
    let config = dir.join("nginx.conf");
    std::fs::write(
        &config,
        format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{crm};
      proxy_read_timeout 1s;
      proxy_next_upstream off;
    }}
  }}
}}
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    let mut server = tokio::process::Command::new(&nginx)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            server.try_wait().unwrap().is_none(),
            "nginx exited: see {}",
            dir.display()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx did not listen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
}

/// nginx as a gateway with `proxy_read_timeout 1s` in front of a dependency
/// that takes 3 s: every request is a 504 after one second, and the
/// dependency sees each request once (`proxy_next_upstream off`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_times_out_at_its_read_timeout_and_the_harness_reads_exactly_that() {
    let (port, crm) = (free_port(), free_port());
    let suite = write_suite(
        "proxies-nginx",
        &format!(
            r#"
name = "nginx"

[target]
base_url = "http://127.0.0.1:{port}"

[[dependencies]]
name = "crm"
listen = "127.0.0.1:{crm}"

[[load]]
endpoint = "sync"
path = "/sync"
rate = 40.0
timeout = "5s"

[[phases]]
name = "crm slow"
duration = "2s"
faults = {{ crm = [{{ latency = {{ fixed = "3s" }} }}] }}

[[expect]]
property = "latency"
endpoint = "sync"
percentile = 99
at_most = "1100ms"
phase = "crm slow"

[[expect]]
property = "status_share"
endpoint = "sync"
status = 504
at_most = 0.0
phase = "crm slow"

[[expect]]
property = "retry_amplification"
dependency = "crm"
at_most = 1
phase = "crm slow"

[[expect]]
property = "latency"
endpoint = "sync"
percentile = 0
at_least = "950ms"
phase = "crm slow"

[[expect]]
property = "latency"
endpoint = "sync"
percentile = 0
at_least = "1500ms"
at_most = "3s"
phase = "crm slow"

[[expect]]
property = "hold_time"
dependency = "crm"
percentile = 100
at_most = "1200ms"
phase = "crm slow"

[[expect]]
property = "hold_time"
dependency = "crm"
percentile = 50
at_least = "2s"
phase = "crm slow"
"#
        ),
    );
    let mut server = nginx("proxies-nginx", port, crm).await;
    let ran = run(&suite).await;
    let (code, printed) = (ran.code, ran.printed());
    let report = ran.report();
    server.kill().await.unwrap();
    let latency = verdict(&report, "p99(sync)");
    assert_eq!(latency["outcome"], "pass", "{printed}");
    let p99 = latency["evidence"]["observed"]["duration_ms"]
        .as_f64()
        .unwrap();
    assert!((1_000.0..1_100.0).contains(&p99), "{p99} ms: {printed}");
    // From below: no answer came before nginx's read timeout...
    let waited = verdict(&report, "min(sync) >= 950ms");
    assert_eq!(waited["outcome"], "pass", "{printed}");
    // ...and none waited for the 3 s dependency: a lower bound of 1.5 s
    // fails on its lower side, at about the 1 s timeout.
    let cut = verdict(&report, "min(sync) in 1.5s..=3s");
    assert_eq!(cut["outcome"], "fail", "{printed}");
    assert_eq!(
        cut["evidence"]["threshold"]["duration_ms"], 1_500.0,
        "{printed}"
    );
    let min = cut["evidence"]["observed"]["duration_ms"].as_f64().unwrap();
    assert!((950.0..1_100.0).contains(&min), "{min} ms: {printed}");
    // nginx lets go of each call at its timeout: the 3 s dependency holds
    // none for more than about a second.
    let let_go = verdict(&report, "hold_time(crm, max) <= 1.2s");
    assert_eq!(let_go["outcome"], "pass", "{printed}");
    let held = verdict(&report, "hold_time(crm, p50) >= 2s");
    assert_eq!(held["outcome"], "fail", "{printed}");
    let p50 = held["evidence"]["observed"]["duration_ms"]
        .as_f64()
        .unwrap();
    assert!((950.0..1_200.0).contains(&p50), "{p50} ms: {printed}");
    let crm = &report["suites"][0]["dependencies"][0];
    let hold = crm["hold_ms"]["max"].as_f64().unwrap();
    assert!(
        (950.0..1_200.0).contains(&hold),
        "report.json's hold_ms: {crm}"
    );
    assert_eq!(crm["still_open"], 0, "{crm}");
    let endpoint = &report["suites"][0]["endpoints"][0];
    let reported = endpoint["latency_ms"]["min"].as_f64().unwrap();
    assert!(
        (950.0..=endpoint["latency_ms"]["p50"].as_f64().unwrap()).contains(&reported),
        "report.json's min beside the percentiles: {endpoint}"
    );
    let share = verdict(&report, "status_share");
    assert_eq!(
        share["outcome"], "fail",
        "every answer was a 504: {printed}"
    );
    assert_eq!(share["evidence"]["observed"]["ratio"], 1.0, "{printed}");
    let amplification = verdict(&report, "retry_amplification");
    assert_eq!(amplification["outcome"], "pass", "{printed}");
    assert_eq!(
        amplification["evidence"]["observed"]["ratio"], 1.0,
        "{printed}"
    );
    assert_eq!(code, Some(1), "{printed}");
}

/// HAProxy as a queue in front of a dependency that takes 1 s: two requests
/// at a time reach it (`maxconn 2`), the rest wait in HAProxy's queue and
/// are shed with a 503 once they waited `timeout queue 300ms`. Selected by
/// outcome, the 503s come no sooner than the queue's timeout and well before
/// the dependency's second, and the 200s take the dependency's second: each
/// bound is judged on its own requests, where together they would blur.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_sheds_from_its_queue_after_its_timeout_and_each_outcome_is_judged_apart() {
    let haproxy = program("haproxy");
    let dir = scratch("proxies-haproxy-queue");
    let crm = free_port();
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            r#"
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  timeout queue 300ms

frontend shop
  bind "127.0.0.1:${{PORT}}"
  default_backend crm

backend crm
  server crm 127.0.0.1:{crm} maxconn 2
"#
        ),
    )
    .unwrap();
    let suite = write_suite(
        "proxies-haproxy-queue",
        &format!(
            r#"
name = "haproxy queue"

[target]
command = ["{haproxy}", "-db", "-f", "{config}"]
env = {{ PORT = "{{port}}" }}
ready = "/sync"

[[dependencies]]
name = "crm"
listen = "127.0.0.1:{crm}"

[[load]]
endpoint = "sync"
path = "/sync"
clients = 10
timeout = "5s"

[[phases]]
name = "crm slow"
duration = "3s"
faults = {{ crm = [{{ latency = {{ fixed = "1s" }} }}] }}

[[expect]]
property = "latency"
endpoint = "sync"
phase = "crm slow"
status = 503
percentile = 0
at_least = "280ms"

[[expect]]
property = "latency"
endpoint = "sync"
phase = "crm slow"
status = 503
percentile = 99
at_most = "600ms"

[[expect]]
property = "latency"
endpoint = "sync"
phase = "crm slow"
status = "2xx"
percentile = 50
at_least = "950ms"
min_samples = 3

[[expect]]
property = "latency"
endpoint = "sync"
phase = "crm slow"
status = "2xx"
percentile = 99
at_most = "600ms"
min_samples = 3

[[expect]]
property = "latency"
endpoint = "sync"
phase = "crm slow"
percentile = 0
at_least = "280ms"

[[expect]]
property = "latency"
endpoint = "sync"
phase = "crm slow"
status = "timeout"
at_most = "1s"
"#,
            haproxy = haproxy.display(),
            config = config.display(),
        ),
    );
    let ran = run(&suite).await;
    let (code, printed) = (ran.code, ran.printed());
    let report = ran.report();
    let shed_late = verdict(&report, "min(sync [503]) >= 280ms");
    assert_eq!(shed_late["outcome"], "pass", "{printed}");
    let shed_fast = verdict(&report, "p99(sync [503]) <= 600ms");
    assert_eq!(shed_fast["outcome"], "pass", "{printed}");
    assert!(
        shed_fast["evidence"]["samples"].as_u64().unwrap() >= 10,
        "{printed}"
    );
    let waited = verdict(&report, "p50(sync [2xx]) >= 950ms");
    assert_eq!(waited["outcome"], "pass", "{printed}");
    // The admitted requests waited the dependency's second: a bound meant
    // for the shed answers fails on them.
    let admitted = verdict(&report, "p99(sync [2xx]) <= 600ms");
    assert_eq!(admitted["outcome"], "fail", "{printed}");
    let p99 = admitted["evidence"]["observed"]["duration_ms"]
        .as_f64()
        .unwrap();
    assert!((950.0..1_500.0).contains(&p99), "{p99} ms: {printed}");
    // Both outcomes together: the minimum is the shed one's, so the bound
    // from below still holds, and nothing ended in a timeout: no evidence.
    let together = verdict(&report, "min(sync) >= 280ms");
    assert_eq!(together["outcome"], "pass", "{printed}");
    let timeouts = verdict(&report, "p99(sync [timeout]) <= 1s");
    assert_eq!(timeouts["outcome"], "inconclusive", "{printed}");
    assert_eq!(code, Some(1), "{printed}");
}

/// nginx in front of a dependency whose first 20 calls fail (503, passed
/// through): half a second of outage in a 4 s phase. Over the whole phase
/// the success rate is 87.5%; in the worst 1 s window it is half. Judged in
/// every 1 s window, a bound of 80% fails on that window and one of 40%
/// holds; judged over the phase, 80% holds and hides the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_a_short_outage_through_and_only_a_windowed_threshold_sees_it() {
    let (port, crm) = (free_port(), free_port());
    let suite = write_suite(
        "proxies-nginx-windows",
        &format!(
            r#"
name = "nginx windows"

[target]
base_url = "http://127.0.0.1:{port}"

[[dependencies]]
name = "crm"
listen = "127.0.0.1:{crm}"

[[load]]
endpoint = "sync"
path = "/sync"
rate = 40.0
timeout = "5s"

[[phases]]
name = "outage"
duration = "4s"
faults = {{ crm = [{{ error = {{ status = 503 }}, first = 20 }}] }}

[[expect]]
property = "success_rate"
endpoint = "sync"
phase = "outage"
at_least = 0.8

[[expect]]
property = "success_rate"
endpoint = "sync"
phase = "outage"
at_least = 0.8
window = "1s"

[[expect]]
property = "success_rate"
endpoint = "sync"
phase = "outage"
at_least = 0.4
window = "1s"

[[expect]]
property = "latency"
endpoint = "sync"
phase = "outage"
percentile = 99
at_most = "500ms"
window = "1s"
"#
        ),
    );
    let mut server = nginx("proxies-nginx-windows", port, crm).await;
    let ran = run(&suite).await;
    let (code, printed) = (ran.code, ran.printed());
    let report = ran.report();
    server.kill().await.unwrap();
    let whole = verdict(&report, "success_rate(sync) >= 0.8");
    assert_eq!(whole["outcome"], "pass", "the phase hides it: {printed}");
    let windowed = verdict(&report, "success_rate(sync) >= 0.8 in every 1s window");
    assert_eq!(windowed["outcome"], "fail", "{printed}");
    let worst = windowed["evidence"]["observed"]["ratio"].as_f64().unwrap();
    assert!(
        (0.45..0.56).contains(&worst),
        "about half: {worst}: {printed}"
    );
    assert!(
        windowed["note"]
            .as_str()
            .unwrap()
            .starts_with("worst: the 0.0-1.0 s window"),
        "{printed}"
    );
    let loose = verdict(&report, "success_rate(sync) >= 0.4 in every 1s window");
    assert_eq!(loose["outcome"], "pass", "{printed}");
    let fast = verdict(&report, "p99(sync) <= 500ms in every 1s window");
    assert_eq!(fast["outcome"], "pass", "{printed}");
    assert_eq!(code, Some(1), "{printed}");
}
