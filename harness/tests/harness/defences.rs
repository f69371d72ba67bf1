//! Each defence, end to end through the real `faultline` binary: a suite run
//! against the test checkout service with the defence exits 0, and against
//! the same service without it exits 1. The fault server runs in this test
//! (its control API on a loopback port, named in the suite's
//! `[fault_server]`), so the service knows where payments is before the
//! harness starts.

use std::time::Duration;

use fault_server::{DependencySpec, FaultServer, StubResponse};

use crate::common::{checkout_service, faultline, write_suite, Defences, Outcome, Retries};

/// Runs a suite against a checkout service with `defences`: baseline 400 ms,
/// then `fault` at payments for `fault_for`, then recovery 300 ms, at 50
/// requests/s.
async fn judge(
    name: &str,
    defences: Defences,
    fault: &str,
    fault_for: &str,
    expect: &str,
) -> Outcome {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .control("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let target = checkout_service(server.url("payments").unwrap(), defences).await;
    let control = server.control_addr().unwrap();
    let suite = format!(
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
rate = 50.0
timeout = "2s"

[[phases]]
name = "baseline"
duration = "400ms"

[[phases]]
name = "payments failing"
duration = "{fault_for}"
faults = {{ payments = [{fault}] }}

[[phases]]
name = "recovery"
duration = "300ms"

{expect}
"#
    );
    let path = write_suite(name, &suite);
    faultline(["run", path.to_str().unwrap()]).await
}

/// The suite holds with the defence (exit 0) and fails without it (exit 1).
async fn holds_only_with(
    test: &str,
    defended: Defences,
    bare: Defences,
    fault: &str,
    fault_for: &str,
    expect: &str,
) {
    let ran = judge(
        &format!("{test}-defended"),
        defended,
        fault,
        fault_for,
        expect,
    )
    .await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(0), "with the defence:\n{printed}");
    let ran = judge(&format!("{test}-bare"), bare, fault, fault_for, expect).await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(1), "without the defence:\n{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulkhead_tower_concurrency_limit_holds_max_in_flight() {
    let bulkhead = Defences {
        bulkhead: Some(5),
        ..Defences::default()
    };
    holds_only_with(
        "bulkhead",
        bulkhead,
        Defences::default(),
        r#"{ latency = { fixed = "200ms" } }"#,
        "800ms",
        "[[expect]]\nproperty = \"max_in_flight\"\ndependency = \"payments\"\nat_most = 5\nphase = \"payments failing\"\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_jittered_backoff_under_a_budget_holds_where_three_immediate_retries_storm() {
    let backoff = Defences {
        retries: Retries::Backoff {
            times: 3,
            min: Duration::from_millis(20),
            max: Duration::from_millis(160),
            fresh_jitter: true,
        },
        ..Defences::default()
    };
    let storm = Defences {
        retries: Retries::Immediate(3),
        ..Defences::default()
    };
    // tower's backoff waits min·2^k plus up to as much again: the equal-jitter
    // envelope of base 2·min.
    let expect = "[[expect]]\nproperty = \"retry_amplification\"\ndependency = \"payments\"\nat_most = 1.5\nphase = \"payments failing\"\n\n\
                  [[expect]]\nproperty = \"backoff\"\ndependency = \"payments\"\nbase = \"40ms\"\nmax = \"320ms\"\njitter = \"equal\"\nphase = \"payments failing\"\nmin_samples = 5\n";
    holds_only_with(
        "backoff",
        backoff,
        storm,
        r#"{ error = { status = 503 } }"#,
        "1s",
        expect,
    )
    .await;
}

/// One `ExponentialBackoff` cloned into every request's retry policy carries
/// its random state along: every request draws the same jitter, so requests
/// that failed together retry together. The amplification stays low (the
/// budget holds), but the backoff property sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backoff_whose_jitter_every_request_shares_fails_the_backoff_property() {
    let shared_jitter = Defences {
        retries: Retries::Backoff {
            times: 3,
            min: Duration::from_millis(20),
            max: Duration::from_millis(160),
            fresh_jitter: false,
        },
        ..Defences::default()
    };
    let expect = "[[expect]]\nproperty = \"backoff\"\ndependency = \"payments\"\nbase = \"40ms\"\nmax = \"320ms\"\njitter = \"equal\"\nphase = \"payments failing\"\nmin_samples = 5\n";
    // Two seconds of failures: tower's budget lets about ten first retries
    // through a second, and the property needs ten to call jitter missing.
    let ran = judge(
        "shared-jitter",
        shared_jitter,
        r#"{ error = { status = 503 } }"#,
        "2s",
        expect,
    )
    .await;
    let printed = ran.printed();
    assert_eq!(ran.code, Some(1), "{printed}");
    assert!(printed.contains("no jitter"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opens_holds_back_and_probes() {
    let breaker = Defences {
        breaker: Some((5, Duration::from_millis(150))),
        ..Defences::default()
    };
    holds_only_with(
        "breaker",
        breaker,
        Defences::default(),
        r#"{ error = { status = 503 } }"#,
        "800ms",
        "[[expect]]\nproperty = \"breaker\"\ndependency = \"payments\"\nfailures = 5\nreset = \"150ms\"\nprobes = 1\nphase = \"payments failing\"\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_timeout_fails_fast_on_a_hung_dependency() {
    let timeout = Defences {
        timeout: Some(Duration::from_millis(100)),
        ..Defences::default()
    };
    holds_only_with(
        "timeout",
        timeout,
        Defences::default(),
        r#"{ hang = {} }"#,
        "600ms",
        "[[expect]]\nproperty = \"latency\"\nendpoint = \"checkout\"\npercentile = 99\nat_most = \"300ms\"\nphase = \"payments failing\"\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_load_shed_answers_overload_with_a_fast_429() {
    // Payments slows down with the calls it holds: 100 ms more per call in
    // flight. Five at once (the bulkhead) answer within 500 ms; without one,
    // 50 requests/s pile up without end.
    let shedding = Defences {
        bulkhead: Some(5),
        shed: true,
        ..Defences::default()
    };
    holds_only_with(
        "shedding",
        shedding,
        Defences::default(),
        r#"{ saturation = { base = "100ms", workers = 1 } }"#,
        "600ms",
        "[[expect]]\nproperty = \"shed_fast\"\nendpoint = \"checkout\"\nrejected_within = \"50ms\"\naccepted_within = \"800ms\"\nphase = \"payments failing\"\n",
    )
    .await;
}
