//! Proxy dependencies: the fault server in front of a real dependency
//! instead of answering for it. [`HttpProxy`] forwards each request to an
//! HTTP upstream, with the same per-request faults, journal and properties
//! as a stub.

mod http;
pub(crate) mod tcp;

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

pub(crate) use http::Forwarder;

/// `proxy`: forward every request to an HTTP upstream rather than answer it.
/// Written as the upstream's URL, or a table with options:
///
/// ```
/// # #[derive(serde::Deserialize)] struct D { proxy: fault_server::HttpProxy }
/// let short: D = toml::from_str(r#"proxy = "http://127.0.0.1:9000""#).unwrap();
/// let long: D = toml::from_str(
///     r#"proxy = { url = "https://payments.internal", keep_host = true, ca_file = "ca.pem" }"#,
/// ).unwrap();
/// assert_eq!(short.proxy.url, "http://127.0.0.1:9000");
/// assert!(long.proxy.keep_host);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpProxy {
    /// `http://host:port` or `https://host:port`, optionally with a base path
    /// that every request's path is appended to.
    pub url: String,
    /// Send the client's `Host` header upstream (default: the upstream's
    /// host and port, as a reverse proxy does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_host: bool,
    /// A PEM file of CA certificates trusted for an `https://` upstream, beside
    /// the web PKI roots (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl HttpProxy {
    /// A proxy to `url` with the default options.
    pub fn to(url: impl Into<String>) -> Self {
        HttpProxy {
            url: url.into(),
            keep_host: false,
            ca_file: None,
        }
    }

    /// Checks the URL (and reads the CA file): what [`Forwarder::new`] needs.
    pub(crate) fn validate(&self) -> Result<(), String> {
        http::Upstream::parse(&self.url).map(drop)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyTable {
    url: String,
    #[serde(default)]
    keep_host: bool,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for HttpProxy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProxyVisitor;
        impl<'de> Visitor<'de> for ProxyVisitor {
            type Value = HttpProxy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "the upstream's URL, or a table with `url` (and `keep_host`, `ca_file`)",
                )
            }
            fn visit_str<E: de::Error>(self, url: &str) -> Result<HttpProxy, E> {
                Ok(HttpProxy::to(url))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HttpProxy, A::Error> {
                let table = ProxyTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(HttpProxy {
                    url: table.url,
                    keep_host: table.keep_host,
                    ca_file: table.ca_file,
                })
            }
        }
        deserializer.deserialize_any(ProxyVisitor)
    }
}
