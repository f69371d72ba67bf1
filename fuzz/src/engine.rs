//! The loop every target runs: draw an input, run it inside `catch_unwind`,
//! count what was accepted and refused; on a panic or a broken invariant,
//! shrink the input and report the smallest one that still fails.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// How the code under test took one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// It was valid and went through.
    Accepted,
    /// It was refused with an error.
    Refused,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// Inputs the code under test accepted.
    pub accepted: u64,
    /// Inputs it refused with an error.
    pub refused: u64,
    /// Panics seen (always 0 in figures: a panic ends the run as a [`Failure`]).
    pub panics: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Target-specific figures, `name: value`.
    pub notes: Vec<String>,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{}: {} inputs, {} panics, {:.1} s, {:.0} inputs/s, {} accepted, {} refused",
            self.target,
            self.inputs,
            self.panics,
            secs,
            self.inputs as f64 / secs.max(1e-9),
            self.accepted,
            self.refused
        )?;
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// A panic or a broken invariant, with the smallest input found that causes it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The target's name.
    pub target: &'static str,
    /// Which input of the run first failed (0-based).
    pub index: u64,
    /// The panic message and place, or the invariant broken.
    pub message: String,
    /// The smallest failing input, as `{:?}` prints it.
    pub input: String,
    /// Shrinking steps that failed again.
    pub shrinks: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: input {} failed: {}\nsmallest failing input ({} shrinks):\n{}",
            self.target, self.index, self.message, self.shrinks, self.input
        )
    }
}

/// Panics anywhere in the process since the hook was installed (a server's
/// tokio tasks catch their own, so they are counted here).
static PANICS: AtomicU64 = AtomicU64::new(0);
/// The last panic's message and place.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook with one that counts and records panics quietly.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".to_owned());
            let place = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let thread = std::thread::current();
            let thread = thread.name().unwrap_or("unnamed");
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("panicked on thread `{thread}`{place}: {message}"));
        }));
    });
}

/// Panics recorded so far, anywhere in the process.
pub fn panics() -> u64 {
    PANICS.load(Ordering::SeqCst)
}

/// The last panic recorded.
pub fn last_panic() -> String {
    LAST_PANIC
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| "a panic".to_owned())
}

/// A test runner whose draws depend on `seed` alone.
pub fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"faultlin");
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// Runs `check` on `inputs` inputs drawn from `strategy`. `check` returns how
/// the input was taken, or the invariant it broke; a panic in it (or anywhere
/// in the process while it ran) fails too.
pub fn fuzz<S, F>(
    target: &'static str,
    inputs: u64,
    seed: u64,
    strategy: S,
    mut check: F,
) -> Result<Figures, Failure>
where
    S: Strategy,
    S::Value: fmt::Debug + Reduce,
    F: FnMut(&S::Value) -> Result<Seen, String>,
{
    install_panic_hook();
    let mut runner = runner(seed);
    let started = Instant::now();
    let mut figures = Figures {
        target,
        inputs: 0,
        accepted: 0,
        refused: 0,
        panics: 0,
        elapsed: Duration::ZERO,
        notes: Vec::new(),
    };
    let report_every = (inputs / 10).max(1);
    for index in 0..inputs {
        let mut tree = strategy.new_tree(&mut runner).map_err(|reason| Failure {
            target,
            index,
            message: format!("the strategy drew nothing: {reason}"),
            input: String::new(),
            shrinks: 0,
        })?;
        match attempt(&mut check, &tree.current()) {
            Ok(Seen::Accepted) => figures.accepted += 1,
            Ok(Seen::Refused) => figures.refused += 1,
            Err(message) => {
                let (input, shrinks) = shrink(&mut tree, &mut check);
                return Err(Failure {
                    target,
                    index,
                    message,
                    input,
                    shrinks,
                });
            }
        }
        figures.inputs += 1;
        if (index + 1) % report_every == 0 && index + 1 < inputs {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "{target}: {} inputs, {:.0}/s, {} accepted",
                index + 1,
                (index + 1) as f64 / secs,
                figures.accepted
            );
        }
    }
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// One input: how it was taken, or why it failed (a panic anywhere in the
/// process counts).
pub fn attempt<T, F>(check: &mut F, input: &T) -> Result<Seen, String>
where
    F: FnMut(&T) -> Result<Seen, String>,
{
    let before = panics();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(input)));
    match outcome {
        Err(_) => Err(last_panic()),
        Ok(_) if panics() != before => Err(last_panic()),
        Ok(result) => result,
    }
}

/// Shrinks a failing input: proptest's value tree simplifies while the
/// input still fails and complicates when it stops failing. Bounded in steps
/// and time. The smallest failing input, and how many shrinks failed again.
fn shrink<V, F>(tree: &mut V, check: &mut F) -> (String, u64)
where
    V: ValueTree,
    V::Value: fmt::Debug + Reduce,
    F: FnMut(&V::Value) -> Result<Seen, String>,
{
    let started = Instant::now();
    let mut smallest = tree.current();
    let mut shrinks = 0;
    let mut more = tree.simplify();
    for _ in 0..100_000 {
        if !more {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            break;
        }
        let current = tree.current();
        more = if attempt(check, &current).is_err() {
            smallest = current;
            shrinks += 1;
            tree.simplify()
        } else {
            tree.complicate()
        };
    }
    // Then by the input's own parts (lines, bytes), greedily.
    'smaller: while started.elapsed() < Duration::from_secs(180) {
        for candidate in smallest.smaller() {
            if attempt(check, &candidate).is_err() {
                smallest = candidate;
                shrinks += 1;
                continue 'smaller;
            }
        }
        break;
    }
    (format!("{smallest:#?}"), shrinks)
}

/// Inputs that can be made smaller by their own parts, once proptest's
/// shrinking of the edits that made them is done.
pub trait Reduce: Sized {
    /// Smaller inputs to try, most promising first; none by default.
    fn smaller(&self) -> Vec<Self> {
        Vec::new()
    }
}

/// Smaller byte strings: without a line, then without a byte.
pub fn smaller_bytes(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    if lines.len() > 1 {
        for skip in 0..lines.len() {
            found.push(
                lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, line)| line.iter().copied())
                    .collect(),
            );
        }
    }
    if bytes.len() <= 256 {
        for skip in 0..bytes.len() {
            let mut shorter = bytes.to_vec();
            shorter.remove(skip);
            found.push(shorter);
        }
    }
    found
}
