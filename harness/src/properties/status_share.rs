//! `status_share`: the share of answers of a status or status class stays
//! under a bound (k6-style: `status_share(checkout, 429) <= 1%`): the
//! cascade's "unrelated endpoints get throttled".

use crate::properties::{Property, Scope};
use crate::verdict::Measure;
use crate::{EdgeOutcome, EdgeRecord, Observations, Verdict};

/// At most `at_most` (a fraction) of the requests to `endpoint` (every
/// endpoint when `None`) in the phase are answered with `status`: an exact
/// code (`"429"`) or a class (`"5xx"`).
///
/// ```
/// use harness::properties::{Property, Scope, StatusShare};
/// let claim = StatusShare::new("429", 0.01, Scope::phase("crm slow")).unwrap().for_endpoint("checkout");
/// assert_eq!(claim.check(&Default::default()).outcome, harness::Outcome::Inconclusive);
/// assert!(StatusShare::new("6xx", 0.01, Scope::phase("crm slow")).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StatusShare {
    /// The endpoint; every endpoint when `None`.
    pub endpoint: Option<String>,
    /// As written: `"429"` or `"5xx"`.
    pub status: String,
    low: u16,
    high: u16,
    /// The largest share allowed, 0 to 1.
    pub at_most: f64,
    /// Where to look.
    pub scope: Scope,
}

impl StatusShare {
    /// `status_share(status) <= at_most` within `scope`; `status` is a code (`"429"`) or a class (`"4xx"`).
    pub fn new(status: &str, at_most: f64, scope: Scope) -> Result<Self, String> {
        let range = status_range(status)?;
        Ok(Self::with_range(status, range, at_most, scope))
    }

    /// With a range already checked by [`status_range`].
    pub(crate) fn with_range(
        status: &str,
        (low, high): (u16, u16),
        at_most: f64,
        scope: Scope,
    ) -> Self {
        StatusShare {
            endpoint: None,
            status: status.to_owned(),
            low,
            high,
            at_most,
            scope,
        }
    }

    /// Judges only requests to `endpoint`.
    pub fn for_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    fn matches(&self, record: &EdgeRecord) -> bool {
        matches!(record.outcome, EdgeOutcome::Status(s) if (self.low..=self.high).contains(&s))
    }
}

/// `"429"` is 429..=429, `"5xx"` is 500..=599.
pub(crate) fn status_range(status: &str) -> Result<(u16, u16), String> {
    let invalid = || format!("`{status}` is neither a status code (429) nor a class (5xx)");
    match status.as_bytes() {
        [class @ b'1'..=b'5', b'x', b'x'] => {
            let base = u16::from(class - b'0') * 100;
            Ok((base, base + 99))
        }
        _ => {
            let code: u16 = status.parse().map_err(|_| invalid())?;
            if (100..=599).contains(&code) {
                Ok((code, code))
            } else {
                Err(invalid())
            }
        }
    }
}

impl Property for StatusShare {
    fn name(&self) -> String {
        let subject = self.endpoint.as_deref().unwrap_or("all endpoints");
        format!(
            "status_share({subject}, {}) <= {}",
            self.status, self.at_most
        )
    }

    fn check(&self, seen: &Observations) -> Verdict {
        let name = self.name();
        let (phase, mut evidence) =
            match self
                .scope
                .start_edge(seen, &name, Measure::Ratio(self.at_most))
            {
                Ok(found) => found,
                Err(verdict) => return *verdict,
            };
        let mut first = None::<&EdgeRecord>;
        let mut hits = 0u64;
        for request in seen.edge_in(phase, self.scope.settle, self.endpoint.as_deref()) {
            evidence.samples += 1;
            if self.matches(request) {
                hits += 1;
                if first.is_none_or(|f| request.intended_ns < f.intended_ns) {
                    first = Some(request);
                }
            }
        }
        if let Some(why) = self
            .scope
            .too_few(evidence.samples, "requests in the phase")
        {
            return Verdict::inconclusive(name, &phase.name, evidence, why);
        }
        let share = hits as f64 / evidence.samples as f64;
        evidence.observed = Some(Measure::Ratio(share));
        evidence.first_broke_ns = first
            .map(|f| f.intended_ns)
            .filter(|_| share > self.at_most);
        evidence.witness = first.and_then(|f| f.witness());
        Verdict::judged(name, &phase.name, share <= self.at_most, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::fixtures::{requests, two_phases};
    use crate::Outcome;

    #[test]
    fn codes_and_classes_parse_and_nonsense_does_not() {
        assert_eq!(status_range("429"), Ok((429, 429)));
        assert_eq!(status_range("5xx"), Ok((500, 599)));
        assert!(status_range("6xx").is_err());
        assert!(status_range("abc").is_err());
    }

    #[test]
    fn a_throttled_checkout_breaks_its_429_share() {
        let mut seen = two_phases();
        requests(&mut seen, "checkout", 1_000, 70, 5, 200);
        requests(&mut seen, "checkout", 1_700, 30, 5, 429);
        let strict = StatusShare::new("429", 0.01, Scope::phase("fault"))
            .unwrap()
            .for_endpoint("checkout");
        let verdict = strict.check(&seen);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.evidence.observed, Some(Measure::Ratio(0.3)));
        let class = StatusShare::new("4xx", 0.5, Scope::phase("fault")).unwrap();
        assert_eq!(class.check(&seen).outcome, Outcome::Pass);
    }
}
