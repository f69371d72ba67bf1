//! Requests hyper refuses before they reach the service: a head past the
//! limits ([`MAX_HEADERS`], [`MAX_HEAD_BYTES`], a URI over 65,534 bytes) or
//! bytes that are not an HTTP/1 request. hyper answers them itself (431, 414
//! or 400, no body) and closes the connection; they are journaled here so
//! that they count like any call.
//!
//! Nothing of such a request was parsed, so its record carries the method
//! [`REFUSED_METHOD`] and the path [`REFUSED_PATH`], and arrives and departs
//! at the instant hyper gave up on it. A request hyper drops without an answer
//! (an HTTP/2 preface on this HTTP/1 port) is journaled `closed`, no status.
//! A client that closes mid-head sent no request: nothing is journaled.

use http::{HeaderMap, Method};

use crate::dependency::Dependency;
use crate::fault::FaultKinds;
use crate::journal::{CallInfo, CallOutcome};

/// Headers a data-plane request may carry (hyper answers 431 past it).
pub(crate) const MAX_HEADERS: usize = 100;
/// The most bytes hyper buffers while reading a request head: a head past it
/// is refused with 431 (one that completes within the read that crosses it
/// may still pass).
pub(crate) const MAX_HEAD_BYTES: usize = 400 * 1024;
/// The method journaled for a request refused before it was parsed.
pub(crate) const REFUSED_METHOD: &str = "-";
/// The path journaled for a request refused before it was parsed.
pub(crate) const REFUSED_PATH: &str = "<refused by the HTTP layer>";

/// How hyper ended a connection on a request it refused: `None` when the
/// error is not a refusal; else the status it answered, if it answered.
pub(crate) fn refusal(error: &hyper::Error) -> Option<Option<u16>> {
    if !error.is_parse() {
        return None;
    }
    if error.is_parse_version_h2() {
        return Some(None);
    }
    let text = error.to_string();
    if error.is_parse_too_large() {
        // hyper tells a long URI from a large head only in its message.
        return Some(Some(if text.starts_with("URI too long") {
            414
        } else {
            431
        }));
    }
    if text.starts_with("internal error") {
        return Some(None);
    }
    Some(Some(400))
}

/// Journals a refused request: arrived and departed now, no fault applied.
pub(crate) fn journal(dependency: &Dependency, status: Option<u16>) {
    let method = Method::from_bytes(REFUSED_METHOD.as_bytes()).unwrap_or_default();
    let headers = HeaderMap::new();
    let info = CallInfo::from_parts(&method, REFUSED_PATH, &headers);
    let outcome = match status {
        Some(_) => CallOutcome::Responded,
        None => CallOutcome::Closed,
    };
    let now_ns = dependency.clock.now_ns();
    let mut state = dependency.state();
    let ticket = state.journal.arrive(&info, FaultKinds::default(), now_ns);
    state.journal.depart(ticket, outcome, status, now_ns);
}
