//! `match` and `exclude` on a dependency property: which of a dependency's
//! calls it judges (a load balancer's health checks are calls too).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

use fault_server::fault::RequestView;
use fault_server::{CallRecord, RequestMatch};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header values a record kept, as a header map.
fn kept_headers(call: &CallRecord) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in &call.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// The calls a dependency property judges: those `include` matches (all
/// when `None`) that `exclude` does not. Both use a fault's `match` syntax
/// (method; path by whole segments, `=exact`, globs; headers) on the
/// journal's record of each call. A header condition reads the header values
/// the record kept: the dependency must keep them (`keep_headers`, which a
/// run sets from its suite's selections, [`CallSelector::header_names`]); a
/// header it did not keep reads as absent.
///
/// ```
/// use fault_server::RequestMatch;
/// use faultline_properties::CallSelector;
///
/// let health = RequestMatch::new(None, Some("=/__health"), []).unwrap();
/// let live = CallSelector::new(None, Some(health));
/// assert_eq!(live.to_string(), "not =/__health");
/// let tenant = RequestMatch::new(None, None, [("x-tenant", "acme")]).unwrap();
/// let acme = CallSelector::new(Some(tenant), None);
/// assert_eq!(acme.header_names(), ["x-tenant"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallSelector {
    include: Option<RequestMatch>,
    exclude: Option<RequestMatch>,
}

impl CallSelector {
    /// Every call.
    pub fn all() -> Self {
        CallSelector::default()
    }

    /// The calls `include` matches (every call when `None`) minus those
    /// `exclude` matches.
    pub fn new(include: Option<RequestMatch>, exclude: Option<RequestMatch>) -> Self {
        CallSelector { include, exclude }
    }

    /// The headers its conditions name, which the dependency's records must
    /// keep for it to be honoured.
    pub fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.include, &self.exclude]
            .into_iter()
            .flatten()
            .flat_map(|m| m.header_names().map(|h| h.as_str().to_owned()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether it selects every call.
    pub fn is_all(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// Whether `call` is one of the selected.
    pub fn selects(&self, call: &CallRecord) -> bool {
        let hit = |m: &RequestMatch| match m.matches_call(&call.method, &call.path) {
            Some(hit) => hit,
            None => m.matches(&RequestView {
                method: &call.method,
                path: &call.path,
                headers: &kept_headers(call),
            }),
        };
        self.include.as_ref().is_none_or(hit) && !self.exclude.as_ref().is_some_and(hit)
    }

    /// The selected calls in flight at each selected call's arrival (itself
    /// included), by sequence number: the journal's in-flight count counts
    /// every call, so a selection recounts among its own. A call ends at its
    /// departure (a departure at the same nanosecond as an arrival ends
    /// first: the caller saw the answer before it called again); a call with
    /// none was still in flight when the run ended.
    pub fn in_flight(&self, calls: &[CallRecord]) -> HashMap<u64, u64> {
        let mut selected: Vec<&CallRecord> = calls.iter().filter(|c| self.selects(c)).collect();
        selected.sort_by_key(|c| c.seq);
        let mut ends = BinaryHeap::new();
        let mut counts = HashMap::with_capacity(selected.len());
        for call in selected {
            while ends
                .peek()
                .is_some_and(|Reverse(end)| *end <= call.arrival_ns)
            {
                ends.pop();
            }
            ends.push(Reverse(call.departure_ns.unwrap_or(u64::MAX)));
            counts.insert(call.seq, ends.len() as u64);
        }
        counts
    }
}

/// `GET /api, not =/__health`; empty for every call.
impl fmt::Display for CallSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.include, &self.exclude) {
            (None, None) => Ok(()),
            (Some(include), None) => write!(f, "{include}"),
            (None, Some(exclude)) => write!(f, "not {exclude}"),
            (Some(include), Some(exclude)) => write!(f, "{include}, not {exclude}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{call, two_phases, MS};

    #[test]
    fn selects_by_method_and_decoded_path_and_recounts_in_flight_among_its_own() {
        let mut seen = two_phases();
        // Live calls at 10 ms apart, each 25 ms long (three overlap), and a
        // health check alongside each one.
        for i in 0..10 {
            call(&mut seen, "crm", 1_000 + i * 10, 0, "");
            call(&mut seen, "crm", 1_000 + i * 10, 0, "");
        }
        let calls = seen.dependencies.get_mut("crm").unwrap();
        for (i, c) in calls.iter_mut().enumerate() {
            c.departure_ns = Some(c.arrival_ns + 25 * MS);
            if i % 2 == 1 {
                c.path = "/__health".to_owned();
            } else {
                c.path = "/caf%C3%A9/orders".to_owned();
            }
        }
        let health = RequestMatch::new(None, Some("=/__health"), []).unwrap();
        let live = CallSelector::new(None, Some(health));
        let calls = &seen.dependencies["crm"];
        assert_eq!(calls.iter().filter(|c| live.selects(c)).count(), 10);
        let counts = live.in_flight(calls);
        assert_eq!(counts.len(), 10);
        assert_eq!(counts.values().max(), Some(&3));
        assert_eq!(
            CallSelector::all().in_flight(calls).values().max(),
            Some(&6)
        );
        let cafe = RequestMatch::new(Some("GET"), Some("/café"), []).unwrap();
        let cafe = CallSelector::new(Some(cafe), None);
        assert_eq!(calls.iter().filter(|c| cafe.selects(c)).count(), 10);
        let post = RequestMatch::new(Some("POST"), None, []).unwrap();
        let post = CallSelector::new(Some(post), None);
        assert_eq!(calls.iter().filter(|c| post.selects(c)).count(), 0);
    }

    #[test]
    fn header_conditions_read_the_values_a_record_kept() {
        let mut seen = two_phases();
        call(&mut seen, "crm", 1_000, 1, "");
        call(&mut seen, "crm", 1_010, 1, "");
        let calls = seen.dependencies.get_mut("crm").unwrap();
        calls[0].headers = vec![("x-health".to_owned(), "yes".to_owned())];
        let health = RequestMatch::new(None, None, [("x-health", "yes")]).unwrap();
        let live = CallSelector::new(None, Some(health.clone()));
        let checks = CallSelector::new(Some(health), None);
        assert_eq!(live.header_names(), ["x-health"]);
        let calls = &seen.dependencies["crm"];
        assert_eq!(
            (live.selects(&calls[0]), live.selects(&calls[1])),
            (false, true)
        );
        assert_eq!(
            (checks.selects(&calls[0]), checks.selects(&calls[1])),
            (true, false)
        );
    }

    #[test]
    fn a_departure_and_an_arrival_at_the_same_instant_do_not_overlap() {
        let mut seen = two_phases();
        call(&mut seen, "crm", 1_000, 0, "");
        call(&mut seen, "crm", 1_001, 0, "");
        call(&mut seen, "crm", 1_002, 0, "");
        let calls = seen.dependencies.get_mut("crm").unwrap();
        calls[2].departure_ns = None;
        let exclude = RequestMatch::new(Some("DELETE"), None, []).unwrap();
        let counts = CallSelector::new(None, Some(exclude)).in_flight(calls);
        // The fixture's calls last 1 ms: each ends as the next arrives.
        assert_eq!(counts.values().max(), Some(&1));
    }
}
