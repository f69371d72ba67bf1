//! The `fault-server` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{start_line, BIN};

#[test]
fn an_invalid_config_exits_2_naming_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("fault-server-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"[[dependencies]]\nname = \"crm\"\n\n[[dependencies.faults]]\nlatency = { fixd = \"8s\" }\n")
        .unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{}:5:13: unknown variant `fixd`", path.display())),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_file_exits_2_and_missing_arguments_exit_2() {
    let output = Command::new(BIN)
        .args(["--config", "/nonexistent/deps.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
    let output = Command::new(BIN).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn it_prints_its_addresses_serves_and_stops_cleanly_on_sigterm() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dependencies.toml");
    let mut child = Command::new(BIN)
        .args([
            "--config",
            example,
            "--control",
            "127.0.0.1:0",
            "--seed",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = start_line(&mut child);
    assert_eq!(started["seed"], 5);
    let control = started["control"].as_str().unwrap();
    let catalog = started["dependencies"]["catalog"].as_str().unwrap();
    assert_ne!(catalog, "127.0.0.1:0");
    let health = http_get(control, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let items = http_get(catalog, "/items");
    assert!(
        items.starts_with("HTTP/1.1 200") && items.ends_with(r#"{"items": []}"#),
        "{items}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_toxiproxy_config_file_is_populated_at_start_and_a_bad_one_exits_2() {
    let dir = std::env::temp_dir().join(format!("fault-server-toxi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("toxiproxy.json");
    std::fs::write(
        &good,
        br#"[{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379", "enabled": true}]"#,
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("--toxiproxy-config")
        .arg(&good)
        .args(["--control", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = start_line(&mut child);
    let control = started["control"].as_str().unwrap().to_owned();
    assert!(started["dependencies"]["redis"].is_string(), "{started}");
    let proxies = http_get(&control, "/proxies");
    assert!(
        proxies.starts_with("HTTP/1.1 200") && proxies.contains(r#""upstream":"127.0.0.1:6379""#),
        "{proxies}"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let bad = dir.join("bad.json");
    std::fs::write(&bad, br#"[{"name": "redis"}]"#).unwrap();
    let output = Command::new(BIN)
        .arg("--toxiproxy-config")
        .arg(&bad)
        .args(["--control", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: proxies: missing required field: upstream at proxy 1",
            bad.display()
        )),
        "{stderr}"
    );
    let output = Command::new(BIN)
        .args([
            "--toxiproxy-config",
            "/dev/zero",
            "--control",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a device is refused, not read forever"
    );
}
