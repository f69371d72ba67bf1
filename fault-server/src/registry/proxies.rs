//! What a Toxiproxy client does to a proxy beyond our own routes: turn it
//! off and on, move its listener, point it at another upstream, and keep
//! its faults by name (toxics).

#[cfg(feature = "control")]
use std::net::SocketAddr;

use tokio::time::Instant;

use super::{view, DependencyView, Registry};
#[cfg(feature = "control")]
use crate::fault::ActiveFault;
use crate::ControlError;
#[cfg(feature = "control")]
use crate::Fault;

impl Registry {
    /// Enables or disables a dependency. Disabled, its listener is closed
    /// (new connections are refused by the kernel) and its connections are
    /// closed, each journaled `closed`; enabled again, it listens on the same
    /// address. Faults and journal are kept.
    pub(crate) fn set_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<DependencyView, ControlError> {
        let mut dependencies = self.write();
        let running = dependencies
            .get_mut(name)
            .ok_or_else(|| ControlError::UnknownDependency(name.to_owned()))?;
        if running.dependency.is_enabled() != enabled {
            if enabled {
                let (addr, serving) =
                    self.serve(&running.dependency, running.addr, &running.removed)?;
                running.addr = addr;
                running.serving = serving;
                running.dependency.set_enabled(true);
            } else {
                running.dependency.set_enabled(false);
                self.closed(&running.serving);
            }
        }
        Ok(view(running))
    }

    /// Moves a dependency's listener to `listen` (its connections are
    /// closed, as Toxiproxy does); a disabled one only remembers it. The
    /// old address is given up only once the new one is bound.
    #[cfg(feature = "control")]
    pub(crate) fn relisten(
        &self,
        name: &str,
        listen: SocketAddr,
    ) -> Result<DependencyView, ControlError> {
        let mut dependencies = self.write();
        let running = dependencies
            .get_mut(name)
            .ok_or_else(|| ControlError::UnknownDependency(name.to_owned()))?;
        if running.dependency.is_enabled() {
            let (addr, serving) = self.serve(&running.dependency, listen, &running.removed)?;
            self.closed(&running.serving);
            running.serving = serving;
            running.addr = addr;
        } else {
            // Not listening: the address is only remembered, once it is
            // known to be free now (else enabling would fail later).
            let probe = crate::dataplane::bind(listen).map_err(|source| ControlError::Bind {
                addr: listen,
                source,
            })?;
            drop(probe);
            running.addr = listen;
        }
        Ok(view(running))
    }

    /// Points a TCP proxy's new connections at `upstream` (`host:port`).
    #[cfg(feature = "control")]
    pub(crate) fn set_upstream(
        &self,
        name: &str,
        upstream: &str,
    ) -> Result<DependencyView, ControlError> {
        let running = self.running(name)?;
        if running.dependency.tcp.is_none() {
            return Err(ControlError::invalid(
                "upstream",
                format!("`{name}` is not a TCP proxy; delete it and create it again to forward elsewhere"),
            ));
        }
        crate::dependency::check_tcp_upstream(upstream)
            .map_err(|e| ControlError::invalid("upstream", e))?;
        running.dependency.set_tcp_upstream(upstream.to_owned());
        Ok(view(&running))
    }

    /// The fault named `fault` at dependency `name`.
    #[cfg(feature = "control")]
    pub(crate) fn fault_named(&self, name: &str, fault: &str) -> Result<ActiveFault, ControlError> {
        self.running(name)?
            .dependency
            .state()
            .faults
            .named(fault, Instant::now())
            .ok_or_else(|| unknown_fault(name, fault))
    }

    /// Adds a named fault after those in force; refused when one has its name.
    #[cfg(feature = "control")]
    pub(crate) fn add_named_fault(
        &self,
        name: &str,
        fault: Fault,
    ) -> Result<ActiveFault, ControlError> {
        let running = self.running(name)?;
        super::validate_faults(std::slice::from_ref(&fault), &running.dependency)?;
        let fault_name = fault
            .name
            .clone()
            .ok_or_else(|| ControlError::invalid("name", "a named fault needs a name"))?;
        let now = Instant::now();
        let mut state = running.dependency.state();
        if state.faults.named(&fault_name, now).is_some() {
            return Err(ControlError::DuplicateFault {
                dependency: name.to_owned(),
                name: fault_name,
            });
        }
        state.faults.push(fault, None, now);
        state
            .faults
            .named(&fault_name, now)
            .ok_or_else(|| unknown_fault(name, &fault_name))
    }

    /// Replaces the fault labelled `fault` (keeping its place) with `with`,
    /// which is named `fault` from then on (an unnamed fault keeps its
    /// label as its name, so a client finds it where it was).
    #[cfg(feature = "control")]
    pub(crate) fn update_fault(
        &self,
        name: &str,
        fault: &str,
        mut with: Fault,
    ) -> Result<ActiveFault, ControlError> {
        let running = self.running(name)?;
        with.name = Some(fault.to_owned());
        with.validate()
            .and_then(|()| with.check_for(running.dependency.tcp.is_some()))
            .map_err(|e| ControlError::invalid("fault", e))?;
        let now = Instant::now();
        let mut state = running.dependency.state();
        if !state.faults.update_named(fault, with, now) {
            return Err(unknown_fault(name, fault));
        }
        state
            .faults
            .named(fault, now)
            .ok_or_else(|| unknown_fault(name, fault))
    }

    /// Removes the fault named `fault`.
    pub(crate) fn remove_fault(&self, name: &str, fault: &str) -> Result<(), ControlError> {
        let removed = self
            .running(name)?
            .dependency
            .state()
            .faults
            .remove_named(fault, Instant::now());
        if removed {
            Ok(())
        } else {
            Err(unknown_fault(name, fault))
        }
    }
}

fn unknown_fault(dependency: &str, name: &str) -> ControlError {
    ControlError::UnknownFault {
        dependency: dependency.to_owned(),
        name: name.to_owned(),
    }
}
