//! TCP proxy dependencies: each connection accepted on the dependency's
//! listener is piped to its upstream (`tcp = "host:port"`), both ways, through
//! the connection-level faults in force (Toxiproxy's toxics, see
//! [`crate::fault::Stream`]), and journaled as one call: arrival at connect,
//! departure at close, in flight at connect, bytes each way, the faults it
//! met, and how it ended.

mod pump;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Method;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dataplane::{ConnectionLimits, Stream as _};
use crate::dependency::Dependency;
use crate::fault::{FaultKind, FaultKinds, Stream, Toxic};
use crate::journal::{ByteCounts, CallInfo, CallOutcome, Ticket};

/// How long connecting to the upstream may take before the client's
/// connection is reset (`upstream_error`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pipes a TCP proxy's connections until `stop` is cancelled, accepted as
/// every dependency's are ([`crate::dataplane::accept`]).
pub(crate) async fn serve(
    listener: TcpListener,
    dependency: Arc<Dependency>,
    stop: CancellationToken,
    limits: ConnectionLimits,
) {
    crate::dataplane::accept(listener, dependency, stop, limits, pipe).await;
}

/// One client connection, from connect to close.
async fn pipe(client: TcpStream, dependency: Arc<Dependency>) {
    let Some(upstream_addr) = dependency.tcp_upstream() else {
        return;
    };
    let (connection, refused) = Connection::arrive(dependency, &upstream_addr);
    let connection = Arc::new(connection);
    if refused {
        client.reset_on_close();
        connection.end(CallOutcome::Refused);
        return;
    }
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&upstream_addr)).await {
            Ok(Ok(upstream)) => upstream,
            _ => {
                client.reset_on_close();
                connection.end(CallOutcome::UpstreamError);
                return;
            }
        };
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let up = pump::run(
        Arc::clone(&connection),
        Stream::Upstream,
        client_read,
        upstream_write,
    );
    let down = pump::run(
        Arc::clone(&connection),
        Stream::Downstream,
        upstream_read,
        client_write,
    );
    tokio::join!(up, down);
}

/// One end of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client that connected to the dependency.
    Client,
    /// The real dependency behind it.
    Upstream,
}

impl Side {
    /// How a connection this side ended is journaled.
    pub(crate) fn closed_outcome(self) -> CallOutcome {
        match self {
            Side::Client => CallOutcome::ClientClosed,
            Side::Upstream => CallOutcome::UpstreamClosed,
        }
    }
}

/// What the two directions of one connection share.
pub(crate) struct Connection {
    dependency: Arc<Dependency>,
    ticket: Ticket,
    /// Each toxic's roll for this connection, by id.
    rolled: Mutex<HashMap<u64, bool>>,
    /// When this connection first met each toxic that applies to it.
    met: Mutex<HashMap<u64, Instant>>,
    /// Every kind it met.
    faults: Mutex<FaultKinds>,
    /// Cancelled when a fault (or both sides) ended the connection.
    pub(crate) ended: CancellationToken,
    outcome: Mutex<Option<CallOutcome>>,
    /// Which side closed first, once one has.
    first_close: Mutex<Option<Side>>,
    /// Bytes delivered: upstream (client to upstream), downstream.
    bytes: [AtomicU64; 2],
    /// Reset both sockets on close (a `reset_peer`).
    pub(crate) reset: std::sync::atomic::AtomicBool,
}

impl Connection {
    /// Journals the connection's arrival, with the faults it meets at
    /// connect; and whether a `down` among them refuses it.
    fn arrive(dependency: Arc<Dependency>, upstream: &str) -> (Self, bool) {
        let now = Instant::now();
        let mut state = dependency.state();
        let seq = state.journal.next_seq();
        let mut rolled = HashMap::new();
        let seed = dependency.seed();
        let toxics = state.faults.toxics(now, &mut rolled, |id, probability| {
            roll(seed, seq, id, probability)
        });
        let refused = toxics.iter().any(|t| matches!(t.kind, FaultKind::Down(_)));
        let mut kinds = FaultKinds::default();
        let mut met = HashMap::new();
        for toxic in &toxics {
            kinds.insert(toxic.kind.name());
            met.insert(toxic.id, now);
        }
        let info = CallInfo {
            method: &Method::CONNECT,
            path: upstream,
            correlation_id: None,
            idempotency_key: None,
            attempt: None,
            headers: None,
        };
        let ticket = state
            .journal
            .arrive(&info, kinds, dependency.clock.ns_at(now));
        drop(state);
        let connection = Connection {
            dependency,
            ticket,
            rolled: Mutex::new(rolled),
            met: Mutex::new(met),
            faults: Mutex::new(kinds),
            ended: CancellationToken::new(),
            outcome: Mutex::new(None),
            first_close: Mutex::new(None),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            reset: std::sync::atomic::AtomicBool::new(false),
        };
        (connection, refused)
    }

    /// The toxics in force for this connection now, rolling any it has not
    /// met yet, with when it first met each.
    pub(crate) fn toxics(&self) -> Vec<(Toxic, Instant)> {
        let now = Instant::now();
        let seed = self.dependency.seed();
        let seq = self.ticket.seq;
        let toxics = {
            let mut rolled = lock(&self.rolled);
            self.dependency
                .state()
                .faults
                .toxics(now, &mut rolled, |id, p| roll(seed, seq, id, p))
        };
        let mut met = lock(&self.met);
        let mut faults = lock(&self.faults);
        toxics
            .into_iter()
            .map(|toxic| {
                faults.insert(toxic.kind.name());
                let since = *met.entry(toxic.id).or_insert(now);
                (toxic, since)
            })
            .collect()
    }

    /// A receiver told whenever the dependency's faults change.
    pub(crate) fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.dependency.state().faults.watch()
    }

    /// Ends the connection with `outcome` (the first ending wins).
    pub(crate) fn end(&self, outcome: CallOutcome) {
        lock(&self.outcome).get_or_insert(outcome);
        self.ended.cancel();
    }

    /// One side closed (or failed): remembered if it was the first.
    pub(crate) fn closed(&self, side: Side) {
        lock(&self.first_close).get_or_insert(side);
    }

    /// Bytes delivered in `stream`'s direction.
    pub(crate) fn carried(&self, stream: Stream, bytes: u64) {
        let index = usize::from(stream == Stream::Downstream);
        self.bytes[index].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether delays are timed on tokio's clock (an in-process dependency's).
    pub(crate) fn virtual_time(&self) -> bool {
        self.dependency.virtual_time
    }

    /// The dependency's seeded generator for a connection-level draw.
    pub(crate) fn rng(&self, draw: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.dependency.seed() ^ draw.rotate_left(32));
        rng.set_stream(self.ticket.seq);
        rng
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A connection cut off because its dependency was disabled was
        // closed by the proxy.
        let cut = (!self.dependency.is_enabled()).then_some(CallOutcome::Closed);
        let outcome = lock(&self.outcome)
            .or_else(|| lock(&self.first_close).map(Side::closed_outcome))
            .or(cut);
        let bytes = ByteCounts {
            upstream: self.bytes[0].load(Ordering::Relaxed),
            downstream: self.bytes[1].load(Ordering::Relaxed),
        };
        let faults = *lock(&self.faults);
        let now_ns = self.dependency.clock.now_ns();
        self.dependency.state().journal.depart_connection(
            self.ticket,
            outcome.unwrap_or(CallOutcome::ClientClosed),
            bytes,
            faults,
            now_ns,
        );
    }
}

/// Whether a toxic with this `probability` applies to connection `seq`: one
/// draw from the dependency's seeded generator, on the connection's stream,
/// at the toxic's place; the same seed, arrival order and toxic give the
/// same answer.
fn roll(seed: u64, seq: u64, id: u64, probability: f64) -> bool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(seq);
    rng.set_word_pos(u128::from(id) * 2);
    rng.gen::<f64>() < probability
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
