//! A run always cleans up after itself: faults it injected at a standalone
//! fault server vanish within their lease when the harness is killed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use fault_server::Clock;
use faultline_harness::run::lease::LEASE;
use faultline_harness::run::remote::RemoteFaultServer;

use crate::common::{
    answering, checkout_service, faultline, scratch, standalone_fault_server, write_suite,
    Defences, Outcome, BIN,
};

async fn payments_faults(remote: &RemoteFaultServer) -> usize {
    let views = remote.dependencies().await.unwrap();
    views
        .iter()
        .find(|v| v.name == "payments")
        .map_or(0, |v| v.faults.len())
}

/// A standalone fault server, a checkout service calling it, and `faultline
/// run` of a suite whose fault phase lasts a minute, once the fault is in.
struct Running {
    _server: tokio::process::Child,
    run: tokio::process::Child,
    remote: RemoteFaultServer,
}

async fn run_with_a_long_fault(name: &str) -> Running {
    let dir = scratch(&format!("cleanup-{name}"));
    let (server, control, payments) =
        standalone_fault_server(&dir, "[[dependencies]]\nname = \"payments\"\n").await;
    let target = checkout_service(payments, Defences::default()).await;
    let suite = write_suite(
        &format!("cleanup-{name}"),
        &format!(
            r#"
[target]
base_url = "http://{target}"

[fault_server]
control_url = "http://{control}"

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 20.0

[[phases]]
name = "baseline"
duration = "200ms"

[[phases]]
name = "payments slow"
duration = "60s"
faults = {{ payments = [{{ latency = {{ fixed = "50ms" }} }}] }}

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "payments slow"
"#
        ),
    );
    let run = tokio::process::Command::new(BIN)
        .args(["run", suite.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let remote = RemoteFaultServer::connect(&format!("http://{control}"), None, Clock::start())
        .await
        .unwrap();
    let waiting = Instant::now();
    while payments_faults(&remote).await == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the fault never went in"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        _server: server,
        run,
        remote,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_vanish_within_their_lease_when_the_harness_is_killed() {
    let Running {
        _server,
        mut run,
        remote,
    } = run_with_a_long_fault("sigkill").await;
    // Long enough for a few renewals: the lease outlives its first term.
    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    assert_eq!(
        payments_faults(&remote).await,
        1,
        "renewed while the run lives"
    );
    run.start_kill().unwrap(); // SIGKILL: no chance to clean up.
    let killed = Instant::now();
    run.wait().await.unwrap();
    while payments_faults(&remote).await > 0 {
        // Fails rather than waits for ever if nothing would remove them.
        assert!(
            killed.elapsed() < LEASE * 3,
            "the faults outlived the harness"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone_after = killed.elapsed();
    assert!(
        gone_after <= LEASE + Duration::from_millis(100),
        "faults outlived the harness by {gone_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_load_clears_the_faults_and_exits_4_within_a_second() {
    stopped_by("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_load_clears_the_faults_and_exits_4_within_a_second() {
    stopped_by("TERM").await;
}

async fn stopped_by(signal: &str) {
    let Running {
        _server,
        run,
        remote,
    } = run_with_a_long_fault(&signal.to_lowercase()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = run.id().unwrap().to_string();
    let interrupted = Instant::now();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(status.success());
    // The suite's fault phase lasts a minute: a harness deaf to the signal fails here.
    let ran: Outcome = tokio::time::timeout(Duration::from_secs(5), run.wait_with_output())
        .await
        .expect("the harness went on after the signal")
        .unwrap()
        .into();
    let took = interrupted.elapsed();
    let (stdout, stderr) = (&ran.stdout, &ran.stderr);
    assert_eq!(ran.code, Some(4), "{stdout}{stderr}");
    assert!(
        took <= Duration::from_secs(1),
        "exited {took:?} after SIGINT"
    );
    assert_eq!(
        payments_faults(&remote).await,
        0,
        "faults cleared before exit"
    );
    assert!(stderr.contains("aborted"), "{stderr}");
    assert!(
        stdout.contains("success_rate"),
        "the partial verdicts: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_baseline_aborts_the_run_before_any_fault_goes_in() {
    let sick = answering(500, Duration::ZERO).await;
    let path = write_suite(
        "sick",
        &format!(
            r#"
[target]
base_url = "http://{sick}"

[abort_when]
phase = "baseline"
success_rate_below = 0.9

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 50.0

[[phases]]
name = "baseline"
duration = "400ms"

[[phases]]
name = "payments down"
duration = "5s"
faults = {{ payments = [{{ error = {{ status = 503 }} }}] }}

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "payments down"
"#
        ),
    );
    let reports = path.with_extension("reports");
    let started = Instant::now();
    let Outcome { code, stderr, .. } = faultline([
        "run",
        path.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped at the baseline's end"
    );
    assert!(
        stderr.contains("abort_when: at the end of `baseline`, the success rate was 0.000"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "aborted");
    assert_eq!(report["suites"][0]["aborted"], true);
    let phases: Vec<&str> = report["suites"][0]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["baseline"], "the fault phase never began");
}

/// A target gone slow mid-run: `abort_when` on latency stops the run while
/// the phase goes (k6's `abortOnFail`), not at its end, and says which
/// condition held and when; the verdicts judge what was seen until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_threshold_aborts_the_run_as_it_goes_and_says_when() {
    let slow = answering(200, Duration::from_millis(300)).await;
    let path = write_suite(
        "slow-abort",
        &format!(
            r#"
[target]
base_url = "http://{slow}"

[abort_when]
phase = "load"
latency_above = "100ms"
delay = "500ms"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 50.0

[[phases]]
name = "load"
duration = "20s"

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "load"
"#
        ),
    );
    let reports = path.with_extension("reports");
    let started = Instant::now();
    let Outcome { code, stderr, .. } = faultline([
        "run",
        path.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped well before the phase's 20 s: {:?}",
        started.elapsed()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap())
            .unwrap();
    let why = report["aborted_reason"].as_str().unwrap();
    assert!(why.contains("aborted by abort_when: "), "{why}");
    assert!(
        why.contains(" into `load`, p99 latency was 3"),
        "which condition, and when: {why}"
    );
    assert!(why.contains("over 100ms; the run stopped there"), "{why}");
    assert!(stderr.contains(why), "{stderr}");
    let phase = &report["suites"][0]["phases"][0];
    let lasted = phase["end_ns"].as_u64().unwrap() - phase["start_ns"].as_u64().unwrap();
    assert!(
        lasted < 3_000_000_000,
        "the phase was cut where the run stopped: {phase}"
    );
}

/// A phase no request was sent in is no evidence of an unhealthy target:
/// `abort_when` on it does not stop the run (it did, on "0 of 0").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_when_on_a_phase_without_requests_does_not_stop_the_run() {
    let healthy = answering(200, Duration::ZERO).await;
    let path = write_suite(
        "quiet-abort",
        &format!(
            r#"
[target]
base_url = "http://{healthy}"

[abort_when]
phase = "quiet"
success_rate_below = 0.9

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 50.0
phases = ["busy"]

[[phases]]
name = "quiet"
duration = "500ms"

[[phases]]
name = "busy"
duration = "1s"

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "busy"
"#
        ),
    );
    let Outcome { code, stderr, .. } = faultline(["run", path.to_str().unwrap()]).await;
    assert_eq!(
        code,
        Some(0),
        "the run went on into `busy` and passed: {stderr}"
    );
    assert!(!stderr.contains("abort_when"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_never_sends_more_than_its_max_requests() {
    let healthy = answering(200, Duration::ZERO).await;
    let path = write_suite(
        "capped",
        &format!(
            r#"
max_requests = 12

[target]
base_url = "http://{healthy}"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 100.0

[[phases]]
name = "baseline"
duration = "500ms"

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "baseline"
"#
        ),
    );
    let ran = faultline(["run", path.to_str().unwrap(), "--output", "json"]).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let report = ran.report();
    assert_eq!(report["suites"][0]["endpoints"][0]["requests"], 12);
}

/// The pid of a running `faultline demo serve` whose parent is `parent`.
fn demo_child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        (ppid == parent && cmdline.windows(11).any(|w| w == b"demo\0serve\0")).then_some(pid)
    })
}

/// Whether `pid` still runs (a zombie left for a reaper does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_a_run_started_dies_with_a_harness_killed_by_sigkill() {
    let suite = write_suite(
        "cleanup-demo",
        r#"
[target]
demo = "naive"

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 5.0

[[phases]]
name = "long"
duration = "60s"

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "long"
"#,
    );
    let mut run = tokio::process::Command::new(BIN)
        .arg("run")
        .arg(&suite)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let harness = run.id().unwrap();
    let started = Instant::now();
    let demo = loop {
        if let Some(pid) = demo_child_of(harness) {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the demo never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    run.start_kill().unwrap(); // SIGKILL: kill_on_drop never runs in the harness.
    run.wait().await.unwrap();
    let killed = Instant::now();
    while alive(demo) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the demo outlived the harness"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
