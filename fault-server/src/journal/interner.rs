//! Interned text for journal records: methods and paths repeat on nearly every
//! call, so a record keeps a 4-byte id instead of a heap string.
//!
//! # Memory bound
//! An interner keeps at most [`MAX_INTERNED`] distinct strings and
//! [`MAX_INTERNED_BYTES`] of text and bookkeeping (per dependency). Past
//! either, new text is not kept: a path gets [`PATH_NOT_KEPT`] in its records
//! (a method is stored in its record instead: few, short and bounded by the
//! ring). Everything is freed when the journal is cleared (`POST /reset`).
//! Before the bound, 8,000 distinct 60 KB paths took 470 MiB; now at most
//! 4 MiB, and the counters stay exact whatever the paths.

use std::collections::HashMap;
use std::sync::Arc;

/// Distinct strings an interner keeps.
pub(super) const MAX_INTERNED: usize = 65_536;
/// Bytes an interner spends at most: each string's length plus [`ENTRY_COST`].
pub(super) const MAX_INTERNED_BYTES: usize = 4 * 1024 * 1024;
/// What a string costs beside its text: the `Arc` header, the map entry and
/// the list entry, rounded up.
const ENTRY_COST: usize = 64;
/// The path a record shows once its dependency's interner is full.
pub(super) const PATH_NOT_KEPT: &str = "<path not kept: interner full>";
/// The id that resolves to [`PATH_NOT_KEPT`].
const NOT_KEPT_ID: u32 = u32::MAX - 1;

#[derive(Debug, Default)]
pub(super) struct Interner {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
    /// Text and bookkeeping bytes spent, against [`MAX_INTERNED_BYTES`].
    bytes: usize,
    /// The last text looked up: calls to one endpoint repeat one path, and
    /// comparing it costs less than hashing it again, under the journal's lock.
    last: Option<(Arc<str>, u32)>,
}

impl Interner {
    /// The text's id, or `None` once the interner is full and the text is new.
    pub(super) fn intern(&mut self, text: &str) -> Option<u32> {
        if let Some((last, id)) = &self.last {
            if **last == *text {
                return Some(*id);
            }
        }
        if let Some((shared, id)) = self.ids.get_key_value(text) {
            self.last = Some((Arc::clone(shared), *id));
            return Some(*id);
        }
        let cost = text.len().saturating_add(ENTRY_COST);
        if self.strings.len() >= MAX_INTERNED
            || self.bytes.saturating_add(cost) > MAX_INTERNED_BYTES
        {
            return None;
        }
        let id = u32::try_from(self.strings.len()).ok()?;
        let shared: Arc<str> = Arc::from(text);
        self.ids.insert(Arc::clone(&shared), id);
        self.strings.push(Arc::clone(&shared));
        self.bytes += cost;
        self.last = Some((shared, id));
        Some(id)
    }

    /// A path's id; once the interner is full, a new path's is the id of
    /// [`PATH_NOT_KEPT`], so records never hold copies of their own.
    pub(super) fn intern_path(&mut self, path: &str) -> u32 {
        self.intern(path).unwrap_or(NOT_KEPT_ID)
    }

    pub(super) fn resolve(&self, id: u32) -> &str {
        if id == NOT_KEPT_ID {
            return PATH_NOT_KEPT;
        }
        self.strings.get(id as usize).map_or("", |s| s)
    }

    /// Forgets every string (the journal's records went with them).
    pub(super) fn clear(&mut self) {
        *self = Interner::default();
    }

    /// Bytes spent, as counted against [`MAX_INTERNED_BYTES`].
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_gets_the_same_id_and_resolves_back() {
        let mut interner = Interner::default();
        let a = interner.intern("/orders").unwrap();
        let b = interner.intern("/search").unwrap();
        assert_ne!(a, b);
        assert_eq!(interner.intern("/orders"), Some(a));
        assert_eq!(interner.intern("/orders"), Some(a));
        assert_eq!(interner.intern("/search"), Some(b));
        assert_eq!(interner.resolve(a), "/orders");
    }

    #[test]
    fn past_the_cap_new_text_gets_no_id_and_known_text_still_does() {
        let mut interner = Interner::default();
        for i in 0..MAX_INTERNED {
            interner.intern(&i.to_string());
        }
        assert_eq!(interner.intern("/one-more"), None);
        assert_eq!(interner.intern("7"), Some(7));
        let id = interner.intern_path("/x");
        assert_eq!(interner.resolve(id), PATH_NOT_KEPT);
    }

    #[test]
    fn long_paths_stop_at_the_byte_budget_and_clear_frees_it() {
        let mut interner = Interner::default();
        let long = |i: usize| format!("/{i}/{}", "x".repeat(60_000));
        for i in 0..8_000 {
            interner.intern_path(&long(i));
            assert!(interner.bytes() <= MAX_INTERNED_BYTES);
        }
        let kept = interner.strings.len();
        assert!(kept > 10 && kept < 100, "{kept}");
        let first = interner.intern_path(&long(0));
        assert_eq!(interner.resolve(first), long(0));
        let last = interner.intern_path(&long(7_999));
        assert_eq!(interner.resolve(last), PATH_NOT_KEPT);
        interner.clear();
        assert_eq!(interner.bytes(), 0);
        let id = interner.intern_path(&long(7_999));
        assert_eq!(interner.resolve(id), long(7_999));
    }
}
