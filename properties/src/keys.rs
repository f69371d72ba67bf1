//! Each property's suite keys: the `[[expect]]` keys a property takes, as a
//! type in the property's own file (`SuiteKeys`), and the registry of
//! properties a suite can name ([`PROPERTIES`]). Adding a property is its
//! file and one line here.
//!
//! A suite file reads an entry, takes the shared keys, and hands the rest
//! to its property's [`Registered::build`] as a JSON value (the suite's
//! format converts: faultline's TOML suites refuse a non-finite number or a
//! date there first), which checks them and builds the property; an error
//! names the key it is at, and the suite adds the file, line and column.
//!
//! Every entry also has `property` and `phase`, and may have the shared keys
//! its property takes (`settle`, `min_samples`,
//! `match`, `exclude`), read by the suite before the rest go to the
//! property's own keys.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use crate::{
    alert_fired, backoff, breaker, calls, deadline, delivered, fast_accept, hold_time, latency,
    max_attempts, max_in_flight, recovers_within, retry_amplification, shed_fast, status_share,
    success_rate,
};
use crate::{Bound, Property, Scope};
use fault_server::fault::MAX_DURATION;
use fault_server::located::did_you_mean;

/// The shared keys of a property that judges a phase's requests (or calls,
/// without selecting among them): `settle` skips the phase's start,
/// `min_samples` is what it needs to judge.
pub const JUDGES_REQUESTS: &[&str] = &["settle", "min_samples"];
/// ...and of one that judges a dependency's calls: `match` and `exclude`
/// select which.
pub const JUDGES_CALLS: &[&str] = &["settle", "min_samples", "match", "exclude"];

/// A property built from a suite, shared by the run that judges it.
pub type Expectation = Arc<dyn Property + Send + Sync>;

/// A property's own `[[expect]]` keys: deserialized from the entry's keys
/// other than the shared ones (unknown keys refused before), then checked
/// and built into the property in one step.
pub(crate) trait SuiteKeys: DeserializeOwned {
    /// The property's name as a suite writes it (`max_in_flight`).
    const PROPERTY: &'static str;
    /// The keys every entry may have that it takes, besides `property`
    /// and `phase`: [`JUDGES_REQUESTS`] by default.
    const SHARED: &'static [&'static str] = JUDGES_REQUESTS;

    /// Checks the values and the names they use, and builds the property
    /// judging `scope`.
    ///
    /// # Errors
    ///
    /// A value that means nothing, or a name the suite does not define,
    /// with the key it is at.
    fn build(self, scope: Scope, names: &SuiteNames<'_>) -> Result<Expectation, ParamError>;
}

/// A property a suite can name: its keys, and how to build it.
pub struct Registered {
    /// Its name (`max_in_flight`).
    pub name: &'static str,
    /// The shared keys it takes (of [`JUDGES_CALLS`]).
    pub shared: &'static [&'static str],
    /// Its own keys, in declaration order.
    pub keys: fn() -> &'static [&'static str],
    /// Builds it from its own keys' values.
    pub build: fn(serde_json::Value, Scope, &SuiteNames<'_>) -> Result<Expectation, ParamError>,
}

const fn registered<K: SuiteKeys>() -> Registered {
    Registered {
        name: K::PROPERTY,
        shared: K::SHARED,
        keys: serde_aux::serde_introspection::serde_introspect::<K>,
        build: build::<K>,
    }
}

/// Every property a suite can name.
pub const PROPERTIES: &[Registered] = &[
    registered::<max_in_flight::Keys>(),
    registered::<retry_amplification::Keys>(),
    registered::<max_attempts::Keys>(),
    registered::<latency::Keys>(),
    registered::<success_rate::Keys>(),
    registered::<recovers_within::Keys>(),
    registered::<deadline::Keys>(),
    registered::<breaker::Keys>(),
    registered::<shed_fast::Keys>(),
    registered::<backoff::Keys>(),
    registered::<fast_accept::Keys>(),
    registered::<delivered::Keys>(),
    registered::<alert_fired::Keys>(),
    registered::<calls::Keys>(),
    registered::<status_share::Keys>(),
    registered::<hold_time::Keys>(),
];

fn build<K: SuiteKeys>(
    value: serde_json::Value,
    scope: Scope,
    names: &SuiteNames<'_>,
) -> Result<Expectation, ParamError> {
    deserialize::<K>(value)?.build(scope, names)
}

/// `value` (a table of keys) as `T`; an error names the key it is at.
pub fn deserialize<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ParamError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        ParamError {
            key,
            message: e.into_inner().to_string(),
        }
    })
}

/// Why a property's keys cannot be used: relative to the key (the suite
/// adds the file, line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The key it is at, when it is at one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ParamError {
    /// `message` about the value of `key`.
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        ParamError {
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// `message` about the entry as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        ParamError {
            key: None,
            message: message.into(),
        }
    }
}

/// The names a suite defines, for checking the names a property uses.
#[derive(Debug, Clone, Default)]
pub struct SuiteNames<'a> {
    /// Phases, with their durations.
    pub phases: BTreeMap<&'a str, Duration>,
    /// Endpoints of its loads.
    pub endpoints: Vec<&'a str>,
    /// Its dependencies.
    pub dependencies: Vec<&'a str>,
}

impl SuiteNames<'_> {
    /// `name` at `key` is a phase.
    pub fn phase(&self, key: &str, name: &str) -> Result<(), ParamError> {
        known(key, "phase", name, self.phases.keys().copied())
    }

    /// `name` at `key` is an endpoint.
    pub fn endpoint(&self, key: &str, name: &str) -> Result<(), ParamError> {
        known(key, "endpoint", name, self.endpoints.iter().copied())
    }

    /// `name` at `key` is a dependency.
    pub fn dependency(&self, key: &str, name: &str) -> Result<(), ParamError> {
        known(key, "dependency", name, self.dependencies.iter().copied())
    }
}

fn known<'a>(
    key: &str,
    kind: &str,
    name: &str,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), ParamError> {
    if names.clone().any(|n| n == name) {
        return Ok(());
    }
    let hint = did_you_mean(name, names);
    Err(ParamError::at(
        key,
        format!("no {kind} named `{name}`{hint}"),
    ))
}

/// A value from 0 to 1 at `key`.
pub(crate) fn fraction(key: &str, value: f64) -> Result<f64, ParamError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ParamError::at(key, format!("is from 0 to 1, not {value}")))
    }
}

/// The bound a property's `at_least`, `at_most` and `exactly` keys give:
/// one of them, or `at_least` and `at_most` together (a range, least first);
/// `exactly` alone. `show` writes a value as the suite would. `needs` says
/// what the property takes when none is given (`a number of calls`).
pub(crate) fn bound<T: PartialOrd + Copy>(
    at_least: Option<T>,
    at_most: Option<T>,
    exactly: Option<T>,
    needs: &str,
    show: impl Fn(T) -> String,
) -> Result<Bound<T>, ParamError> {
    match (at_least, at_most, exactly) {
        (None, None, Some(value)) => Ok(Bound::exactly(value)),
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(ParamError::at(
            "exactly",
            "goes alone, without `at_least` or `at_most`",
        )),
        (Some(least), Some(most), None) if least > most => Err(ParamError::at(
            "at_least",
            format!(
                "must be at most `at_most` ({}), not {}",
                show(most),
                show(least)
            ),
        )),
        (Some(least), Some(most), None) => Ok(Bound::between(least, most)),
        (Some(least), None, None) => Ok(Bound::at_least(least)),
        (None, Some(most), None) => Ok(Bound::at_most(most)),
        (None, None, None) => Err(ParamError::whole(format!(
            "needs `at_most`, `at_least` (or both) or `exactly`: {needs}"
        ))),
    }
}

/// The shortest `window` a suite may give.
pub const MIN_WINDOW: Duration = Duration::from_millis(100);

/// A `window` length (a property judged in every window of it): above zero
/// and no longer than its phase, less the phase's settle.
pub(crate) fn window(
    length: Duration,
    scope: &Scope,
    names: &SuiteNames<'_>,
) -> Result<Duration, ParamError> {
    let length = above_zero("window", length)?;
    if length < MIN_WINDOW {
        return Err(ParamError::at(
            "window",
            format!(
                "is shorter than {}: a window needs requests in it",
                humantime::format_duration(MIN_WINDOW)
            ),
        ));
    }
    if let Some(&phase) = names.phases.get(scope.phase.as_str()) {
        let room = phase.saturating_sub(scope.settle);
        if length > room {
            let settle = if scope.settle.is_zero() {
                String::new()
            } else {
                format!(
                    " less its settle of {}",
                    humantime::format_duration(scope.settle)
                )
            };
            return Err(ParamError::at(
                "window",
                format!(
                    "is longer than phase `{}` ({}{settle})",
                    scope.phase,
                    humantime::format_duration(phase)
                ),
            ));
        }
    }
    Ok(length)
}

/// A percentile at `key`: from 0 (the minimum) to 100 (the maximum).
pub(crate) fn percentile(key: &str, value: f64) -> Result<f64, ParamError> {
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(ParamError::at(
            key,
            format!("must be from 0 (the minimum) to 100 (the maximum), not {value}"),
        ))
    }
}

/// A duration above zero at `key`.
pub(crate) fn above_zero(key: &str, value: Duration) -> Result<Duration, ParamError> {
    if value.is_zero() {
        Err(ParamError::at(key, "must be above 0"))
    } else {
        Ok(value)
    }
}

/// Deserializes a duration written as text (`"250ms"`, `"1m 30s"`;
/// humantime's syntax), at most [`MAX_DURATION`].
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;
    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like \"250ms\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            let d = humantime::parse_duration(v)
                .map_err(|e| E::custom(format!("`{v}` is not a duration: {e}")))?;
            if d > MAX_DURATION {
                return Err(E::custom(format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_DURATION)
                )));
            }
            Ok(d)
        }
    }
    deserializer.deserialize_str(DurationVisitor)
}

/// As [`duration`], for an optional key.
pub fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

/// Deserializes a whole number, 0 or more.
pub(crate) fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct CountVisitor;
    impl Visitor<'_> for CountVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number, 0 or more")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }
    deserializer.deserialize_any(CountVisitor)
}
