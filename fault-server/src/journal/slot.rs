//! A record as the journal stores it: one cache line, no sequence number (it
//! follows from the slot's place), method and path interned, and a heap
//! allocation only for what is unique to the call (correlation id,
//! idempotency key). A full ring is overwritten on every call, so its size is
//! what decides how much of the cache the journal costs. Turned into a
//! [`CallRecord`] when read.

use super::interner::Interner;
use super::{CallInfo, CallOutcome, CallRecord};
use crate::fault::FaultKinds;

#[derive(Debug)]
#[repr(align(64))]
pub(super) struct Slot {
    arrival_ns: u64,
    /// [`IN_FLIGHT`] until the call departs.
    departure_ns: u64,
    /// How long a proxy's upstream took to answer (its response head);
    /// [`NOT_FORWARDED`] for a call that was not forwarded.
    upstream_ns: u64,
    extras: Option<Box<Extras>>,
    /// Interned ids; a method gets [`OWN_TEXT`] when the interner was full (the
    /// text is in `extras`), a path the interner's placeholder.
    method: u32,
    path: u32,
    attempt: Option<u32>,
    in_flight: u32,
    window: u32,
    status: Option<u16>,
    faults: FaultKinds,
    outcome: CallOutcome,
}

/// `departure_ns` of a call still in flight.
const IN_FLIGHT: u64 = u64::MAX;
/// `upstream_ns` of a call not forwarded.
const NOT_FORWARDED: u64 = u64::MAX;
/// An id meaning "not interned": the text is in the slot's extras.
const OWN_TEXT: u32 = u32::MAX;

/// What few calls carry, kept out of line.
#[derive(Debug, Default)]
struct Extras {
    correlation_id: Option<Box<str>>,
    idempotency_key: Option<Box<str>>,
    method: Option<Box<str>>,
    /// A TCP proxy's connection: bytes each way.
    bytes: Option<super::ByteCounts>,
    /// The kept headers' values.
    headers: Vec<(Box<str>, Box<str>)>,
}

impl Slot {
    pub(super) fn new(
        interner: &mut Interner,
        info: &CallInfo<'_>,
        keep: &[http::HeaderName],
        faults: FaultKinds,
        now_ns: u64,
        in_flight: u64,
        window: u32,
    ) -> Self {
        let method = interner.intern(info.method.as_str());
        // Never a copy of its own: past the interner's budget, a placeholder.
        let path = interner.intern_path(info.path);
        let headers: Vec<(Box<str>, Box<str>)> = match info.headers {
            Some(headers) if !keep.is_empty() => headers
                .iter()
                .filter(|(name, _)| keep.contains(name))
                .map(|(name, value)| {
                    (
                        Box::from(name.as_str()),
                        Box::from(String::from_utf8_lossy(value.as_bytes()).as_ref()),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let extras = (info.correlation_id.is_some()
            || info.idempotency_key.is_some()
            || method.is_none()
            || !headers.is_empty())
        .then(|| {
            Box::new(Extras {
                correlation_id: info.correlation_id.map(Box::from),
                idempotency_key: info.idempotency_key.map(Box::from),
                method: method.is_none().then(|| info.method.as_str().into()),
                bytes: None,
                headers,
            })
        });
        Slot {
            arrival_ns: now_ns,
            departure_ns: IN_FLIGHT,
            upstream_ns: NOT_FORWARDED,
            extras,
            method: method.unwrap_or(OWN_TEXT),
            path,
            attempt: info.attempt,
            in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
            window,
            status: None,
            faults,
            outcome: CallOutcome::InFlight,
        }
    }

    pub(super) fn depart(
        &mut self,
        outcome: CallOutcome,
        status: Option<u16>,
        upstream_ns: Option<u64>,
        now_ns: u64,
    ) {
        self.upstream_ns = upstream_ns.map_or(NOT_FORWARDED, |ns| ns.min(NOT_FORWARDED - 1));
        self.departure_ns = now_ns.min(IN_FLIGHT - 1);
        self.outcome = outcome;
        self.status = status;
    }

    /// A TCP proxy's connection ends: the bytes it carried, and the faults
    /// it met over its life (they can be added while it lives).
    pub(super) fn carried(&mut self, bytes: super::ByteCounts, faults: FaultKinds) {
        self.extras.get_or_insert_with(Box::default).bytes = Some(bytes);
        self.faults = faults;
    }

    pub(super) fn departed(&self) -> bool {
        self.departure_ns != IN_FLIGHT
    }

    pub(super) fn record(&self, seq: u64, interner: &Interner) -> CallRecord {
        let extras = self.extras.as_deref();
        let text = |id: u32, own: Option<&str>| match id {
            OWN_TEXT => own.unwrap_or_default().to_owned(),
            id => interner.resolve(id).to_owned(),
        };
        let method = text(self.method, extras.and_then(|e| e.method.as_deref()));
        CallRecord {
            seq,
            arrival_ns: self.arrival_ns,
            departure_ns: (self.departure_ns != IN_FLIGHT).then_some(self.departure_ns),
            in_flight: u64::from(self.in_flight),
            method: http::Method::from_bytes(method.as_bytes()).unwrap_or_default(),
            path: text(self.path, None),
            correlation_id: extras
                .and_then(|e| e.correlation_id.as_deref())
                .map(str::to_owned),
            idempotency_key: extras
                .and_then(|e| e.idempotency_key.as_deref())
                .map(str::to_owned),
            attempt: self.attempt,
            faults: self.faults,
            outcome: self.outcome,
            status: self.status,
            window: self.window,
            upstream_ns: (self.upstream_ns != NOT_FORWARDED).then_some(self.upstream_ns),
            bytes: extras.and_then(|e| e.bytes),
            headers: extras.map_or_else(Vec::new, |e| {
                e.headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }
}
