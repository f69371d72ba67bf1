//! Real Redis and PostgreSQL behind TCP proxy dependencies, driven by real
//! clients (the `redis` and `tokio-postgres` crates): what each connection
//! fault looks like to them, and the journal's view of a pool.

use std::time::{Duration, Instant};

use fault_server::{CallOutcome, DependencySpec, FaultServer};

use crate::common::fault;
use crate::services;

/// The journal once a call ended with `outcome` (a connection's end is
/// journaled a moment after its client saw it).
async fn once_journaled(
    server: &FaultServer,
    outcome: CallOutcome,
) -> Vec<fault_server::CallRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = server.journal("db").unwrap();
        if records.iter().any(|r| r.outcome == outcome) || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn tcp_proxy(upstream: std::net::SocketAddr) -> FaultServer {
    FaultServer::builder()
        .dependency(DependencySpec::tcp("db", upstream.to_string()))
        .start()
        .unwrap()
}

async fn redis_connection(server: &FaultServer) -> redis::aio::MultiplexedConnection {
    let url = format!("redis://{}/", server.addr("db").unwrap());
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn ping(connection: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(connection).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sees_a_latency_fault_within_a_millisecond_and_a_pool_in_the_journal() {
    let redis = services::redis();
    let server = tcp_proxy(redis.addr);
    // A pool of four connections, all busy at once.
    let mut pool = Vec::new();
    for _ in 0..4 {
        pool.push(redis_connection(&server).await);
    }
    for connection in &mut pool {
        assert_eq!(ping(connection).await.unwrap(), "PONG");
    }
    assert_eq!(server.stats("db").unwrap().total.peak_in_flight, 4);
    // The median round trip without the fault, then with it: the fault
    // adds its 50 ms. (Within a millisecond on a quiet machine: that figure
    // is bench/tcp.sh's; a test runs beside others, so it allows more.)
    let median = |mut taken: Vec<Duration>| {
        taken.sort();
        taken[taken.len() / 2]
    };
    let pings = async |connection: &mut redis::aio::MultiplexedConnection| {
        let mut taken = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            ping(connection).await.unwrap();
            taken.push(started.elapsed());
        }
        taken
    };
    let base = median(pings(&mut pool[0]).await);
    server
        .set_faults("db", vec![fault(r#"{"latency": {"fixed": "50ms"}}"#)], None)
        .unwrap();
    let slowed = median(pings(&mut pool[0]).await);
    let added = slowed.saturating_sub(base);
    assert!(
        added >= Duration::from_micros(49_500) && added <= Duration::from_millis(60),
        "added {added:?} (base {base:?}, with the fault {slowed:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sees_limit_data_and_reset_peer_as_the_errors_they_are() {
    let redis = services::redis();
    let server = tcp_proxy(redis.addr);
    let mut connection = redis_connection(&server).await;
    let value = "v".repeat(10_000);
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query_async(&mut connection)
        .await
        .unwrap();
    // Cut off a few bytes into the answer: the client's read ends early.
    server
        .set_faults("db", vec![fault(r#"{"limit_data": {"bytes": 100}}"#)], None)
        .unwrap();
    let cut: redis::RedisResult<String> = redis::cmd("GET")
        .arg("big")
        .query_async(&mut connection)
        .await;
    // The answer stops 100 bytes in and the connection closes: a reply that
    // ends mid-way.
    let error = cut.unwrap_err();
    assert!(
        error.is_connection_dropped()
            || error.is_io_error()
            || error.to_string().contains("end of input"),
        "{error:?}"
    );

    server
        .set_faults("db", vec![fault(r#"{"reset_peer": {}}"#)], None)
        .unwrap();
    let mut fresh = redis::Client::open(format!("redis://{}/", server.addr("db").unwrap()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await;
    if let Ok(connection) = &mut fresh {
        let error = ping(connection).await.unwrap_err();
        assert!(
            error.is_io_error() || error.is_connection_dropped(),
            "{error:?}"
        );
    }
    let records = once_journaled(&server, CallOutcome::Reset).await;
    assert!(
        records.iter().any(|r| r.outcome == CallOutcome::Closed),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r.outcome == CallOutcome::Reset),
        "{records:?}"
    );
    // The limit counts from when the connection met it: the few bytes of
    // the earlier answers, then exactly 100.
    let cut = records
        .iter()
        .find(|r| r.outcome == CallOutcome::Closed)
        .unwrap();
    let downstream = cut.bytes.unwrap().downstream;
    assert!((100..=400).contains(&downstream), "{cut:?}");
}

async fn pg(server: &FaultServer) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let addr = server.addr("db").unwrap();
    let config = format!(
        "host=127.0.0.1 port={} user=test dbname=postgres connect_timeout=5",
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_slow_down_reset_and_down_refuses_new_connections() {
    let postgres = services::postgres();
    let server = tcp_proxy(postgres.addr);
    let client = pg(&server).await.unwrap();
    let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);

    server
        .set_faults(
            "db",
            vec![fault(r#"{"latency": {"fixed": "100ms"}}"#)],
            None,
        )
        .unwrap();
    let started = Instant::now();
    client.query_one("SELECT 1::int4", &[]).await.unwrap();
    let slowed = started.elapsed();
    assert!(slowed >= Duration::from_millis(100), "{slowed:?}");
    assert!(slowed < Duration::from_millis(500), "{slowed:?}");

    // Down: a new connection is refused; the open one still answers.
    server
        .set_faults("db", vec![fault(r#"{"down": {}}"#)], None)
        .unwrap();
    assert!(pg(&server).await.is_err(), "a new connection is refused");
    client.query_one("SELECT 2::int4", &[]).await.unwrap();

    // reset_peer: the client's next query fails with a connection error.
    server
        .set_faults("db", vec![fault(r#"{"reset_peer": {}}"#)], None)
        .unwrap();
    let failed = client.query_one("SELECT 3::int4", &[]).await;
    let error = failed.unwrap_err();
    assert!(
        error.is_closed() || error.to_string().contains("connection"),
        "{error}"
    );
    let records = once_journaled(&server, CallOutcome::Reset).await;
    assert!(
        records.iter().any(|r| r.outcome == CallOutcome::Refused),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r.outcome == CallOutcome::Reset),
        "{records:?}"
    );
}
