//! `faultline run` and `faultline validate` as a user runs them: the real
//! binary, a real target on loopback, exit codes and the verdict table.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::{faultline, scratch, write_suite, Outcome, BIN};

/// A target that answers 200 after `delay`.
pub(crate) async fn target(delay: Duration) -> SocketAddr {
    crate::common::answering(200, delay).await
}

/// A suite of a baseline and a payments-down phase, with `expect`.
fn suite_text(expect: &str) -> String {
    format!(
        r#"
[target]

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 50.0
timeout = "2s"

[[phases]]
name = "baseline"
duration = "600ms"

[[phases]]
name = "payments down"
duration = "400ms"
faults = {{ payments = [{{ error = {{ status = 503 }} }}] }}

{expect}
"#
    )
}

fn suite(name: &str, expect: &str) -> PathBuf {
    write_suite(name, &suite_text(expect))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holding_property_exits_0_a_failing_one_1_and_too_few_samples_3() {
    let addr = target(Duration::from_millis(30)).await;
    let url = format!("http://{addr}");

    let holds = suite("holds", "[[expect]]\nproperty = \"success_rate\"\nendpoint = \"checkout\"\nat_least = 0.99\nphase = \"baseline\"\n");
    let ran = faultline(&["run", holds.to_str().unwrap(), "--target-url", &url]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let table = ran.stdout;
    assert!(
        table.contains("success_rate(checkout) >= 0.99") && table.contains("pass"),
        "{table}"
    );

    let fails = suite("fails", "[[expect]]\nproperty = \"latency\"\npercentile = 99\nat_most = \"10ms\"\nphase = \"baseline\"\n");
    let Outcome { code, stdout, .. } =
        faultline(&["run", fails.to_str().unwrap(), "--target-url", &url]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");

    let thin = suite("thin", "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.99\nphase = \"baseline\"\nmin_samples = 1000\n");
    let Outcome { code, stdout, .. } =
        faultline(&["run", thin.to_str().unwrap(), "--target-url", &url]).await;
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.contains("inconclusive"), "{stdout}");
}

#[tokio::test]
async fn validate_reports_every_broken_suite_with_file_line_and_column_and_exits_2() {
    let good = suite("good", "[[expect]]\nproperty = \"max_in_flight\"\ndependency = \"payments\"\nat_most = 5\nphase = \"payments down\"\n");
    let Outcome { code, stdout, .. } = faultline(&["validate", good.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("  max_in_flight(payments) <= 5 in payments down"),
        "each expectation is listed by its verdict's name: {stdout}"
    );
    let bad = suite("bad", "[[expect]]\nproperty = \"max_in_flight\"\ndependncy = \"payments\"\nat_most = 5\nphase = \"payments down\"\n");
    let Outcome { code, stderr, .. } =
        faultline(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!(
            "{}:24:1: `dependncy` does not apply to max_in_flight; it takes `phase`, `settle`, `min_samples`, `match`, `exclude`, `dependency`, `at_most`; did you mean `dependency`?",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `dependency`?"), "{stderr}");
}

#[tokio::test]
async fn validate_plan_prints_what_would_run_without_running_it() {
    let path = suite(
        "planned",
        "[[expect]]\nproperty = \"max_in_flight\"\ndependency = \"payments\"\nat_most = 5\nphase = \"payments down\"\n",
    );
    let path = path.to_str().unwrap();
    // No target answers at this address: nothing is sent.
    let plan = faultline(&[
        "validate",
        "--plan",
        path,
        "--target-url",
        "http://127.0.0.1:9/",
    ])
    .await;
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let stdout = plan.stdout;
    let expected = [
        "suite planned: 2 phases over 1s",
        "  target: http://127.0.0.1:9 (already running)",
        "  fault server: in this process",
        "  dependency payments: stub",
        "  load checkout: GET /checkout, open loop, 50/s (about 50 requests), timeout 2s",
        "  phase baseline (0s to 0.6s): no faults",
        "  phase payments down (0.6s to 1s):",
        "    payments: {\"error\":{\"status\":503,\"body\":\"\"}}",
        "  expect max_in_flight(payments) <= 5 in payments down",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line `{line}` in:\n{stdout}"
        );
    }
    // What would refuse the run refuses the plan, with the same exit code.
    let Outcome { code, stderr, .. } = faultline(&["validate", "--plan", path]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no target"), "{stderr}");
    let Outcome { code, stderr, .. } = faultline(&[
        "validate",
        "--plan",
        path,
        "--target-url",
        "http://10.1.2.3",
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not on loopback"), "{stderr}");
    // A target without --plan means nothing to validate: refused, not ignored.
    let Outcome { code, stderr, .. } =
        faultline(&["validate", path, "--target-url", "http://127.0.0.1:9"]).await;
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test]
async fn a_run_without_a_target_is_bad_usage() {
    let path = suite(
        "no-target",
        "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.9\nphase = \"baseline\"\n",
    );
    let Outcome { code, stderr, .. } = faultline(&["run", path.to_str().unwrap()]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no target"), "{stderr}");
}

#[tokio::test]
async fn a_target_started_by_command_gets_its_port_and_dependency_urls_and_is_stopped() {
    let dir = scratch("run-command");
    let seen = dir.join("payments-url.txt");
    let pid_file = dir.join("child.pid");
    // The command leaves a child of its own behind (as `cargo run` or a
    // script would): the run kills the whole process group.
    let text = format!(
        r#"
[target]
command = ["sh", "-c", "echo {{payments}} {{payments.addr}} > {seen}; sleep 300 & echo $! > {pids}; exec python3 -m http.server {{port}} --bind 127.0.0.1"]
ready = "/"

[[dependencies]]
name = "payments"

[[load]]
endpoint = "index"
path = "/"
rate = 20.0

[[phases]]
name = "steady"
duration = "1s"

[[expect]]
property = "success_rate"
at_least = 0.9
phase = "steady"
"#,
        seen = seen.display(),
        pids = pid_file.display(),
    );
    let path = write_suite("command", &text);
    let ran = faultline(&["run", path.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let seen = std::fs::read_to_string(&seen).unwrap();
    let (url, addr) = seen.trim().split_once(' ').unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{seen}");
    assert_eq!(
        Some(addr),
        url.strip_prefix("http://"),
        "{{payments.addr}} is host:port"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    // Gone, or a zombie waiting for init to reap it.
    while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the command's own child outlived the run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_placeholder_that_names_nothing_is_an_invalid_suite() {
    let text = suite_text(
        "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.9\nphase = \"baseline\"\n",
    )
    .replace(
        "[target]\n",
        "[target]\ncommand = [\"server\", \"--crm={crm}\"]\n",
    );
    let path = write_suite("bad-placeholder", &text);
    let Outcome { code, stderr, .. } = faultline(&["validate", path.to_str().unwrap()]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("`{crm}` is neither {port} nor a dependency"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_target_off_loopback_is_refused_unless_the_suite_allows_its_host() {
    let path = suite(
        "elsewhere",
        "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.9\nphase = \"baseline\"\n",
    );
    let Outcome { code, stderr, .. } = faultline(&[
        "run",
        path.to_str().unwrap(),
        "--target-url",
        "http://shop.example.com:8080",
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`shop.example.com` is not on loopback") && stderr.contains("allow_hosts"),
        "{stderr}"
    );
    // The report says usage, not broken.
    let ran = faultline(&[
        "run",
        path.to_str().unwrap(),
        "--target-url",
        "http://shop.example.com:8080",
        "--output",
        "json",
    ])
    .await;
    assert_eq!(ran.code, Some(2));
    let report = ran.report();
    assert_eq!(report["outcome"], "usage", "{report}");
}

#[tokio::test]
async fn closed_loops_with_more_clients_than_the_process_can_hold_are_refused() {
    let target = target(Duration::ZERO).await;
    let text = suite_text(
        "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.9\nphase = \"baseline\"\n",
    )
    .replace("rate = 50.0", "clients = 300");
    let path = write_suite("too-many-clients", &text);
    // Under an open-file limit of 600, 300 clients and the 512 kept back do not fit.
    let Outcome { code, stderr, .. } = tokio::process::Command::new("prlimit")
        .arg("--nofile=600:600")
        .arg(BIN)
        .args(["run", path.to_str().unwrap(), "--target-url"])
        .arg(format!("http://{target}"))
        .output()
        .await
        .expect("prlimit (util-linux)")
        .into();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("300 clients"), "{stderr}");
    assert!(stderr.contains("may open 600 files"), "{stderr}");
}
