//! The harness's load driver on its own, for the benchmark (bench/harness.sh):
//! one endpoint, open or closed loop, and one JSON line of what it achieved.
//!
//! ```text
//! cargo run --release -p harness --example drive -- http://127.0.0.1:8080/ --clients 64 --duration 5s
//! cargo run --release -p harness --example drive -- http://127.0.0.1:8080/ --rate 5000 --duration 10s
//! cargo run --release -p harness --example drive -- http://127.0.0.1:8080/ --clients 64 --duration 10m --requests 10000000
//! ```
//!
//! Load goes to loopback only: any other host is refused.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use fault_server::Clock;
use faultline_harness::load::{drive_from, Arrival, DriveOptions, Endpoint, Load};
use tokio::time::Instant;

#[derive(Parser)]
struct Args {
    /// Where to send (a loopback URL).
    url: http::Uri,
    /// Closed loop: this many clients, each sending again on its answer.
    #[arg(long, conflicts_with = "rate")]
    clients: Option<usize>,
    /// Open loop: requests per second on a fixed schedule.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to drive.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    duration: Duration,
    /// Stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Closed-loop worker threads (default: one per core; 0: the main runtime).
    #[arg(long)]
    workers: Option<usize>,
    /// Per-request timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let loopback = args
        .url
        .host()
        .map(|h| h.trim_matches(['[', ']']))
        .is_some_and(|h| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    if !loopback {
        return Err(format!("{}: load goes to loopback only", args.url));
    }
    let arrival = match (args.clients, args.rate) {
        (_, Some(rate)) => Arrival::Open { rate },
        (clients, None) => Arrival::Closed {
            clients: clients.unwrap_or(64),
        },
    };
    let load = Load {
        endpoint: Endpoint::get("bench", args.url).with_timeout(args.timeout),
        arrival,
        duration: args.duration,
        pacing: Default::default(),
        variants: Default::default(),
    };
    let defaults = DriveOptions::new(Clock::start(), 1);
    let options = DriveOptions {
        max_requests: args.requests,
        workers: args.workers.unwrap_or(defaults.workers),
        ..defaults
    };
    let start = Instant::now();
    let report = drive_from(vec![load], start, options).await;
    let seconds = start.elapsed().as_secs_f64();
    let stats = report
        .stats
        .get("bench")
        .and_then(|phases| phases.first())
        .cloned()
        .unwrap_or_default();
    let requests = stats.requests();
    // How the sends kept to the schedule, from the records kept.
    let mut lags: Vec<u64> = report
        .records
        .iter()
        .map(|r| r.sent_ns.saturating_sub(r.intended_ns) / 1_000)
        .collect();
    lags.sort_unstable();
    let lag_p99_us = lags.get(lags.len() * 99 / 100).copied().unwrap_or(0);
    let (first, last) = report.records.iter().fold((u64::MAX, 0), |(lo, hi), r| {
        (lo.min(r.sent_ns), hi.max(r.sent_ns))
    });
    let send_rate = (report.records.len().saturating_sub(1)) as f64
        / ((last.saturating_sub(first)) as f64 / 1e9);
    let line = serde_json::json!({
        "requests": requests,
        "succeeded": stats.succeeded(),
        "seconds": seconds,
        "requests_per_second": requests as f64 / seconds,
        "p50_us": stats.latency_us.value_at_percentile(50.0),
        "p99_us": stats.latency_us.value_at_percentile(99.0),
        "max_us": stats.latency_us.max(),
        "dropped": report.dropped(),
        "max_lag_us": report.max_lag().as_micros() as u64,
        "lag_p99_us": lag_p99_us,
        "send_rate": send_rate,
        "records_kept": report.records.len(),
        "peak_rss_kb": proc_status_kb("VmHWM"),
        "rss_kb": proc_status_kb("VmRSS"),
    });
    println!("{line}");
    Ok(())
}

/// A `kB` field of /proc/self/status (Linux), or null elsewhere.
fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
