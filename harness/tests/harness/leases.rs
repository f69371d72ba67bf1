//! A run against a remote fault server leaves it as it found it: the
//! dependencies it added go with the run (leased, so even with a SIGKILLed
//! run), the standing faults it found are put back, an existing dependency
//! whose settings differ from the suite's is not silently reused, and a
//! signal ends the run within about a second even when the server has
//! stopped answering.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fault_server::{Clock, DependencyView};
use faultline_harness::run::lease::LEASE;
use faultline_harness::run::remote::RemoteFaultServer;

use crate::common::{
    checkout_service, faultline, scratch, standalone_fault_server, verdict, write_suite, Defences,
    Outcome, BIN,
};

/// A suite against the remote at `control` and `target`: `dependencies`
/// (TOML), a short baseline and a `fault_for` long payments-slow phase.
fn suite_text(control: &str, target: &str, dependencies: &str, fault_for: &str) -> String {
    format!(
        r#"
[target]
base_url = "http://{target}"

[fault_server]
control_url = "http://{control}"

{dependencies}

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 20.0

[[phases]]
name = "baseline"
duration = "200ms"

[[phases]]
name = "payments slow"
duration = "{fault_for}"
faults = {{ payments = [{{ latency = {{ fixed = "20ms" }} }}] }}

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "baseline"
min_samples = 1

[[expect]]
property = "max_in_flight"
dependency = "payments"
at_most = 100
phase = "baseline"
min_samples = 1
"#
    )
}

async fn connect(control: &str) -> RemoteFaultServer {
    RemoteFaultServer::connect(&format!("http://{control}"), None, Clock::start())
        .await
        .unwrap()
}

async fn find(remote: &RemoteFaultServer, name: &str) -> Option<DependencyView> {
    remote
        .dependencies()
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.name == name)
}

/// [`suite_text`] written as `name`.
fn suite(name: &str, control: &str, target: &str, dependencies: &str, fault_for: &str) -> PathBuf {
    write_suite(name, &suite_text(control, target, dependencies, fault_for))
}

/// Runs the suite at `suite` with `--output json` to its end.
async fn run(suite: &Path) -> Outcome {
    faultline(["run", suite.to_str().unwrap(), "--output", "json"]).await
}

/// Starts a run of the suite at `suite` with `--output json`, its output piped.
fn start_run(suite: &Path) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .arg("run")
        .arg(suite)
        .args(["--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_a_run_added_goes_within_its_lease_when_the_harness_is_killed() {
    let dir = scratch("leases-sigkill");
    let (_server, control, payments) =
        standalone_fault_server(&dir, "[[dependencies]]\nname = \"payments\"\n").await;
    let target = checkout_service(payments, Defences::default())
        .await
        .to_string();
    let deps = "[[dependencies]]\nname = \"payments\"\n\n[[dependencies]]\nname = \"extra\"\nresponse = { status = 201 }\n";
    let mut run = start_run(&suite("leases-sigkill", &control, &target, deps, "60s"));
    let remote = connect(&control).await;
    until(
        "the run added `extra`",
        Duration::from_secs(10),
        async || find(&remote, "extra").await.is_some(),
    )
    .await;
    let added = find(&remote, "extra").await.unwrap();
    assert!(added.expires_in.is_some(), "added with a lease: {added:?}");
    // Renewed while the run lives: it outlives its first lease.
    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    assert!(
        find(&remote, "extra").await.is_some(),
        "renewed while the run lives"
    );
    run.start_kill().unwrap();
    let killed = Instant::now();
    run.wait().await.unwrap();
    until("`extra` outlived the harness", LEASE * 3, async || {
        find(&remote, "extra").await.is_none()
    })
    .await;
    let gone_after = killed.elapsed();
    assert!(
        gone_after <= LEASE + Duration::from_millis(300),
        "`extra` outlived the harness by {gone_after:?}"
    );
    assert!(
        find(&remote, "payments").await.is_some(),
        "what it found stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_the_fault_server_does_not_answer_exits_within_a_second_with_verdicts() {
    let dir = scratch("leases-frozen");
    let (server, control, payments) =
        standalone_fault_server(&dir, "[[dependencies]]\nname = \"payments\"\n").await;
    let target = checkout_service(payments, Defences::default())
        .await
        .to_string();
    let deps = "[[dependencies]]\nname = \"payments\"\n";
    let run = start_run(&suite("leases-frozen", &control, &target, deps, "60s"));
    let remote = connect(&control).await;
    until("the fault went in", Duration::from_secs(10), async || {
        find(&remote, "payments")
            .await
            .is_some_and(|v| !v.faults.is_empty())
    })
    .await;
    let server_pid = server.id().unwrap().to_string();
    let signal = |signal: &str, pid: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP", &server_pid);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let interrupted = Instant::now();
    signal("-INT", &run.id().unwrap().to_string());
    let ran: Outcome = tokio::time::timeout(Duration::from_secs(10), run.wait_with_output())
        .await
        .expect("the harness went on after the signal")
        .unwrap()
        .into();
    let took = interrupted.elapsed();
    signal("-CONT", &server_pid);
    assert_eq!(ran.code, Some(4), "{}", ran.printed());
    assert!(
        took <= Duration::from_millis(1_500),
        "exited {took:?} after SIGINT"
    );
    let report = ran.report();
    let verdicts = report["suites"][0]["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2, "{report}");
    let bulkhead = verdict(&report, "max_in_flight");
    assert_eq!(bulkhead["outcome"], "inconclusive", "{report}");
    assert!(
        bulkhead["note"]
            .as_str()
            .unwrap()
            .contains("could not be read to the end"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_dependency_that_differs_is_refused_unless_reused_and_standing_faults_are_put_back(
) {
    let dir = scratch("leases-differs");
    let config = "[[dependencies]]\nname = \"payments\"\nresponse = { status = 201 }\nfaults = [{ latency = { fixed = \"1ms\" } }]\n";
    let (_server, control, payments) = standalone_fault_server(&dir, config).await;
    let target = checkout_service(payments, Defences::default()).await;
    let target = target.to_string();
    let differs =
        "[[dependencies]]\nname = \"payments\"\nresponse = { status = 200, body = \"paid\" }\n";
    let Outcome { code, stderr, .. } = run(&suite(
        "leases-differs",
        &control,
        &target,
        differs,
        "300ms",
    ))
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("has a dependency `payments` whose response differs"),
        "{stderr}"
    );
    assert!(stderr.contains("reuse = true"), "{stderr}");

    // Reused as it is; the standing fault it had is back after the run.
    let text = suite_text(&control, &target, differs, "300ms")
        .replace("[fault_server]\n", "[fault_server]\nreuse = true\n");
    let ran = run(&write_suite("leases-reused", &text)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let remote = connect(&control).await;
    let payments = find(&remote, "payments").await.unwrap();
    assert_eq!(payments.faults.len(), 1, "{payments:?}");
    assert!(payments.faults[0].expires_in.is_none(), "{payments:?}");
    assert_eq!(payments.response.status, 201);
    // A suite that only names the dependency takes it as it is.
    let named = "[[dependencies]]\nname = \"payments\"\n";
    let Outcome { code, stderr, .. } =
        run(&suite("leases-named", &control, &target, named, "300ms")).await;
    assert_eq!(code, Some(0), "{stderr}");
    // A selection by a header the remote dependency's records do not keep
    // cannot be judged: refused, naming the header.
    let text = suite_text(&control, &target, named, "300ms").replace(
        "property = \"max_in_flight\"\n",
        "property = \"max_in_flight\"\nexclude = { headers = { \"x-health\" = \"yes\" } }\n",
    );
    let Outcome { code, stderr, .. } = run(&write_suite("leases-by-header", &text)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("records keep no `x-health` header"),
        "{stderr}"
    );
}
