//! The control API: JSON over HTTP on its own thread and current-thread
//! runtime, so it answers while the data plane's workers are saturated.
//!
//! Routing is a `match` on method and path segments: a dozen fixed routes do
//! not warrant a web framework, and the match shows the whole API in one place
//! ([`routes`]).

mod admit;
#[cfg(feature = "metrics")]
mod metrics;
mod problem;
mod routes;
pub(crate) mod toxiproxy;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;
pub(crate) use admit::is_loopback;
use admit::Access;
#[cfg(feature = "fuzzing")]
pub(crate) use routes::answer;

/// A dependency may listen beyond loopback only on a server with a token
/// (403): `POST /dependencies` and the Toxiproxy routes alike.
pub(crate) fn check_listen(listen: SocketAddr, tokened: bool) -> Result<(), problem::Problem> {
    if is_loopback(listen.ip()) || tokened {
        return Ok(());
    }
    Err(problem::Problem::new(
        http::StatusCode::FORBIDDEN,
        format!("listen: {listen} is reachable beyond this machine: start the fault server with a token (--token) to listen there, or listen on 127.0.0.1"),
    ))
}

/// What every control request sees.
#[derive(Debug)]
pub(crate) struct ControlContext {
    pub(crate) registry: Arc<Registry>,
    pub(crate) access: Access,
}

/// The running control API.
#[derive(Debug)]
pub(crate) struct ControlHandle {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl ControlHandle {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    pub(crate) fn stop_and_join(mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` and serves the control API on a thread of its own. With
/// `token`, every request needs it; `allow_hosts` are names accepted in
/// `Host` beside the bound address and `localhost` (see `admit.rs`).
pub(crate) fn spawn(
    registry: Arc<Registry>,
    addr: SocketAddr,
    token: Option<String>,
    allow_hosts: &[String],
) -> io::Result<ControlHandle> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = registry.shutdown_token().child_token();
    let access = Access {
        bound: local,
        token,
        allow_hosts: allow_hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
    };
    let context = Arc::new(ControlContext { registry, access });
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("fault-server-control".into())
        .spawn(move || runtime.block_on(serve(listener, context, thread_stop)))?;
    Ok(ControlHandle {
        addr: local,
        stop,
        thread: Some(thread),
    })
}

/// How long a control connection may take to send a request's head (and,
/// with hyper's timer, how long one may sit idle between requests).
const CONTROL_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve(
    listener: std::net::TcpListener,
    context: Arc<ControlContext>,
    stop: CancellationToken,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let cap = crate::dataplane::control_max_connections();
    let mut open: std::collections::VecDeque<tokio::task::AbortHandle> =
        std::collections::VecDeque::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        // At most `control_max_connections` at once (within the descriptors
        // the data plane leaves): a new one evicts the oldest, so a flood of
        // idle or half-open connections cannot lock a real client out.
        open.retain(|task| !task.is_finished());
        if open.len() >= cap {
            if let Some(oldest) = open.pop_front() {
                oldest.abort();
            }
        }
        let _ = stream.set_nodelay(true);
        let context = Arc::clone(&context);
        let stop = stop.clone();
        let task = tokio::spawn(async move {
            let service = service_fn(move |request| routes::handle(Arc::clone(&context), request));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(CONTROL_HEADER_TIMEOUT)
                .max_headers(admit::HYPER_MAX_HEADERS)
                .max_buf_size(admit::HYPER_MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
        });
        open.push_back(task.abort_handle());
    }
}
