//! Whole runs through phases against the test checkout service, judged by
//! properties: each passes with the defence it checks and fails without it.

use std::time::Duration;

use fault_server::{DependencySpec, FaultServer, StubResponse};
use faultline_harness::load::{Arrival, Endpoint, Load};
use faultline_harness::run::plan::PhasePlan;
use faultline_harness::run::timeline::run;
use faultline_properties::{
    Breaker, LatencyBound, LatencyLimit, MaxInFlight, Property, RetryAmplification, Scope,
    ShedFast, SuccessRate,
};
use faultline_properties::{Measure, Observations, Outcome};

use crate::common::{checkout_service, Defences, Retries};

async fn payments_slow_run(bulkhead: Option<usize>) -> Observations {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .start()
        .unwrap();
    let target = checkout_service(
        server.url("payments").unwrap(),
        Defences {
            bulkhead,
            ..Defences::default()
        },
    )
    .await;
    let slow = serde_json::from_str(r#"{"latency": {"fixed": "200ms"}}"#).unwrap();
    let phases = [
        PhasePlan::calm("baseline", Duration::from_millis(300)),
        PhasePlan::calm("payments slow", Duration::from_millis(800)).with_fault("payments", slow),
        PhasePlan::calm("recovery", Duration::from_millis(300)),
    ];
    let load = Load {
        endpoint: Endpoint::get(
            "checkout",
            format!("http://{target}/checkout").parse().unwrap(),
        ),
        arrival: Arrival::Open { rate: 100.0 },
        // Each load lasts the whole run.
        duration: phases.iter().map(|p| p.duration).sum(),
        pacing: Default::default(),
        variants: Default::default(),
    };
    let result = run(&server, &phases, vec![load], 1).await.unwrap();
    assert!(
        server.dependency("payments").unwrap().faults.is_empty(),
        "a run clears its faults"
    );
    result.observations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulkhead_keeps_max_in_flight_and_its_absence_fails_it() {
    let guarded = payments_slow_run(Some(5)).await;
    let unguarded = payments_slow_run(None).await;
    let claim = MaxInFlight::new("payments", 5, Scope::phase("payments slow"));
    let held = claim.check(&guarded);
    assert_eq!(held.outcome, Outcome::Pass, "{held:?}");
    let broke = claim.check(&unguarded);
    assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
    // 100 requests/s held 200 ms each: about 20 at once without a bulkhead.
    assert!(
        matches!(broke.evidence.observed, Some(faultline_properties::Measure::Count(n)) if n >= 15),
        "{broke:?}"
    );
    assert!(
        broke.evidence.witness.is_some(),
        "the target passed the correlation id on"
    );

    // The phases line up with the journals: the calm phases saw no slow calls.
    let baseline = SuccessRate::new(0.99, Scope::phase("baseline")).check(&unguarded);
    assert_eq!(baseline.outcome, Outcome::Pass, "{baseline:?}");
    assert_eq!(guarded.phases.len(), 3);
    assert!(
        guarded.edge.len() >= 130,
        "{} requests in 1.4 s at 100/s",
        guarded.edge.len()
    );
    // Histograms per phase, by intended instant: the plan's 30, 80 and 30
    // requests, give or take the one due at a boundary, which counts in the
    // earlier phase when the switch to the next phase's faults completes
    // (microseconds) after its send.
    let stats = &unguarded.edge_stats["checkout"];
    let counts: Vec<u64> = ["baseline", "payments slow", "recovery"]
        .iter()
        .map(|phase| stats[*phase].requests())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 140, "{counts:?}");
    for (count, planned) in counts.iter().zip([30, 80, 30]) {
        assert!(count.abs_diff(planned) <= 1, "{counts:?}");
    }
    let slow_p50 = stats["payments slow"].latency_at(50.0);
    assert!(
        slow_p50 >= Duration::from_millis(200) && stats["baseline"].latency_at(50.0) < slow_p50,
        "{slow_p50:?}"
    );
}

/// Checkout through baseline, a phase where `fault` holds at payments, and recovery.
async fn run_with(defences: Defences, fault: &str, client_timeout: Duration) -> Observations {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .start()
        .unwrap();
    let target = checkout_service(server.url("payments").unwrap(), defences).await;
    let phases = [
        PhasePlan::calm("baseline", Duration::from_millis(300)),
        PhasePlan::calm("payments failing", Duration::from_millis(600))
            .with_fault("payments", serde_json::from_str(fault).unwrap()),
        PhasePlan::calm("recovery", Duration::from_millis(300)),
    ];
    let load = Load {
        endpoint: Endpoint::get(
            "checkout",
            format!("http://{target}/checkout").parse().unwrap(),
        )
        .with_timeout(client_timeout),
        arrival: Arrival::Open { rate: 50.0 },
        // Each load lasts the whole run.
        duration: phases.iter().map(|p| p.duration).sum(),
        pacing: Default::default(),
        variants: Default::default(),
    };
    run(&server, &phases, vec![load], 2)
        .await
        .unwrap()
        .observations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_immediate_retries_amplify_about_four_times_and_no_retries_do_not() {
    let down = r#"{"error": {"status": 503}}"#;
    let storm = run_with(
        Defences {
            retries: Retries::Immediate(3),
            ..Defences::default()
        },
        down,
        Duration::from_secs(2),
    )
    .await;
    let calm = run_with(Defences::default(), down, Duration::from_secs(2)).await;
    let claim = RetryAmplification::new("payments", 1.5, Scope::phase("payments failing"));
    let broke = claim.check(&storm);
    assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
    let Some(Measure::Ratio(ratio)) = broke.evidence.observed else {
        panic!("{broke:?}")
    };
    assert!((3.5..=4.5).contains(&ratio), "amplification {ratio}");
    assert_eq!(claim.check(&calm).outcome, Outcome::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_on_a_hung_dependency_fails_fast_and_its_absence_does_not() {
    let hung = r#"{"hang": {}}"#;
    let guarded = run_with(
        Defences {
            timeout: Some(Duration::from_millis(100)),
            ..Defences::default()
        },
        hung,
        Duration::from_millis(800),
    )
    .await;
    let unguarded = run_with(Defences::default(), hung, Duration::from_millis(800)).await;
    let fast_fail = LatencyBound::new(
        99.0,
        LatencyLimit::at_most(Duration::from_millis(300)),
        Scope::phase("payments failing"),
    )
    .for_endpoint("checkout");
    let held = fast_fail.check(&guarded);
    assert_eq!(held.outcome, Outcome::Pass, "{held:?}");
    let broke = fast_fail.check(&unguarded);
    assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
    assert!(broke.evidence.first_broke_ns.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_holds_calls_back_and_probes_again_and_its_absence_fails() {
    let down = r#"{"error": {"status": 503}}"#;
    let breaker = Defences {
        breaker: Some((5, Duration::from_millis(150))),
        ..Defences::default()
    };
    let guarded = run_with(breaker, down, Duration::from_secs(2)).await;
    let unguarded = run_with(Defences::default(), down, Duration::from_secs(2)).await;
    let claim = Breaker::new(
        "payments",
        5,
        Duration::from_millis(150),
        1,
        Scope::phase("payments failing"),
    );
    let held = claim.check(&guarded);
    assert_eq!(held.outcome, Outcome::Pass, "{held:?}");
    let broke = claim.check(&unguarded);
    assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_answers_overload_with_a_fast_429_and_its_absence_lets_latency_pile_up() {
    // Payments slows down with the calls it holds: 100 ms more per call in
    // flight. Five at once (the bulkhead) answer within 500 ms; without a
    // bulkhead, 50 requests/s pile up without end.
    let saturating = r#"{"saturation": {"base": "100ms", "workers": 1}}"#;
    let shedding = Defences {
        bulkhead: Some(5),
        shed: true,
        ..Defences::default()
    };
    let guarded = run_with(shedding, saturating, Duration::from_secs(2)).await;
    let unguarded = run_with(Defences::default(), saturating, Duration::from_secs(2)).await;
    let claim = ShedFast::new(
        Duration::from_millis(50),
        Duration::from_millis(800),
        Scope::phase("payments failing"),
    )
    .for_endpoint("checkout");
    let held = claim.check(&guarded);
    assert_eq!(held.outcome, Outcome::Pass, "{held:?}");
    let broke = claim.check(&unguarded);
    assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_cut_at_its_hard_cap_when_requests_hang_past_its_phases() {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .start()
        .unwrap();
    let target = checkout_service(server.url("payments").unwrap(), Defences::default()).await;
    let phases = [PhasePlan::calm("payments hung", Duration::from_millis(300))
        .with_fault("payments", serde_json::from_str(r#"{"hang": {}}"#).unwrap())];
    let load = Load {
        endpoint: Endpoint::get(
            "checkout",
            format!("http://{target}/checkout").parse().unwrap(),
        )
        .with_timeout(Duration::from_secs(30)),
        arrival: Arrival::Open { rate: 20.0 },
        // Each load lasts the whole run.
        duration: phases.iter().map(|p| p.duration).sum(),
        pacing: Default::default(),
        variants: Default::default(),
    };
    let limits = faultline_harness::run::plan::Limits {
        grace: Duration::from_millis(300),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();
    let result = faultline_harness::run::timeline::run_until(
        faultline_harness::run::fault_control::FaultControl::Local(&server),
        &phases,
        vec![load],
        9,
        stop,
        &limits,
        None,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let reason = result.aborted.unwrap();
    assert!(
        matches!(reason, faultline_harness::run::timeline::Abort::HardCap(_)),
        "{reason:?}"
    );
    assert!(reason.to_string().starts_with("hard cap"), "{reason}");
    assert!(server.dependency("payments").unwrap().faults.is_empty());
}
