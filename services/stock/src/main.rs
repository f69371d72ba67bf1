//! `stock-service`: a small HTTP service whose stock counts live in Redis,
//! for `suites/examples/redis-stock.toml` (faults between a service and its
//! real database). It holds a fixed pool of Redis connections, made at start
//! and remade by the client when they break, and bounds each query with a
//! timeout, so a slow or silent Redis makes it answer 503 fast instead of
//! piling requests up:
//!
//! - `GET /stock/{sku}`: `{"sku": "...", "count": N}` from `GET stock:{sku}`
//!   (0 when absent); 503 when Redis fails or takes longer than `--timeout`.
//! - `GET /health`: 200 `ok`, without touching Redis.
//!
//! ```sh
//! stock-service --listen 127.0.0.1:8080 --redis 127.0.0.1:6379 --pool 4 --timeout 250ms
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use redis::aio::ConnectionManager;

#[derive(Debug, Parser)]
#[command(version, about = "A small service whose stock counts live in Redis")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Redis, as host:port.
    #[arg(long, default_value = "127.0.0.1:6379")]
    redis: String,
    /// Connections to Redis, made at start and used in turn.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pool: u16,
    /// How long a Redis query may take before the request gets a 503.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// The pool: connections used in turn.
struct Stock {
    connections: Vec<ConnectionManager>,
    next: AtomicUsize,
    timeout: Duration,
}

impl Stock {
    async fn count(&self, sku: &str) -> Result<i64, String> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let mut connection = self.connections[at].clone();
        let mut command = redis::cmd("GET");
        command.arg(format!("stock:{sku}"));
        let query = command.query_async::<Option<i64>>(&mut connection);
        match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(count)) => Ok(count.unwrap_or(0)),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Err(_) => Err(format!("redis: no answer within {:?}", self.timeout)),
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if path == "/health" {
            return answer(StatusCode::OK, "ok".into());
        }
        let Some(sku) = path.strip_prefix("/stock/").filter(|s| !s.is_empty()) else {
            return answer(StatusCode::NOT_FOUND, "no such route".into());
        };
        match self.count(sku).await {
            Ok(count) => answer(
                StatusCode::OK,
                format!(r#"{{"sku": "{sku}", "count": {count}}}"#),
            ),
            Err(e) => answer(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match serve(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stock-service: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let client = redis::Client::open(format!("redis://{}/", args.redis))
        .map_err(|e| format!("--redis {}: {e}", args.redis))?;
    let mut connections = Vec::with_capacity(usize::from(args.pool));
    for _ in 0..args.pool {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_number_of_retries(2);
        connections.push(
            ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map_err(|e| format!("cannot connect to redis at {}: {e}", args.redis))?,
        );
    }
    let stock = Arc::new(Stock {
        connections,
        next: AtomicUsize::new(0),
        timeout: args.timeout,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let stock = Arc::clone(&stock);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let stock = Arc::clone(&stock);
                async move { Ok::<_, Infallible>(stock.handle(request).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .http1_only()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
