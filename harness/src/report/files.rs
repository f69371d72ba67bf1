//! Writing a run's reports into `--report-dir`: `report.json`,
//! `junit.xml`, `summary.md` and, per suite, endpoint and phase, the latency
//! histogram in the hdrhistogram crate's V2 serialisation (mergeable with
//! other runs' by any HdrHistogram implementation).

use std::io::Write;
use std::path::{Path, PathBuf};

use hdrhistogram::serialization::{Serializer, V2Serializer};

use super::json::Report;
use super::junit::junit;
use super::summary::summary;
use faultline_properties::Observations;

/// Writes every report for `report` into `dir` (created if needed), with the
/// histograms of each suite's `observations` (in the order of its suites).
pub fn write(
    dir: &Path,
    report: &Report,
    observations: &[&Observations],
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    written.push(put(dir.join("report.json"), json.as_bytes())?);
    written.push(put(
        dir.join("junit.xml"),
        junit(&report.suites).as_bytes(),
    )?);
    let markdown = summary(report);
    written.push(put(dir.join("summary.md"), markdown.as_bytes())?);
    if let Some(step) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(step)?;
        file.write_all(markdown.as_bytes())?;
    }
    for (suite, seen) in report.suites.iter().zip(observations) {
        for (endpoint, by_phase) in &seen.edge_stats {
            for (phase, stats) in by_phase {
                let mut bytes = Vec::new();
                V2Serializer::new()
                    .serialize(&stats.latency_us, &mut bytes)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let name = format!(
                    "{}.{}.{}.hdr",
                    file_safe(&suite.name),
                    file_safe(endpoint),
                    file_safe(phase)
                );
                let histograms = dir.join("histograms");
                std::fs::create_dir_all(&histograms)?;
                written.push(put(histograms.join(name), &bytes)?);
            }
        }
    }
    Ok(written)
}

fn put(path: PathBuf, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Letters, digits, `-` and `_` kept; anything else becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
