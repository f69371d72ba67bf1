//! `faultline run` against a fault server in another process's reach: the
//! suite names its control API, the harness switches faults and reads the
//! journal over HTTP, and moves the journal's instants onto its own clock.

use std::path::{Path, PathBuf};

use fault_server::{DependencySpec, FaultServer, StubResponse};

use crate::common::{checkout_service, faultline, write_suite, Defences, Outcome};

/// A fault server with `payments`, its control API on a loopback port.
fn remote_server() -> FaultServer {
    FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .control("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap()
}

fn suite(name: &str, control: &str) -> PathBuf {
    let text = format!(
        r#"
[target]

[fault_server]
control_url = "http://{control}"

[[dependencies]]
name = "payments"

# Not served by the remote server: added for the run, removed after it.
[[dependencies]]
name = "crm"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 100.0
timeout = "2s"

[[phases]]
name = "baseline"
duration = "400ms"

[[phases]]
name = "payments slow"
duration = "800ms"
faults = {{ payments = [{{ latency = {{ fixed = "200ms" }} }}] }}

[[phases]]
name = "recovery"
duration = "300ms"

[[expect]]
property = "max_in_flight"
dependency = "payments"
at_most = 5
phase = "payments slow"

[[expect]]
property = "max_in_flight"
dependency = "payments"
at_most = 2
phase = "baseline"
"#
    );
    write_suite(name, &text)
}

/// Runs the suite at `suite` against `target`.
async fn run(suite: &Path, target: &str) -> Outcome {
    faultline(["run", suite.to_str().unwrap(), "--target-url", target]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_fault_server_is_driven_through_its_control_api_and_left_as_found() {
    let server = remote_server();
    let control = server.control_addr().unwrap().to_string();
    let payments = server.url("payments").unwrap();
    let guarded = checkout_service(
        payments.clone(),
        Defences {
            bulkhead: Some(5),
            ..Defences::default()
        },
    )
    .await;
    let bare = checkout_service(payments, Defences::default()).await;
    let path = suite("bulkhead", &control);

    let ran = run(&path, &format!("http://{guarded}")).await;
    let table = ran.printed();
    assert_eq!(ran.code, Some(0), "{table}");
    // The baseline's calls (about 40, a few ms each) were judged in their own
    // phase: the remote journal's instants were moved onto the harness's clock.
    assert!(!table.contains("inconclusive"), "{table}");
    let ran = run(&path, &format!("http://{bare}")).await;
    let table = ran.printed();
    assert_eq!(ran.code, Some(1), "{table}");

    assert!(
        server.dependency("payments").unwrap().faults.is_empty(),
        "faults cleared at the end"
    );
    assert!(server.stats("payments").unwrap().total.calls >= 200);
    assert_eq!(
        server.addrs().into_keys().collect::<Vec<_>>(),
        ["payments"],
        "the dependency the runs added is gone"
    );
}

#[tokio::test]
async fn an_unreachable_remote_fault_server_breaks_the_run_with_exit_4() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = suite("unreachable", &format!("127.0.0.1:{port}"));
    let ran = run(&path, "http://127.0.0.1:1").await;
    let text = ran.printed();
    assert_eq!(ran.code, Some(4), "{text}");
    assert!(text.contains("/clock: no answer"), "{text}");
    // Broken, not aborted: nothing stopped it, it could not run.
    let report = faultline([
        "run",
        path.to_str().unwrap(),
        "--target-url",
        "http://127.0.0.1:1",
        "--output",
        "json",
    ])
    .await
    .report();
    assert_eq!(
        (&report["outcome"], &report["exit_code"]),
        (&serde_json::json!("broken"), &serde_json::json!(4))
    );
}
