//! Structure-aware text mutation: a dictionary of the keys, values and
//! tables the seeds use (plus edge values), and a list of edit operations
//! drawn by proptest and applied to a seed. Shrinking the list (fewer
//! operations, smaller indices) shrinks the input.

use std::fmt;
use std::sync::Arc;

use proptest::prelude::*;

/// Values that tend to break things: empty, huge, negative, non-finite,
/// not UTF-8 friendly, almost-durations, placeholders, glob syntax.
const EDGE_VALUES: &[&str] = &[
    "\"\"",
    "0",
    "-1",
    "1",
    "2",
    "-0.0",
    "0.5",
    "1.0000001",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "true",
    "false",
    "[]",
    "{}",
    "[[]]",
    "[{}]",
    "{ a = 1 }",
    "\"0s\"",
    "\"0ns\"",
    "\"1ns\"",
    "\"1ms\"",
    "\"24h\"",
    "\"24h 1ns\"",
    "\"86401s\"",
    "\"25h\"",
    "\"1e9h\"",
    "\"584542046090y\"",
    "\"18446744073709551615s\"",
    "\"-1s\"",
    "\"1.5s\"",
    "\"s\"",
    "\"8\"",
    "\"999999999999999999999ms\"",
    "\"{port}\"",
    "\"{crm}\"",
    "\"{\"",
    "\"}\"",
    "\"{}\"",
    "\"{{port}}\"",
    "\"{nope}\"",
    "\"/\"",
    "\"\"",
    "\"*\"",
    "\"**\"",
    "\"/**\"",
    "\"[\"",
    "\"[a-\"",
    "\"{a,b\"",
    "\"\\\\\"",
    "\"=/\"",
    "\"=\"",
    "\"=/a b\"",
    "\"/%\"",
    "\"/%zz\"",
    "\"/%C3%A9\"",
    "\"/%00\"",
    "\"/caf\u{e9}\"",
    "\"\u{0}\"",
    "\"\u{7f}\"",
    "\"\u{1F600}\"",
    "\"\u{202e}\"",
    "\"a\\nb\"",
    "\"\\r\\n\"",
    "\"GET\"",
    "\"get\"",
    "\"G E T\"",
    "\"\u{e9}\"",
    "\"CONNECT\"",
    "\"x-a\"",
    "\"X-A\"",
    "\"content-length\"",
    "\"transfer-encoding\"",
    "\"host\"",
    "\"a\\u0000b\"",
    "\"127.0.0.1:0\"",
    "\"[::1]:0\"",
    "\"0.0.0.0:0\"",
    "\"10.0.0.1:80\"",
    "\"127.0.0.1:99999\"",
    "\"http://127.0.0.1:1\"",
    "\"http://[::1]:1/\"",
    "\"http://\"",
    "\"http://h:99999\"",
    "\"ftp://x\"",
    "\"close\"",
    "\"reset\"",
    "\"respond\"",
    "\"none\"",
    "\"full\"",
    "\"equal\"",
    "\"naive\"",
    "\"hardened\"",
    "\"5xx\"",
    "\"6xx\"",
    "\"0xx\"",
    "\"429\"",
    "\"99\"",
    "\"1000\"",
    "\"abc\"",
    "100",
    "99",
    "600",
    "1000",
    "200.0",
    "0.0",
    "1.0",
    "101",
    "1e6",
    "1000001",
    "10001",
];

/// Tokens inserted between other bytes.
const EDGE_TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "=",
    " = ",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\\",
    "\\u",
    "\\U0010FFFF",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10FFFF}",
    "-",
    "+",
    "e",
    "_",
    ":",
    "/",
    "*",
    "%",
    "\t",
    "0x",
    "0o",
    "0b",
    "1979-05-27T07:32:00Z",
];

/// What mutations draw from.
#[derive(Debug, Default)]
pub struct Dict {
    /// Keys (`name`, `rate`, ...).
    pub keys: Vec<String>,
    /// Values as written (`"8s"`, `503`, `{ fixed = "4s" }`, ...).
    pub values: Vec<String>,
    /// Any token: keys, values and syntax.
    pub tokens: Vec<String>,
    /// Whole tables cut from the seeds (`[[expect]]` ... up to the next table).
    pub snippets: Vec<String>,
}

impl Dict {
    /// A dictionary of what `seeds` write, plus the edge values.
    pub fn from_seeds(seeds: &[String]) -> Dict {
        let mut dict = Dict::default();
        for seed in seeds {
            scan(seed, &mut dict);
            let mut snippet = String::new();
            for line in seed.lines() {
                if line.starts_with('[') && !snippet.trim().is_empty() {
                    dict.snippets.push(std::mem::take(&mut snippet));
                }
                snippet.push_str(line);
                snippet.push('\n');
            }
            dict.snippets.push(snippet);
        }
        dict.values
            .extend(EDGE_VALUES.iter().map(|v| (*v).to_owned()));
        dict.tokens
            .extend(EDGE_TOKENS.iter().map(|v| (*v).to_owned()));
        dict.tokens.extend(dict.keys.iter().cloned());
        dict.tokens.extend(dict.values.iter().cloned());
        for list in [
            &mut dict.keys,
            &mut dict.values,
            &mut dict.tokens,
            &mut dict.snippets,
        ] {
            list.sort();
            list.dedup();
        }
        dict
    }
}

/// Collects keys (an identifier before `=` or `:`), quoted strings, numbers
/// and inline tables' values.
fn scan(text: &str, dict: &mut Dict) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\'' {
            let end = bytes[i + 1..]
                .iter()
                .position(|&c| c == b || c == b'\n')
                .map_or(bytes.len(), |p| i + 1 + p);
            let quoted = &text[i..(end + 1).min(text.len())];
            let after = text[(end + 1).min(text.len())..].trim_start();
            if after.starts_with(':') || after.starts_with('=') {
                dict.keys.push(quoted.to_owned());
                dict.keys.push(quoted.trim_matches(['"', '\'']).to_owned());
            } else {
                dict.values.push(quoted.to_owned());
            }
            i = end + 1;
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let end = bytes[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-'))
                .map_or(bytes.len(), |p| i + p);
            if let Some(after) = text[end..].trim_start().strip_prefix('=') {
                dict.keys.push(text[i..end].to_owned());
                if let Some(value) = inline_value(after.trim_start()) {
                    dict.values.push(value.to_owned());
                }
            }
            i = end;
        } else if b.is_ascii_digit() {
            let end = bytes[i..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                .map_or(bytes.len(), |p| i + p);
            dict.values.push(text[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
}

/// The `{ ... }` or `[ ... ]` value starting `text`, if it closes on the line.
fn inline_value(text: &str) -> Option<&str> {
    let open = text.chars().next()?;
    let close = match open {
        '{' => '}',
        '[' => ']',
        _ => return None,
    };
    let line = text.lines().next()?;
    let mut depth = 0;
    for (i, c) in line.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(&line[..=i]);
            }
        }
    }
    None
}

/// One edit: its kind and three numbers it picks with.
pub type Op = (u8, u32, u32, u32);

/// The edit kinds.
const KINDS: u8 = 14;

/// An edit list.
pub fn ops(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Op>> + Clone {
    prop::collection::vec((0..KINDS, any::<u32>(), any::<u32>(), any::<u32>()), len)
}

fn pick(list: &[String], n: u32) -> &str {
    if list.is_empty() {
        ""
    } else {
        &list[n as usize % list.len()]
    }
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
    fn the_dictionary_holds_the_seeds_keys_values_and_tables() {
        let dict = Dict::from_seeds(&["[[a]]\nname = \"x\"\nf = { g = 1 }\n[b]\n".to_owned()]);
        assert!(dict.keys.contains(&"name".to_owned()));
        assert!(dict.keys.contains(&"g".to_owned()));
        assert!(dict.values.contains(&"\"x\"".to_owned()));
        assert!(dict.values.contains(&"{ g = 1 }".to_owned()));
        assert_eq!(dict.snippets.len(), 2);
    }

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
