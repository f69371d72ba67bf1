//! A suite resolved into the [`Plan`] of its run: pure, it starts nothing
//! and sends nothing.

use std::time::Duration;

use super::Suite;
use crate::load::{Arrival, Pacing};
use crate::run::plan::{CommandTarget, Limits, LoadPlan, PhasePlan, Plan, RequestPlan, TargetPlan};
use crate::run::{RunError, RunErrorKind, TargetOverride, DEFAULT_MAX_REQUESTS};
use crate::suite::LoadSpec;

/// Where a started target (a command, the demo) listens: loopback, on a
/// port known once it runs. The plan checks its loads' URLs against it.
const STARTED: &str = "http://127.0.0.1:1";

impl Suite {
    /// Resolves the suite, with the command line's `target` over its own,
    /// into the [`Plan`] its run follows: a target as an enum, a load per
    /// `[[load]]` entry lasting the whole run, the phases with each
    /// dependency's standing faults before their own, the dependencies
    /// keeping the headers the properties' selections read, and the limits.
    ///
    /// # Errors
    ///
    /// No target at all, a target beyond loopback the suite does not allow
    /// (`allow_hosts`), an endpoint whose path does not make a URL.
    ///
    /// ```
    /// use faultline_harness::run::{plan::TargetPlan, TargetOverride};
    ///
    /// let suite = faultline_harness::suite::Suite::load("../suites/examples/payments-bulkhead.toml".as_ref()).unwrap();
    /// let plan = suite.plan(TargetOverride::Url("http://127.0.0.1:8080/")).unwrap();
    /// assert_eq!(plan.target, TargetPlan::Url("http://127.0.0.1:8080".into()));
    /// assert_eq!(plan.phases.len(), suite.phases.len());
    /// assert!(suite.plan(TargetOverride::Url("http://shop.example.com")).is_err());
    /// ```
    pub fn plan(&self, target: TargetOverride<'_>) -> Result<Plan, RunError> {
        let name = || self.name.clone();
        let target = match target {
            TargetOverride::Url(url) => TargetPlan::Url(url.trim_end_matches('/').to_owned()),
            TargetOverride::Demo(profile) => TargetPlan::Demo(profile),
            TargetOverride::None => self
                .own_target()
                .ok_or_else(|| RunError::new(name(), RunErrorKind::NoTarget))?,
        };
        let base = match &target {
            TargetPlan::Url(url) => {
                check_host(url, &self.allow_hosts)
                    .map_err(|host| RunError::new(name(), RunErrorKind::HostNotAllowed { host }))?;
                url.as_str()
            }
            TargetPlan::Command(_) | TargetPlan::Demo(_) => STARTED,
        };
        let run_for: Duration = self.phases.iter().map(|p| p.duration).sum();
        let mut loads = Vec::with_capacity(self.load.len());
        for spec in &self.load {
            let arrival = match (spec.rate, spec.clients) {
                (Some(rate), _) => match spec.ramp_to {
                    Some(to) => Arrival::Ramp { from: rate, to },
                    None => Arrival::Open { rate },
                },
                (None, Some(clients)) => Arrival::Closed { clients },
                // Checked when the suite was read.
                (None, None) => Arrival::Closed { clients: 1 },
            };
            let load = LoadPlan {
                endpoint: spec.endpoint.clone(),
                requests: requests(spec),
                arrival,
                timeout: spec.timeout,
                duration: run_for,
                pacing: Pacing {
                    during: spec
                        .phases
                        .as_ref()
                        .map_or_else(Vec::new, |named| stretches(&self.phases, named)),
                    requests: spec.requests,
                    pause: spec.pause.unwrap_or_default(),
                },
            };
            if let Err(url) = load.at(base) {
                return Err(RunError::new(
                    name(),
                    RunErrorKind::BadUrl {
                        endpoint: spec.endpoint.clone(),
                        url,
                    },
                ));
            }
            loads.push(load);
        }
        let grace = self
            .load
            .iter()
            .map(|l| l.timeout)
            .max()
            .unwrap_or_default()
            + Duration::from_secs(5);
        Ok(Plan {
            suite: name(),
            target,
            fault_server: self.fault_server.clone(),
            dependencies: self.dependencies_keeping_headers(),
            loads,
            phases: self.phases_with_standing_faults(),
            limits: Limits {
                abort_when: self.abort_when.clone(),
                max_requests: Some(self.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS)),
                grace,
            },
            expect: self.expect.clone(),
        })
    }

    /// The suite's own `[target]`, if it names one.
    fn own_target(&self) -> Option<TargetPlan> {
        let target = &self.target;
        if let Some(profile) = target.demo {
            return Some(TargetPlan::Demo(profile));
        }
        if let Some(command) = &target.command {
            return Some(TargetPlan::Command(CommandTarget {
                command: command.clone(),
                env: target.env.clone(),
                ready: target.ready.clone(),
                ready_timeout: target.ready_timeout,
            }));
        }
        let url = target.base_url.as_deref()?;
        Some(TargetPlan::Url(url.trim_end_matches('/').to_owned()))
    }

    /// The phases, each dependency's own `faults` standing in every phase before the phase's.
    fn phases_with_standing_faults(&self) -> Vec<PhasePlan> {
        self.phases
            .iter()
            .map(|phase| {
                let mut phase = phase.clone();
                for dependency in self.dependencies.iter().filter(|d| !d.faults.is_empty()) {
                    let own = phase.faults.remove(&dependency.name).unwrap_or_default();
                    let standing = dependency.faults.iter().cloned().chain(own);
                    phase
                        .faults
                        .insert(dependency.name.clone(), standing.collect());
                }
                phase
            })
            .collect()
    }

    /// The dependencies, each also keeping the headers the properties'
    /// selections read (a header a record did not keep reads as absent).
    fn dependencies_keeping_headers(&self) -> Vec<fault_server::DependencySpec> {
        let mut specs = self.dependencies.clone();
        for property in &self.expect {
            let Some(dependency) = property.reads().dependency() else {
                continue;
            };
            let Some(spec) = specs.iter_mut().find(|s| s.name == dependency) else {
                continue;
            };
            for header in property.scope().select.header_names() {
                if !spec.keep_headers.contains(&header) {
                    spec.keep_headers.push(header);
                }
            }
        }
        specs
    }
}

/// Load goes to loopback (127.0.0.0/8, ::1, localhost) and to the hosts a
/// suite allows by name, nowhere else: the host refused, if it is refused.
fn check_host(base: &str, allowed: &[String]) -> Result<(), String> {
    let host = base
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(|h| h.trim_matches(['[', ']']).to_owned()))
        .unwrap_or_else(|| base.to_owned());
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if loopback || allowed.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        Ok(())
    } else {
        Err(host)
    }
}

/// What a load sends: its one request, or its variants, the load's headers
/// under each variant's own and its body where a variant has none.
fn requests(spec: &LoadSpec) -> Vec<RequestPlan> {
    let method = |m: &str| http::Method::from_bytes(m.as_bytes()).unwrap_or_default();
    let headers = |own: &std::collections::BTreeMap<String, String>| {
        let mut all = spec.headers.clone();
        all.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        all.into_iter().collect()
    };
    if spec.variants.is_empty() {
        return vec![RequestPlan {
            weight: 1,
            method: method(&spec.method),
            path: spec.path.clone().unwrap_or_default(),
            headers: headers(&Default::default()),
            body: spec.body.clone(),
        }];
    }
    spec.variants
        .iter()
        .map(|v| RequestPlan {
            weight: v.weight,
            method: method(&v.method),
            path: v.path.clone(),
            headers: headers(&v.headers),
            body: v.body.clone().or_else(|| spec.body.clone()),
        })
        .collect()
}

/// The stretches of the run, as offsets from its start, that the phases
/// `named` take up, in order (adjacent ones joined).
fn stretches(phases: &[PhasePlan], named: &[String]) -> Vec<(Duration, Duration)> {
    let mut at = Duration::ZERO;
    let mut stretches: Vec<(Duration, Duration)> = Vec::new();
    for phase in phases {
        let end = at + phase.duration;
        if named.contains(&phase.name) {
            match stretches.last_mut() {
                Some((_, to)) if *to == at => *to = end,
                _ => stretches.push((at, end)),
            }
        }
        at = end;
    }
    stretches
}

#[cfg(test)]
mod tests {
    use super::check_host;

    #[test]
    fn load_goes_to_loopback_or_to_hosts_the_suite_allows() {
        for local in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:80",
            "http://localhost:1",
            "http://[::ffff:127.0.0.1]:8080",
        ] {
            assert_eq!(check_host(local, &[]), Ok(()), "{local}");
        }
        assert_eq!(
            check_host("http://shop.example.com:8080", &[]),
            Err("shop.example.com".to_owned())
        );
        assert_eq!(
            check_host("http://10.0.0.1", &[]),
            Err("10.0.0.1".to_owned())
        );
        let allowed = ["SHOP.example.com".to_owned()];
        assert_eq!(check_host("http://shop.example.com:8080", &allowed), Ok(()));
    }
}
