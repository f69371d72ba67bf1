//! Entry points for the fuzz targets in `fuzz/`, behind the `fuzzing`
//! feature. Not a stable API: everything here exists so that a fuzz target
//! calls the very code a socket would reach, without the socket.

use bytes::Bytes;
use futures_util::FutureExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;

use crate::FaultServer;

/// Answers one control API request (`target` is the path and query) with
/// `body`, as the control API of `server` would once it admitted the request
/// and read its body: the same routes, JSON parsing, validation and registry
/// operations. It answers as an API without a token, so `POST /dependencies`
/// binds only loopback addresses.
///
/// ```
/// use fault_server::{fuzzing, DependencySpec, FaultServer};
/// use http::Method;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = FaultServer::builder().dependency(DependencySpec::stub("crm")).start()?;
/// let (status, body) = fuzzing::answer_control(&server, &Method::POST, "/dependencies/crm/faults", br#"{"latency": {"fixd": "8s"}}"#);
/// assert_eq!(status, 400);
/// assert!(String::from_utf8_lossy(&body).contains("fixd"));
/// let (status, _) = fuzzing::answer_control(&server, &Method::POST, "/dependencies/crm/faults", br#"{"latency": {"fixed": "8s"}}"#);
/// assert_eq!(status, 201);
/// assert_eq!(server.dependency("crm")?.faults.len(), 1);
/// # Ok(())
/// # }
/// ```
pub fn answer_control(
    server: &FaultServer,
    method: &Method,
    target: &str,
    body: &[u8],
) -> (StatusCode, Bytes) {
    let reply = crate::control::answer(server.registry(), method, target, body);
    let status = reply.status();
    // A `Full` body is ready at once.
    let bytes = reply
        .into_body()
        .collect()
        .now_or_never()
        .and_then(Result::ok)
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    (status, bytes)
}
