//! The data plane: each dependency's listener, its HTTP/1 connections, and the
//! connection-level faults (reset, close, malformed) that take a connection
//! back from hyper.

mod body;
mod limits;
pub(crate) mod precise_sleep;
mod refused;
mod service;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dependency::Dependency;
use crate::fault::ConnAction;
pub use limits::{control_max_connections, default_max_connections, RESERVED_DESCRIPTORS};
pub(crate) use limits::{Activity, ConnectionLimits};
use service::DependencyService;

/// Pending connections the kernel queues per listener: enough for thousands of
/// clients connecting at once (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 8192;

/// Binds a listening socket with a deep backlog. Synchronous, so the control
/// thread can add a dependency without running on the data plane's runtime.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves a stub's or an HTTP proxy's connections until `stop` is cancelled
/// ([`accept`]).
pub(crate) async fn serve(
    listener: TcpListener,
    dependency: Arc<Dependency>,
    stop: CancellationToken,
    limits: ConnectionLimits,
) {
    let idle_timeout = limits.idle_timeout;
    accept(
        listener,
        dependency,
        stop,
        limits,
        move |stream, dependency| serve_connection(stream, dependency, idle_timeout),
    )
    .await;
}

/// Accepts connections until `stop` is cancelled; each is handed to
/// `serve_one` on its own task, owned by this one so that stopping aborts
/// them all. (A per-connection wait on `stop` would take the token's shared
/// lock on every wake-up.) A connection beyond the server's cap
/// ([`ConnectionLimits`]) is reset at once and counted. Every kind of
/// dependency accepts this way.
pub(crate) async fn accept<F, Served>(
    listener: TcpListener,
    dependency: Arc<Dependency>,
    stop: CancellationToken,
    limits: ConnectionLimits,
    serve_one: F,
) where
    F: Fn(TcpStream, Arc<Dependency>) -> Served,
    Served: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            Some(_) = connections.join_next() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let Some(permit) = limits.admit() else {
                    stream.reset_on_close();
                    dependency.refuse_connection();
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let served = serve_one(stream, Arc::clone(&dependency));
                connections.spawn(async move {
                    served.await;
                    drop(permit);
                });
            }
            // Out of file descriptors or a connection that died in the queue:
            // back off briefly rather than spin; the listener stays up.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// A connection's byte stream: a TCP socket, or one end of an in-process
/// duplex pipe (see [`crate::InProcessDependency::connector`]).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Makes the coming close a reset, where the stream knows the difference.
    fn reset_on_close(&self) {}
}

impl Stream for TcpStream {
    fn reset_on_close(&self) {
        // SO_LINGER 0 turns close into an RST.
        let _ = SockRef::from(self).set_linger(Some(Duration::ZERO));
    }
}

/// A pipe has no reset: dropping it is the closest, the peer reads an abrupt end.
impl Stream for tokio::io::DuplexStream {}

/// Serves one connection until it ends, a connection fault takes it over,
/// or (with `idle_timeout`) it has been idle that long.
pub(crate) async fn serve_connection<S: Stream>(
    stream: S,
    dependency: Arc<Dependency>,
    idle_timeout: Option<Duration>,
) {
    let (takeover_tx, mut takeover_rx) = oneshot::channel();
    let service = DependencyService::new(Arc::clone(&dependency), takeover_tx);
    let link = Arc::clone(service.link());
    let idle = async {
        match idle_timeout {
            Some(timeout) => link.activity.idle_for(timeout, dependency.clock).await,
            None => std::future::pending().await,
        }
    };
    // No header-read timeout: a stand-in dependency must not close a client's
    // idle pooled connection unless a fault says so.
    let mut connection = http1::Builder::new()
        .header_read_timeout(None)
        .max_headers(refused::MAX_HEADERS)
        .max_buf_size(refused::MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let action = tokio::select! {
        biased;
        ended = &mut connection => {
            // A request hyper refused (and answered itself) is a call too.
            if let Some(status) = ended.err().as_ref().and_then(refused::refusal) {
                refused::journal(&dependency, status);
            }
            return;
        }
        action = &mut takeover_rx => match action {
            Ok(action) => action,
            Err(_) => return,
        },
        () = idle => return,
    };
    // The service asked for the raw socket: the call it was serving is dropped
    // here, which journals it with the outcome it expected.
    let stream = connection.into_parts().io.into_inner();
    perform(action, stream).await;
}

async fn perform<S: Stream>(action: ConnAction, mut stream: S) {
    match action {
        ConnAction::Reset => stream.reset_on_close(),
        ConnAction::Close => {
            let _ = stream.shutdown().await;
        }
        ConnAction::Malformed(bytes) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
            let _ = stream.shutdown().await;
        }
    }
}
