//! Reading the dependencies' journals while a run goes on ([`drain`]), and
//! the calls they counted whose records the run never read ([`lost_calls`]).

use std::collections::BTreeMap;
use std::time::Duration;

use fault_server::CallRecord;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::fault_control::{FaultControl, FaultControlError};
use faultline_properties::Phase;

/// How often the journals are drained while the run goes on.
const DRAIN_EVERY: Duration = Duration::from_millis(50);
/// A read this large means calls arrive fast: the next read follows at once.
const BUSY_READ: usize = 1_024;

/// Reads every journal as the run goes (a remote journal keeps only its
/// latest records; a local one hands them over on its tape), and once more
/// when the load has finished. A call still in flight when read is read
/// again until it has ended. Once `stop` is cancelled, a journal that cannot
/// be read is given up on (returned with why) rather than failing the run.
pub(super) async fn drain<'a>(
    server: FaultControl<'_>,
    dependencies: &'a [String],
    from: BTreeMap<&'a str, u64>,
    mut done: watch::Receiver<bool>,
    stop: &CancellationToken,
) -> Result<Journals, FaultControlError> {
    let mut calls: BTreeMap<String, BTreeMap<u64, CallRecord>> = BTreeMap::new();
    let mut unread: BTreeMap<String, String> = BTreeMap::new();
    let mut resume = from;
    loop {
        let finished = *done.borrow();
        let mut busy = false;
        for dependency in dependencies {
            if unread.contains_key(dependency) {
                continue;
            }
            let from = resume.get(dependency.as_str()).copied().unwrap_or(0);
            let read = if finished || matches!(server, FaultControl::Remote(..)) {
                server.new_records(dependency, from).await
            } else {
                // Calls in flight are read once, at the end.
                server.new_records(dependency, u64::MAX).await
            };
            let records = match read {
                Ok(records) => records,
                Err(error) if stop.is_cancelled() => {
                    unread.insert(dependency.clone(), error.to_string());
                    continue;
                }
                Err(error) => return Err(error),
            };
            busy |= records.len() >= BUSY_READ;
            if let FaultControl::Local(_) = server {
                // The tape hands each ended call over once: the calls in
                // flight are read from the run's first call on, at the end.
                let kept = calls.entry(dependency.clone()).or_default();
                for record in records {
                    kept.insert(record.seq, record);
                }
                continue;
            }
            let next = records
                .iter()
                .find(|r| r.departure_ns.is_none())
                .or(records.last())
                .map(|r| {
                    if r.departure_ns.is_none() {
                        r.seq
                    } else {
                        r.seq + 1
                    }
                })
                .unwrap_or(from);
            resume.insert(dependency, next);
            let kept = calls.entry(dependency.clone()).or_default();
            for record in records {
                kept.insert(record.seq, record);
            }
        }
        if finished {
            break;
        }
        if busy {
            // A remote ring fills up: read again at once rather than lose records.
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_EVERY) => {}
            _ = done.changed() => {}
        }
    }
    let calls = calls
        .into_iter()
        .map(|(name, records)| (name, records.into_values().collect()))
        .collect();
    Ok((calls, unread))
}

/// Each dependency's records, and the dependencies whose journal could not
/// be read to the end (with why).
type Journals = (BTreeMap<String, Vec<CallRecord>>, BTreeMap<String, String>);

/// Per dependency and phase, the calls the journal counted (exactly) in the
/// phase's window whose records the run never read: lost from a remote
/// server's ring between two reads. Verdicts that need those records are
/// inconclusive.
pub(super) async fn lost_calls(
    server: FaultControl<'_>,
    phases: &[Phase],
    journals: &BTreeMap<String, Vec<CallRecord>>,
    unread: &mut BTreeMap<String, String>,
    stopping: bool,
) -> Result<BTreeMap<String, BTreeMap<String, u64>>, FaultControlError> {
    let mut lost = BTreeMap::new();
    for (dependency, records) in journals {
        if unread.contains_key(dependency) {
            continue;
        }
        let stats = match server.stats(dependency).await {
            Ok(stats) => stats,
            Err(error) if stopping => {
                unread.insert(dependency.clone(), error.to_string());
                continue;
            }
            Err(error) => return Err(error),
        };
        for phase in phases {
            let Some(window) = phase.windows.get(dependency) else {
                continue;
            };
            let Some(counted) = stats.windows.iter().find(|w| w.index == *window) else {
                continue;
            };
            let read = records.iter().filter(|r| r.window == *window).count() as u64;
            let missing = counted.counters.calls.saturating_sub(read);
            if missing > 0 {
                lost.entry(dependency.clone())
                    .or_insert_with(BTreeMap::new)
                    .insert(phase.name.clone(), missing);
            }
        }
    }
    Ok(lost)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use fault_server::{Clock, DependencySpec, FaultServer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::run::remote::RemoteFaultServer;

    /// One GET at `addr`, read to its end.
    async fn call(addr: SocketAddr) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = b"GET / HTTP/1.1\r\nhost: dep\r\nconnection: close\r\n\r\n";
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"));
    }

    /// A stub whose first call takes 400 ms, with a control API.
    fn server() -> FaultServer {
        let server = FaultServer::builder()
            .dependency(DependencySpec::stub("dep"))
            .control("127.0.0.1:0".parse().unwrap())
            .start()
            .unwrap();
        let slow_first = fault_server::Fault::latency(Duration::from_millis(400)).first(1);
        server.add_fault("dep", slow_first).unwrap();
        server
    }

    /// Drains `control` while one slow call (400 ms) and three quick ones
    /// go through, until 600 ms in: every call read once, each as it ended.
    async fn drained(control: FaultControl<'_>, addr: SocketAddr) -> Journals {
        let dependencies = ["dep".to_owned()];
        control.keep_records("dep").await.unwrap();
        let from = BTreeMap::from([("dep", control.next_seq("dep").await.unwrap())]);
        let (done, finished) = watch::channel(false);
        let stop = CancellationToken::new();
        let calls = async {
            let slow = tokio::spawn(call(addr));
            tokio::time::sleep(Duration::from_millis(50)).await;
            for _ in 0..3 {
                call(addr).await;
            }
            // The drain has read the quick calls, and the slow one in flight.
            tokio::time::sleep(Duration::from_millis(150)).await;
            slow.await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            done.send(true).unwrap();
        };
        let (journals, ()) =
            tokio::join!(drain(control, &dependencies, from, finished, &stop), calls);
        journals.unwrap()
    }

    fn check((calls, unread): Journals) {
        assert!(unread.is_empty(), "{unread:?}");
        let records = &calls["dep"];
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3], "each call once, in order");
        assert!(
            records.iter().all(|r| r.departure_ns.is_some()),
            "a call read in flight is read again once it ended: {records:?}"
        );
        let slow = &records[0];
        let took = slow.departure_ns.unwrap() - slow.arrival_ns;
        assert!(took >= 400_000_000, "{took}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_local_journal_is_drained_from_its_tape_every_call_once() {
        let server = server();
        let addr = server.addr("dep").unwrap();
        check(drained(FaultControl::Local(&server), addr).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_journal_is_drained_from_its_ring_rereading_calls_in_flight() {
        let server = server();
        let addr = server.addr("dep").unwrap();
        let url = format!("http://{}", server.control_addr().unwrap());
        let remote = RemoteFaultServer::connect(&url, None, Clock::start())
            .await
            .unwrap();
        let names = ["dep".to_owned()];
        check(drained(FaultControl::Remote(&remote, &names), addr).await);
    }
}
