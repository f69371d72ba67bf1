//! Forwarding a request to an HTTP upstream: the request rewritten as a
//! reverse proxy does (hop-by-hop headers dropped, `Host` the upstream's),
//! both bodies streamed, connections to the upstream kept alive in a pool,
//! `https://` through rustls.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::HttpProxy;

/// How long connecting to the upstream may take before the call is a 502.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers that belong to one hop, never forwarded (RFC 9110 §7.6.1), besides
/// those a `Connection` header names.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// The upstream a URL names: scheme, authority, base path.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// Without a trailing `/`; empty for none.
    base_path: String,
}

impl Upstream {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("proxy: `{url}` is not a URL: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("proxy: `{url}` needs a scheme, http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!(
                "proxy: `{url}`: only http:// and https:// upstreams"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("proxy: `{url}` needs a host"))?;
        if uri.query().is_some() {
            return Err(format!("proxy: `{url}`: an upstream URL takes no query"));
        }
        Ok(Upstream {
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream URI for a request's path and query.
    fn uri(&self, request: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let tail = request.map_or("/", PathAndQuery::as_str);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{tail}", self.base_path))
            .build()
    }
}

/// Sends requests to one upstream through a keep-alive pool.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, Incoming>,
    upstream: Upstream,
    keep_host: bool,
}

impl Forwarder {
    /// A forwarder for `proxy`: its URL checked, its CA file read.
    pub(crate) fn new(proxy: &HttpProxy) -> Result<Self, String> {
        let upstream = Upstream::parse(&proxy.url)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &proxy.ca_file {
            let pem = read_ca_file(path)?;
            let certificates = CertificateDer::pem_slice_iter(&pem);
            let mut found = 0;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|e| format!("proxy.ca_file: `{}`: {e}", path.display()))?;
                roots
                    .add(certificate)
                    .map_err(|e| format!("proxy.ca_file: `{}`: {e}", path.display()))?;
                found += 1;
            }
            if found == 0 {
                return Err(format!(
                    "proxy.ca_file: `{}` holds no PEM certificate",
                    path.display()
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("proxy: TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Forwarder {
            client,
            upstream,
            keep_host: proxy.keep_host,
        })
    }

    /// Forwards the request: its method, path and query under the upstream's
    /// base path, its headers less the hop-by-hop ones (and `Host` set to the
    /// upstream's unless kept), its body as it streams in. The upstream's
    /// answer comes back with its hop-by-hop headers dropped.
    pub(crate) async fn send(
        &self,
        mut parts: http::request::Parts,
        body: Incoming,
    ) -> Result<Response<Incoming>, String> {
        parts.uri = self
            .upstream
            .uri(parts.uri.path_and_query())
            .map_err(|e| format!("cannot build the upstream URL: {e}"))?;
        parts.version = http::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        if !self.keep_host {
            if let Ok(host) = HeaderValue::from_str(self.upstream.authority.as_str()) {
                parts.headers.insert(header::HOST, host);
            }
        }
        let request = Request::from_parts(parts, body);
        let mut response = self
            .client
            .request(request)
            .await
            .map_err(|e| upstream_error(&self.upstream, &e))?;
        strip_hop_by_hop(response.headers_mut());
        Ok(response)
    }
}

/// A CA file's bytes: a regular file of at most [`MAX_CA_FILE`] bytes (a
/// path such as `/dev/zero` must not hang whoever configured it).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("proxy.ca_file: cannot read `{shown}`: {e}"))?;
    if !meta.is_file() || meta.len() > MAX_CA_FILE {
        return Err(format!(
            "proxy.ca_file: `{shown}` is not a PEM file of at most {MAX_CA_FILE} bytes"
        ));
    }
    std::fs::read(path).map_err(|e| format!("proxy.ca_file: cannot read `{shown}`: {e}"))
}

/// The largest CA file read.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// Why the upstream did not answer, with the cause hyper-util keeps inside.
fn upstream_error(upstream: &Upstream, error: &hyper_util::client::legacy::Error) -> String {
    let mut why = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    format!(
        "upstream {}://{}: {why}",
        upstream.scheme, upstream.authority
    )
}

/// Drops the hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    // Framing is the connection's: hyper sets it for the next hop.
    headers.remove(header::TRANSFER_ENCODING);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_need_a_scheme_and_host_and_keep_a_base_path() {
        let up = Upstream::parse("http://127.0.0.1:9000/api/").unwrap();
        let pq: PathAndQuery = "/orders?id=1".parse().unwrap();
        assert_eq!(
            up.uri(Some(&pq)).unwrap().to_string(),
            "http://127.0.0.1:9000/api/orders?id=1"
        );
        for (url, says) in [
            ("127.0.0.1:9000", "needs a scheme"),
            ("ftp://x", "only http:// and https://"),
            ("http://x/?a=1", "takes no query"),
            ("http:// x", "is not a URL"),
        ] {
            let err = Upstream::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-kept"));
    }
}
