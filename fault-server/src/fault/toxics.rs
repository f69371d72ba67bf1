//! The connection-level faults of a TCP proxy dependency, with Toxiproxy's
//! names and meanings (its "toxics"). Each acts on one direction of the
//! connection (`stream`: `downstream`, upstream to client, by default, or
//! `upstream`, client to upstream) and, unlike a per-request fault, is drawn
//! once per connection: `probability` is Toxiproxy's `toxicity`, rolled from
//! the seeded generator when the connection first meets the toxic (at
//! connect, or when the toxic is added to a live connection). A roll that
//! says no leaves the connection untouched. `latency` (per chunk of data)
//! applies to TCP proxies too; per-request kinds (`error`, `hang`, ...) do
//! not.
//!
//! ```
//! # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
//! let file: File = toml::from_str(r#"
//! [[faults]]
//! bandwidth = { rate = 100 }        # KB/s
//! stream = "downstream"
//!
//! [[faults]]
//! reset_peer = { timeout = "2s" }
//! probability = 0.5                  # half the connections
//! "#).unwrap();
//! # assert_eq!(file.faults.len(), 2);
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Kind};

/// Which way data flows through a toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// From the client to the upstream.
    Upstream,
    /// From the upstream to the client (Toxiproxy's default).
    #[default]
    Downstream,
}

/// `bandwidth`: at most `rate` kilobytes (1,000 bytes) a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthFault {
    /// KB/s; at least 1.
    pub rate: u64,
}

/// `slicer`: each chunk cut into slices of about `average_size` bytes (give
/// or take `size_variation`), `delay` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlicerFault {
    /// Bytes; at least 1.
    pub average_size: u64,
    /// Bytes; less than `average_size`.
    #[serde(default)]
    pub size_variation: u64,
    /// Between slices.
    #[serde(default, with = "humantime_serde")]
    pub delay: Duration,
}

/// `timeout`: no data gets through; after `timeout` the connection is closed
/// (`timed_out`), or with `timeout = "0s"` it is held open and the data
/// waits until the toxic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutFault {
    /// How long before closing; zero for never.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// `reset_peer`: both sides get a TCP RST, `timeout` after the connection
/// met the toxic (at once with zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPeerFault {
    /// How long before the reset.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Duration,
}

/// `slow_close`: when one side closes, the close reaches the other `delay` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowCloseFault {
    /// How long the close is held.
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
}

/// `limit_data`: the connection is closed once `bytes` have gone through
/// (in its direction), the last chunk cut at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitDataFault {
    /// Bytes allowed through.
    pub bytes: u64,
}

/// `down`: new connections are refused (accepted and reset at once);
/// connections already open live on. Toxiproxy disables a proxy for this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownFault {}

impl Kind for BandwidthFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;

    fn validate(&self) -> Result<(), String> {
        if self.rate == 0 {
            return Err("rate must be at least 1 (KB/s); use `timeout` to stop data".into());
        }
        Ok(())
    }
}

impl Kind for SlicerFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;

    fn validate(&self) -> Result<(), String> {
        if self.average_size == 0 {
            return Err("average_size must be at least 1".into());
        }
        if self.size_variation >= self.average_size {
            return Err("size_variation must be less than average_size".into());
        }
        super::check_duration("delay", self.delay)
    }
}

impl Kind for TimeoutFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;

    fn validate(&self) -> Result<(), String> {
        super::check_duration("timeout", self.timeout)
    }
}

impl Kind for ResetPeerFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;

    fn validate(&self) -> Result<(), String> {
        super::check_duration("timeout", self.timeout)
    }
}

impl Kind for SlowCloseFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;

    fn validate(&self) -> Result<(), String> {
        super::check_duration("delay", self.delay)
    }
}

impl Kind for LimitDataFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;
}

impl Kind for DownFault {
    const ACTS_ON: ActsOn = ActsOn::Tcp;
}
