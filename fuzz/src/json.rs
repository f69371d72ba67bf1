//! Structure-aware JSON mutation: edits on the value tree of a valid body
//! (replace a node, drop or rename a member, add one, splice in a node of
//! another body), then sometimes a few byte edits on the text.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::dict::Dict;
use crate::mutate::{self, Op};

/// Values a node may become.
fn leaves() -> Vec<Value> {
    let mut values: Vec<Value> = [
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1",
        "0.5",
        "1.0000001",
        "2",
        "3",
        "100",
        "199",
        "200",
        "204",
        "429",
        "503",
        "599",
        "600",
        "1000",
        "65535",
        "65536",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "-9223372036854775808",
        "1e308",
        "-1e308",
        "1e-320",
        "-0.0",
        "[]",
        "{}",
        "[[]]",
        "[{}]",
        "\"\"",
    ]
    .iter()
    .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
    .collect();
    values.extend(
        [
            "0s",
            "0ns",
            "1ns",
            "1ms",
            "8s",
            "24h",
            "24h 1ns",
            "86401s",
            "25h",
            "1e9h",
            "584542046090y",
            "18446744073709551615s",
            "-1s",
            "1.5s",
            "s",
            "8",
            "abc",
            "GET",
            "get",
            "G E T",
            "POST",
            "CONNECT",
            "/",
            "*",
            "**",
            "/**",
            "/a/*",
            "[",
            "[a-",
            "{a,b",
            "\\",
            "=",
            "=/",
            "=/a b",
            "/%",
            "/%zz",
            "/%C3%A9",
            "/%00",
            "/café",
            "\0",
            "\u{7f}",
            "\u{1F600}",
            "a\nb",
            "\r\n",
            "x-a",
            "X-A",
            "content-length",
            "transfer-encoding",
            "host",
            "a*",
            "a?c",
            "127.0.0.1:0",
            "[::1]:0",
            "0.0.0.0:0",
            "10.0.0.1:80",
            "127.0.0.1:99999",
            "close",
            "reset",
            "respond",
            "hang",
            "crm",
            "nope",
            "a b",
            "a.b-c_d",
        ]
        .iter()
        .map(|s| Value::from(*s)),
    );
    values
}

/// Keys a member may be renamed to or added under.
const KEYS: &[&str] = &[
    "latency",
    "error",
    "throttle",
    "hang",
    "reset",
    "close",
    "slow_body",
    "malformed",
    "saturation",
    "bandwidth",
    "slicer",
    "timeout",
    "reset_peer",
    "slow_close",
    "limit_data",
    "down",
    "stream",
    "average_size",
    "size_variation",
    "delay",
    "proxy",
    "url",
    "keep_host",
    "ca_file",
    "tcp",
    "keep_headers",
    "probability",
    "match",
    "first",
    "lease",
    "fixed",
    "uniform",
    "normal",
    "log_normal",
    "min",
    "max",
    "mean",
    "stddev",
    "p50",
    "p99",
    "status",
    "body",
    "headers",
    "retry_after",
    "rate",
    "burst",
    "max_in_flight",
    "after",
    "then",
    "bytes_per_second",
    "bytes",
    "base",
    "workers",
    "method",
    "path",
    "name",
    "faults",
    "response",
    "listen",
    "alert_sink",
    "crm",
    "x",
    "",
];

/// Nodes in pre-order.
fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// The `k`-th node in pre-order.
fn nth_mut<'a>(value: &'a mut Value, k: &mut usize) -> Option<&'a mut Value> {
    if *k == 0 {
        return Some(value);
    }
    *k -= 1;
    match value {
        Value::Array(items) => items.iter_mut().find_map(|item| nth_mut(item, k)),
        Value::Object(map) => map.values_mut().find_map(|item| nth_mut(item, k)),
        _ => None,
    }
}

fn nth(value: &Value, k: usize) -> Value {
    let mut copy = value.clone();
    let mut k = k % count(value);
    nth_mut(&mut copy, &mut k).cloned().unwrap_or(Value::Null)
}

/// Applies tree edits `ops` to `seed`; `donors` are the other bodies to splice from.
fn edit(seed: &Value, ops: &[Op], donors: &[Value], leaves: &[Value]) -> Value {
    let mut value = seed.clone();
    for &(kind, a, b, c) in ops {
        let mut k = a as usize % count(&value);
        let Some(node) = nth_mut(&mut value, &mut k) else {
            continue;
        };
        let key = KEYS[b as usize % KEYS.len()];
        let leaf = leaves[c as usize % leaves.len()].clone();
        match kind % 6 {
            0 | 1 => *node = leaf,
            2 => match node {
                Value::Array(items) if !items.is_empty() => {
                    items.remove(b as usize % items.len());
                }
                Value::Object(map) if !map.is_empty() => {
                    let gone = map.keys().nth(b as usize % map.len()).cloned();
                    gone.map(|g| map.remove(&g));
                }
                _ => *node = Value::Null,
            },
            3 => match node {
                Value::Object(map) if !map.is_empty() => {
                    let old = map.keys().nth(c as usize % map.len()).cloned();
                    if let Some(moved) = old.and_then(|o| map.remove(&o)) {
                        map.insert(key.to_owned(), moved);
                    }
                }
                Value::Array(items) => items.push(leaf),
                _ => {
                    let mut map = Map::new();
                    map.insert(key.to_owned(), node.take());
                    *node = Value::Object(map);
                }
            },
            4 => match node {
                Value::Object(map) => {
                    map.insert(key.to_owned(), leaf);
                }
                Value::Array(items) => items.push(leaf),
                _ => *node = Value::Array(vec![node.take()]),
            },
            _ => {
                let donor = &donors[b as usize % donors.len()];
                *node = nth(donor, c as usize);
            }
        }
    }
    value
}

/// A control request: its route, and its body.
#[derive(Clone)]
pub struct Body {
    /// Where it goes.
    pub route: crate::corpus::Route,
    /// The body.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (method, path) = self.route.request();
        write!(
            f,
            "{method} {path}\n{}",
            String::from_utf8_lossy(&self.bytes)
        )?;
        write!(
            f,
            "\n(as bytes: {:?})",
            String::from_utf8_lossy(&self.bytes)
        )
    }
}

impl crate::engine::Reduce for Body {
    fn smaller(&self) -> Vec<Self> {
        crate::engine::smaller_bytes(&self.bytes)
            .into_iter()
            .map(|bytes| Body {
                route: self.route,
                bytes,
            })
            .collect()
    }
}

/// Bodies: a valid body's tree edited (mostly sent to its own route,
/// sometimes to another), then sometimes byte-edited; or random bytes.
pub fn bodies() -> impl Strategy<Value = Body> {
    use crate::corpus::Route;
    let seeds = crate::corpus::bodies();
    let texts: Vec<String> = seeds.iter().map(|(_, text)| text.clone()).collect();
    let dict = Arc::new(Dict::from_seeds(&texts));
    let values: Arc<Vec<Value>> = Arc::new(
        texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
            .collect(),
    );
    let routes: Arc<Vec<Route>> = Arc::new(seeds.iter().map(|(route, _)| *route).collect());
    let leaves = Arc::new(leaves());
    let n = values.len();
    let route = prop_oneof![
        6 => Just(None),
        1 => (0..Route::ALL.len()).prop_map(|i| Some(Route::ALL[i])),
    ];
    let random_routes = (0..Route::ALL.len()).prop_map(|i| Route::ALL[i]);
    prop_oneof![
        12 => (0..n, route, mutate::ops(0..5), prop::option::weighted(0.2, mutate::ops(1..4)))
            .prop_map(move |(s, route, tree_ops, byte_ops)| {
                let value = edit(&values[s], &tree_ops, &values, &leaves);
                let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
                if let Some(byte_ops) = byte_ops {
                    // Byte edits only: inserting tokens, deleting and overwriting bytes.
                    let byte_ops: Vec<Op> = byte_ops.into_iter().map(|(k, a, b, c)| (7 + k % 3, a, b, c)).collect();
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    bytes = mutate::apply(&text, &byte_ops, &dict);
                }
                Body { route: route.unwrap_or(routes[s]), bytes }
            }),
        1 => (random_routes, prop::collection::vec(any::<u8>(), 0..256))
            .prop_map(|(route, bytes)| Body { route, bytes }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_counted_and_found_in_pre_order() {
        let mut value = serde_json::json!({"a": [1, {"b": 2}], "c": 3});
        assert_eq!(count(&value), 6);
        let mut k = 4;
        assert_eq!(nth_mut(&mut value, &mut k), Some(&mut serde_json::json!(2)));
    }

    #[test]
    fn every_edit_kind_applies_to_any_value() {
        let leaves = leaves();
        let donors = [serde_json::json!({"x": [1, 2]})];
        for seed in [
            serde_json::json!(null),
            serde_json::json!({"a": [1, {"b": 2}]}),
            serde_json::json!([]),
        ] {
            for kind in 0..6 {
                for n in [0, 3, u32::MAX] {
                    edit(&seed, &[(kind, n, n, n)], &donors, &leaves);
                }
            }
        }
    }
}
