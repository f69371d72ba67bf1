//! `dataplane`: raw and mutated HTTP/1 bytes at a live fault server's
//! data-plane ports on 127.0.0.1, several inputs pipelined per connection
//! and many connections at once. The server runs in this process, so the
//! panic hook sees a panic in any of its tasks (tokio would swallow it).
//!
//! Three dependencies take the bytes: `plain` (a stub with errors, zero
//! latency and matchers on path and header), `rough` (connection faults:
//! reset, close, malformed bytes, a slow body, short hangs), and `sink` (an
//! alert sink, which reads bodies as Alertmanager webhooks).
//!
//! At the end: no panic anywhere; every dependency still answers a valid
//! request and has no call left in flight; and for `plain` and `sink`, which
//! never drop a connection on purpose, the journal counts exactly the
//! responses the clients read (each status line, 1xx aside).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_server::{DependencySpec, Fault, FaultServer, StubResponse};
use proptest::strategy::{Strategy, ValueTree};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::engine::{self, Seen};
use crate::{mutate, DataplaneArgs, Failure, Figures};

const TARGET: &str = "dataplane";

/// Valid requests the mutations start from.
const REQUESTS: &[&str] = &[
    "GET / HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    "GET /err/a?x=1 HTTP/1.1\r\nHost: fuzz\r\nx-tenant: abc\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
    "POST /charge HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 13\r\nContent-Type: application/json\r\nIdempotency-Key: k1\r\nx-faultline-request: 12345678-1\r\n\r\n{\"amount\": 1}",
    "POST /charge HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST /alerts HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nContent-Length: 172\r\n\r\n{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighLatency\",\"severity\":\"page\"},\"annotations\":{},\"startsAt\":\"2024-01-01T00:00:00Z\"}]}",
    "HEAD / HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    "GET http://fuzz/abs HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: fuzz\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    "OPTIONS * HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    "GET /caf%C3%A9/%2F?q=%00 HTTP/1.1\r\nHost: fuzz\r\nX-Many: a\r\nX-Many: b\r\n\r\n",
    "DELETE /err/x HTTP/1.1\r\nHost: fuzz\r\nConnection: keep-alive\r\n\r\n",
];

/// HTTP syntax the mutations insert.
const TOKENS: &[&str] = &[
    "\r\n",
    "\r\n\r\n",
    "\n",
    "\r",
    " ",
    ": ",
    "Content-Length: ",
    "Content-Length: 0\r\n",
    "Content-Length: 99999999999999999999\r\n",
    "Content-Length: -1\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "0\r\n\r\n",
    "ffffffffffffffff\r\n",
    "5;ext=1\r\n",
    "Connection: close\r\n",
    "Connection: upgrade\r\nUpgrade: websocket\r\n",
    "Expect: 100-continue\r\n",
    "Host: \r\n",
    " HTTP/1.1\r\n",
    "HTTP/2.0",
    "HTTP/1.2",
    "HTTP/0.9",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "x-tenant: a\r\n",
    "traceparent: 00-00000000000000000000000000000000-0000000000000000-00\r\n",
    "x-faultline-request: \r\n",
    "x-faultline-request: ffffffffffffffffffffffff-4294967296\r\n",
    "Idempotency-Key: \u{0}\r\n",
    "/err/",
    "/%",
    "/%zz",
    "?",
    "#",
    "*",
    "GET ",
    "POST ",
    "\u{80}",
    "\u{ff}",
    "\t",
    "\u{7f}",
];

/// The dependencies, in the order inputs go to them.
const DEPENDENCIES: [&str; 3] = ["plain", "rough", "sink"];

fn fault(json: &str) -> Result<Fault, String> {
    serde_json::from_str(json).map_err(|e| format!("{json}: {e}"))
}

fn server() -> Result<FaultServer, String> {
    let plain = DependencySpec::stub("plain")
        .with_response(StubResponse::ok("ok"))
        .with_fault(fault(r#"{"error": {"status": 503, "body": "down"}, "probability": 0.2, "match": {"path": "/err/*"}}"#)?)
        .with_fault(fault(r#"{"error": {"status": 429, "body": "slow down", "retry_after": "1s"}, "probability": 0.5, "match": {"headers": {"x-tenant": "a*"}}}"#)?)
        .with_fault(fault(r#"{"latency": {"fixed": "0s"}, "probability": 0.5}"#)?)
        .with_fault(fault(r#"{"throttle": {"max_in_flight": 100000}}"#)?);
    let rough = DependencySpec::stub("rough")
        .with_response(StubResponse::ok("ok"))
        .with_fault(fault(r#"{"reset": {}, "probability": 0.03}"#)?)
        .with_fault(fault(r#"{"close": {}, "probability": 0.03}"#)?)
        .with_fault(fault(r#"{"malformed": {}, "probability": 0.03}"#)?)
        .with_fault(fault(
            r#"{"hang": {"after": "1ms", "then": "respond"}, "probability": 0.02}"#,
        )?)
        .with_fault(fault(
            r#"{"slow_body": {"bytes_per_second": 1000000}, "probability": 0.1}"#,
        )?)
        .with_fault(fault(
            r#"{"error": {"status": 500}, "probability": 0.1, "match": {"method": "POST"}}"#,
        )?);
    // Every answer of `plain` and `sink` has a body but to HEAD (see `Tally::read_tapes`).
    let sink = DependencySpec::stub("sink")
        .with_response(StubResponse::ok("ok"))
        .as_alert_sink();
    FaultServer::builder()
        .on_current_runtime()
        .dependency(plain)
        .dependency(rough)
        .dependency(sink)
        .seed(1)
        .start()
        .map_err(|e| e.to_string())
}

/// What one connection saw.
#[derive(Debug, Default, Clone, Copy)]
struct Exchange {
    /// Final status lines read (1xx aside).
    statuses: u64,
    /// The connection did not end within the time allowed.
    timed_out: bool,
    /// It could not connect.
    refused: bool,
}

/// Calls the journal says were answered in full (a response cut off by the
/// client is `client_gone`, even with its status).
fn responded(stats: &fault_server::JournalStats) -> u64 {
    stats
        .total
        .outcomes
        .get(&fault_server::CallOutcome::Responded)
        .copied()
        .unwrap_or(0)
}

/// What the connections saw, added up.
#[derive(Debug, Default)]
struct Tally {
    /// Final status lines read, per dependency.
    read: [u64; 3],
    /// Connections that did not end in time.
    timed_out: u64,
    /// Connections that could not connect.
    refused_connections: u64,
    /// HEAD calls journaled `responded`, per dependency (see [`Tally::read_tapes`]).
    heads: [u64; 3],
}

impl Tally {
    /// Counts the HEAD calls journaled `responded` on the tapes of `plain`
    /// and `sink`. hyper closes a connection as soon as it reads the
    /// client's end, even with an answer pending (it cannot tell a client
    /// gone from one that only stopped writing). An answer with a body
    /// dropped unwritten is journaled `client_gone`, but a head-only answer
    /// (to HEAD; or a 204 or 304, which these two never send) is taken for
    /// written: so a HEAD from a client that shuts its writing half may be
    /// journaled `responded` though no status line went out. The check
    /// allows for those alone; every other answer is counted exactly.
    fn read_tapes(&mut self, server: &FaultServer) {
        for (i, name) in DEPENDENCIES.iter().enumerate() {
            let records = server.take_tape(name).unwrap_or_default();
            self.heads[i] += records
                .iter()
                .filter(|r| {
                    r.method == http::Method::HEAD
                        && r.outcome == fault_server::CallOutcome::Responded
                })
                .count() as u64;
        }
    }

    fn add(&mut self, (dependency, seen): (usize, Exchange)) {
        self.read[dependency] += seen.statuses;
        self.timed_out += u64::from(seen.timed_out);
        self.refused_connections += u64::from(seen.refused);
    }
}

/// Final status lines (`HTTP/1.x NNN`, not 1xx) in what a client read.
fn status_lines(read: &[u8]) -> u64 {
    read.windows(13)
        .filter(|w| {
            (w.starts_with(b"HTTP/1.1 ") || w.starts_with(b"HTTP/1.0 "))
                && w[9..12].iter().all(u8::is_ascii_digit)
                && w[9] != b'1'
                && w[12] == b' '
        })
        .count() as u64
}

/// Writes `inputs` on one connection (reading as it writes), closes the
/// writing half when `shut` (else the inputs must end the connection) and
/// reads until the server closes, within `limit`.
async fn exchange(addr: SocketAddr, inputs: Vec<Vec<u8>>, shut: bool, limit: Duration) -> Exchange {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return Exchange {
            refused: true,
            ..Exchange::default()
        };
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        for input in &inputs {
            if writer.write_all(input).await.is_err() {
                break;
            }
        }
        if shut {
            let _ = writer.shutdown().await;
        }
        writer
    };
    let mut read = Vec::new();
    let read_all = async {
        let _ = reader.read_to_end(&mut read).await;
    };
    let ended = tokio::time::timeout(limit, async { tokio::join!(write, read_all) }).await;
    Exchange {
        statuses: status_lines(&read),
        timed_out: ended.is_err(),
        refused: false,
    }
}

/// Runs the target.
pub fn run(args: &DataplaneArgs) -> Result<Figures, Failure> {
    engine::install_panic_hook();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| super::setup_failed(TARGET, e))?;
    let server = {
        let _entered = runtime.enter();
        server().map_err(|e| super::setup_failed(TARGET, e))?
    };
    let addrs: Vec<SocketAddr> = DEPENDENCIES
        .iter()
        .map(|d| server.addr(d))
        .collect::<Result<_, _>>()
        .map_err(|e| super::setup_failed(TARGET, e))?;
    for name in ["plain", "sink"] {
        server
            .start_tape(name)
            .map_err(|e| super::setup_failed(TARGET, e))?;
    }
    let seeds = REQUESTS.iter().map(|r| (*r).to_owned()).collect();
    let strategy = mutate::bytes(seeds, TOKENS);
    let mut runner = engine::runner(args.common.seed);
    let started = Instant::now();
    let per_connection = args.per_connection.max(1);
    let limit = Duration::from_secs(10);

    let mut written = 0u64;
    let mut connections = 0u64;
    let mut tally = Tally::default();
    // The latest batches, kept to find the input behind a panic.
    let mut recent: VecDeque<(usize, Vec<Vec<u8>>)> = VecDeque::new();
    let panicked = runtime.block_on(async {
        let mut tasks: JoinSet<(usize, Exchange)> = JoinSet::new();
        while written < args.common.inputs && engine::panics() == 0 {
            let size = 1 + (connections as usize * 7_919) % per_connection;
            let size = size.min((args.common.inputs - written) as usize);
            let mut batch = Vec::with_capacity(size);
            for _ in 0..size {
                match strategy.new_tree(&mut runner) {
                    Ok(tree) => batch.push(tree.current()),
                    Err(_) => continue,
                }
            }
            let dependency = [0, 0, 0, 1, 1, 2][connections as usize % 6];
            while tasks.len() >= args.connections.max(1) {
                if let Some(Ok(done)) = tasks.join_next().await {
                    tally.add(done);
                }
            }
            let addr = addrs[dependency];
            let inputs = batch.clone();
            tasks.spawn(async move { (dependency, exchange(addr, inputs, true, limit).await) });
            recent.push_back((dependency, batch));
            if recent.len() > 4 * args.connections.max(1) {
                recent.pop_front();
            }
            written += size as u64;
            connections += 1;
            if connections.is_multiple_of(1_000) {
                tally.read_tapes(&server);
            }
            if written % 1_000_000 < size as u64 {
                eprintln!(
                    "{TARGET}: {written} inputs, {:.0}/s",
                    written as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(done) = done {
                tally.add(done);
            }
        }
        engine::panics() > 0
    });
    if panicked {
        return Err(culprit(&runtime, &addrs, recent, limit));
    }
    let elapsed = started.elapsed();

    // Liveness: every dependency answers a valid request (`rough` within
    // 20 tries: its faults drop some), nothing is left in flight. The
    // request asks the server to close; the client never shuts its writing
    // half, which hyper takes for a client gone (see `Tally::read_tapes`).
    for (i, addr) in addrs.iter().enumerate() {
        let valid = b"GET / HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n".to_vec();
        let answered = (0..20).any(|_| {
            let seen = runtime.block_on(exchange(
                *addr,
                vec![valid.clone()],
                false,
                Duration::from_secs(5),
            ));
            tally.read[i] += seen.statuses;
            seen.statuses == 1
        });
        if !answered {
            return Err(broken(format!(
                "after the run `{}` did not answer a valid request",
                DEPENDENCIES[i]
            )));
        }
    }
    let settled = Instant::now();
    let stats = loop {
        let stats: Vec<_> = DEPENDENCIES
            .iter()
            .map(|d| server.stats(d))
            .collect::<Result<_, _>>()
            .map_err(|e| broken(e.to_string()))?;
        if stats.iter().all(|s| s.in_flight == 0) || settled.elapsed() > Duration::from_secs(5) {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    tally.read_tapes(&server);
    let mut figures = Figures {
        target: TARGET,
        inputs: written,
        accepted: 0,
        refused: 0,
        panics: engine::panics(),
        elapsed,
        notes: vec![
            format!("{connections} connections"),
            format!("{} timed out", tally.timed_out),
        ],
    };
    for (i, name) in DEPENDENCIES.iter().enumerate() {
        let total = &stats[i].total;
        if stats[i].in_flight != 0 {
            return Err(broken(format!(
                "`{name}` has {} calls in flight after the run",
                stats[i].in_flight
            )));
        }
        let refused: u64 = [400, 414, 431]
            .iter()
            .filter_map(|s| total.statuses.get(s))
            .sum();
        let journaled = responded(&stats[i]);
        figures.accepted += total.calls - refused;
        figures.refused += refused;
        figures.notes.push(format!(
            "{name}: {} calls journaled ({refused} refused by the HTTP layer), {journaled} responded ({} to HEAD), {} status lines read",
            total.calls, tally.heads[i], tally.read[i]
        ));
        let read = tally.read[i];
        if *name != "rough"
            && !(journaled - tally.heads[i].min(journaled) <= read && read <= journaled)
        {
            return Err(broken(format!(
                "`{name}`'s journal counts {journaled} responses ({} of them to HEAD), the clients read {read}",
                tally.heads[i]
            )));
        }
    }
    if tally.refused_connections > 0 {
        figures
            .notes
            .push(format!("{} connections refused", tally.refused_connections));
    }
    Ok(figures)
}

fn broken(message: String) -> Failure {
    Failure {
        target: TARGET,
        index: 0,
        message,
        input: String::new(),
        shrinks: 0,
    }
}

/// After a panic: replays the latest batches one at a time, then the
/// guilty batch's inputs one by one, and reports the first input that
/// panics alone (or the whole batch, if none does).
fn culprit(
    runtime: &tokio::runtime::Runtime,
    addrs: &[SocketAddr],
    recent: VecDeque<(usize, Vec<Vec<u8>>)>,
    limit: Duration,
) -> Failure {
    let first = engine::last_panic();
    let check = |dependency: usize, inputs: Vec<Vec<u8>>| {
        let mut run = |_: &()| {
            runtime.block_on(exchange(addrs[dependency], inputs.clone(), true, limit));
            // Let the server's tasks end before the panic count is read.
            std::thread::sleep(Duration::from_millis(20));
            Ok(Seen::Accepted)
        };
        engine::attempt(&mut run, &()).is_err()
    };
    for (dependency, batch) in recent {
        if !check(dependency, batch.clone()) {
            continue;
        }
        for input in &batch {
            if check(dependency, vec![input.clone()]) {
                return Failure {
                    target: TARGET,
                    index: 0,
                    message: format!("{first} (replayed alone: {})", engine::last_panic()),
                    input: format!(
                        "to `{}`: {:?}",
                        DEPENDENCIES[dependency],
                        String::from_utf8_lossy(input)
                    ),
                    shrinks: 0,
                };
            }
        }
        return Failure {
            target: TARGET,
            index: 0,
            message: first,
            input: format!(
                "to `{}`, pipelined: {:?}",
                DEPENDENCIES[dependency],
                batch
                    .iter()
                    .map(|i| String::from_utf8_lossy(i).into_owned())
                    .collect::<Vec<_>>()
            ),
            shrinks: 0,
        };
    }
    Failure {
        target: TARGET,
        index: 0,
        message: format!("{first} (no replay of the latest inputs panicked again)"),
        input: String::new(),
        shrinks: 0,
    }
}
