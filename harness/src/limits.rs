//! The largest numbers a suite may give, refused beyond rather than
//! overflowing a clock or a process's open files.

use std::time::Duration;

/// The longest duration a suite may give anywhere (a phase, a timeout, a
/// bound): a day. Longer ones are refused rather than overflow a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The highest open-loop rate a load may ask for, requests/s: far beyond what
/// one driver keeps up (about 150,000/s on two cores), refused rather than
/// silently missed.
pub const MAX_RATE: f64 = 1_000_000.0;
/// The most closed-loop clients one load may have: each holds a connection,
/// and a process holds at most 20,000 open files here.
pub const MAX_CLIENTS: usize = 10_000;
