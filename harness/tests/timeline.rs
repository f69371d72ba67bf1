//! A whole run through phases against a small target that calls a fault
//! server dependency, judged by a property: the same run passes with a
//! bulkhead in the target and fails without one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fault_server::{DependencySpec, FaultServer, StubResponse};
use harness::load::{Arrival, Endpoint, Load};
use harness::properties::{MaxInFlight, Property, Scope, SuccessRate};
use harness::timeline::{run, PhasePlan};
use harness::Outcome;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A checkout service that calls `payments` for every request, passing the
/// correlation header on; with `bulkhead`, at most that many calls at once,
/// and a fast 429 beyond.
async fn checkout_service(payments: String, bulkhead: Option<usize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let permits = bulkhead.map(|n| Arc::new(Semaphore::new(n)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (client, payments, permits) = (client.clone(), payments.clone(), permits.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (client, payments, permits) =
                        (client.clone(), payments.clone(), permits.clone());
                    async move {
                        let _permit = match &permits {
                            Some(permits) => match permits.clone().try_acquire_owned() {
                                Ok(permit) => Some(permit),
                                Err(_) => {
                                    return Ok::<_, Infallible>(status(
                                        StatusCode::TOO_MANY_REQUESTS,
                                    ))
                                }
                            },
                            None => None,
                        };
                        let mut call = Request::post(format!("{payments}/charge"));
                        if let Some(id) = request.headers().get("x-faultline-request") {
                            call = call.header("x-faultline-request", id);
                        }
                        let answer = client
                            .request(call.body(Full::new(Bytes::new())).unwrap())
                            .await;
                        Ok(match answer {
                            Ok(response) => {
                                let code = response.status();
                                let _ = response.into_body().collect().await;
                                status(code)
                            }
                            Err(_) => status(StatusCode::BAD_GATEWAY),
                        })
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

async fn payments_slow_run(bulkhead: Option<usize>) -> harness::Observations {
    let server = FaultServer::builder()
        .dependency(DependencySpec::stub("payments").with_response(StubResponse::ok("paid")))
        .start()
        .unwrap();
    let target = checkout_service(server.url("payments").unwrap(), bulkhead).await;
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
        duration: Duration::ZERO,
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
        matches!(broke.evidence.observed, Some(harness::Measure::Count(n)) if n >= 15),
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
}
