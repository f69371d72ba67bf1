//! Structure-aware text mutation: a dictionary of the keys, values and
//! tables the seeds use (plus edge values), and a list of edit operations
//! drawn by proptest and applied to a seed. Shrinking the list (fewer
//! operations, smaller indices) shrinks the input.

use std::fmt;
use std::sync::Arc;

use proptest::prelude::*;

use crate::dict::{pick, Dict};

/// One edit: its kind and three numbers it picks with.
pub type Op = (u8, u32, u32, u32);

/// The edit kinds.
const KINDS: u8 = 14;

/// An edit list.
pub fn ops(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Op>> + Clone {
    prop::collection::vec((0..KINDS, any::<u32>(), any::<u32>(), any::<u32>()), len)
}

/// The byte offsets where each line starts, and the end.
fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    if *starts.last().unwrap_or(&0) != text.len() {
        starts.push(text.len());
    }
    starts
}

/// The byte ranges of the lines holding a `=` (or `:` in JSON).
fn assignments(text: &[u8]) -> Vec<(usize, usize, usize)> {
    let starts = line_starts(text);
    starts
        .windows(2)
        .filter_map(|w| {
            let line = &text[w[0]..w[1]];
            line.iter()
                .position(|b| *b == b'=')
                .map(|eq| (w[0], w[0] + eq, w[1]))
        })
        .collect()
}

/// The byte ranges of quoted strings (without the quotes) and numbers.
fn atoms(text: &[u8], quoted: bool) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'"' {
            let end = text[i + 1..]
                .iter()
                .position(|c| *c == b'"' || *c == b'\n')
                .map_or(text.len(), |p| i + 1 + p);
            if quoted {
                found.push((i + 1, end));
            }
            i = end + 1;
        } else if b.is_ascii_digit() && (i == 0 || !text[i - 1].is_ascii_alphanumeric()) {
            let end = text[i..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                .map_or(text.len(), |p| i + p);
            if !quoted {
                found.push((i, end));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Applies `ops` to `seed`.
pub fn apply(seed: &str, ops: &[Op], dict: &Dict) -> Vec<u8> {
    let mut text = seed.as_bytes().to_vec();
    for &(kind, a, b, c) in ops {
        let len = text.len();
        let at = |n: u32| n as usize % (len + 1);
        match kind {
            // Replace the value of the a-th assignment.
            0 | 1 => {
                let lines = assignments(&text);
                if let Some(&(_, eq, end)) = lines.get(a as usize % lines.len().max(1)) {
                    let value = format!(" {}\n", pick(&dict.values, b));
                    text.splice(eq + 1..end, value.into_bytes());
                }
            }
            // Replace the key of the a-th assignment.
            2 => {
                let lines = assignments(&text);
                if let Some(&(start, eq, _)) = lines.get(a as usize % lines.len().max(1)) {
                    text.splice(start..eq, pick(&dict.keys, b).bytes());
                }
            }
            // Replace the a-th quoted string's content.
            3 => {
                let found = atoms(&text, true);
                if let Some(&(start, end)) = found.get(a as usize % found.len().max(1)) {
                    let value = pick(&dict.values, b).trim_matches('"').to_owned();
                    text.splice(start..end, value.into_bytes());
                }
            }
            // Replace the a-th number.
            4 => {
                let found = atoms(&text, false);
                if let Some(&(start, end)) = found.get(a as usize % found.len().max(1)) {
                    text.splice(start..end, pick(&dict.values, b).bytes());
                }
            }
            // Delete a line.
            5 => {
                let starts = line_starts(&text);
                let i = a as usize % starts.len().saturating_sub(1).max(1);
                if let (Some(&s), Some(&e)) = (starts.get(i), starts.get(i + 1)) {
                    text.drain(s..e);
                }
            }
            // Copy a line elsewhere.
            6 => {
                let starts = line_starts(&text);
                let i = a as usize % starts.len().saturating_sub(1).max(1);
                if let (Some(&s), Some(&e)) = (starts.get(i), starts.get(i + 1)) {
                    let line = text[s..e].to_vec();
                    let to = starts[b as usize % starts.len()];
                    text.splice(to..to, line);
                }
            }
            // Insert a token.
            7 => {
                let to = at(a);
                text.splice(to..to, pick(&dict.tokens, b).bytes());
            }
            // Delete a few bytes.
            8 => {
                let from = at(a);
                let to = (from + 1 + b as usize % 16).min(len);
                text.drain(from..to);
            }
            // Overwrite a byte.
            9 => {
                if len > 0 {
                    text[a as usize % len] = c as u8;
                }
            }
            // Insert a whole table from a seed.
            10 => {
                let starts = line_starts(&text);
                let to = starts[a as usize % starts.len()];
                let mut snippet = pick(&dict.snippets, b).to_owned();
                if to > 0 && text.get(to - 1) != Some(&b'\n') {
                    snippet.insert(0, '\n');
                }
                text.splice(to..to, snippet.into_bytes());
            }
            // Cut the text short.
            11 => {
                if len > 0 && a % 4 == 0 {
                    text.truncate(b as usize % len);
                }
            }
            // Add a `key = value` line.
            12 => {
                let starts = line_starts(&text);
                let to = starts[a as usize % starts.len()];
                let line = format!("{} = {}\n", pick(&dict.keys, b), pick(&dict.values, c));
                text.splice(to..to, line.into_bytes());
            }
            // Swap two lines.
            _ => {
                let starts = line_starts(&text);
                let n = starts.len().saturating_sub(1);
                if n >= 2 {
                    let (i, j) = (a as usize % n, b as usize % n);
                    let (i, j) = (i.min(j), i.max(j));
                    if i != j {
                        let first = text[starts[i]..starts[i + 1]].to_vec();
                        let second = text[starts[j]..starts[j + 1]].to_vec();
                        text.splice(starts[j]..starts[j + 1], first);
                        text.splice(starts[i]..starts[i + 1], second);
                    }
                }
            }
        }
    }
    text
}

/// Text shown as it is (not escaped) when a failing input is printed.
#[derive(Clone, PartialEq)]
pub struct Text(pub String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "----- {} bytes -----", self.0.len())?;
        writeln!(f, "{}", self.0)?;
        write!(f, "----- as a Rust string -----\n{:?}", self.0)
    }
}

impl crate::engine::Reduce for Text {
    fn smaller(&self) -> Vec<Self> {
        crate::engine::smaller_bytes(self.0.as_bytes())
            .into_iter()
            .filter_map(|bytes| String::from_utf8(bytes).ok().map(Text))
            .collect()
    }
}

/// Text: [`bytes`] from `seeds`, read as UTF-8 (invalid sequences replaced).
pub fn text(seeds: Vec<String>) -> impl Strategy<Value = Text> {
    bytes(seeds, &[]).prop_map(|bytes| Text(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Mostly mutated seeds (a few edits, or many), some synthetic
/// `key = value` texts, some random bytes. `tokens` join the dictionary.
pub fn bytes(seeds: Vec<String>, tokens: &[&str]) -> impl Strategy<Value = Vec<u8>> {
    let mut dict = Dict::from_seeds(&seeds);
    dict.tokens.extend(tokens.iter().map(|t| (*t).to_owned()));
    let dict = Arc::new(dict);
    let seeds = Arc::new(seeds);
    let n = seeds.len();
    let (few_seeds, few_dict) = (Arc::clone(&seeds), Arc::clone(&dict));
    let (many_seeds, many_dict) = (seeds, Arc::clone(&dict));
    let synthetic_dict = dict;
    prop_oneof![
        12 => (0..n, ops(0..5)).prop_map(move |(s, ops)| apply(&few_seeds[s], &ops, &few_dict)),
        3 => (0..n, ops(5..40)).prop_map(move |(s, ops)| apply(&many_seeds[s], &ops, &many_dict)),
        1 => prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..24).prop_map(move |lines| {
            let mut text = String::new();
            for (a, b, c) in lines {
                match a % 5 {
                    0 => text.push_str(pick(&synthetic_dict.snippets, b)),
                    _ => text.push_str(&format!("{} = {}\n", pick(&synthetic_dict.keys, b), pick(&synthetic_dict.values, c))),
                }
            }
            text.into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_edits_give_the_seed_back_and_every_edit_kind_applies_to_any_text() {
        let dict = Dict::from_seeds(&["a = 1\n".to_owned()]);
        assert_eq!(apply("x = \"y\"\n", &[], &dict), b"x = \"y\"\n");
        for text in ["", "a", "a = \"1\"\nb = 2", "\n\n"] {
            for kind in 0..KINDS {
                for n in [0, 1, 7, u32::MAX] {
                    apply(text, &[(kind, n, n, n)], &dict);
                }
            }
        }
    }
}
