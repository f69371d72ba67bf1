//! `fault-server --config FILE`: the fault server as a process. `faultline
//! serve` reuses [`ServeArgs`] and [`serve`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use std::collections::BTreeMap;

use crate::{ConfigError, FaultServer, ServerConfig, StartError};

/// Arguments of the fault server process.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML file naming the dependencies and their initial faults [default: none].
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "toxiproxy_config"
    )]
    pub config: Option<PathBuf>,
    /// A Toxiproxy config file (a JSON array of proxies) to create at start,
    /// as `toxiproxy-server -config` does.
    #[arg(long, value_name = "FILE")]
    pub toxiproxy_config: Option<PathBuf>,
    /// Control API address [default: the file's control.listen, else 127.0.0.1:8474].
    #[arg(long, value_name = "ADDR")]
    pub control: Option<SocketAddr>,
    /// Seed for every random decision [default: the file's seed, else random; printed at start].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Bearer token the control API requires; needed to bind it beyond loopback.
    #[arg(long, env = "FAULT_SERVER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A host name the control API answers to beside its address and
    /// `localhost` (repeatable); other `Host` headers are refused (DNS rebinding).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_host: Vec<String>,
}

/// Why the process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration file is invalid (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server could not start (exit code 1).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The Toxiproxy config file cannot be read or is invalid (exit code 2).
    #[error("{path}: {message}")]
    Toxiproxy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Waiting for a signal failed (exit code 1).
    #[error("cannot wait for signals: {0}")]
    Signals(#[source] std::io::Error),
}

impl ServeError {
    /// 2 for an invalid configuration, as for bad usage; 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ServeError::Config(_) | ServeError::Toxiproxy { .. } => ExitCode::from(2),
            ServeError::Start(_) | ServeError::Signals(_) => ExitCode::from(1),
        }
    }
}

/// The line printed on start, so a script can find the bound ports.
#[derive(Serialize)]
struct Started<'a> {
    version: &'a str,
    seed: u64,
    control: Option<SocketAddr>,
    dependencies: BTreeMap<String, SocketAddr>,
}

/// Loads the file, starts the server, prints one JSON line with the bound
/// addresses, and serves until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    let seed = args.seed.or(config.seed).unwrap_or_else(random_seed);
    let control = args
        .control
        .or(config.control.as_ref().map(|c| c.listen))
        .unwrap_or(FaultServer::DEFAULT_CONTROL);
    let mut builder = FaultServer::builder()
        .on_current_runtime()
        .seed(seed)
        .control(control);
    if let Some(capacity) = config.journal_capacity {
        builder = builder.journal_capacity(capacity);
    }
    if let Some(connections) = config.max_connections {
        builder = builder.max_connections(connections);
    }
    if let Some(timeout) = config.idle_timeout {
        builder = builder.idle_timeout(timeout);
    }
    if let Some(token) = args.token {
        builder = builder.token(token);
    }
    for name in args.allow_host {
        builder = builder.allow_host(name);
    }
    for spec in config.dependencies {
        builder = builder.dependency(spec.into_inner());
    }
    let server = builder.start()?;
    if let Some(path) = &args.toxiproxy_config {
        let toxiproxy = |message: String| ServeError::Toxiproxy {
            path: path.clone(),
            message,
        };
        let json = read_small(path).map_err(|e| toxiproxy(e.to_string()))?;
        server
            .populate_toxiproxy(&json)
            .map_err(|e| toxiproxy(e.to_string()))?;
    }
    let started = Started {
        version: env!("CARGO_PKG_VERSION"),
        seed,
        control: server.control_addr(),
        dependencies: server.addrs(),
    };
    println!("{}", serde_json::to_string(&started).unwrap_or_default());
    wait_for_signal().await.map_err(ServeError::Signals)?;
    server.shutdown();
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// A config file: a regular file of at most 16 MiB (not a FIFO or a device
/// that would hold the start forever).
fn read_small(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const LIMIT: u64 = 16 << 20;
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() || metadata.len() > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file of at most 16 MiB",
        ));
    }
    let mut json = Vec::new();
    file.take(LIMIT).read_to_end(&mut json)?;
    Ok(json)
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
