//! Leases: every fault a run puts in force lapses unless the run renews it,
//! so a run that dies, even by SIGKILL, leaves nothing injected for long.

use std::time::Duration;

use super::fault_control::{FaultControl, FaultControlError};

/// Every fault the run injects is leased for this long and the lease renewed
/// every 500 ms (`RENEW_EVERY`) while the run lives: a harness that dies, even by
/// SIGKILL, leaves nothing injected for longer than this.
pub const LEASE: Duration = Duration::from_secs(2);
/// How often leases are renewed.
pub const RENEW_EVERY: Duration = Duration::from_millis(500);
/// Renews every dependency's lease until it fails (never, normally: the
/// timeline stops it when the phases are over).
pub(super) async fn renew(
    server: FaultControl<'_>,
    dependencies: &[String],
) -> Result<(), FaultControlError> {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for dependency in dependencies {
            server.renew_lease(dependency, LEASE).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use fault_server::{DependencySpec, FaultServer};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn renewal_keeps_leased_faults_in_force_and_they_lapse_once_it_stops() {
        // On the test's paused runtime, whose clock the leases then read.
        let server = FaultServer::builder()
            .on_current_runtime()
            .dependency(DependencySpec::stub("dep"))
            .start()
            .unwrap();
        let reset = fault_server::Fault::reset().into();
        server.set_faults("dep", vec![reset], Some(LEASE)).unwrap();
        let dependencies = ["dep".to_owned()];
        let renewing = renew(FaultControl::Local(&server), &dependencies);
        tokio::select! {
            result = renewing => panic!("renewal stopped: {result:?}"),
            () = tokio::time::sleep(LEASE * 3) => {}
        }
        assert_eq!(
            server.dependency("dep").unwrap().faults.len(),
            1,
            "renewed through three leases"
        );
        // The renewal is over (a run that died): within one lease, nothing is left.
        tokio::time::sleep(LEASE).await;
        assert!(server.dependency("dep").unwrap().faults.is_empty());
    }
}
