//! A stub dependency: its spec, and its live state (response, faults, journal)
//! under one lock, so that every call's decision and record are made in
//! arrival order.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

mod arrival;
mod spec;

pub(crate) use arrival::{Arrival, Link};
#[cfg(feature = "control")]
pub(crate) use spec::check_tcp_upstream;
pub use spec::DependencySpec;

use crate::alerts::{AlertLog, AlertRecord};
use crate::fault::{CallKeys, Decision, Ending, Fault, FaultSet, HangEnd, HangFault, RequestView};
use crate::journal::{CallInfo, CallOutcome, Journal, Ticket};
use crate::response::ResponseTemplate;
use crate::{Clock, ControlError, Distribution, StubResponse};

/// A running dependency's shared state.
#[derive(Debug)]
pub(crate) struct Dependency {
    pub(crate) name: String,
    seed: u64,
    pub(crate) clock: Clock,
    /// Whether request bodies are read as Alertmanager webhooks.
    pub(crate) alert_sink: bool,
    /// Delays are timed on tokio's clock (so a paused clock skips them)
    /// rather than by the precise timer thread, which keeps real time.
    pub(crate) virtual_time: bool,
    /// Where a proxy dependency forwards its calls; `None` for a stub.
    pub(crate) forwarder: Option<crate::proxy::Forwarder>,
    /// The proxy as configured, for the view.
    pub(crate) proxy: Option<crate::HttpProxy>,
    /// A TCP proxy's upstream, `host:port` (changed by a Toxiproxy client's
    /// update; new connections go to the new one).
    pub(crate) tcp: Option<std::sync::RwLock<String>>,
    /// False while the dependency is disabled (Toxiproxy's `enabled:
    /// false`): its listener is closed and its connections were closed.
    enabled: std::sync::atomic::AtomicBool,
    /// The request headers each record keeps.
    pub(crate) keep_headers: Vec<String>,
    /// Connections reset at accept because the server's cap was reached.
    connections_refused: std::sync::atomic::AtomicU64,
    alerts: Mutex<AlertLog>,
    state: Mutex<State>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) response: StubResponse,
    stub: Stub,
    pub(crate) faults: FaultSet,
    /// Faults by arrival: the k-th call gets `schedule[k]` (an empty list:
    /// no fault) instead of the standing faults, which apply once it runs out.
    schedule: Vec<Vec<Fault>>,
    pub(crate) journal: Journal,
}

/// The stub's response, ready to send.
#[derive(Debug)]
pub(crate) struct Stub {
    pub(crate) response: ResponseTemplate,
    latency: Option<Distribution>,
}

impl Dependency {
    /// The seed every random decision of this dependency starts from.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Counts a connection reset at accept (the server's connection cap).
    pub(crate) fn refuse_connection(&self) {
        self.connections_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Connections reset at accept so far.
    pub(crate) fn connections_refused(&self) -> u64 {
        self.connections_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A dependency from a validated spec.
    pub(crate) fn new(
        spec: &DependencySpec,
        server_seed: u64,
        clock: Clock,
        journal_capacity: usize,
    ) -> Result<Self, ControlError> {
        spec.validate()?;
        let mut faults = FaultSet::default();
        faults.replace(spec.faults.clone(), None, Instant::now());
        Ok(Dependency {
            name: spec.name.clone(),
            seed: server_seed ^ fnv1a(spec.name.as_bytes()),
            clock,
            alert_sink: spec.alert_sink,
            virtual_time: false,
            forwarder: spec
                .proxy
                .as_ref()
                .map(crate::proxy::Forwarder::new)
                .transpose()
                .map_err(|e| ControlError::invalid("proxy", e))?,
            proxy: spec.proxy.clone(),
            tcp: spec.tcp.clone().map(std::sync::RwLock::new),
            enabled: std::sync::atomic::AtomicBool::new(true),
            keep_headers: spec.keep_headers.clone(),
            connections_refused: std::sync::atomic::AtomicU64::new(0),
            alerts: Mutex::new(AlertLog::default()),
            state: Mutex::new(State {
                stub: stub(&spec.response)?,
                response: spec.response.clone(),
                faults,
                schedule: Vec::new(),
                journal: {
                    let mut journal = Journal::new(journal_capacity);
                    journal.keep_headers(
                        spec.keep_headers
                            .iter()
                            .filter_map(|h| http::HeaderName::try_from(h.as_str()).ok())
                            .collect(),
                    );
                    journal
                },
            }),
        })
    }

    /// Times delays on tokio's clock: for in-process dependencies, whose
    /// callers may run on a paused clock.
    pub(crate) fn on_virtual_time(mut self) -> Self {
        self.virtual_time = true;
        self
    }

    /// Gives the k-th arriving call the faults `schedule[k]`, checked first.
    pub(crate) fn set_schedule(&self, schedule: Vec<Vec<Fault>>) -> Result<(), ControlError> {
        for (k, faults) in schedule.iter().enumerate() {
            for (i, fault) in faults.iter().enumerate() {
                fault
                    .validate()
                    .map_err(|e| ControlError::invalid(format!("schedule[{k}][{i}]"), e))?;
            }
        }
        self.state().schedule = schedule;
        Ok(())
    }

    /// The state, even if a panic elsewhere poisoned the lock (its data stays consistent:
    /// every update under it is a handful of plain assignments).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the alerts of a webhook body (an alert sink's).
    pub(crate) fn record_alerts(&self, body: &[u8]) {
        let alerts = crate::alerts::parse(body, self.clock.now_ns());
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(alerts);
    }

    /// The alerts kept, oldest first.
    pub(crate) fn alerts(&self) -> Vec<AlertRecord> {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner()).all()
    }

    /// Forgets the alerts kept.
    pub(crate) fn clear_alerts(&self) {
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Replaces the stub's response.
    pub(crate) fn set_response(&self, response: StubResponse) -> Result<(), ControlError> {
        let stub = stub(&response)?;
        let mut state = self.state();
        state.stub = stub;
        state.response = response;
        Ok(())
    }

    /// Journals a call's arrival and decides what happens to it. Every draw
    /// comes from a generator seeded by the server seed, the dependency name
    /// and the call's sequence number: the same seed and arrival order give
    /// the same decisions, whatever the timing.
    pub(crate) fn arrive(link: &Arc<Link>, request: &RequestView<'_>) -> Arrival {
        let this = &link.dependency;
        let info = CallInfo::from_parts(request.method, request.path, request.headers);
        let now = Instant::now();
        let mut state = this.state();
        let seq = state.journal.next_seq();
        let mut rng = CallRng::new(this.seed, seq);
        let in_flight_before = state.journal.in_flight();
        let keys = CallKeys {
            request: info.correlation_id,
            idempotency_key: info.idempotency_key,
            seed: this.seed,
        };
        let Decision {
            mut delay,
            terminal,
            slow_body,
            applied,
        } = match usize::try_from(seq)
            .ok()
            .and_then(|k| state.schedule.get(k))
        {
            // A scheduled call's faults apply to it alone: a set of its own,
            // decided exactly as the standing set would decide it.
            Some(scheduled) => {
                let mut own = FaultSet::default();
                own.replace(scheduled.clone(), None, now);
                own.decide(request, &keys, in_flight_before, &mut rng, now)
            }
            None => state
                .faults
                .decide(request, &keys, in_flight_before, &mut rng, now),
        };
        if let Some(latency) = &state.stub.latency {
            let normal = latency.sample(&mut rng);
            if terminal.is_none() {
                delay += normal;
            }
        }
        let response = match &terminal {
            None
            | Some(Ending::Hang(HangFault {
                after: Some(_),
                then: HangEnd::Respond,
            })) => Some(state.stub.response.clone()),
            Some(_) => None,
        };
        let ticket = state.journal.arrive(&info, applied, this.clock.ns_at(now));
        drop(state);
        link.activity.arrived(this.clock.ns_at(now));
        Arrival {
            guard: CallGuard {
                link: Arc::clone(link),
                ticket,
                outcome: CallOutcome::ClientGone,
                status: None,
                upstream_ns: None,
            },
            delay,
            terminal,
            slow_body,
            response,
            forward: this.forwarder.is_some(),
        }
    }

    fn depart(
        &self,
        ticket: Ticket,
        outcome: CallOutcome,
        status: Option<u16>,
        upstream_ns: Option<u64>,
    ) {
        let now_ns = self.clock.now_ns();
        // A call cut off because its dependency was disabled did not lose
        // its client: the server closed it.
        let outcome = if outcome == CallOutcome::ClientGone && !self.is_enabled() {
            CallOutcome::Closed
        } else {
            outcome
        };
        self.state()
            .journal
            .depart_forwarded(ticket, outcome, status, upstream_ns, now_ns);
    }

    /// A TCP proxy's upstream now (`host:port`).
    pub(crate) fn tcp_upstream(&self) -> Option<String> {
        self.tcp
            .as_ref()
            .map(|t| t.read().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// Points a TCP proxy's new connections at `upstream`.
    #[cfg(feature = "control")]
    pub(crate) fn set_tcp_upstream(&self, upstream: String) {
        if let Some(tcp) = &self.tcp {
            *tcp.write().unwrap_or_else(PoisonError::into_inner) = upstream;
        }
    }

    /// Whether the dependency is enabled (see [`Dependency::set_enabled`]).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks the dependency enabled or not; the registry opens or closes
    /// its listener and connections.
    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.enabled
            .store(enabled, std::sync::atomic::Ordering::Release);
    }
}

fn stub(response: &StubResponse) -> Result<Stub, ControlError> {
    response
        .validate()
        .map_err(|e| ControlError::invalid("response", e))?;
    Ok(Stub {
        response: response
            .template()
            .map_err(|e| ControlError::invalid("response", e))?,
        latency: response.latency,
    })
}

/// A call's own generator: ChaCha8 seeded by the dependency's seed, on the
/// stream numbered by the call's sequence number. Seeded on first use, so a
/// call that draws nothing costs nothing.
struct CallRng {
    seed: u64,
    stream: u64,
    rng: Option<ChaCha8Rng>,
}

impl CallRng {
    fn new(seed: u64, stream: u64) -> Self {
        CallRng {
            seed,
            stream,
            rng: None,
        }
    }

    fn get(&mut self) -> &mut ChaCha8Rng {
        let (seed, stream) = (self.seed, self.stream);
        self.rng.get_or_insert_with(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            rng
        })
    }
}

impl RngCore for CallRng {
    fn next_u32(&mut self) -> u32 {
        self.get().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.get().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.get().fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.get().try_fill_bytes(dest)
    }
}

/// FNV-1a: a stable hash (unlike std's, which is randomly keyed) to give each
/// dependency its own stream of decisions from the one server seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Journals a call's departure when dropped: with the outcome it was told
/// ([`CallGuard::finish`]), or, if the call was abandoned, the one it expected.
pub(crate) struct CallGuard {
    link: Arc<Link>,
    ticket: Ticket,
    outcome: CallOutcome,
    status: Option<u16>,
    upstream_ns: Option<u64>,
}

impl CallGuard {
    /// A proxy forwarded the call, and its upstream took this long to answer.
    pub(crate) fn set_upstream(&mut self, upstream: Duration) {
        self.upstream_ns = Some(u64::try_from(upstream.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The outcome to journal if the call is dropped from here on.
    pub(crate) fn expect(&mut self, outcome: CallOutcome) {
        self.outcome = outcome;
    }

    /// The status of the response head that went out.
    pub(crate) fn set_status(&mut self, status: u16) {
        self.status = Some(status);
    }

    /// Journals the departure now.
    pub(crate) fn finish(mut self, outcome: CallOutcome) {
        self.outcome = outcome;
        // Drop journals it.
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let dependency = &self.link.dependency;
        dependency.depart(self.ticket, self.outcome, self.status, self.upstream_ns);
        self.link.activity.departed(dependency.clock.now_ns());
    }
}
