//! Interned text for journal records: methods and paths repeat on nearly every
//! call, so a record keeps a 4-byte id instead of a heap string. Past
//! [`MAX_INTERNED`] distinct strings, a record keeps its own copy.

use std::collections::HashMap;
use std::sync::Arc;

/// Distinct strings an interner keeps; past it, text is stored in the record.
const MAX_INTERNED: usize = 65_536;

#[derive(Debug, Default)]
pub(super) struct Interner {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
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
        if self.strings.len() >= MAX_INTERNED {
            return None;
        }
        let id = u32::try_from(self.strings.len()).ok()?;
        let shared: Arc<str> = Arc::from(text);
        self.ids.insert(Arc::clone(&shared), id);
        self.strings.push(Arc::clone(&shared));
        self.last = Some((shared, id));
        Some(id)
    }

    pub(super) fn resolve(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
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
    }
}
