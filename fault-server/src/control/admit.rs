//! Who may use the control API: requests addressed to it by a name it
//! answers to, not from a web page, within its size limits, and with the
//! token when one is set.
//!
//! - `Host` must name the bound address: its IP (an IPv4-mapped IPv6 address
//!   counts as the IPv4 one; any IP when bound to `0.0.0.0` or `::`),
//!   `localhost`, or a name given with `--allow-host`, with the bound port.
//!   A web page on another name resolving to this address (DNS rebinding:
//!   `Host: evil.example`) gets 403.
//! - A cross-site browser request gets 403: an `Origin` whose host and port
//!   are not allowed as above, or `Sec-Fetch-Site: cross-site` / `same-site`;
//!   so does a `User-Agent` starting with `Mozilla/`.
//! - More than [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] of them get
//!   431, a URI over [`MAX_URI_BYTES`] 414, each with a JSON body. (hyper
//!   itself refuses heads past [`HYPER_MAX_HEADERS`] headers or
//!   [`HYPER_MAX_HEAD_BYTES`], and bytes that are not HTTP, with an empty
//!   400 or 431 before any route runs.)

use std::net::{IpAddr, SocketAddr};

use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::problem::Problem;

/// Headers a control request may carry.
pub(crate) const MAX_HEADERS: usize = 100;
/// Bytes of header names and values a control request may carry.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Bytes of request target (path and query) a control request may carry.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// hyper's own ceiling on headers, above [`MAX_HEADERS`] so that the
/// routes answer those refusals in JSON.
pub(crate) const HYPER_MAX_HEADERS: usize = 1_000;
/// hyper's own ceiling on a head's bytes, above the limits answered in JSON.
pub(crate) const HYPER_MAX_HEAD_BYTES: usize = 1024 * 1024;

/// Whether an address is loopback, an IPv4-mapped one (`::ffff:127.0.0.1`) included.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// What the control API admits.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// The address it listens on.
    pub(crate) bound: SocketAddr,
    /// Required as `Authorization: Bearer <token>` when set.
    pub(crate) token: Option<String>,
    /// Host names accepted beside the bound IP and `localhost`, lowercase.
    pub(crate) allow_hosts: Vec<String>,
}

impl Access {
    /// Admits the request, or says why not.
    pub(crate) fn admit(&self, target_len: usize, headers: &HeaderMap) -> Result<(), Problem> {
        self.within_limits(target_len, headers)?;
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| forbidden("a `Host` header naming this control API is required"))?;
        if !self.allows(host, None) {
            return Err(forbidden(format!(
                "`Host: {host}` is not an address of this control API (add a name with --allow-host)"
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("?");
            let allowed = origin
                .split_once("://")
                .and_then(|(scheme, rest)| {
                    let default_port = match scheme.to_ascii_lowercase().as_str() {
                        "http" => 80,
                        "https" => 443,
                        _ => return None,
                    };
                    Some(self.allows(rest, Some(default_port)))
                })
                .unwrap_or(false);
            if !allowed {
                return Err(forbidden(format!(
                    "cross-site requests are refused (`Origin: {origin}`): a web page must not control the fault server"
                )));
            }
        }
        let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
        if matches!(fetch_site, Some(b"cross-site" | b"same-site")) {
            return Err(forbidden(
                "cross-site requests are refused (`Sec-Fetch-Site`): a web page must not control the fault server",
            ));
        }
        let user_agent = headers
            .get(header::USER_AGENT)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if user_agent.starts_with(b"Mozilla/") {
            return Err(forbidden(
                "requests from web browsers are refused: a web page must not control the fault server",
            ));
        }
        if let Some(token) = &self.token {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if presented != Some(token.as_str()) {
                return Err(Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "this control API needs `Authorization: Bearer <token>`",
                ));
            }
        }
        Ok(())
    }

    fn within_limits(&self, target_len: usize, headers: &HeaderMap) -> Result<(), Problem> {
        if target_len > MAX_URI_BYTES {
            return Err(Problem::new(
                StatusCode::URI_TOO_LONG,
                format!("the request target is longer than {MAX_URI_BYTES} bytes"),
            ));
        }
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
            return Err(Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of them; got {} and {bytes}",
                    headers.len()
                ),
            ));
        }
        Ok(())
    }

    /// Whether `authority` (`host[:port]`, as in `Host` or an origin) names
    /// this API; `default_port` when it has none (`None`: HTTP's 80).
    fn allows(&self, authority: &str, default_port: Option<u16>) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        let port = match port {
            Some(port) => port,
            None => default_port.unwrap_or(80),
        };
        if port != self.bound.port() {
            return false;
        }
        let bound = self.bound.ip().to_canonical();
        if let Ok(ip) = host.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return bound.is_unspecified()
                || ip == bound
                || (is_loopback(ip) && is_loopback(bound));
        }
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        host == "localhost" || self.allow_hosts.contains(&host)
    }
}

/// `host[:port]`, the host without IPv6 brackets; `None` when malformed.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ':']) && !authority.starts_with('[') {
        return None;
    }
    let port = match port {
        None => None,
        Some(port) => Some(port.parse::<u16>().ok()?),
    };
    Some((host, port))
}

fn forbidden(message: impl Into<String>) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(bound: &str) -> Access {
        Access {
            bound: bound.parse().unwrap(),
            token: None,
            allow_hosts: vec!["faults.internal".into()],
        }
    }

    #[test]
    fn hosts_are_checked_against_the_bound_address() {
        let local = access("127.0.0.1:8474");
        for yes in [
            "127.0.0.1:8474",
            "localhost:8474",
            "LOCALHOST.:8474",
            "[::ffff:127.0.0.1]:8474",
            "[::1]:8474",
            "faults.internal:8474",
        ] {
            assert!(local.allows(yes, None), "{yes}");
        }
        for no in [
            "evil.example:8474",
            "127.0.0.1:8475",
            "127.0.0.1",
            "10.0.0.1:8474",
            "localhost:x",
            "",
            "[::1:8474",
            "user@localhost:8474",
        ] {
            assert!(!local.allows(no, None), "{no}");
        }
        let any = access("0.0.0.0:8474");
        assert!(any.allows("10.0.0.1:8474", None));
        assert!(!any.allows("evil.example:8474", None));
        let web = access("127.0.0.1:80");
        assert!(web.allows("localhost", None));
    }

    #[test]
    fn mapped_loopback_is_loopback() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }
}
