//! `faultline run --report-dir`: report.json against its schema, junit.xml
//! parsed back, summary.md (and the step summary), the histograms.

use std::path::PathBuf;
use std::time::Duration;

use quick_xml::events::Event;

use crate::common::{faultline, faultline_with, scratch, write_suite, Outcome, BIN};
use crate::run::target;

const SCHEMA: &str = include_str!("../../report.schema.json");

/// Suite `name`, one baseline phase, with `expect`, written as `reports-<name>.toml`.
fn suite(name: &str, expect: &str) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\n[target]\n\n[[dependencies]]\nname = \"payments\"\n\n\
         [[load]]\nendpoint = \"checkout\"\npath = \"/checkout\"\nrate = 50.0\n\n\
         [[phases]]\nname = \"baseline\"\nduration = \"600ms\"\n\n{expect}"
    );
    write_suite(&format!("reports-{name}"), &text)
}

fn valid(json: &str) -> serde_json::Value {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{json}");
    report
}

/// Each test case: (name, classname, failure body or skipped message, if any).
fn junit_cases(xml: &str) -> Vec<(String, String, Option<String>)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut text_of = None::<String>;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |key: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == key)
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    b"testcase" => {
                        cases.push((attr(b"name").unwrap(), attr(b"classname").unwrap(), None))
                    }
                    b"failure" => text_of = Some(String::new()),
                    b"skipped" => {
                        cases.last_mut().unwrap().2 =
                            Some(format!("skipped: {}", attr(b"message").unwrap()));
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(text) = &mut text_of {
                    text.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(text) = &mut text_of {
                    let name = r.decode().unwrap();
                    text.push_str(match name.as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unexpected entity {other}"),
                    });
                }
            }
            Event::End(e) if e.name().as_ref() == b"failure" => {
                cases.last_mut().unwrap().2 = text_of.take();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_run_writes_every_report() {
    let dir = scratch("reports-pass");
    let url = format!("http://{}", target(Duration::from_millis(2)).await);
    let path = suite(
        "holds",
        "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.99\nphase = \"baseline\"\n",
    );
    let reports = dir.join("out");
    let step_summary = dir.join("step-summary.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let ran = faultline_with(
        [
            "run",
            path.to_str().unwrap(),
            "--target-url",
            &url,
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        [("GITHUB_STEP_SUMMARY", &step_summary)],
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");

    let report = valid(&std::fs::read_to_string(reports.join("report.json")).unwrap());
    assert_eq!(report["outcome"], "pass");
    let suite = &report["suites"][0];
    assert_eq!(suite["name"], "holds");
    let checkout = &suite["endpoints"][0];
    assert_eq!(checkout["endpoint"], "checkout");
    assert_eq!(checkout["requests"], 30, "50/s for 600 ms");
    assert_eq!(suite["verdicts"][0]["outcome"], "pass");

    let cases = junit_cases(&std::fs::read_to_string(reports.join("junit.xml")).unwrap());
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].1, "holds");
    assert_eq!(cases[0].2, None, "a pass has no failure");

    let summary = std::fs::read_to_string(reports.join("summary.md")).unwrap();
    assert!(
        summary.contains("| holds | success_rate") && summary.contains("| pass |"),
        "{summary}"
    );
    let appended = std::fs::read_to_string(&step_summary).unwrap();
    assert!(appended.starts_with("earlier step\n") && appended.ends_with(&summary));

    // The histogram reads back, every request in it.
    let bytes = std::fs::read(reports.join("histograms/holds.checkout.baseline.hdr")).unwrap();
    let histogram: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap();
    assert_eq!(histogram.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_reports_its_evidence_and_json_output_is_the_report() {
    let dir = scratch("reports-fail");
    let url = format!("http://{}", target(Duration::from_millis(2)).await);
    let too_fast = "[[expect]]\nproperty = \"latency\"\npercentile = 99\nat_most = \"1us\"\nphase = \"baseline\"\n";
    let thin = "[[expect]]\nproperty = \"max_in_flight\"\ndependency = \"payments\"\nat_most = 3\nphase = \"baseline\"\n";
    // The same property twice: JUnit readers drop duplicate names.
    let path = suite("breaks", &format!("{too_fast}\n{too_fast}\n{thin}"));
    let reports = dir.join("out");
    let ran = faultline(&[
        "run",
        path.to_str().unwrap(),
        "--target-url",
        &url,
        "--report-dir",
        reports.to_str().unwrap(),
        "--output",
        "json",
    ])
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let printed = valid(&ran.stdout);
    let written = valid(&std::fs::read_to_string(reports.join("report.json")).unwrap());
    assert_eq!(
        printed["suites"][0]["verdicts"],
        written["suites"][0]["verdicts"]
    );
    assert_eq!(written["outcome"], "fail");
    let verdict = &written["suites"][0]["verdicts"][0];
    assert!(
        verdict["evidence"]["observed"]["duration_ms"]
            .as_f64()
            .unwrap()
            > 0.001
    );
    assert_eq!(verdict["evidence"]["threshold"]["duration_ms"], 0.001);

    let cases = junit_cases(&std::fs::read_to_string(reports.join("junit.xml")).unwrap());
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert_ne!(names[0], names[1], "unique names: {names:?}");
    let body = cases[0].2.as_deref().unwrap();
    for line in [
        "observed: ",
        "threshold: ",
        "phase: baseline",
        "samples: 30",
        "witness: ",
    ] {
        assert!(body.contains(line), "{line} in {body}");
    }
    let skipped = cases[2].2.as_deref().unwrap();
    assert!(
        skipped.starts_with("skipped: no call reached `payments`"),
        "{skipped}"
    );
}

/// Live progress appears on a terminal (here a pseudo-terminal from
/// util-linux's `script`, in Debian's essential bsdutils), and never when
/// standard output is a pipe or with `--quiet`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_on_a_terminal_only() {
    let url = format!("http://{}", target(Duration::from_millis(2)).await);
    let path = suite(
        "watched",
        "[[expect]]\nproperty = \"success_rate\"\nat_least = 0.99\nphase = \"baseline\"\n",
    );
    let command = |extra: &str| format!("{BIN} run {} --target-url {url} {extra}", path.display());
    let on_terminal = |line: String| async move {
        let output = tokio::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .output()
            .await
            .expect("util-linux script");
        Outcome::from(output).stdout
    };
    let shown = on_terminal(command("")).await;
    assert!(
        shown.contains("watched: baseline") && shown.contains("in flight: payments"),
        "{shown}"
    );
    let quiet = on_terminal(command("--quiet")).await;
    assert!(!quiet.contains("in flight:"), "{quiet}");
    assert!(quiet.contains("success_rate"), "{quiet}");
    let piped = faultline(&["run", path.to_str().unwrap(), "--target-url", &url]).await;
    assert!(
        !piped.stdout.contains("in flight:") && !piped.stderr.contains("in flight:"),
        "{}",
        piped.printed()
    );
}
