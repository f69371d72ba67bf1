//! A verdict rests on all the evidence it needs: every call a dependency
//! received is in the harness's view at any rate its driver can send (or,
//! when a remote ring lost some, the verdicts that needed them say so);
//! no calls at all, or a target that never answered, is never a pass.

use std::path::Path;
use std::time::Duration;

use fault_server::{DependencySpec, FaultServer, StubResponse};

use crate::common::{
    checkout_service, faultline, verdict, write_suite, Defences, Outcome, Retries,
};

/// Runs the binary on `path` with `--output json` and `args`.
async fn run(path: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["run", path.to_str().unwrap(), "--output", "json"];
    all.extend(args);
    faultline(all).await
}

fn payments_server(journal_capacity: usize) -> FaultServer {
    FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .journal_capacity(journal_capacity)
        .control("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap()
}

fn closed_loop_suite(control: &str, clients: u32, expect: &str) -> String {
    format!(
        r#"
[target]
[fault_server]
control_url = "http://{control}"

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
clients = {clients}
timeout = "2s"

[[phases]]
name = "busy"
duration = "1500ms"

{expect}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_per_request_reads_exactly_one_with_the_harness_own_fault_server() {
    // The demo shop's naive checkout calls payments once per request while
    // payments is healthy; 64 clients make calls faster than a 4,096-record
    // ring read every 50 ms would keep.
    let path = write_suite(
        "own-server",
        r#"
[target]
demo = "naive"

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
clients = 64
timeout = "2s"

[[phases]]
name = "busy"
duration = "2s"

[[expect]]
property = "retry_amplification"
dependency = "payments"
at_most = 0.95
phase = "busy"
"#,
    );
    let ran = run(&path, &[]).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(1), "{printed}");
    let report = ran.report();
    let verdict = verdict(&report, "retry_amplification");
    assert_eq!(verdict["outcome"], "fail", "{verdict}");
    assert_eq!(
        verdict["evidence"]["observed"]["ratio"], 1.0,
        "every call counted, each with its request: {verdict}"
    );
    assert!(verdict["evidence"]["samples"].as_u64().unwrap() > 1_000);
    assert_eq!(report["suites"][0]["dependencies"][0]["lost_records"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_remote_ring_overwrote_make_the_verdicts_that_need_them_inconclusive() {
    let server = payments_server(8);
    let target = checkout_service(server.url("payments").unwrap(), Defences::default()).await;
    let control = server.control_addr().unwrap().to_string();
    let path = write_suite(
        "lost",
        &closed_loop_suite(
            &control,
            32,
            r#"
[[expect]]
property = "retry_amplification"
dependency = "payments"
at_most = 0.95
phase = "busy"
"#,
        ),
    );
    let ran = run(&path, &["--target-url", &format!("http://{target}")]).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(3), "inconclusive, never a pass: {printed}");
    let report = ran.report();
    let verdict = verdict(&report, "retry_amplification");
    assert_eq!(verdict["outcome"], "inconclusive");
    let why = verdict["reason"].as_str().unwrap_or_default().to_owned() + &verdict.to_string();
    assert!(why.contains("overwritten"), "{verdict}");
    let lost = report["suites"][0]["dependencies"][0]["lost_records"]
        .as_u64()
        .unwrap();
    assert!(lost > 0, "report.json says how many: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_the_target_never_called_is_no_evidence() {
    // The target calls a payments the suite's fault server does not serve.
    let elsewhere = payments_server(4_096);
    let target = checkout_service(elsewhere.url("payments").unwrap(), Defences::default()).await;
    let server = payments_server(4_096);
    let control = server.control_addr().unwrap().to_string();
    let path = write_suite(
        "never-called",
        &closed_loop_suite(
            &control,
            2,
            r#"
[[expect]]
property = "retry_amplification"
dependency = "payments"
at_most = 3
phase = "busy"

[[expect]]
property = "calls"
dependency = "payments"
at_most = 100000
phase = "busy"

[[expect]]
property = "max_in_flight"
dependency = "payments"
at_most = 10
phase = "busy"
min_samples = 1
"#,
        ),
    );
    let ran = run(&path, &["--target-url", &format!("http://{target}")]).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(3), "{printed}");
    let report = ran.report();
    for property in ["retry_amplification", "calls", "max_in_flight"] {
        let verdict = verdict(&report, property);
        assert_eq!(verdict["outcome"], "inconclusive", "{verdict}");
        assert!(
            verdict.to_string().contains("no call reached `payments`"),
            "{verdict}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_breaks_the_run() {
    let server = payments_server(4_096);
    let control = server.control_addr().unwrap().to_string();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = write_suite(
        "target-down",
        &closed_loop_suite(
            &control,
            2,
            r#"
[[expect]]
property = "retry_amplification"
dependency = "payments"
at_most = 3
phase = "busy"
"#,
        ),
    );
    let ran = run(&path, &["--target-url", &format!("http://{dead}")]).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(4), "{printed}");
    assert!(printed.contains("never answered"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_judged_in_the_phase_whose_faults_they_met() {
    // Three attempts per request while payments fails, one once it is well:
    // requests sent as the faults change must not count their old-fault
    // retries in the healthy phase, nor their new-fault retries in the old.
    let server = payments_server(4_096);
    let target = checkout_service(
        server.url("payments").unwrap(),
        Defences {
            retries: Retries::Immediate(2),
            ..Defences::default()
        },
    )
    .await;
    let control = server.control_addr().unwrap().to_string();
    let text = format!(
        r#"
[target]
[fault_server]
control_url = "http://{control}"

[[dependencies]]
name = "payments"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 300.0
timeout = "2s"

[[phases]]
name = "failing"
duration = "600ms"
faults = {{ payments = [{{ error = {{ status = 503 }} }}] }}

[[phases]]
name = "healthy"
duration = "600ms"

[[phases]]
name = "failing again"
duration = "600ms"
faults = {{ payments = [{{ error = {{ status = 503 }} }}] }}

# The same faults a little longer: a request of "failing again" whose retries
# cross its end still fails them all (into a healthy phase, its retry would
# succeed and it would make 2 calls, not 3: true, but not this test's point).
[[phases]]
name = "failing still"
duration = "200ms"
faults = {{ payments = [{{ error = {{ status = 503 }} }}] }}

[[phases]]
name = "recovery"
duration = "300ms"

[[expect]]
property = "max_attempts"
dependency = "payments"
at_most = 1
phase = "healthy"

[[expect]]
property = "retry_amplification"
dependency = "payments"
at_most = 1.0
phase = "healthy"

[[expect]]
property = "retry_amplification"
dependency = "payments"
at_most = 3.0
phase = "failing again"
"#
    );
    let path = write_suite("boundaries", &text);
    let ran = run(&path, &["--target-url", &format!("http://{target}")]).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(0), "{printed}");
    let report = ran.report();
    let amplification = report["suites"][0]["verdicts"][2]["evidence"]["observed"]["ratio"]
        .as_f64()
        .unwrap();
    assert_eq!(
        amplification, 3.0,
        "exactly three calls per request: {report}"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_s_own_faults_stand_in_every_phase() {
    let server = payments_server(4_096);
    let target = checkout_service(server.url("payments").unwrap(), Defences::default()).await;
    let control = server.control_addr().unwrap().to_string();
    let text = closed_loop_suite(
        &control,
        2,
        r#"
[[expect]]
property = "success_rate"
at_least = 0.99
phase = "busy"
"#,
    )
    .replace(
        "name = \"payments\"\n",
        "name = \"payments\"\nfaults = [{ error = { status = 503 } }]\n",
    );
    let path = write_suite("standing", &text);
    let ran = run(&path, &["--target-url", &format!("http://{target}")]).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(1), "{printed}");
    let report = ran.report();
    let failed = report["suites"][0]["dependencies"][0]["outcomes"]["503"].as_u64();
    assert!(failed > Some(0), "{report}");
}

/// Calls that keep reaching a dependency after the load is over (a load
/// balancer's health checks) land in a journal window of their own: they
/// are no phase's, so a phase's exact count is final when its records are
/// read, and never reads as records lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_the_load_are_no_phase_s_and_never_read_as_lost() {
    let server = payments_server(100_000);
    let payments = server.url("payments").unwrap();
    let target = checkout_service(payments.clone(), Defences::default()).await;
    let control = server.control_addr().unwrap().to_string();
    // A checker calling payments as fast as it can, bounded in time.
    let checking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let checker = {
        let checking = std::sync::Arc::clone(&checking);
        tokio::spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Empty<bytes::Bytes>>();
            let uri: http::Uri = format!("{payments}/__health").parse().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while checking.load(std::sync::atomic::Ordering::Relaxed)
                && std::time::Instant::now() < deadline
            {
                let _ = client.get(uri.clone()).await;
            }
        })
    };
    let path = write_suite(
        "after-the-load",
        &closed_loop_suite(
            &control,
            4,
            r#"
[[expect]]
property = "calls"
dependency = "payments"
at_most = 10000000
phase = "busy"
"#,
        )
        .replace(
            "[target]\n",
            &format!("[target]\nbase_url = \"http://{target}\"\n"),
        ),
    );
    let ran = run(&path, &[]).await;
    let printed = ran.printed();
    checking.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = checker.await;
    assert_eq!(ran.code, Some(0), "{printed}");
    let report = ran.report();
    assert_eq!(verdict(&report, "calls")["outcome"], "pass", "{printed}");
    assert_eq!(
        report["suites"][0]["dependencies"][0]["lost_records"], 0,
        "{printed}"
    );
}
