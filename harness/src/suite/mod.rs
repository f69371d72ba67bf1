//! Suite files: one TOML file per checklist item naming the target, the
//! dependencies, the load, the phases and the expected properties. See
//! `suites/README.md` for the format by example.

mod expect;
mod load;
mod plan;
mod runs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fault_server::DependencySpec;

use faultline_properties::keys::SuiteNames;

pub use crate::run::plan::{AbortWhen, PhasePlan, RemoteSpec};
use serde::Deserialize;
use toml::Spanned;

use fault_server::located::Locator;
pub use faultline_properties::Expectation;
pub use load::{LoadSpec, VariantSpec};
pub use runs::run_suites;

/// A suite that cannot be used: where (file:line:col), and why.
pub type SuiteError = fault_server::LocatedError;

pub use crate::limits::{MAX_CLIENTS, MAX_DURATION, MAX_RATE};

/// A parsed and checked suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Its name: the `name` key, else the file's stem.
    pub name: String,
    /// Where it came from.
    pub path: PathBuf,
    /// What is under test.
    pub target: Target,
    /// The dependencies the fault server plays.
    pub dependencies: Vec<DependencySpec>,
    /// The load, per endpoint.
    pub load: Vec<LoadSpec>,
    /// The phases, in order.
    pub phases: Vec<PhasePlan>,
    /// The properties to judge, in the order written.
    pub expect: Vec<Expectation>,
    /// A fault server in another process to use instead of one in this process.
    pub fault_server: Option<RemoteSpec>,
    /// Hosts beyond loopback that load may go to.
    pub allow_hosts: Vec<String>,
    /// Requests sent at most over the run (a hard cap; see `DEFAULT_MAX_REQUESTS`).
    pub max_requests: Option<u64>,
    /// Stop the run when a phase was already unhealthy.
    pub abort_when: Option<AbortWhen>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    max_requests: Option<u64>,
    #[serde(default)]
    abort_when: Option<Spanned<AbortWhen>>,
    target: Target,
    #[serde(default)]
    fault_server: Option<RemoteSpec>,
    #[serde(default)]
    dependencies: Vec<Spanned<DependencySpec>>,
    load: Vec<Spanned<LoadSpec>>,
    phases: Vec<Spanned<PhasePlan>>,
    expect: Vec<Spanned<expect::RawExpect>>,
}

/// The `[target]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// An already running system under test; `--target-url` overrides it.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Or a command the harness starts (and stops at the end): `{port}` is
    /// replaced by a free loopback port it must listen on, `{name}` by the URL
    /// of the dependency called `name`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Or the built-in demo shop in this profile, started by the harness as
    /// a child process of its own binary (`faultline demo serve`), given the
    /// URLs of the suite's `payments`, `catalog`, `profiles`, `crm` and
    /// `alerts` dependencies.
    #[serde(default)]
    pub demo: Option<faultline_demo::Profile>,
    /// Environment for the command, templated the same way.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Path polled until it answers (any status under 500) before load starts.
    #[serde(default = "root")]
    pub ready: String,
    /// How long the command may take to become ready.
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    pub ready_timeout: Duration,
}

fn root() -> String {
    "/".to_owned()
}

pub(super) fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl Suite {
    /// Reads and checks a suite file.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|e| SuiteError::unreadable(path, &e))?;
        Suite::parse(&text, path)
    }

    /// Parses and checks suite text; `path` names it in errors.
    ///
    /// ```
    /// let err = faultline_harness::suite::Suite::parse("[target]\nbase_ur = \"http://127.0.0.1:1\"\n", "s.toml".as_ref()).unwrap_err();
    /// assert!(err.to_string().starts_with("s.toml:2:1: unknown field `base_ur`"), "{err}");
    /// assert!(err.to_string().contains("did you mean `base_url`?"), "{err}");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Suite, SuiteError> {
        let at = Locator::new(text, path);
        let file: SuiteFile = toml::from_str(text).map_err(|e| at.toml(&e))?;
        if file.phases.is_empty() {
            return Err(at.whole("a suite needs at least one [[phases]] entry"));
        }
        if file.load.is_empty() {
            return Err(at.whole("a suite needs at least one [[load]] entry"));
        }
        if file.expect.is_empty() {
            return Err(at.whole(
                "a suite needs at least one [[expect]] entry: a suite that expects nothing checks nothing",
            ));
        }
        if file.max_requests == Some(0) {
            return Err(at.whole("max_requests must be at least 1"));
        }
        let mut seen_phases = std::collections::BTreeSet::new();
        for spanned in &file.phases {
            let phase = spanned.get_ref();
            if !seen_phases.insert(phase.name.as_str()) {
                return Err(at.span(
                    spanned.span(),
                    format!(
                        "phase `{}` is defined twice: phase names must differ",
                        phase.name
                    ),
                ));
            }
            if phase.duration.is_zero() || phase.duration > MAX_DURATION {
                return Err(at.span(
                    spanned.span(),
                    format!(
                        "phase `{}`: duration must be above 0 and at most {}",
                        phase.name,
                        humantime::format_duration(MAX_DURATION)
                    ),
                ));
            }
        }
        let run_for: Duration = file.phases.iter().map(|p| p.get_ref().duration).sum();
        let dependencies: Vec<DependencySpec> = file
            .dependencies
            .iter()
            .map(|d| d.get_ref().clone())
            .collect();
        let mut names = std::collections::BTreeSet::new();
        for spanned in &file.dependencies {
            let spec = spanned.get_ref();
            spec.validate()
                .map_err(|e| at.span(spanned.span(), format!("dependency `{}`: {e}", spec.name)))?;
            if !names.insert(spec.name.clone()) {
                return Err(at.span(
                    spanned.span(),
                    format!("dependency `{}` is defined twice", spec.name),
                ));
            }
        }
        let phase_list: Vec<&str> = file
            .phases
            .iter()
            .map(|p| p.get_ref().name.as_str())
            .collect();
        let mut seen_endpoints = std::collections::BTreeSet::new();
        for spanned in &file.load {
            let load = spanned.get_ref();
            if !seen_endpoints.insert(load.endpoint.as_str()) {
                return Err(at.span(
                    spanned.span(),
                    format!(
                        "endpoint `{}` is defined twice: endpoint names must differ",
                        load.endpoint
                    ),
                ));
            }
            load::check(load, run_for, &phase_list).map_err(|e| at.span(spanned.span(), e))?;
        }
        check_target(&file.target, &names).map_err(|e| at.whole(format!("[target]: {e}")))?;
        let phase_names: Vec<&str> = file
            .phases
            .iter()
            .map(|p| p.get_ref().name.as_str())
            .collect();
        for spanned in &file.phases {
            for (dependency, faults) in &spanned.get_ref().faults {
                let Some(spec) = dependencies.iter().find(|d| &d.name == dependency) else {
                    return Err(at.span(
                        spanned.span(),
                        format!(
                            "faults for `{dependency}`, which is not a dependency of this suite"
                        ),
                    ));
                };
                // A TCP proxy takes connection faults, any other dependency request faults.
                for (i, fault) in faults.iter().enumerate() {
                    fault.check_for(spec.tcp.is_some()).map_err(|e| {
                        at.span(
                            spanned.span(),
                            format!(
                                "phase `{}`: faults for `{dependency}`[{i}]: {e}",
                                spanned.get_ref().name
                            ),
                        )
                    })?;
                }
            }
        }
        if let Some(rule) = &file.abort_when {
            let AbortWhen {
                phase,
                success_rate_below,
                latency_above,
                percentile,
                delay,
            } = rule.get_ref();
            if !phase_names.contains(&phase.as_str()) {
                let hint = fault_server::located::did_you_mean(phase, phase_names.iter().copied());
                return Err(at.span(
                    rule.span(),
                    format!("abort_when: no phase named `{phase}`{hint}"),
                ));
            }
            let refuse = |why: &str| Err(at.span(rule.span(), format!("abort_when: {why}")));
            if success_rate_below.is_none() && latency_above.is_none() {
                return refuse("needs `success_rate_below` or `latency_above` (or both)");
            }
            if success_rate_below.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return refuse("success_rate_below is from 0 to 1");
            }
            if !(*percentile > 0.0 && *percentile <= 100.0) {
                return refuse("percentile is above 0 and at most 100");
            }
            if latency_above.is_none() && *percentile != 99.0 {
                return refuse("percentile goes with `latency_above`");
            }
            if latency_above.is_some_and(|l| l.is_zero() || l > MAX_DURATION)
                || *delay > MAX_DURATION
            {
                return refuse("latency_above is above 0, and it and delay at most a day");
            }
        }
        let names = SuiteNames {
            phases: file
                .phases
                .iter()
                .map(|p| (p.get_ref().name.as_str(), p.get_ref().duration))
                .collect(),
            endpoints: file
                .load
                .iter()
                .map(|l| l.get_ref().endpoint.as_str())
                .collect(),
            dependencies: names.iter().map(String::as_str).collect(),
        };
        let expect = file
            .expect
            .iter()
            .map(|entry| expect::build(entry, &names, &at))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Suite {
            name: file.name.unwrap_or_else(|| {
                path.file_stem()
                    .map_or_else(|| "suite".to_owned(), |s| s.to_string_lossy().into_owned())
            }),
            path: path.to_owned(),
            target: file.target,
            dependencies,
            load: file
                .load
                .into_iter()
                .map(|spanned| {
                    let span = spanned.span();
                    load::with_body_file(spanned.into_inner(), path).map_err(|e| at.span(span, e))
                })
                .collect::<Result<_, _>>()?,
            phases: file.phases.into_iter().map(Spanned::into_inner).collect(),
            expect,
            fault_server: file.fault_server,
            allow_hosts: file.allow_hosts,
            max_requests: file.max_requests,
            abort_when: file.abort_when.map(Spanned::into_inner),
        })
    }
}

/// A target is a URL or a command, and a command's placeholders name dependencies.
fn check_target(
    target: &Target,
    dependencies: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    let kinds = [
        target.base_url.is_some(),
        target.command.is_some(),
        target.demo.is_some(),
    ];
    if kinds.iter().filter(|set| **set).count() > 1 {
        return Err("set one of base_url, command and demo".into());
    }
    if target.ready_timeout > MAX_DURATION {
        return Err(format!(
            "ready_timeout is at most {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    if target.command.as_ref().is_some_and(Vec::is_empty) {
        return Err("command is empty".into());
    }
    let texts = target.command.iter().flatten().chain(target.env.values());
    for text in texts {
        for placeholder in crate::run::plan::placeholders(text) {
            let dependency = placeholder.strip_suffix(".addr").unwrap_or(placeholder);
            if placeholder != "port" && !dependencies.contains(dependency) {
                return Err(format!(
                    "`{{{placeholder}}}` is neither {{port}} nor a dependency of this suite (`{{name}}`: its URL; `{{name.addr}}`: its host:port)"
                ));
            }
        }
    }
    Ok(())
}

/// Suite files named by `paths`: each file as given, each folder's `*.toml` files, sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SuiteError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| SuiteError::unreadable(path, &e))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A suite that parses: a test changes the part it is about.
    pub(in crate::suite) const GOOD: &str = r#"
name = "bulkhead"
[target]
base_url = "http://127.0.0.1:8080"

[[dependencies]]
name = "crm"

[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 50.0

[[phases]]
name = "baseline"
duration = "2s"

[[phases]]
name = "crm slow"
duration = "5s"
faults = { crm = [{ latency = { fixed = "8s" } }] }

[[expect]]
property = "max_in_flight"
dependency = "crm"
at_most = 30
phase = "crm slow"
"#;

    fn parse(text: &str) -> Result<Suite, String> {
        Suite::parse(text, Path::new("s.toml")).map_err(|e| e.to_string())
    }

    fn parse_ok(text: &str) -> Suite {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn abort_when_names_a_phase_and_a_condition_that_mean_something() {
        let with = |rule: &str| parse(&format!("{GOOD}\n[abort_when]\n{rule}\n"));
        let ok =
            with("phase = \"crm slow\"\nlatency_above = \"2s\"\npercentile = 95\ndelay = \"3s\"")
                .unwrap();
        let rule = ok.abort_when.unwrap();
        assert_eq!(
            (rule.latency_above, rule.percentile, rule.success_rate_below),
            (Some(Duration::from_secs(2)), 95.0, None)
        );
        for (rule, says) in [
            (
                "phase = \"crm slwo\"\nsuccess_rate_below = 0.9",
                "abort_when: no phase named `crm slwo`; did you mean `crm slow`?",
            ),
            (
                "phase = \"baseline\"",
                "abort_when: needs `success_rate_below` or `latency_above` (or both)",
            ),
            (
                "phase = \"baseline\"\nsuccess_rate_below = 1.5",
                "abort_when: success_rate_below is from 0 to 1",
            ),
            (
                "phase = \"baseline\"\nlatency_above = \"1s\"\npercentile = 0",
                "abort_when: percentile is above 0 and at most 100",
            ),
            (
                "phase = \"baseline\"\nlatency_above = \"0s\"",
                "abort_when: latency_above is above 0",
            ),
        ] {
            let err = with(rule).unwrap_err();
            assert!(err.starts_with("s.toml:"), "{err}");
            assert!(err.contains(says), "{rule}:\n{err}\nnot: {says}");
        }
    }

    #[test]
    fn abort_when_s_percentile_goes_with_a_latency() {
        let text = format!("{GOOD}\n[abort_when]\nphase = \"baseline\"\nsuccess_rate_below = 0.9\npercentile = 95\n");
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains("abort_when: percentile goes with `latency_above`"),
            "{err}"
        );
    }

    #[test]
    fn a_good_suite_parses() {
        let suite = parse(GOOD).unwrap();
        assert_eq!(suite.name, "bulkhead");
        assert_eq!(suite.phases[1].faults["crm"].len(), 1);
        assert_eq!(suite.expect[0].name(), "max_in_flight(crm) <= 30");
    }

    #[test]
    fn a_misspelt_key_is_located_and_the_intended_one_suggested() {
        let err = parse(&GOOD.replace("rate = 50.0", "rat = 50.0")).unwrap_err();
        assert!(err.starts_with("s.toml:12:1: unknown field `rat`"), "{err}");
        assert!(err.contains("did you mean `rate`?"), "{err}");
    }

    #[test]
    fn an_expectation_on_an_unknown_phase_is_refused_where_it_stands() {
        let err = parse(&GOOD.replace("phase = \"crm slow\"", "phase = \"crm slwo\"")).unwrap_err();
        assert!(
            err.starts_with("s.toml:27:1: max_in_flight `phase`: "),
            "{err}"
        );
        assert!(err.contains("no phase named `crm slwo`"), "{err}");
    }

    #[test]
    fn a_demo_target_is_a_profile_and_excludes_a_url() {
        let demo = GOOD.replace("base_url = \"http://127.0.0.1:8080\"", "demo = \"naive\"");
        assert_eq!(
            parse(&demo).unwrap().target.demo,
            Some(faultline_demo::Profile::Naive)
        );
        let both = GOOD.replace("[target]\n", "[target]\ndemo = \"hardened\"\n");
        let err = parse(&both).unwrap_err();
        assert!(
            err.contains("set one of base_url, command and demo"),
            "{err}"
        );
        let err = parse(&GOOD.replace("base_url = \"http://127.0.0.1:8080\"", "demo = \"sturdy\""))
            .unwrap_err();
        assert!(
            err.starts_with("s.toml:4:8:") && err.contains("sturdy"),
            "{err}"
        );
    }

    #[test]
    fn faults_of_the_wrong_kind_for_a_dependency_are_refused() {
        let tcp = GOOD.replace(
            "name = \"crm\"\n",
            "name = \"crm\"\ntcp = \"127.0.0.1:5432\"\n",
        );
        assert!(parse(&tcp).is_ok(), "latency applies to a TCP proxy too");
        let tcp = tcp.replace("latency = { fixed = \"8s\" }", "error = { status = 503 }");
        let err = parse(&tcp).unwrap_err();
        assert!(err.contains("acts on HTTP requests"), "{err}");
        assert!(err.starts_with("s.toml:"), "{err}");
    }

    #[test]
    fn faults_for_an_unknown_dependency_are_refused() {
        let err = parse(&GOOD.replace("faults = { crm", "faults = { cmr")).unwrap_err();
        assert!(err.contains("`cmr`, which is not a dependency"), "{err}");
    }

    #[test]
    fn ambiguous_or_meaningless_suites_are_refused_where_they_stand() {
        let expect = "[[expect]]\nproperty = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 30\nphase = \"crm slow\"\n";
        let cases: &[(&str, &str, &str)] = &[
            (
                "name = \"crm slow\"",
                "name = \"baseline\"",
                "18:1: phase `baseline` is defined twice",
            ),
            (
                "duration = \"5s\"",
                "duration = \"0s\"",
                "phase `crm slow`: duration must be above 0",
            ),
            (
                "duration = \"5s\"",
                "duration = \"500000000000years\"",
                "duration",
            ),
            (
                "at_most = 30\n",
                "at_most = 30\npercentile = 99\n",
                "`percentile` does not apply to max_in_flight; it takes `phase`, `settle`, `min_samples`, `match`, `exclude`, `dependency`, `at_most`",
            ),
            (
                "at_most = 30\n",
                "at_most = nan\n",
                "`at_most` must be a finite number",
            ),
            (
                "at_most = 30\n",
                "at_most = 2.5\n",
                "max_in_flight `at_most`: invalid type: floating point `2.5`, expected a whole number",
            ),
            (
                "at_most = 30\n",
                "at_most = 30\nmin_samples = 0\n",
                "max_in_flight `min_samples`: must be at least 1",
            ),
            (
                "at_most = 30\n",
                "at_most = 30\nsettle = \"5s\"\n",
                "`settle`: 5s is not shorter than phase `crm slow` (5s)",
            ),
            (
                "at_most = 30\n",
                "at_most = 30\nsettle = \"500000000000years\"\n",
                "`settle`: must be at most 1day",
            ),
            ("rate = 50.0", "rate = 0.01", "not one request goes out"),
            ("rate = 50.0", "rate = 1e9", "rate: at most"),
            ("rate = 50.0", "rate = inf", "rate: at most"),
            ("rate = 50.0", "clients = 100000", "clients: at most 10000"),
            (
                "rate = 50.0",
                "rate = 50.0\ntimeout = \"0s\"",
                "timeout must be above 0",
            ),
            (
                "name = \"bulkhead\"",
                "name = \"bulkhead\"\nmax_requests = 0",
                "max_requests must be at least 1",
            ),
            (expect, "", "missing field `expect`"),
        ];
        for (from, to, says) in cases {
            assert!(GOOD.contains(from), "{from}");
            let err = parse(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert!(err.contains(says), "{from} -> {to}: {err}");
            assert!(err.starts_with("s.toml:"), "{err}");
        }
        let nothing = GOOD
            .replace(expect, "")
            .replace("name = \"bulkhead\"", "name = \"bulkhead\"\nexpect = []");
        let err = parse(&nothing).unwrap_err();
        assert!(
            err.contains("a suite needs at least one [[expect]] entry"),
            "{err}"
        );
        let no_load = GOOD
            .replace(
                "[[load]]\nendpoint = \"checkout\"\npath = \"/checkout\"\nrate = 50.0\n",
                "",
            )
            .replace("name = \"bulkhead\"", "name = \"bulkhead\"\nload = []");
        let err = parse(&no_load).unwrap_err();
        assert!(err.contains("at least one [[load]]"), "{err}");
        let twice = GOOD.replace(
            "rate = 50.0\n",
            "rate = 50.0\n\n[[load]]\nendpoint = \"checkout\"\npath = \"/other\"\nrate = 5.0\n",
        );
        let err = parse(&twice).unwrap_err();
        assert!(
            err.contains("endpoint `checkout` is defined twice"),
            "{err}"
        );
    }

    #[test]
    fn backoff_parameters_must_make_an_envelope() {
        let backoff = |extra: &str| {
            GOOD.replace(
                "property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 30\n",
                &format!("property = \"backoff\"\ndependency = \"crm\"\nbase = \"50ms\"\nmax = \"400ms\"\n{extra}"),
            )
        };
        assert!(parse(&backoff("")).is_ok());
        let err = parse(&backoff("multiplier = 1.0\n")).unwrap_err();
        assert!(err.contains("`multiplier`: must be above 1"), "{err}");
        let err = parse(&backoff("").replace("base = \"50ms\"", "base = \"1s\"")).unwrap_err();
        assert!(err.contains("`base`: must not exceed max"), "{err}");
    }

    #[test]
    fn dependency_properties_select_calls_by_method_and_path_only() {
        let with = |extra: &str| GOOD.replace("at_most = 30\n", &format!("at_most = 30\n{extra}"));
        let suite = parse_ok(&with(
            "exclude = { path = \"=/__health\" }\nmatch = { method = \"GET\" }\n",
        ));
        let property = &suite.expect[0];
        let seen = faultline_properties::Observations::default();
        assert!(
            property
                .check(&seen)
                .property
                .contains("crm [GET, not =/__health]"),
            "{}",
            property.check(&seen).property
        );
        // A header condition is honoured: the run keeps that header in the records.
        let tenant = parse_ok(&with("match = { headers = { \"x-tenant\" = \"acme\" } }\n"));
        assert_eq!(tenant.expect[0].reads().dependency(), Some("crm"));
        assert_eq!(tenant.expect[0].scope().select.header_names(), ["x-tenant"]);
        let err = parse(&with("exclude = { path = \"health\" }\n")).unwrap_err();
        assert!(err.contains("a path starts with `/`"), "{err}");
        let latency = GOOD.replace(
            "property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 30\n",
            "property = \"latency\"\nat_most = \"1s\"\nexclude = { path = \"/x\" }\n",
        );
        let err = parse(&latency).unwrap_err();
        assert!(err.contains("`exclude` does not apply to latency"), "{err}");
    }

    #[test]
    fn a_status_is_a_number_or_a_string() {
        for status in [
            "504",
            "\"504\"",
            "\"5xx\"",
            "\"timeout\"",
            "[504, \"reset\"]",
        ] {
            let text = GOOD.replace(
                "property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 30\n",
                &format!("property = \"status_share\"\nstatus = {status}\nat_most = 0.1\n"),
            );
            parse_ok(&text);
        }
        let text = GOOD.replace(
            "property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 30\n",
            "property = \"status_share\"\nstatus = 5.5\nat_most = 0.1\n",
        );
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains("invalid type: floating point `5.5`, expected a status code (503)"),
            "{err}"
        );
    }

    #[test]
    fn a_recovery_window_of_zero_is_refused() {
        let text = GOOD.replace(
            "property = \"max_in_flight\"\ndependency = \"crm\"\nat_most = 30\n",
            "property = \"recovers_within\"\nat_least = 0.99\nwithin = \"2s\"\nwindow = \"0s\"\n",
        );
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains("recovers_within `window`: must be above 0"),
            "{err}"
        );
    }

    #[test]
    fn a_load_needs_exactly_one_of_rate_and_clients() {
        let err = parse(&GOOD.replace("rate = 50.0", "rate = 50.0\nclients = 2")).unwrap_err();
        assert!(err.contains("not both"), "{err}");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    /// Every suite in the repository parses: the examples are documentation.
    #[test]
    fn every_suite_under_suites_parses() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        let mut found = 0;
        let mut folders = vec![root];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|x| x == "toml") {
                    Suite::load(&path).unwrap_or_else(|e| panic!("{e}"));
                    found += 1;
                }
            }
        }
        assert!(found >= 1, "no suites found");
    }

    /// Every `toml` example in suites/README.md parses, added to a suite
    /// that defines the names the examples use.
    #[test]
    fn every_example_in_the_suite_guide_parses() {
        const BASE: &str = r#"
[target]
base_url = "http://127.0.0.1:8080"
[[dependencies]]
name = "crm"
[[dependencies]]
name = "payments"
[[load]]
endpoint = "checkout"
path = "/checkout"
rate = 50.0
[[phases]]
name = "crm slow"
duration = "1m"
[[phases]]
name = "payments slow"
duration = "1m"
[[phases]]
name = "payments down"
duration = "1m"
"#;
        let guide = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/README.md"),
        )
        .unwrap();
        let mut examples = 0;
        let mut rest = guide.as_str();
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + "```toml\n".len()..];
            let end = body.find("```").expect("a closed code block");
            let example = &body[..end];
            rest = &body[end..][3..];
            let suite = Suite::parse(&format!("{BASE}\n{example}"), Path::new("README.toml"))
                .unwrap_or_else(|e| panic!("suites/README.md example:\n{example}\n{e}"));
            assert!(!suite.expect.is_empty(), "{example}");
            examples += 1;
        }
        assert!(examples >= 2, "only {examples} examples found");
    }
}
