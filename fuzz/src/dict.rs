//! What mutations draw from: the keys, values and tables the seeds use,
//! plus values and tokens that tend to break parsers.

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

/// The `n`-th entry of `list`, wrapping; empty for an empty list.
pub fn pick(list: &[String], n: u32) -> &str {
    if list.is_empty() {
        ""
    } else {
        &list[n as usize % list.len()]
    }
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
}
