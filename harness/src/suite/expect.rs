//! `[[expect]]` entries: a property by name, its phase, the shared keys its
//! property takes, and its own keys, each property's in its own file
//! ([`faultline_properties::keys`]'s `SuiteKeys`). A key the property does not take
//! is refused where it stands, naming the keys it does take.
//!
//! ```toml
//! [[expect]]
//! property = "latency"
//! endpoint = "search"
//! percentile = 99
//! at_most = "250ms"          # or: baseline = "baseline", factor = 1.5
//! phase = "crm slow"
//! settle = "1s"              # skip the first second of the phase
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use fault_server::RequestMatch;
use serde::Deserialize;
use toml::Spanned;

use super::SuiteError;
use fault_server::located::did_you_mean;
use fault_server::located::Locator;
use faultline_properties::keys::{self, ParamError, Registered, SuiteNames, PROPERTIES};
use faultline_properties::{CallSelector, Expectation, Scope};

/// One `[[expect]]` entry as written: its keys and values, with where each stands.
pub(super) type RawExpect = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The keys of an entry besides the property's own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shared {
    /// The phase it judges.
    phase: String,
    /// Skipped at the start of the phase.
    #[serde(default, deserialize_with = "keys::optional_duration")]
    settle: Option<Duration>,
    /// Samples needed to judge (10).
    #[serde(default)]
    min_samples: Option<u64>,
    /// Judge only the dependency calls this selects (a fault's `match` syntax).
    #[serde(default, rename = "match")]
    calls_match: Option<RequestMatch>,
    /// ...and none this selects (a load balancer's health checks).
    #[serde(default)]
    exclude: Option<RequestMatch>,
}

/// Every entry has these, whatever its property.
const ALWAYS: [&str; 2] = ["property", "phase"];

/// Builds the property an entry names, checked against the suite's `names`.
pub(super) fn build(
    entry: &Spanned<RawExpect>,
    names: &SuiteNames<'_>,
    at: &Locator<'_>,
) -> Result<Expectation, SuiteError> {
    let keys = entry.get_ref();
    let property = find(keys, "property").ok_or_else(|| {
        at.span(
            entry.span(),
            format!(
                "an [[expect]] needs `property`: one of {}",
                list(PROPERTIES.iter().map(|p| p.name))
            ),
        )
    })?;
    let registered = registered(property, at)?;
    let own = (registered.keys)();
    let takes = || ALWAYS.iter().chain(registered.shared).chain(own).copied();
    let (mut shared, mut own_table) = (serde_json::Map::new(), serde_json::Map::new());
    for (key, value) in keys {
        let name = key.get_ref().as_str();
        if !takes().any(|k| k == name) {
            return Err(at.span(
                key.span(),
                format!(
                    "`{name}` does not apply to {}; it takes {}{}",
                    registered.name,
                    list(takes().skip(1)),
                    did_you_mean(name, takes())
                ),
            ));
        }
        let value =
            json(value.get_ref()).map_err(|why| at.span(key.span(), format!("`{name}` {why}")))?;
        let table = if own.contains(&name) {
            &mut own_table
        } else {
            &mut shared
        };
        if name != "property" {
            table.insert(name.to_owned(), value);
        }
    }
    let locate = |e: ParamError| match e
        .key
        .as_deref()
        .and_then(|k| keys.keys().find(|key| key.get_ref() == k))
    {
        Some(key) => at.span(
            key.span(),
            format!("{} `{}`: {}", registered.name, key.get_ref(), e.message),
        ),
        None => at.span(entry.span(), format!("{}: {}", registered.name, e.message)),
    };
    let shared: Shared = keys::deserialize(serde_json::Value::Object(shared)).map_err(locate)?;
    let scope = scope(shared, names).map_err(locate)?;
    (registered.build)(serde_json::Value::Object(own_table), scope, names).map_err(locate)
}

/// An entry's value as the JSON its property's keys are read from
/// ([`faultline_properties::keys`]), refusing what JSON cannot hold rather
/// than letting it become `null` as `serde_json::to_value` would: a
/// non-finite number (anywhere in the value) or a date.
fn json(value: &toml::Value) -> Result<serde_json::Value, &'static str> {
    Ok(match value {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .ok_or("must be a finite number")?
            .into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(_) => return Err("is a date, which no property takes"),
        toml::Value::Array(values) => values
            .iter()
            .map(json)
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        toml::Value::Table(table) => table
            .iter()
            .map(|(key, value)| Ok((key.clone(), json(value)?)))
            .collect::<Result<serde_json::Map<_, _>, _>>()?
            .into(),
    })
}

/// The property named at `property`.
fn registered(
    property: &Spanned<toml::Value>,
    at: &Locator<'_>,
) -> Result<&'static Registered, SuiteError> {
    let names = || PROPERTIES.iter().map(|p| p.name);
    let Some(name) = property.get_ref().as_str() else {
        return Err(at.span(
            property.span(),
            format!("`property` is a property's name: one of {}", list(names())),
        ));
    };
    PROPERTIES.iter().find(|p| p.name == name).ok_or_else(|| {
        at.span(
            property.span(),
            format!(
                "unknown property `{name}`: not one of {}{}",
                list(names()),
                did_you_mean(name, names())
            ),
        )
    })
}

/// The scope the shared keys say, checked against the suite's phases.
fn scope(shared: Shared, names: &SuiteNames<'_>) -> Result<Scope, ParamError> {
    names.phase("phase", &shared.phase)?;
    let mut scope = Scope::phase(shared.phase.clone());
    if let Some(settle) = shared.settle {
        let phase = names
            .phases
            .get(shared.phase.as_str())
            .copied()
            .unwrap_or_default();
        if settle >= phase {
            return Err(ParamError::at(
                "settle",
                format!(
                    "{} is not shorter than phase `{}` ({}): nothing would be judged",
                    humantime::format_duration(settle),
                    shared.phase,
                    humantime::format_duration(phase)
                ),
            ));
        }
        scope = scope.with_settle(settle);
    }
    if let Some(samples) = shared.min_samples {
        if samples == 0 {
            return Err(ParamError::at(
                "min_samples",
                "must be at least 1: a verdict on no samples is no verdict",
            ));
        }
        scope = scope.with_min_samples(samples);
    }
    Ok(scope.with_select(CallSelector::new(shared.calls_match, shared.exclude)))
}

fn find<'a>(keys: &'a RawExpect, name: &str) -> Option<&'a Spanned<toml::Value>> {
    keys.iter()
        .find(|(k, _)| k.get_ref() == name)
        .map(|(_, v)| v)
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::suite::tests::GOOD;
    use crate::suite::Suite;
    use faultline_properties::keys::PROPERTIES;

    /// A suite whose one `[[expect]]` is `entry`: `[[expect]]` at line 23,
    /// `phase` at 24, the entry from 25.
    fn suite(entry: &str) -> Result<Suite, String> {
        let (head, _) = GOOD.split_once("[[expect]]").unwrap();
        let text = format!("{head}[[expect]]\nphase = \"crm slow\"\n{entry}\n");
        Suite::parse(&text, Path::new("s.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_key_the_property_does_not_take_is_refused_where_it_stands_naming_those_it_does() {
        let err = suite(
            "property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 3\nwithin = \"2s\"",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "s.toml:28:1: `within` does not apply to max_in_flight; it takes `phase`, `settle`, \
             `min_samples`, `match`, `exclude`, `dependency`, `at_most`"
        );
        // A shared key the property has no use for is refused too.
        let err =
            suite("property = \"alert_fired\"\nalert = \"High\"\nwithin = \"2s\"\nmin_samples = 3")
                .unwrap_err();
        assert!(err.starts_with("s.toml:28:1: `min_samples` does not apply to alert_fired; it takes `phase`, `alert`, `within`, `dependency`"), "{err}");
        let err = suite(
            "property = \"recovers_within\"\nat_least = 0.9\nwithin = \"2s\"\nsettle = \"1s\"",
        )
        .unwrap_err();
        assert!(
            err.contains("`settle` does not apply to recovers_within"),
            "{err}"
        );
        // A near miss gets a suggestion.
        let err =
            suite("property = \"max_in_flight\"\ndependency = \"crm\"\nat_mots = 3").unwrap_err();
        assert!(err.contains("did you mean `at_most`?"), "{err}");
    }

    #[test]
    fn a_property_is_named_from_the_registry() {
        let err = suite("property = \"max_inflight\"").unwrap_err();
        assert!(
            err.starts_with(
                "s.toml:25:12: unknown property `max_inflight`: not one of `max_in_flight`,"
            ),
            "{err}"
        );
        assert!(
            err.ends_with("`status_share`, `hold_time`; did you mean `max_in_flight`?"),
            "{err}"
        );
        let err = suite("dependency = \"crm\"").unwrap_err();
        assert!(
            err.starts_with("s.toml:23:1: an [[expect]] needs `property`: one of"),
            "{err}"
        );
        let err = suite("property = 3").unwrap_err();
        assert!(err.contains("`property` is a property's name"), "{err}");
    }

    #[test]
    fn values_are_checked_where_they_stand() {
        let cases = [
            ("property = \"max_in_flight\"\nat_most = 3", "s.toml:23:1: max_in_flight: missing field `dependency`"),
            ("property = \"max_in_flight\"\ndependency = \"cmr\"\nat_most = 3", "s.toml:26:1: max_in_flight `dependency`: no dependency named `cmr`; did you mean `crm`?"),
            ("property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = -1", "s.toml:27:1: max_in_flight `at_most`: invalid value: integer `-1`, expected a whole number, 0 or more"),
            ("property = \"latency\"\nat_most = \"1s\"\npercentile = 150", "s.toml:27:1: latency `percentile`: must be from 0 (the minimum) to 100 (the maximum), not 150"),
            ("property = \"latency\"\nat_most = \"1s\"\npercentile = nan", "s.toml:27:1: `percentile` must be a finite number"),
            ("property = \"latency\"\nat_most = 250", "s.toml:26:1: latency `at_most`: invalid type: integer `250`, expected a duration like \"250ms\""),
            ("property = \"latency\"\nat_most = \"1s\"\nbaseline = \"baseline\"\nfactor = 2", "latency `at_most`: a fixed bound or `baseline` and `factor`, not both"),
            ("property = \"latency\"\nbaseline = \"baseline\"", "latency `baseline`: needs `factor`"),
            ("property = \"latency\"\nbaseline = \"basline\"\nfactor = 2", "latency `baseline`: no phase named `basline`; did you mean `baseline`?"),
            ("property = \"latency\"", "s.toml:23:1: latency: latency needs `at_most` or `at_least` (durations; or both), or `baseline` and `factor`"),
            ("property = \"latency\"\nat_least = \"2s\"\nat_most = \"1s\"", "latency `at_least`: must be at most `at_most` (1s), not 2s"),
            ("property = \"latency\"\nat_least = \"1s\"\nbaseline = \"baseline\"\nfactor = 2", "latency `at_least`: a fixed bound or `baseline` and `factor`, not both"),
            ("property = \"retry_amplification\"\ndependency = \"crm\"\nexactly = 3\nat_most = 4", "retry_amplification `exactly`: goes alone, without `at_least` or `at_most`"),
            ("property = \"retry_amplification\"\ndependency = \"crm\"\nat_least = -1", "retry_amplification `at_least`: must be 0 or more"),
            ("property = \"max_attempts\"\ndependency = \"crm\"\nat_least = 4\nat_most = 3", "max_attempts `at_least`: must be at most `at_most` (3), not 4"),
            ("property = \"max_attempts\"\ndependency = \"crm\"", "max_attempts: needs `at_most`, `at_least` (or both) or `exactly`: calls per edge request"),
            ("property = \"latency\"\nat_most = \"1s\"\nstatus = []", "latency `status`: an empty list selects no request"),
            ("property = \"latency\"\nat_most = \"1s\"\nstatus = 700", "latency `status`: 700 is not a status code (100 to 599)"),
            ("property = \"status_share\"\nstatus = [\"503\", \"tiemout\"]\nat_most = 0.1", "status_share `status`: `tiemout` is neither a status code (429), a class (5xx), `timeout`, `connect_error` nor `reset`"),
            ("property = \"success_rate\"\nat_least = 0.99\nwindow = \"6s\"", "success_rate `window`: is longer than phase `crm slow` (5s)"),
            ("property = \"success_rate\"\nat_least = 0.99\nwindow = \"5s\"\nsettle = \"1s\"", "success_rate `window`: is longer than phase `crm slow` (5s less its settle of 1s)"),
            ("property = \"latency\"\nat_most = \"1s\"\nwindow = \"0s\"", "latency `window`: must be above 0"),
            ("property = \"latency\"\nat_most = \"1s\"\nwindow = \"1ns\"", "latency `window`: is shorter than 100ms"),
            ("property = \"latency\"\nbaseline = \"crm slow\"\nfactor = 1", "latency `baseline`: is the phase judged (`crm slow`): a phase cannot be its own baseline"),
            ("property = \"success_rate\"\nat_least = 1.5", "success_rate `at_least`: is from 0 to 1, not 1.5"),
            ("property = \"success_rate\"\nat_least = 0.9\nendpoint = \"chekout\"", "success_rate `endpoint`: no endpoint named `chekout`; did you mean `checkout`?"),
            ("property = \"breaker\"\ndependency = \"crm\"\nfailures = 0\nreset = \"1s\"", "breaker `failures`: must be at least 1"),
            ("property = \"deadline\"\ndependency = \"crm\"\nwithin = \"0s\"", "deadline `within`: must be above 0"),
            ("property = \"status_share\"\nstatus = \"6xx\"\nat_most = 0.1", "status_share `status`: `6xx` is neither a status code (429), a class (5xx), `timeout`, `connect_error` nor `reset`"),
            ("property = \"alert_fired\"\nalert = \"High\"\nwithin = \"2s\"\ndependency = \"pager\"", "alert_fired `dependency`: no dependency named `pager`"),
        ];
        for (entry, says) in cases {
            let err = suite(entry).unwrap_err();
            assert!(err.contains(says), "{entry}:\n{err}\nnot: {says}");
        }
    }

    #[test]
    fn defaults_fill_what_a_suite_leaves_out() {
        let suite = suite("property = \"latency\"\nat_most = \"250ms\"").unwrap();
        assert_eq!(suite.expect[0].name(), "p99(all endpoints) <= 250ms");
        assert_eq!(
            suite.expect[0].scope().min_samples,
            faultline_properties::DEFAULT_MIN_SAMPLES
        );
    }

    /// suites/README.md's table documents every property's own keys and
    /// the shared keys it takes, and no shared key it does not.
    #[test]
    fn the_suite_guide_documents_every_property_s_keys() {
        let guide = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/README.md"),
        )
        .unwrap();
        for property in PROPERTIES {
            let row = guide
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", property.name)))
                .unwrap_or_else(|| panic!("suites/README.md has no row for `{}`", property.name));
            let columns: Vec<&str> = row.split(" | ").collect();
            let (own, shared) = (columns[1], columns[2]);
            for key in (property.keys)() {
                assert!(
                    own.contains(&format!("`{key}`")),
                    "`{}`'s row lacks its key `{key}`",
                    property.name
                );
            }
            for key in super::keys::JUDGES_CALLS {
                assert_eq!(
                    shared.contains(&format!("`{key}`")),
                    property.shared.contains(key),
                    "`{}`'s row and its SHARED keys differ on `{key}`",
                    property.name
                );
            }
        }
    }
}
