//! The fault server a run switches faults on and reads journals from: the
//! one in this process, or one in another reached through its control API.
//! The timeline speaks to either the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use fault_server::{
    AlertRecord, CallRecord, Clock, ControlError, Fault, FaultServer, JournalStats,
};

use crate::run::remote::{RemoteError, RemoteFaultServer};

/// Why the fault server refused an operation during a run.
#[derive(Debug, thiserror::Error)]
pub enum FaultControlError {
    /// The in-process fault server refused.
    #[error(transparent)]
    Local(#[from] ControlError),
    /// The remote fault server refused or did not answer.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// A fault server, here or elsewhere.
#[derive(Debug, Clone, Copy)]
pub enum FaultControl<'a> {
    /// In this process.
    Local(&'a FaultServer),
    /// Through its control API.
    Remote(&'a RemoteFaultServer, &'a [String]),
}

impl FaultControl<'_> {
    /// The clock every instant of the run is stamped on.
    pub fn clock(&self) -> Clock {
        match self {
            FaultControl::Local(server) => server.clock(),
            FaultControl::Remote(remote, _) => remote.clock(),
        }
    }

    /// The dependencies the run uses: every one in process; those the suite
    /// names on a remote server (which may serve others).
    pub fn dependencies(&self) -> Vec<String> {
        match self {
            FaultControl::Local(server) => server.addrs().into_keys().collect(),
            FaultControl::Remote(_, names) => names.to_vec(),
        }
    }

    /// The sequence number the dependency's next call will get.
    pub async fn next_seq(&self, dependency: &str) -> Result<u64, FaultControlError> {
        Ok(match self {
            FaultControl::Local(server) => server.stats(dependency)?.next_seq,
            FaultControl::Remote(remote, _) => remote.next_seq(dependency).await?,
        })
    }

    /// The records of the calls in flight at the dependency now (a pool's
    /// open connections to a TCP proxy, say), oldest first.
    pub async fn open_calls(&self, dependency: &str) -> Result<Vec<CallRecord>, FaultControlError> {
        let records = match self {
            FaultControl::Local(server) => server.journal_since(dependency, 0, usize::MAX)?,
            FaultControl::Remote(remote, _) => remote.journal_since(dependency, 0).await?,
        };
        Ok(records
            .into_iter()
            .filter(|r| r.departure_ns.is_none())
            .collect())
    }

    /// Calls in flight at the dependency now.
    pub async fn in_flight(&self, dependency: &str) -> Result<u64, FaultControlError> {
        Ok(match self {
            FaultControl::Local(server) => server.in_flight(dependency)?,
            FaultControl::Remote(remote, _) => remote.in_flight(dependency).await?,
        })
    }

    /// Renews the lease of a dependency's faults for `lease` from now.
    pub async fn renew_lease(
        &self,
        dependency: &str,
        lease: Duration,
    ) -> Result<(), FaultControlError> {
        match self {
            FaultControl::Local(server) => server.renew_lease(dependency, lease)?,
            FaultControl::Remote(remote, _) => remote.renew_lease(dependency, lease).await?,
        }
        Ok(())
    }

    /// Opens a window named `name` in every journal and, at each dependency
    /// named in `faults`, puts those faults in force (leased for `lease`) as
    /// its window opens. Returns each dependency's window index.
    pub async fn switch(
        &self,
        name: &str,
        faults: BTreeMap<String, Vec<Fault>>,
        lease: Duration,
    ) -> Result<BTreeMap<String, u32>, FaultControlError> {
        Ok(match self {
            FaultControl::Local(server) => server.switch(name, faults, Some(lease))?.windows,
            FaultControl::Remote(remote, _) => remote.switch(name, &faults, lease).await?,
        })
    }

    /// Makes the dependency's journal keep every record for this run: on a
    /// server in this process its tape is started (no record is dropped
    /// whatever the call rate); a remote server's ring is read as often as
    /// the run can, and what it dropped is counted.
    pub async fn keep_records(&self, dependency: &str) -> Result<(), FaultControlError> {
        if let FaultControl::Local(server) = self {
            server.start_tape(dependency)?;
        }
        Ok(())
    }

    /// Records not read yet: on a server in this process, the calls still in
    /// flight from `since` on, then those its tape took since the last call
    /// (a later record of the same call supersedes an earlier one); on a
    /// remote server, every record from `since` on.
    pub async fn new_records(
        &self,
        dependency: &str,
        since: u64,
    ) -> Result<Vec<CallRecord>, FaultControlError> {
        Ok(match self {
            FaultControl::Local(server) => {
                // In flight first, then the tape: a call that ends between the
                // two reads is on the tape, whose record comes later and wins.
                let mut records: Vec<CallRecord> = server
                    .journal_since(dependency, since, usize::MAX)?
                    .into_iter()
                    .filter(|r| r.departure_ns.is_none())
                    .collect();
                records.extend(server.take_tape(dependency)?);
                records
            }
            FaultControl::Remote(remote, _) => remote.journal_since(dependency, since).await?,
        })
    }

    /// A dependency's exact counters, overall and per window.
    pub async fn stats(&self, dependency: &str) -> Result<JournalStats, FaultControlError> {
        Ok(match self {
            FaultControl::Local(server) => server.stats(dependency)?,
            FaultControl::Remote(remote, _) => remote.stats(dependency).await?,
        })
    }

    /// Clears a dependency's faults.
    pub async fn clear_faults(&self, dependency: &str) -> Result<(), FaultControlError> {
        match self {
            FaultControl::Local(server) => server.clear_faults(dependency)?,
            FaultControl::Remote(remote, _) => remote.clear_faults(dependency).await?,
        }
        Ok(())
    }

    /// The alerts an alert sink received.
    pub async fn alerts(&self, dependency: &str) -> Result<Vec<AlertRecord>, FaultControlError> {
        Ok(match self {
            FaultControl::Local(server) => server.alerts(dependency)?,
            FaultControl::Remote(remote, _) => remote.alerts(dependency).await?,
        })
    }
}
