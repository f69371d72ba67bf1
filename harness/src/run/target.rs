//! A target the harness starts itself: templated command, readiness probe,
//! stopped when the run ends.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use super::plan::CommandTarget;

/// A started target; dropping it kills the process (a command's whole
/// process group).
#[derive(Debug)]
pub struct Started {
    /// Where it listens.
    pub base_url: String,
    _child: Process,
}

/// A target's process. A command runs in a process group of its own, killed
/// whole when this is dropped: a command that starts the service as a child
/// (`cargo run`, a shell script) leaves nothing behind.
#[derive(Debug)]
struct Process {
    child: Child,
    group: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let (true, Some(pid)) = (self.group, pid) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        // The child itself goes with kill_on_drop.
    }
}

/// Why a target did not start.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No free port could be had for it.
    #[error("no free loopback port for the target: {0}")]
    Port(#[source] std::io::Error),
    /// The command could not be run.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited or did not answer its readiness probe in time.
    #[error("`{program}` did not answer {url} within {}{exited}", humantime::format_duration(*timeout))]
    NotReady {
        /// The program.
        program: String,
        /// The probe URL.
        url: String,
        /// The time allowed.
        timeout: Duration,
        /// How it exited, if it did.
        exited: String,
    },
}

fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
    values.iter().fold(text.to_owned(), |text, (name, value)| {
        text.replace(&format!("{{{name}}}"), value)
    })
}

/// Starts `target`'s command with `{port}` and each dependency's URL filled in,
/// and waits until it answers its readiness probe.
pub async fn start(
    target: &CommandTarget,
    dependency_urls: &BTreeMap<String, String>,
) -> Result<Started, TargetError> {
    // A port the kernel just handed out and we let go of: the target binds it
    // next. Another process could take it first; on loopback in a test run
    // that is rare, and the readiness probe then fails with a clear error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(TargetError::Port)?
        .port();
    let mut values = dependency_urls.clone();
    for (name, url) in dependency_urls {
        // `{db.addr}`: host:port, for a client that takes no URL (a TCP
        // proxy's, in front of a database).
        let addr = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        values.insert(
            format!("{name}.addr"),
            addr.trim_end_matches('/').to_owned(),
        );
    }
    values.insert("port".to_owned(), port.to_string());
    let command = &target.command;
    let program = fill(&command[0], &values);
    let mut process = Command::new(&program);
    process
        .args(command[1..].iter().map(|arg| fill(arg, &values)))
        .envs(target.env.iter().map(|(k, v)| (k, fill(v, &values))))
        .process_group(0);
    let mut child = Process {
        child: spawn(&mut process, &program, (Stdio::null(), Stdio::null()))?,
        group: true,
    };
    let base_url = format!("http://127.0.0.1:{port}");
    let url = format!("{base_url}{}", target.ready);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let deadline = tokio::time::Instant::now() + target.ready_timeout;
    loop {
        if let Ok(Some(status)) = child.child.try_wait() {
            return Err(TargetError::NotReady {
                program,
                url,
                timeout: target.ready_timeout,
                exited: format!(": it exited with {status}"),
            });
        }
        if let Ok(uri) = url.parse() {
            let probe = tokio::time::timeout(Duration::from_secs(1), client.get(uri)).await;
            if matches!(probe, Ok(Ok(ref answer)) if answer.status().as_u16() < 500) {
                return Ok(Started {
                    base_url,
                    _child: child,
                });
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TargetError::NotReady {
                program,
                url,
                timeout: target.ready_timeout,
                exited: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The demo shop in `profile`, as a child process of this binary (`faultline
/// demo serve`) on a port of its own choosing, told the URLs of the
/// dependencies it knows of among `dependency_urls` (and `alerts` for its
/// alert webhook). It reports its address on its first line of output.
pub async fn start_demo(
    profile: faultline_demo::Profile,
    dependency_urls: &BTreeMap<String, String>,
) -> Result<Started, TargetError> {
    let program = std::env::current_exe()
        .map_err(|source| TargetError::Spawn {
            program: "faultline".into(),
            source,
        })?
        .to_string_lossy()
        .into_owned();
    let mut process = Command::new(&program);
    // The demo exits when its standard input closes: the pipe's other end is
    // held by the returned child, so the demo dies with this process, even
    // one killed by SIGKILL (when kill_on_drop never runs).
    process.args([
        "demo",
        "serve",
        "--exit-with-parent",
        "--profile",
        &profile.to_string(),
    ]);
    for name in faultline_demo::DEPENDENCIES {
        if let Some(url) = dependency_urls.get(name) {
            process.arg(format!("--{name}")).arg(url);
        }
    }
    if let Some(url) = dependency_urls.get("alerts") {
        process.arg("--alert-url").arg(url);
    }
    let mut child = spawn(&mut process, &program, (Stdio::piped(), Stdio::piped()))?;
    let not_ready = |exited: String| TargetError::NotReady {
        program: format!("{program} demo serve"),
        url: "its address on standard output".into(),
        timeout: DEMO_READY,
        exited,
    };
    let Some(stdout) = child.stdout.take() else {
        return Err(not_ready(String::new()));
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(DEMO_READY, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        _ => {
            let status = child.try_wait().ok().flatten();
            return Err(not_ready(
                status.map_or_else(String::new, |s| format!(": it exited with {s}")),
            ));
        }
    };
    let addr = serde_json::from_str::<serde_json::Value>(&line)
        .ok()
        .and_then(|v| v.get("addr")?.as_str().map(str::to_owned))
        .ok_or_else(|| not_ready(format!(": it printed `{line}`")))?;
    Ok(Started {
        base_url: format!("http://{addr}"),
        _child: Process {
            child,
            group: false,
        },
    })
}

/// Spawns `process` without input or error output, killed when dropped.
fn spawn(
    process: &mut Command,
    program: &str,
    (stdin, stdout): (Stdio, Stdio),
) -> Result<Child, TargetError> {
    process
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .kill_on_drop(true);
    process.spawn().map_err(|source| TargetError::Spawn {
        program: program.to_owned(),
        source,
    })
}

/// How long the demo may take to report its address.
const DEMO_READY: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plan::placeholders;

    #[test]
    fn placeholders_are_found_and_filled() {
        let text = "--payments={payments} --listen=127.0.0.1:{port}";
        assert_eq!(placeholders(text).collect::<Vec<_>>(), ["payments", "port"]);
        let values = BTreeMap::from([
            ("payments".to_owned(), "http://127.0.0.1:9".to_owned()),
            ("port".to_owned(), "80".to_owned()),
        ]);
        assert_eq!(
            fill(text, &values),
            "--payments=http://127.0.0.1:9 --listen=127.0.0.1:80"
        );
    }
}
