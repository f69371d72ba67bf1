//! A sleep accurate to a fraction of a millisecond, for injected latency.
//!
//! tokio's timer wheel ticks in whole milliseconds and its driver parks in
//! `epoll_wait`, whose timeout is also whole milliseconds: a 200 ms sleep
//! wakes 1 to 2 ms late. A latency fault is a measurement instrument (a test
//! asserts "p99 of a 200 ms dependency stays under 202 ms"), so its delays are
//! timed by one thread of our own that waits on a condition variable (futex,
//! nanosecond timeouts) and wakes each due task. Its timer slack is set to
//! 1 ns (Linux's default lets a timed wait end up to 50 µs late).
//!
//! Dropped sleeps are not removed: their entry wakes a finished task, a no-op.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Waits until `duration` has passed, to within about 0.1 ms (or, if the
/// timer thread could not be started, to tokio's millisecond).
pub(crate) fn sleep(duration: Duration) -> PreciseSleep {
    let now = Instant::now();
    // Durations are bounded when configured; far beyond any, wait "forever".
    let deadline = now
        .checked_add(duration)
        .unwrap_or(now + crate::fault::MAX_DURATION * 365);
    match timer() {
        Some(timer) => PreciseSleep::Precise {
            deadline,
            timer,
            entry: None,
        },
        None => PreciseSleep::Coarse(Box::pin(tokio::time::sleep_until(deadline.into()))),
    }
}

/// Waits `duration` on tokio's clock, paused or not.
pub(crate) fn on_tokio(duration: Duration) -> PreciseSleep {
    PreciseSleep::Coarse(Box::pin(tokio::time::sleep(duration)))
}

pub(crate) enum PreciseSleep {
    Precise {
        deadline: Instant,
        timer: &'static Timer,
        entry: Option<Arc<Mutex<Waker>>>,
    },
    Coarse(Pin<Box<tokio::time::Sleep>>),
}

impl Future for PreciseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let (deadline, timer, entry) = match self.get_mut() {
            PreciseSleep::Coarse(sleep) => return sleep.as_mut().poll(cx),
            PreciseSleep::Precise {
                deadline,
                timer,
                entry,
            } => (*deadline, *timer, entry),
        };
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        match entry {
            Some(waker) => {
                let mut waker = waker.lock().unwrap_or_else(|e| e.into_inner());
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
            }
            None => {
                let waker = Arc::new(Mutex::new(cx.waker().clone()));
                timer.schedule(deadline, Arc::clone(&waker));
                *entry = Some(waker);
            }
        }
        Poll::Pending
    }
}

pub(crate) struct Timer {
    queue: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
}

struct Entry {
    deadline: Instant,
    waker: Arc<Mutex<Waker>>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.deadline.cmp(&other.deadline)
    }
}

/// The process's one timer thread, started on first use; `None` if the
/// thread could not be started (then sleeps fall back to tokio's timer).
fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    *TIMER.get_or_init(|| {
        // Leaked once: the thread runs for the life of the process.
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            queue: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("fault-server-timer".into())
            .spawn(move || timer.run())
            .ok()
            .map(|_| timer)
    })
}

impl Timer {
    fn schedule(&self, deadline: Instant, waker: Arc<Mutex<Waker>>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = queue.peek().is_none_or(|Reverse(e)| deadline < e.deadline);
        queue.push(Reverse(Entry { deadline, waker }));
        drop(queue);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        // Best effort: without it, waits end up to 50 µs later.
        let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while queue.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
                if let Some(Reverse(entry)) = queue.pop() {
                    entry
                        .waker
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .wake_by_ref();
                }
            }
            queue = match queue.peek().map(|Reverse(e)| e.deadline - now) {
                Some(wait) => {
                    self.changed
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never early, and done: how close to on time it wakes is a figure for the
    /// benchmark (`bench/fault-server.sh latency`), not for a timed unit test.
    #[tokio::test]
    async fn a_precise_sleep_is_never_early_and_always_ends() {
        for millis in [0, 1, 5, 20] {
            let start = Instant::now();
            let wanted = Duration::from_millis(millis);
            tokio::time::timeout(Duration::from_secs(5), sleep(wanted))
                .await
                .expect("a sleep ends");
            assert!(start.elapsed() >= wanted, "{millis} ms woke early");
        }
    }
}
