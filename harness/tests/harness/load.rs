//! The load driver against a real fault server on loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use fault_server::{DependencySpec, FaultServer, StubResponse};
use faultline_harness::load::{
    drive, drive_from, Arrival, DriveOptions, Endpoint, Load, PhaseStarts,
};
use faultline_properties::EdgeOutcome;

fn server() -> FaultServer {
    FaultServer::builder()
        .dependency(DependencySpec::stub("target").with_response(StubResponse::ok("ok")))
        .start()
        .unwrap()
}

fn load(server: &FaultServer, arrival: Arrival, duration: Duration) -> Load {
    let url = format!("{}/checkout", server.url("target").unwrap())
        .parse()
        .unwrap();
    Load {
        endpoint: Endpoint::get("checkout", url).with_timeout(Duration::from_millis(500)),
        arrival,
        duration,
        pacing: Default::default(),
        variants: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_on_schedule_and_every_request_is_correlated_in_the_journal() {
    let server = server();
    let report = drive(
        vec![load(
            &server,
            Arrival::Open { rate: 200.0 },
            Duration::from_secs(1),
        )],
        server.clock(),
        1,
    )
    .await;
    assert_eq!(report.records.len(), 200);
    assert_eq!(report.dropped(), 0);
    assert!(report
        .records
        .iter()
        .all(|r| r.outcome == EdgeOutcome::Status(200)));
    let mut intended: Vec<u64> = report.records.iter().map(|r| r.intended_ns).collect();
    intended.sort_unstable();
    let spacing = (intended[199] - intended[0]) as f64 / 199.0 / 1e6;
    assert!(
        (spacing - 5.0).abs() < 0.01,
        "requests are due every 5 ms, got {spacing} ms"
    );
    let sent: BTreeSet<_> = report
        .records
        .iter()
        .filter_map(|r| r.correlation_id.map(|id| id.to_string()))
        .collect();
    let journaled: BTreeSet<_> = server
        .journal("target")
        .unwrap()
        .into_iter()
        .filter_map(|r| r.correlation_id)
        .collect();
    assert_eq!(sent.len(), 200, "every request has its own id");
    let stats = &report.stats["checkout"][0];
    assert_eq!(stats.requests(), 200);
    assert_eq!(stats.succeeded(), 200);
    assert_eq!(
        sent, journaled,
        "the fault server saw each request under its id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_counts_from_the_intended_time_so_a_stall_cannot_hide() {
    let server = server();
    server
        .add_fault(
            "target",
            serde_json::from_str::<fault_server::Fault>(r#"{"hang": {}}"#).unwrap(),
        )
        .unwrap();
    let report = drive(
        vec![load(
            &server,
            Arrival::Open { rate: 50.0 },
            Duration::from_millis(400),
        )],
        server.clock(),
        2,
    )
    .await;
    assert_eq!(report.records.len(), 20);
    for record in &report.records {
        assert_eq!(record.outcome, EdgeOutcome::Timeout);
        assert!(
            record.latency() >= Duration::from_millis(500),
            "{:?}",
            record.latency()
        );
        assert!(record.sent_ns >= record.intended_ns);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_client_waits_for_each_answer() {
    let server = server();
    server
        .add_fault(
            "target",
            serde_json::from_str::<fault_server::Fault>(r#"{"latency": {"fixed": "100ms"}}"#)
                .unwrap(),
        )
        .unwrap();
    let report = drive(
        vec![load(
            &server,
            Arrival::Closed { clients: 2 },
            Duration::from_millis(1_000),
        )],
        server.clock(),
        3,
    )
    .await;
    // Two clients, each one request per 100 ms, for 1 s: 20, fewer on a busy
    // machine; an open loop at this rate would have sent without waiting.
    let n = report.records.len();
    assert!((12..=22).contains(&n), "{n} requests");
    assert_eq!(server.stats("target").unwrap().total.peak_in_flight, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_connect_error() {
    let server = server();
    let url: http::Uri = format!("{}/x", server.url("target").unwrap())
        .parse()
        .unwrap();
    server.remove_dependency("target").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = drive(
        vec![Load {
            endpoint: Endpoint::get("gone", url),
            arrival: Arrival::Open { rate: 20.0 },
            duration: Duration::from_millis(200),
            pacing: Default::default(),
            variants: Default::default(),
        }],
        server.clock(),
        4,
    )
    .await;
    assert_eq!(report.records.len(), 4);
    assert!(report
        .records
        .iter()
        .all(|r| r.outcome == EdgeOutcome::ConnectError));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_record_cap_histograms_count_every_request_in_its_phase() {
    let server = server();
    let clock = server.clock();
    let start = tokio::time::Instant::now();
    let second_phase = start + Duration::from_millis(500);
    let recording = DriveOptions {
        phase_starts: std::sync::Arc::new(PhaseStarts::fixed(&[
            clock.ns_at(start),
            clock.ns_at(second_phase),
        ])),
        capacity: 50,
        ..DriveOptions::new(clock, 2)
    };
    let report = drive_from(
        vec![load(
            &server,
            Arrival::Open { rate: 200.0 },
            Duration::from_secs(1),
        )],
        start,
        recording,
    )
    .await;
    assert_eq!(report.records.len(), 50);
    let cut = report
        .truncated_ns
        .expect("records past the cap were not kept");
    assert!(cut >= clock.ns_at(start));
    let phases = &report.stats["checkout"];
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0].requests(), 100, "{:?}", phases[0].outcomes);
    assert_eq!(phases[1].requests(), 100, "{:?}", phases[1].outcomes);
    assert_eq!(server.stats("target").unwrap().total.calls, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_clients_reconnect_after_a_closed_connection_and_stop_at_the_request_cap() {
    let server = server();
    server
        .add_fault(
            "target",
            serde_json::from_str::<fault_server::Fault>(r#"{"close": {}, "first": 5}"#).unwrap(),
        )
        .unwrap();
    let options = DriveOptions {
        max_requests: Some(300),
        ..DriveOptions::new(server.clock(), 5)
    };
    let report = drive_from(
        vec![load(
            &server,
            Arrival::Closed { clients: 4 },
            Duration::from_secs(10),
        )],
        tokio::time::Instant::now(),
        options,
    )
    .await;
    assert_eq!(report.records.len(), 300, "the cap ends the drive early");
    let resets = report
        .records
        .iter()
        .filter(|r| r.outcome == EdgeOutcome::Reset)
        .count();
    assert_eq!(resets, 5, "each closed connection is one failed request");
    assert_eq!(
        report.stats["checkout"][0].succeeded(),
        295,
        "the clients connected again"
    );
    assert_eq!(server.stats("target").unwrap().total.calls, 300);
}

/// What a capturing server saw of each request: its `x-faultline-request`,
/// its `idempotency-key` and `x-tenant` headers, and its body.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<[String; 4]>>>;

/// A server on loopback that answers 200 and keeps what each request carried.
async fn capturing() -> (std::net::SocketAddr, Seen) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let header = |name: &str| {
                                request
                                    .headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            let heard = [
                                header("x-faultline-request"),
                                header("idempotency-key"),
                                header("x-tenant"),
                            ];
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let [id, key, tenant] = heard;
                            kept.lock().unwrap().push([
                                id,
                                key,
                                tenant,
                                String::from_utf8_lossy(&body).into_owned(),
                            ]);
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// Open and closed loops alike: each request's `Idempotency-Key` and body
/// carry its own correlation id where the load put `{request_id}`, and a
/// fixed header goes as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_carries_its_own_id_where_the_load_asked_for_it() {
    use faultline_harness::load::REQUEST_ID;
    for arrival in [
        Arrival::Open { rate: 100.0 },
        Arrival::Closed { clients: 2 },
    ] {
        let (addr, seen) = capturing().await;
        let mut endpoint =
            Endpoint::get("orders", format!("http://{addr}/orders").parse().unwrap())
                .with_timeout(Duration::from_secs(2));
        endpoint.method = http::Method::POST;
        endpoint.headers.insert("x-tenant", "acme".parse().unwrap());
        endpoint.per_request.headers.push((
            http::header::HeaderName::from_static("idempotency-key"),
            format!("order-{REQUEST_ID}"),
        ));
        endpoint.per_request.body = Some(format!(r#"{{"order": "{REQUEST_ID}"}}"#));
        let load = Load {
            endpoint,
            arrival,
            duration: Duration::from_millis(300),
            pacing: Default::default(),
            variants: Default::default(),
        };
        let report = drive(vec![load], fault_server::Clock::start(), 1).await;
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() >= 10, "{arrival:?}: {} requests", seen.len());
        assert_eq!(seen.len(), report.records.len(), "{arrival:?}");
        let mut ids = BTreeSet::new();
        for [id, key, tenant, body] in &seen {
            assert_eq!(id.len(), 32, "{arrival:?}: {id}");
            assert_eq!(key, &format!("order-{id}"), "{arrival:?}");
            assert_eq!(tenant, "acme", "{arrival:?}");
            assert_eq!(body, &format!(r#"{{"order": "{id}"}}"#), "{arrival:?}");
            assert!(ids.insert(id.clone()), "{arrival:?}: {id} sent twice");
        }
    }
}

/// A load paced to stretches of the drive sends only inside them; a cap on
/// its requests stops it; a closed loop's pause spaces each client's
/// requests by at least the pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_keeps_a_load_to_its_stretches_its_count_and_its_pause() {
    use faultline_harness::load::Pacing;
    let ms = Duration::from_millis;
    let server = server();
    let sent_at = |report: &faultline_harness::load::LoadReport,
                   clock: fault_server::Clock,
                   start: tokio::time::Instant| {
        let origin = clock.ns_at(start);
        report
            .records
            .iter()
            .map(|r| Duration::from_nanos(r.intended_ns - origin))
            .collect::<Vec<_>>()
    };
    // Open loop at 200/s over 600 ms, sending only from 200 ms to 400 ms.
    let mut during = load(&server, Arrival::Open { rate: 200.0 }, ms(600));
    during.pacing = Pacing {
        during: vec![(ms(200), ms(400))],
        ..Pacing::default()
    };
    let start = tokio::time::Instant::now();
    let report = drive_from(vec![during], start, DriveOptions::new(server.clock(), 1)).await;
    let offsets = sent_at(&report, server.clock(), start);
    assert_eq!(offsets.len(), 40, "200/s for 200 ms");
    assert!(
        offsets.iter().all(|o| (ms(200)..ms(400)).contains(o)),
        "{offsets:?}"
    );
    // A cap of 25 requests stops a load that would send 200.
    let mut capped = load(
        &server,
        Arrival::Open { rate: 200.0 },
        Duration::from_secs(1),
    );
    capped.pacing.requests = Some(25);
    let report = drive(vec![capped], server.clock(), 2).await;
    assert_eq!(report.records.len(), 25);
    let mut capped = load(
        &server,
        Arrival::Closed { clients: 3 },
        Duration::from_secs(1),
    );
    capped.pacing.requests = Some(25);
    let report = drive(vec![capped], server.clock(), 3).await;
    assert_eq!(
        report.records.len(),
        25,
        "closed loop: the cap is the load's, over its clients"
    );
    // One client pausing 50 ms after each answer, over 500 ms: about 10.
    let mut paused = load(&server, Arrival::Closed { clients: 1 }, ms(500));
    paused.pacing.pause = ms(50);
    let start = tokio::time::Instant::now();
    let report = drive_from(vec![paused], start, DriveOptions::new(server.clock(), 4)).await;
    let mut offsets = sent_at(&report, server.clock(), start);
    offsets.sort();
    assert!(
        (5..=11).contains(&offsets.len()),
        "{} requests",
        offsets.len()
    );
    assert!(
        offsets.windows(2).all(|w| w[1] - w[0] >= ms(50)),
        "{offsets:?}"
    );
}

/// A load with variants sends each in turn by weight, in open and closed
/// loops alike: 3 GETs of the cart to each POSTed checkout, exactly, with
/// each variant's own method, path and body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_are_sent_in_turn_by_weight() {
    use faultline_harness::load::{Pacing, Variants};
    for arrival in [
        Arrival::Open { rate: 200.0 },
        Arrival::Closed { clients: 2 },
    ] {
        let (addr, seen) = capturing().await;
        let at = |method: http::Method, path: &str, body: &str| {
            let mut endpoint =
                Endpoint::get("shop", format!("http://{addr}{path}").parse().unwrap())
                    .with_timeout(Duration::from_secs(2));
            endpoint.method = method;
            endpoint.body = bytes::Bytes::from(body.to_owned());
            endpoint
        };
        let cart = at(http::Method::GET, "/cart", "");
        let checkout = at(http::Method::POST, "/checkout", "{\"pay\": 1}");
        let load = Load {
            endpoint: cart.clone(),
            arrival,
            duration: Duration::from_secs(2),
            pacing: Pacing {
                requests: Some(40),
                ..Pacing::default()
            },
            variants: Variants::weighted(vec![(3, cart), (1, checkout)]),
        };
        let report = drive(vec![load], fault_server::Clock::start(), 1).await;
        assert_eq!(report.records.len(), 40, "{arrival:?}");
        let seen = seen.lock().unwrap().clone();
        let posted = seen
            .iter()
            .filter(|[.., body]| body == "{\"pay\": 1}")
            .count();
        assert_eq!(posted, 10, "{arrival:?}: one checkout in four");
        assert!(
            report.records.iter().all(|r| &*r.endpoint == "shop"),
            "one endpoint's statistics"
        );
    }
}
