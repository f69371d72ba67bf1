//! The `[[load]]` keys as a suite writes them: what reaches the plan, and
//! what is refused where it stands.

use std::path::Path;
use std::time::Duration;

use crate::run::TargetOverride;
use crate::suite::tests::GOOD;
use crate::suite::Suite;

/// The base suite with its load's line `line` replaced by `keys`, read as
/// if from `path`.
fn suite_with(line: &str, keys: &str, path: &Path) -> Result<Suite, String> {
    let text = GOOD.replace(line, &format!("{keys}\n"));
    Suite::parse(&text, path).map_err(|e| e.to_string())
}

/// A POSTing load with `keys` beside its rate, read as if from `path`.
fn posting(keys: &str, path: &Path) -> Result<Suite, String> {
    suite_with(
        "rate = 50.0\n",
        &format!("rate = 50.0\nmethod = \"POST\"\n{keys}"),
        path,
    )
}

/// The load with `keys` in place of its rate.
fn paced(keys: &str) -> Result<Suite, String> {
    suite_with("rate = 50.0\n", keys, Path::new("s.toml"))
}

/// The load with `keys` in place of its path.
fn pathless(keys: &str) -> Result<Suite, String> {
    suite_with("path = \"/checkout\"\n", keys, Path::new("s.toml"))
}

#[test]
fn headers_and_a_body_reach_the_plan_the_request_id_made_per_request() {
    let suite = posting(
        "headers = { \"Idempotency-Key\" = \"order-{request_id}\", \"x-tenant\" = \"acme\" }\nbody = '{\"order\": \"{request_id}\"}'",
        Path::new("s.toml"),
    )
    .unwrap();
    let plan = suite.plan(TargetOverride::None).unwrap();
    let load = plan.loads[0].at("http://127.0.0.1:8080").unwrap();
    assert_eq!(load.endpoint.headers["x-tenant"], "acme");
    assert_eq!(load.endpoint.per_request.headers.len(), 1);
    assert_eq!(
        load.endpoint.per_request.body.as_deref(),
        Some("{\"order\": \"{request_id}\"}")
    );
    assert!(
        load.endpoint.body.is_empty(),
        "the body is made per request"
    );
}

#[test]
fn a_body_file_is_read_beside_the_suite() {
    let dir = std::env::temp_dir().join(format!("faultline-body-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("order.json"), "{\"items\": 3}").unwrap();
    let suite = posting("body_file = \"order.json\"", &dir.join("s.toml")).unwrap();
    assert_eq!(suite.load[0].body.as_deref(), Some("{\"items\": 3}"));
    let err = posting("body_file = \"missing.json\"", &dir.join("s.toml")).unwrap_err();
    assert!(
        err.starts_with(&format!("{}:", dir.join("s.toml").display())),
        "{err}"
    );
    assert!(err.contains("missing.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn headers_faultline_sets_and_nonsense_are_refused_at_the_load() {
    let cases = [
        (
            "headers = { traceparent = \"00-x\" }",
            "headers: `traceparent`: faultline sets it on every request itself",
        ),
        (
            "headers = { \"x-faultline-request\" = \"x\" }",
            "headers: `x-faultline-request`: faultline sets it",
        ),
        (
            "headers = { \"bad name\" = \"x\" }",
            "headers: `bad name`: is not a header name",
        ),
        (
            "headers = { \"x-a\" = \"line\\nbreak\" }",
            "headers: `x-a`: its value is not a header value",
        ),
        (
            "body = \"a\"\nbody_file = \"b\"",
            "`body` or `body_file`, not both",
        ),
    ];
    for (keys, says) in cases {
        let err = posting(keys, Path::new("s.toml")).unwrap_err();
        assert!(err.starts_with("s.toml:"), "{err}");
        assert!(err.contains(says), "{keys}:\n{err}\nnot: {says}");
    }
}

#[test]
fn a_load_s_phases_become_its_stretches_of_the_run_and_its_count_and_pause_carry_over() {
    let suite =
        paced("clients = 4\npause = \"100ms\"\nrequests = 500\nphases = [\"crm slow\"]").unwrap();
    let plan = suite.plan(TargetOverride::None).unwrap();
    let pacing = &plan.loads[0].pacing;
    // baseline 2 s, then crm slow 5 s.
    assert_eq!(
        pacing.during,
        vec![(Duration::from_secs(2), Duration::from_secs(7))]
    );
    assert_eq!(pacing.requests, Some(500));
    assert_eq!(pacing.pause, Duration::from_millis(100));
}

#[test]
fn pacing_that_means_nothing_is_refused_at_the_load() {
    let cases = [
        (
            "rate = 50.0\npause = \"100ms\"",
            "pause: a closed loop's think time",
        ),
        ("rate = 50.0\nrequests = 0", "requests: at least 1"),
        ("rate = 50.0\nphases = []", "phases: name at least one"),
        (
            "rate = 50.0\nphases = [\"crm slwo\"]",
            "phases: no phase named `crm slwo`; did you mean `crm slow`?",
        ),
        (
            "rate = 50.0\nphases = [\"baseline\", \"baseline\"]",
            "phases: `baseline` is named twice",
        ),
    ];
    for (keys, says) in cases {
        let err = paced(keys).unwrap_err();
        assert!(err.starts_with("s.toml:"), "{err}");
        assert!(err.contains(says), "{keys}:\n{err}\nnot: {says}");
    }
}

#[test]
fn variants_reach_the_plan_with_the_load_s_headers_under_their_own() {
    let suite = pathless(
        "headers = { \"x-tenant\" = \"acme\", \"x-a\" = \"load\" }\nbody = \"{}\"\nvariants = [\n  { path = \"/cart\", weight = 3 },\n  { method = \"POST\", path = \"/checkout\", headers = { \"x-a\" = \"mine\" }, body = \"{\\\"pay\\\": 1}\" },\n]",
    )
    .unwrap();
    let plan = suite.plan(TargetOverride::None).unwrap();
    let requests = &plan.loads[0].requests;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].weight, requests[0].path.as_str()),
        (3, "/cart")
    );
    assert_eq!(requests[1].method, http::Method::POST);
    assert!(requests[1]
        .headers
        .contains(&("x-a".to_owned(), "mine".to_owned())));
    assert!(requests[1]
        .headers
        .contains(&("x-tenant".to_owned(), "acme".to_owned())));
    assert_eq!(
        requests[0].body.as_deref(),
        Some("{}"),
        "the load's body where a variant has none"
    );
    assert_eq!(requests[1].body.as_deref(), Some("{\"pay\": 1}"));
    assert!(
        plan.to_string()
            .contains("variant POST /checkout (weight 1)"),
        "{plan}"
    );
}

#[test]
fn variants_that_mean_nothing_are_refused_at_the_load() {
    let cases = [
        (
            "path = \"/x\"\nvariants = [{ path = \"/y\" }]",
            "`path` or `variants`, not both",
        ),
        ("timeout = \"1s\"", "a load needs `path` (or `variants`)"),
        (
            "variants = [{ path = \"/y\", weight = 0 }]",
            "variants[0]: weight: at least 1",
        ),
        (
            "variants = [{ path = \"/y\", method = \"G T\" }]",
            "variants[0]: `G T` is not an HTTP method",
        ),
        (
            "variants = [{ path = \"/y\", headers = { traceparent = \"x\" } }]",
            "variants[0]: headers: `traceparent`: faultline sets it",
        ),
        (
            "method = \"POST\"\nvariants = [{ path = \"/y\" }]",
            "`method` goes with `path`; each variant has its own",
        ),
    ];
    for (keys, says) in cases {
        let err = pathless(keys).unwrap_err();
        assert!(err.contains(says), "{keys}:\n{err}\nnot: {says}");
    }
}

/// What a hostile suite tried: weights that would fill memory, paths
/// that are no path, a header twice, a file that is no file.
#[test]
fn loads_that_would_crash_or_mislead_are_refused() {
    let cases = [
        (
            "variants = [{ path = \"/y\", weight = 4294967295 }, { path = \"/z\" }]",
            "variants: their weights add up to 4294967296, at most 10000",
        ),
        (
            "variants = [{ path = \"/s\u{e9} arch\" }]",
            "variants[0]: path: `/s\u{e9} arch` is not a URI path",
        ),
        (
            "variants = [{ path = \"search\" }]",
            "variants[0]: path: `search` does not start with `/`",
        ),
        (
            "path = \"/a?id={request_id}\"",
            "path: {request_id} goes in a header or the body, not the path",
        ),
        ("path = \"\"", "path: `` does not start with `/`"),
        (
            "path = \"/a\"\nheaders = { \"X-A\" = \"1\", \"x-a\" = \"2\" }",
            "headers: `x-a` is named twice (header names ignore case)",
        ),
        (
            "path = \"/a\"\nbody_file = \"/dev/zero\"",
            "not a regular file",
        ),
        ("path = \"/a\"\nbody_file = \"/\"", "not a regular file"),
    ];
    for (keys, says) in cases {
        let err = pathless(keys).unwrap_err();
        assert!(err.contains(says), "{keys}:\n{err}\nnot: {says}");
    }
}
