//! Path patterns: what `match.path` means, on the percent-decoded path.
//!
//! A path is compared in its *decoded* form: each segment (between literal
//! `/`) is percent-decoded, then `%` and an encoded `/` inside a segment are
//! written back as `%25` and `%2F`, so a segment never splits in two and
//! `/caf%C3%A9` reads `/café`. Bytes that are not UTF-8 stay escaped. A path
//! without `%` is its own decoded form (no allocation on the common path).

use std::borrow::Cow;

use globset::GlobMatcher;

/// A compiled `match.path`.
#[derive(Debug, Clone)]
pub(super) enum PathPattern {
    /// `"/pay"`: `/pay` and anything under it, on whole segments.
    Prefix { text: String, decoded: String },
    /// `"=/charge"`: exactly this path.
    Exact { text: String, decoded: String },
    /// `"/orders/*/items"`: a glob over the decoded path.
    Glob { text: String, glob: GlobMatcher },
}

impl PathPattern {
    /// Parses the file form: `=` first for an exact path, a glob when it
    /// contains `*`, `?` or `[`, else a prefix.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        if let Some(exact) = text.strip_prefix('=') {
            if !exact.starts_with('/') {
                return Err(format!(
                    "match.path: an exact path starts with `=/`, got `{text}`"
                ));
            }
            return Ok(PathPattern::Exact {
                text: text.to_owned(),
                decoded: decode(exact).into_owned(),
            });
        }
        if text.contains(['*', '?', '[']) {
            let glob = globset::GlobBuilder::new(text)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("match.path: {e}"))?;
            return Ok(PathPattern::Glob {
                text: text.to_owned(),
                glob: glob.compile_matcher(),
            });
        }
        if !text.starts_with('/') {
            return Err(format!(
                "match.path: a path starts with `/` (or `=/` for an exact path), got `{text}`"
            ));
        }
        Ok(PathPattern::Prefix {
            text: text.to_owned(),
            decoded: decode(text).into_owned(),
        })
    }

    /// The pattern as the user wrote it.
    pub(super) fn text(&self) -> &str {
        match self {
            PathPattern::Prefix { text, .. }
            | PathPattern::Exact { text, .. }
            | PathPattern::Glob { text, .. } => text,
        }
    }

    /// Whether a request path (as received: still encoded, no query) matches.
    pub(super) fn matches(&self, raw_path: &str) -> bool {
        let path = decode(raw_path);
        match self {
            PathPattern::Exact { decoded, .. } => *path == **decoded,
            PathPattern::Prefix { decoded, .. } => {
                path.starts_with(decoded.as_str())
                    && (decoded.ends_with('/')
                        || path.len() == decoded.len()
                        || path.as_bytes()[decoded.len()] == b'/')
            }
            PathPattern::Glob { glob, .. } => glob.is_match(&*path),
        }
    }
}

/// The decoded form of a path (see the module docs).
pub(super) fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    for (i, segment) in raw.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let bytes = unescape(segment.as_bytes());
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '%' => out.push_str("%25"),
                    '/' => out.push_str("%2F"),
                    c => out.push(c),
                }
            }
            for b in chunk.invalid() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Cow::Owned(out)
}

/// Percent-decodes one segment; a `%` not followed by two hex digits stays.
fn unescape(segment: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(segment.len());
    let mut i = 0;
    while i < segment.len() {
        let escaped = (segment[i] == b'%')
            .then(|| Some((hex(*segment.get(i + 1)?)?, hex(*segment.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            None => {
                out.push(segment[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_keeps_segments_whole_and_reads_utf8() {
        assert_eq!(decode("/orders/42"), "/orders/42");
        assert_eq!(decode("/caf%C3%A9"), "/café");
        assert_eq!(decode("/caf%c3%a9/x"), "/café/x");
        assert_eq!(decode("/pay%2Fments"), "/pay%2Fments");
        assert_eq!(decode("/pay%2fments"), "/pay%2Fments");
        assert_eq!(decode("/a%20b"), "/a b");
        assert_eq!(decode("/100%25"), "/100%25");
        assert_eq!(decode("/bad%zz%"), "/bad%25zz%25");
        assert_eq!(decode("/%FF%C3"), "/%FF%C3");
    }

    #[test]
    fn a_prefix_matches_whole_segments() {
        let pay = PathPattern::parse("/pay").unwrap();
        for yes in ["/pay", "/pay/", "/pay/x", "/p%61y/x"] {
            assert!(pay.matches(yes), "{yes}");
        }
        for no in ["/payments", "/pay%2Fments", "/pa", "/", "/x/pay"] {
            assert!(!pay.matches(no), "{no}");
        }
        let under = PathPattern::parse("/api/").unwrap();
        assert!(under.matches("/api/orders"));
        assert!(under.matches("/api/"));
        assert!(!under.matches("/api"));
        assert!(!under.matches("/apis/x"));
        let root = PathPattern::parse("/").unwrap();
        assert!(root.matches("/") && root.matches("/anything/at/all"));
    }

    #[test]
    fn an_exact_path_matches_itself_decoded_and_nothing_under_it() {
        let charge = PathPattern::parse("=/charge").unwrap();
        assert!(charge.matches("/charge"));
        assert!(charge.matches("/ch%61rge"));
        assert!(!charge.matches("/charge/"));
        assert!(!charge.matches("/charge/x"));
        assert!(!charge.matches("/charges"));
        let cafe = PathPattern::parse("=/café").unwrap();
        assert!(cafe.matches("/caf%C3%A9"));
        let encoded = PathPattern::parse("=/caf%C3%A9").unwrap();
        assert!(encoded.matches("/café") && encoded.matches("/caf%C3%A9"));
        let slash = PathPattern::parse("=/pay%2Fments").unwrap();
        assert!(slash.matches("/pay%2Fments"));
        assert!(!slash.matches("/pay/ments"));
    }

    #[test]
    fn a_glob_matches_the_decoded_path_and_an_encoded_slash_stays_in_its_segment() {
        let glob = PathPattern::parse("/orders/*/items").unwrap();
        assert!(glob.matches("/orders/42/items"));
        assert!(glob.matches("/orders/%34%32/items"));
        assert!(glob.matches("/orders/a%2Fb/items"), "one segment");
        assert!(!glob.matches("/orders/42/x/items"));
        let cafe = PathPattern::parse("/café/*").unwrap();
        assert!(cafe.matches("/caf%C3%A9/menu"));
    }

    #[test]
    fn patterns_that_cannot_match_are_refused() {
        assert!(PathPattern::parse("pay").unwrap_err().contains("`/`"));
        assert!(PathPattern::parse("=charge").unwrap_err().contains("=/"));
        assert!(PathPattern::parse("/a/[").is_err());
        assert!(PathPattern::parse("**/items").is_ok());
    }
}
