//! `faultline serve`, the README's main command for now, run as a user runs it.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::{faultline, spawn_reporting, BIN};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fault-server/examples/dependencies.toml"
);

#[tokio::test]
async fn serve_runs_the_example_config_until_sigterm() {
    let (mut child, started) = spawn_reporting(tokio::process::Command::new(BIN).args([
        "serve",
        "--config",
        EXAMPLE,
        "--control",
        "127.0.0.1:0",
    ]))
    .await;
    let payments = started["dependencies"]["payments"].as_str().unwrap();
    let mut stream = std::net::TcpStream::connect(payments).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"POST /charge HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status": "paid"}"#), "{answer}");

    std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
}

#[tokio::test]
async fn serve_refuses_an_invalid_config_with_exit_code_2() {
    let ran = faultline(["serve", "--config", "/nonexistent.toml"]).await;
    assert_eq!(ran.code, Some(2));
    let ran = faultline(["frobnicate"]).await;
    assert_eq!(ran.code, Some(2));
}
