//! The in-process dependency over a `tokio::io::duplex` pipe, so a stack built
//! on a hyper or hyper-util client is tested unchanged: each connection is
//! served by the fault server's own HTTP/1 connection code, connection faults
//! included.

use std::future::{ready, Ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;

use crate::dataplane::serve_connection;
use crate::dependency::Dependency;

/// Bytes a pipe buffers each way before a writer waits.
const PIPE_BUFFER: usize = 64 * 1024;

/// Connects to an in-process dependency (see
/// [`InProcessDependency::connector`](crate::InProcessDependency::connector)).
/// Must be called within a tokio runtime: each connection's server side runs
/// on a task of its own.
///
/// ```
/// use fault_server::{DependencySpec, InProcessDependency};
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let crm = InProcessDependency::new(&DependencySpec::stub("crm"), 0).unwrap();
/// let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
///     Client::builder(TokioExecutor::new()).build(crm.connector());
/// // The host is not looked up: every connection reaches `crm`.
/// let response = client.get("http://crm/accounts".parse().unwrap()).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(crm.calls()[0].path, "/accounts");
/// # }
/// ```
#[derive(Clone)]
pub struct DuplexConnector {
    dependency: Arc<Dependency>,
}

impl std::fmt::Debug for DuplexConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuplexConnector")
            .field("dependency", &self.dependency.name)
            .finish()
    }
}

impl DuplexConnector {
    pub(super) fn new(dependency: Arc<Dependency>) -> Self {
        DuplexConnector { dependency }
    }

    /// A new connection to the dependency.
    pub fn connect(&self) -> DuplexIo {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        tokio::spawn(serve_connection(server, Arc::clone(&self.dependency), None));
        DuplexIo {
            inner: TokioIo::new(client),
        }
    }
}

impl tower::Service<http::Uri> for DuplexConnector {
    type Response = DuplexIo;
    type Error = io::Error;
    type Future = Ready<io::Result<DuplexIo>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        ready(Ok(self.connect()))
    }
}

/// The client's end of a pipe to an in-process dependency, as hyper reads and writes it.
#[derive(Debug)]
pub struct DuplexIo {
    inner: TokioIo<DuplexStream>,
}

impl Read for DuplexIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl Write for DuplexIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Connection for DuplexIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
