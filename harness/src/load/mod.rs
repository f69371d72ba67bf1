//! The load driver: requests at the system under test, open loop (on a
//! schedule, whether or not earlier requests returned) or closed loop (N
//! clients, each sending when its last answer came).
//!
//! Every request carries a fresh W3C `traceparent` and an
//! `x-faultline-request` header with the same id, so the calls a target makes
//! on its behalf can be found in the fault server's journal. Latency counts
//! from the intended send time: a stalled target cannot hide behind
//! coordinated omission. Schedule lag and sends dropped for want of capacity
//! are counted, never silent.

mod driver;
mod recorder;
mod request;

use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Method, Uri};

pub use driver::{drive, drive_from, DriveOptions, LoadReport};
pub use recorder::{LiveCounts, PhaseStarts, DEFAULT_RECORD_CAPACITY};

/// One endpoint of the system under test.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its name in the suite and the reports.
    pub name: String,
    /// Request method.
    pub method: Method,
    /// Absolute URL.
    pub url: Uri,
    /// Extra headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// What each request carries of its own: header values and a body in
    /// which [`REQUEST_ID`] is the request's correlation id. Set here, they
    /// take the place of `headers` of the same name and of `body`.
    pub per_request: PerRequest,
    /// How long a request may take before it counts as a timeout.
    pub timeout: Duration,
}

/// In a [`PerRequest`] header value or body, replaced in each request by its
/// own correlation id (32 hex digits): an idempotency key or an order id no
/// other request carries, which the journal ties back to the request.
pub const REQUEST_ID: &str = "{request_id}";

/// Headers and a body made afresh for each request, [`REQUEST_ID`] in them
/// replaced by its correlation id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerRequest {
    /// Headers, each value a template.
    pub headers: Vec<(HeaderName, String)>,
    /// The body, a template.
    pub body: Option<String>,
}

impl PerRequest {
    /// Whether there is nothing to make per request.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.body.is_none()
    }
}

impl Endpoint {
    /// A GET of `url` with a 10 s timeout.
    pub fn get(name: impl Into<String>, url: Uri) -> Self {
        Endpoint {
            name: name.into(),
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            per_request: PerRequest::default(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How requests arrive at an endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// `rate` requests per second on a fixed schedule.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// An open loop whose rate moves linearly from `from` to `to` requests
    /// per second over the load's duration.
    Ramp {
        /// Requests per second at the start.
        from: f64,
        /// Requests per second at the end.
        to: f64,
    },
    /// `clients` concurrent clients, each sending again as soon as it has its answer.
    Closed {
        /// Concurrent clients.
        clients: usize,
    },
}

/// Load at one endpoint for a while.
#[derive(Debug, Clone)]
pub struct Load {
    /// Where to send.
    pub endpoint: Endpoint,
    /// How requests arrive.
    pub arrival: Arrival,
    /// For how long.
    pub duration: Duration,
    /// When within that it sends, how much at most, and a closed loop's pause.
    pub pacing: Pacing,
    /// Several requests taken in turn by weight instead of `endpoint`'s
    /// one (k6's scenarios, vegeta's targets): none by default.
    pub variants: Variants,
}

impl Load {
    /// The request its `k`-th send makes: `endpoint`, or its variant in turn.
    pub fn request(&self, k: u64) -> &Endpoint {
        self.variants.get(k).unwrap_or(&self.endpoint)
    }
}

/// The longest turn [`Variants`] keeps (the sum of its weights).
pub const MAX_TURN: u64 = 10_000;

/// Requests a load takes in turn, each as often as its weight says, in a
/// fixed interleaved order (nginx's smooth weighted round-robin: weights 3
/// and 1 go a, a, b, a, and again), so any stretch of sends holds the
/// weights' shares, with no randomness in the mix. All carry the load's
/// name and timeout.
#[derive(Debug, Clone, Default)]
pub struct Variants {
    endpoints: Vec<Endpoint>,
    order: Vec<usize>,
}

impl Variants {
    /// `endpoints`, each with its weight (weights of 0 never sent). The
    /// turn repeats every sum of the weights, which [`MAX_TURN`] bounds:
    /// larger weights are scaled down to it first (each kept at 1 at least).
    pub fn weighted(endpoints: Vec<(u32, Endpoint)>) -> Self {
        let sum: u64 = endpoints.iter().map(|(w, _)| u64::from(*w)).sum();
        let endpoints: Vec<(u32, Endpoint)> = if sum > MAX_TURN {
            endpoints
                .into_iter()
                .map(|(w, e)| {
                    let scaled = u64::from(w) * MAX_TURN / sum;
                    (
                        u32::try_from(scaled)
                            .unwrap_or(u32::MAX)
                            .max(u32::from(w > 0)),
                        e,
                    )
                })
                .collect()
        } else {
            endpoints
        };
        let total: i64 = endpoints.iter().map(|(w, _)| i64::from(*w)).sum();
        let mut current = vec![0i64; endpoints.len()];
        let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, (w, _)) in current.iter_mut().zip(&endpoints) {
                *c += i64::from(*w);
            }
            let Some(best) =
                (0..endpoints.len()).max_by_key(|i| (current[*i], std::cmp::Reverse(*i)))
            else {
                break;
            };
            current[best] -= total;
            order.push(best);
        }
        Variants {
            endpoints: endpoints.into_iter().map(|(_, e)| e).collect(),
            order,
        }
    }

    /// The `k`-th request in turn; `None` when there are no variants.
    pub fn get(&self, k: u64) -> Option<&Endpoint> {
        let len = u64::try_from(self.order.len()).ok().filter(|l| *l > 0)?;
        let at = usize::try_from(k % len).ok()?;
        self.endpoints.get(*self.order.get(at)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_go_in_turn_by_weight_interleaved() {
        let at =
            |path: &str| Endpoint::get(path, format!("http://127.0.0.1:1{path}").parse().unwrap());
        let variants = Variants::weighted(vec![(3, at("/cart")), (1, at("/checkout"))]);
        let paths: Vec<&str> = (0..8)
            .map(|k| variants.get(k).unwrap().url.path())
            .collect();
        assert_eq!(
            paths,
            [
                "/cart",
                "/cart",
                "/checkout",
                "/cart",
                "/cart",
                "/cart",
                "/checkout",
                "/cart"
            ]
        );
        assert!(Variants::default().get(0).is_none());
    }
}

/// A load's pacing beyond its arrival: only during some stretches of the
/// drive, at most so many requests, and a think time between a closed-loop
/// client's requests (k6's `sleep`). The default sends throughout, without
/// a cap or a pause.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pacing {
    /// The stretches it sends in, as offsets from the drive's start (`from`
    /// included, `to` excluded), in order; throughout when empty.
    pub during: Vec<(Duration, Duration)>,
    /// Requests it sends at most.
    pub requests: Option<u64>,
    /// How long a closed-loop client waits after each answer before it
    /// sends again.
    pub pause: Duration,
}

impl Pacing {
    /// Whether it sends at `offset` from the start; if not, the offset of
    /// the next stretch it sends in (`None`: no stretch is left).
    pub fn at(&self, offset: Duration) -> Result<(), Option<Duration>> {
        if self.during.is_empty() {
            return Ok(());
        }
        if self
            .during
            .iter()
            .any(|(from, to)| (*from..*to).contains(&offset))
        {
            return Ok(());
        }
        Err(self
            .during
            .iter()
            .map(|(from, _)| *from)
            .filter(|from| *from > offset)
            .min())
    }
}

/// Requests a driver keeps in flight at most; a send due past it is dropped and counted.
pub const MAX_IN_FLIGHT: usize = 10_000;
