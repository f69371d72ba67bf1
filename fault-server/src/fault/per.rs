//! A fault's `first` and `probability` counted per request ([`super::Per`]):
//! by the request's correlation id or its idempotency key, so "each
//! request's first 2 calls fail, then it succeeds" is one fault (the retry
//! that recovers; Toxiproxy's issue #404 asks for it), and a request's
//! attempts can share one draw.

use std::collections::{HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Per;

/// The requests a fault remembers its `first` count for; past them the
/// oldest is forgotten (and would count from 0 again).
pub const REMEMBERED_REQUESTS: usize = 100_000;

/// What a call says of the request it belongs to, and the dependency's seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallKeys<'a> {
    /// Its correlation id, if it carries one.
    pub request: Option<&'a str>,
    /// Its `Idempotency-Key`, if it carries one.
    pub idempotency_key: Option<&'a str>,
    /// The dependency's seed: per-request draws depend on it, the fault and
    /// the key only.
    pub seed: u64,
}

impl<'a> CallKeys<'a> {
    /// The key `per` counts by; `None` when the call carries none (it then
    /// counts as a request of its own, as a fault without `per` would).
    pub fn key(&self, per: Per) -> Option<&'a str> {
        match per {
            Per::Request => self.request,
            Per::IdempotencyKey => self.idempotency_key,
        }
    }
}

/// How many calls a fault applied to, per request key (bounded by
/// [`REMEMBERED_REQUESTS`], oldest first out).
#[derive(Debug, Default)]
pub(crate) struct PerKey {
    applied: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl PerKey {
    /// Calls it applied to for `key`.
    pub fn applied(&self, key: &str) -> u64 {
        self.applied.get(key).copied().unwrap_or(0)
    }

    /// One more call applied to for `key`.
    pub fn count(&mut self, key: &str) {
        if let Some(n) = self.applied.get_mut(key) {
            *n += 1;
            return;
        }
        if self.order.len() >= REMEMBERED_REQUESTS {
            if let Some(oldest) = self.order.pop_front() {
                self.applied.remove(&oldest);
            }
        }
        self.order.push_back(key.to_owned());
        self.applied.insert(key.to_owned(), 1);
    }
}

/// Whether the request `key` is drawn for the fault `fault` with
/// probability `p`: the same answer for every call of that request, from a
/// generator seeded by the dependency's seed, the fault and the key (FNV-1a
/// over them, written out here because its value must never change between
/// builds, which `std`'s hasher does not promise).
pub(crate) fn drawn(seed: u64, fault: u64, key: &str, p: f64) -> bool {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed
        .to_le_bytes()
        .into_iter()
        .chain(fault.to_le_bytes())
        .chain(key.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(hash).gen::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_s_draw_is_the_same_for_every_call_and_lands_near_p() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("req-{i}")).collect();
        let drawn_keys = keys.iter().filter(|k| drawn(7, 3, k, 0.3)).count();
        assert!(
            (2_800..3_200).contains(&drawn_keys),
            "{drawn_keys} of 10,000 at 0.3"
        );
        assert!(keys
            .iter()
            .all(|k| drawn(7, 3, k, 0.3) == drawn(7, 3, k, 0.3)));
        let other_seed = keys
            .iter()
            .filter(|k| drawn(7, 3, k, 0.3) != drawn(8, 3, k, 0.3))
            .count();
        assert!(
            other_seed > 1_000,
            "another seed draws otherwise: {other_seed}"
        );
    }

    #[test]
    fn counts_are_per_key_and_the_oldest_is_forgotten_past_the_bound() {
        let mut per = PerKey::default();
        per.count("a");
        per.count("a");
        per.count("b");
        assert_eq!(
            (per.applied("a"), per.applied("b"), per.applied("c")),
            (2, 1, 0)
        );
        for i in 0..REMEMBERED_REQUESTS {
            per.count(&format!("k{i}"));
        }
        assert_eq!(per.applied("a"), 0, "forgotten");
        assert_eq!(per.applied(&format!("k{}", REMEMBERED_REQUESTS - 1)), 1);
        assert!(per.applied.len() <= REMEMBERED_REQUESTS);
    }
}
