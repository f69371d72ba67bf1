//! One direction of a TCP proxy's connection: a reader that takes chunks as
//! they come (stamped with when they came), and a writer that delivers them
//! through the toxics in force for that direction, re-read whenever the
//! dependency's faults change, so that a toxic added or removed acts on live
//! connections as in Toxiproxy.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use std::cell::RefCell;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Connection, Side};
use crate::fault::{FaultKind, Stream, Toxic};
use crate::journal::CallOutcome;

/// Most bytes read at once.
const CHUNK: usize = 16 * 1024;
/// Chunks read ahead of the writer (it may be holding them back).
const AHEAD: usize = 32;

enum Chunk {
    Data(Bytes, Instant),
    End,
}

/// Pipes `src` into `dst` until either ends or the connection is ended.
pub(super) async fn run(
    connection: Arc<Connection>,
    stream: Stream,
    src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
) {
    let (tx, rx) = mpsc::channel(AHEAD);
    let reading = read(src, tx);
    let writing = write(&connection, stream, rx, &mut dst);
    tokio::select! {
        () = connection.ended.cancelled() => {}
        _ = async { tokio::join!(reading, writing) } => {}
    }
    if connection.reset.load(Ordering::Relaxed) {
        // SO_LINGER 0: the close that follows is an RST; and no FIN first,
        // which dropping a write half would send.
        let _ = socket2::SockRef::from(dst.as_ref()).set_linger(Some(Duration::ZERO));
        dst.forget();
    }
}

thread_local! {
    /// Where a worker reads a chunk before copying it out at its own size:
    /// a small message costs a small allocation, and an idle connection no
    /// buffer at all.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// Reads chunks as they come.
async fn read(src: OwnedReadHalf, tx: mpsc::Sender<Chunk>) {
    loop {
        if src.readable().await.is_err() {
            let _ = tx.send(Chunk::End).await;
            return;
        }
        let read = SCRATCH.with_borrow_mut(|scratch| {
            src.try_read(scratch)
                .map(|n| Bytes::copy_from_slice(&scratch[..n]))
        });
        match read {
            Ok(data) if data.is_empty() => {
                let _ = tx.send(Chunk::End).await;
                return;
            }
            Ok(data) => {
                if tx.send(Chunk::Data(data, Instant::now())).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                let _ = tx.send(Chunk::End).await;
                return;
            }
        }
    }
}

/// The side a direction reads from, and the side it writes to.
fn sides(stream: Stream) -> (Side, Side) {
    match stream {
        Stream::Upstream => (Side::Client, Side::Upstream),
        Stream::Downstream => (Side::Upstream, Side::Client),
    }
}

/// Delivers chunks through the toxics in force for `stream`.
async fn write(
    connection: &Connection,
    stream: Stream,
    mut rx: mpsc::Receiver<Chunk>,
    dst: &mut OwnedWriteHalf,
) {
    let (from, to) = sides(stream);
    let mut changes = connection.watch();
    let mut watching = true;
    let mut toxics = of_stream(connection.toxics(), stream);
    let mut rng = connection.rng(stream as u64);
    // Bytes delivered in this direction, and where each `limit_data` began
    // counting: from when the connection met it, as in Toxiproxy.
    let mut sent = 0u64;
    let mut counted_from: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut held: VecDeque<Chunk> = VecDeque::new();
    loop {
        let now = Instant::now();
        toxics.retain(|(t, _)| t.expires_at.is_none_or(|at| now < at));
        for (toxic, _) in &toxics {
            if matches!(toxic.kind, FaultKind::LimitData(_)) {
                counted_from.entry(toxic.id).or_insert(sent);
            }
        }
        // Toxics that act at an instant rather than on data.
        let mut wake = toxics.iter().filter_map(|(t, _)| t.expires_at).min();
        for (toxic, since) in &toxics {
            let (at, outcome) = match toxic.kind {
                FaultKind::Timeout(t) if !t.timeout.is_zero() => {
                    (*since + t.timeout, CallOutcome::TimedOut)
                }
                FaultKind::ResetPeer(r) => (*since + r.timeout, CallOutcome::Reset),
                _ => continue,
            };
            if now >= at {
                if outcome == CallOutcome::Reset {
                    connection.reset.store(true, Ordering::Relaxed);
                }
                connection.end(outcome);
                return;
            }
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        // A `timeout` holds all data back while it is in force.
        let blocked = toxics
            .iter()
            .any(|(t, _)| matches!(t.kind, FaultKind::Timeout(_)));
        let next = if blocked { None } else { held.pop_front() };
        let chunk = match next {
            Some(chunk) => chunk,
            None => {
                // A change first: a chunk that comes with it meets the new faults.
                tokio::select! {
                    biased;
                    changed = changes.changed(), if watching => {
                        match changed {
                            Ok(()) => toxics = of_stream(connection.toxics(), stream),
                            Err(_) => watching = false,
                        }
                        continue;
                    }
                    () = sleep_until(wake), if wake.is_some() => continue,
                    chunk = rx.recv() => {
                        let chunk = chunk.unwrap_or(Chunk::End);
                        if blocked {
                            held.push_back(chunk);
                            continue;
                        }
                        chunk
                    }
                }
            }
        };
        match chunk {
            Chunk::Data(data, read_at) => {
                let window = Window {
                    sent: &mut sent,
                    counted_from: &counted_from,
                };
                let watch = watching.then_some(&mut changes);
                let delivered = deliver(
                    connection, stream, &toxics, data, read_at, window, &mut rng, dst, watch,
                )
                .await;
                match delivered {
                    Delivered::Yes => {}
                    Delivered::Interrupted => {
                        // The faults changed while the chunk was held: it was
                        // let go at once, and the next meets the new ones.
                        toxics = of_stream(connection.toxics(), stream);
                    }
                    Delivered::LimitReached => {
                        connection.end(CallOutcome::Closed);
                        return;
                    }
                    Delivered::WriteFailed => {
                        connection.closed(to);
                        connection.end(to.closed_outcome());
                        return;
                    }
                }
            }
            Chunk::End => {
                connection.closed(from);
                // Held back while a `slow_close` says so, from this instant;
                // the faults changing (one removed) are read again.
                let closed_at = Instant::now();
                loop {
                    let until = closed_at + close_hold(&toxics);
                    if Instant::now() >= until {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => break,
                        changed = changes.changed(), if watching => match changed {
                            Ok(()) => toxics = of_stream(connection.toxics(), stream),
                            Err(_) => watching = false,
                        },
                    }
                }
                let _ = dst.shutdown().await;
                return;
            }
        }
    }
}

enum Delivered {
    Yes,
    /// Delivered at once once the faults changed while it was held.
    Interrupted,
    LimitReached,
    WriteFailed,
}

/// Bytes delivered so far in a direction, and where each data limit began.
struct Window<'a> {
    sent: &'a mut u64,
    counted_from: &'a std::collections::HashMap<u64, u64>,
}

/// One chunk through the toxics: latency (from when it was read, so chunks
/// in flight are delayed together, not one after another), then cut at a
/// data limit, sliced, and paced to a bandwidth. A change to the faults
/// (`changes`) while it is held lets the rest of it go at once, as
/// Toxiproxy flushes a toxic's data when the toxic goes.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    connection: &Connection,
    stream: Stream,
    toxics: &[(Toxic, Instant)],
    mut data: Bytes,
    read_at: Instant,
    window: Window<'_>,
    rng: &mut ChaCha8Rng,
    dst: &mut OwnedWriteHalf,
    mut changes: Option<&mut tokio::sync::watch::Receiver<u64>>,
) -> Delivered {
    let mut interrupted = false;
    // Whether the faults acting on this direction are still these (a lease
    // renewed, or a fault on the other direction, changes nothing here).
    let ids: Vec<u64> = toxics.iter().map(|(t, _)| t.id).collect();
    let same = || {
        of_stream(connection.toxics(), stream)
            .iter()
            .map(|(t, _)| t.id)
            .eq(ids.iter().copied())
    };
    let mut delay = Duration::ZERO;
    let mut limit: Option<u64> = None;
    let mut slicer = None;
    let mut rate: Option<u64> = None;
    for (toxic, _) in toxics {
        match &toxic.kind {
            FaultKind::Latency(latency) => delay += latency.0.sample(rng),
            FaultKind::LimitData(l) => {
                // What this limit still lets through.
                let from = window
                    .counted_from
                    .get(&toxic.id)
                    .copied()
                    .unwrap_or(*window.sent);
                let room = l.bytes.saturating_sub(window.sent.saturating_sub(from));
                limit = Some(limit.map_or(room, |m| m.min(room)));
            }
            FaultKind::Slicer(s) => slicer = slicer.or(Some(*s)),
            FaultKind::Bandwidth(b) => rate = Some(rate.map_or(b.rate, |r| r.min(b.rate))),
            _ => {}
        }
    }
    if !delay.is_zero() {
        // From when the chunk was read; on the precise timer thread, as a
        // stub's latency is (tokio's timer rounds up to the millisecond).
        let due = read_at.checked_add(delay).unwrap_or(read_at);
        let left = due.saturating_duration_since(Instant::now());
        interrupted = if connection.virtual_time() {
            hold(tokio::time::sleep(left), &mut changes, &same).await
        } else {
            hold(
                crate::dataplane::precise_sleep::sleep(left),
                &mut changes,
                &same,
            )
            .await
        };
    }
    let mut reached = false;
    if let Some(room) = limit {
        if data.len() as u64 >= room {
            data.truncate(usize::try_from(room).unwrap_or(usize::MAX));
            reached = true;
        }
    }
    // Bandwidth is paced in pieces of at most a tenth of a second's worth.
    let piece_cap = rate.map_or(usize::MAX, |r| {
        usize::try_from((r * 100).max(1)).unwrap_or(usize::MAX)
    });
    let mut first = true;
    while !data.is_empty() {
        if interrupted {
            slicer = None;
            rate = None;
        }
        let size = match slicer {
            Some(s) => {
                let spread = s.size_variation;
                let size = if spread == 0 {
                    s.average_size
                } else {
                    rng.gen_range(s.average_size - spread..=s.average_size + spread)
                };
                usize::try_from(size.max(1)).unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        }
        .min(piece_cap)
        .min(data.len());
        if let (Some(s), false) = (slicer, first) {
            if !s.delay.is_zero() && hold(tokio::time::sleep(s.delay), &mut changes, &same).await {
                interrupted = true;
                continue;
            }
        }
        first = false;
        let piece = data.split_to(size);
        if dst.write_all(&piece).await.is_err() {
            return Delivered::WriteFailed;
        }
        *window.sent += piece.len() as u64;
        connection.carried(stream, piece.len() as u64);
        if let Some(rate) = rate {
            let seconds = piece.len() as f64 / (rate as f64 * 1_000.0);
            let paced = tokio::time::sleep(Duration::from_secs_f64(seconds));
            interrupted |= hold(paced, &mut changes, &same).await;
        }
    }
    if reached {
        Delivered::LimitReached
    } else if interrupted {
        Delivered::Interrupted
    } else {
        Delivered::Yes
    }
}

/// Waits out `wait`; true if, meanwhile, the faults acting on this
/// direction changed (`same` says they did not: a lease renewed touches the
/// set but leaves the faults as they were).
async fn hold<W: std::future::Future<Output = ()>>(
    wait: W,
    changes: &mut Option<&mut tokio::sync::watch::Receiver<u64>>,
    same: &(dyn Fn() -> bool + Sync),
) -> bool {
    let Some(changes) = changes else {
        wait.await;
        return false;
    };
    tokio::pin!(wait);
    loop {
        tokio::select! {
            () = &mut wait => return false,
            changed = changes.changed() => match changed {
                Ok(()) if !same() => return true,
                Ok(()) => {}
                Err(_) => {
                    (&mut wait).await;
                    return false;
                }
            },
        }
    }
}

/// How long a close is held back: the `slow_close` delays in force, summed.
fn close_hold(toxics: &[(Toxic, Instant)]) -> Duration {
    toxics
        .iter()
        .filter_map(|(t, _)| match t.kind {
            FaultKind::SlowClose(s) => Some(s.delay),
            _ => None,
        })
        .sum()
}

fn of_stream(toxics: Vec<(Toxic, Instant)>, stream: Stream) -> Vec<(Toxic, Instant)> {
    toxics
        .into_iter()
        .filter(|(t, _)| t.stream == stream)
        .collect()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
