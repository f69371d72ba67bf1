//! `suites/examples/redis-stock.toml` as the README runs it, against a real
//! Redis (Debian's redis-server; `.ci/run` installs it) started here on a
//! free loopback port: the stock service as configured passes every
//! expectation, and one without its defences (a query timeout longer than
//! the load's, a bigger pool) fails the ones they keep.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_harness::run::{run_plan, TargetOverride};
use faultline_harness::suite::Suite;
use faultline_properties::Outcome;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = env!("CARGO_BIN_EXE_stock-service");
const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../suites/examples/redis-stock.toml"
);

/// `redis-server` on a free loopback port, persisting nothing; killed when dropped.
struct Redis {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis() -> Redis {
    let program = ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join("redis-server"))
        .find(|path| path.exists())
        .expect(
            "`redis-server` is not installed: `apt-get install redis-server` (.ci/run installs it)",
        );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("stock-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(program)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(matches!(child.try_wait(), Ok(None)), "redis-server exited");
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis { child, addr, dir }
}

/// The example suite, pointed at this Redis and at the service built here
/// (the README's `cargo run` replaced by its binary), with `flags` in place
/// of the service's own.
fn suite(redis: SocketAddr, flags: &str) -> Suite {
    let text = std::fs::read_to_string(SUITE).unwrap();
    let edited = text
        .replace(r#"tcp = "127.0.0.1:6379""#, &format!(r#"tcp = "{redis}""#))
        .replace(
            r#""cargo", "run", "--quiet", "-p", "stock-service", "--""#,
            &format!("{SERVICE:?}"),
        )
        .replace(r#""--pool", "4", "--timeout", "250ms""#, flags);
    assert_ne!(text, edited);
    assert!(edited.contains(SERVICE) && edited.contains(&redis.to_string()));
    Suite::parse(&edited, Path::new(SUITE)).unwrap()
}

async fn verdicts(suite: &Suite) -> Vec<(String, String, Outcome)> {
    let stop = CancellationToken::new();
    let plan = suite.plan(TargetOverride::None).unwrap();
    let run = run_plan(&plan, 7, &stop, None).await.unwrap();
    run.verdicts
        .into_iter()
        .map(|v| (v.property, v.phase, v.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_suite_passes_against_the_stock_service_in_front_of_real_redis() {
    let redis = redis();
    let verdicts = verdicts(&suite(redis.addr, r#""--pool", "4", "--timeout", "250ms""#)).await;
    assert_eq!(verdicts.len(), 6);
    for (property, phase, outcome) in &verdicts {
        assert_eq!(
            *outcome,
            Outcome::Pass,
            "{property} in {phase}: {verdicts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_suite_fails_a_service_without_its_pool_bound_and_query_timeout() {
    let redis = redis();
    let verdicts = verdicts(&suite(redis.addr, r#""--pool", "16", "--timeout", "10s""#)).await;
    let outcome = |property: &str, phase: &str| {
        verdicts
            .iter()
            .find(|(p, ph, _)| p.starts_with(property) && ph == phase)
            .map(|(_, _, o)| *o)
            .unwrap_or_else(|| panic!("no {property} in {phase}: {verdicts:?}"))
    };
    assert_eq!(
        outcome("max_in_flight", "redis slow"),
        Outcome::Fail,
        "{verdicts:?}"
    );
    assert_eq!(
        outcome("p99(stock) <= 400ms", "redis silent"),
        Outcome::Fail,
        "{verdicts:?}"
    );
    assert_eq!(
        outcome("success_rate(health)", "redis silent"),
        Outcome::Pass,
        "{verdicts:?}"
    );
}
