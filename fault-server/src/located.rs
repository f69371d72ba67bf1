//! Errors in input read from a file, with the file, line and column, and
//! for a misspelt key the one most likely meant: one type
//! ([`LocatedError`]) for the fault server's configuration and the
//! harness's suites alike.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Input from a file that cannot be used (a fault server's configuration,
/// a suite): where, and why. Shown as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct LocatedError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column, when the error has a place.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl LocatedError {
    /// `path` could not be read.
    pub fn unreadable(path: &Path, error: &std::io::Error) -> Self {
        LocatedError {
            path: path.to_owned(),
            position: None,
            message: format!("cannot read: {error}"),
        }
    }
}

/// Turns byte offsets and toml errors into [`LocatedError`]s for one file.
pub struct Locator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl<'a> Locator<'a> {
    /// For `text`, read from `path`.
    pub fn new(text: &'a str, path: &'a Path) -> Self {
        Locator { text, path }
    }

    /// `message` at the start of `span`.
    pub fn span(&self, span: Range<usize>, message: impl Into<String>) -> LocatedError {
        LocatedError {
            path: self.path.to_owned(),
            position: Some(self.position(span.start)),
            message: message.into(),
        }
    }

    /// `message` about the file as a whole.
    pub fn whole(&self, message: impl Into<String>) -> LocatedError {
        LocatedError {
            path: self.path.to_owned(),
            position: None,
            message: message.into(),
        }
    }

    /// A toml (or serde) error, located, with a suggestion for a misspelt key
    /// (feature `config`).
    #[cfg(feature = "config")]
    pub fn toml(&self, error: &toml::de::Error) -> LocatedError {
        // toml's message (or, where it gives none, what its parser stopped at).
        let message = with_suggestion(&toml_message(error, self.text));
        match error.span() {
            Some(span) => self.span(span, message),
            None => self.whole(message),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..self.text.floor_char_boundary(offset.min(self.text.len()))];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or variant),
/// adds the closest expected name when it is close enough to be a typo.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_owned();
    };
    let Some((given, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let candidates = expected.split('`').skip(1).step_by(2);
    suggest(given, candidates).map_or_else(
        || message.to_owned(),
        |best| format!("{message}; did you mean `{best}`?"),
    )
}

/// The candidate closest to `given` by Damerau-Levenshtein distance, if it
/// is within a typo's distance (a third of its length, at least 1).
pub fn suggest<'c>(given: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` for the candidate [`suggest`] finds, else nothing.
pub fn did_you_mean<'c>(given: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    suggest(given, candidates).map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}

/// toml's message for an error in `text`; or, for a syntax error toml gives
/// without one (a control character in a comment), what the parser stopped
/// at (`invalid TOML: unexpected control character U+0000`). Shared with
/// the harness's suite files (feature `config`).
#[cfg(feature = "config")]
pub fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim();
    if !message.is_empty() {
        return message.to_owned();
    }
    let found = error
        .span()
        .and_then(|span| text.get(span.start..))
        .and_then(|rest| rest.chars().next());
    match found {
        Some(c) if c.is_control() => {
            format!(
                "invalid TOML: unexpected control character U+{:04X}",
                u32::from(c)
            )
        }
        Some(c) => format!("invalid TOML: unexpected `{c}`"),
        None => "invalid TOML: unexpected end of file".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "config")]
    fn a_syntax_error_toml_leaves_without_a_message_still_says_what_is_wrong() {
        // Found by the `config` fuzz target (the same toml error reaches suites).
        let text = "# a comment with a NUL: \0\n";
        let error = toml::from_str::<toml::Value>(text).unwrap_err();
        assert_eq!(error.message().trim(), "", "toml still leaves it empty");
        let error = Locator::new(text, Path::new("s.toml")).toml(&error);
        assert_eq!(
            error.to_string(),
            "s.toml:1:25: invalid TOML: unexpected control character U+0000"
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let error = Locator::new("é\nab", Path::new("f.toml")).span(4..5, "here");
        assert_eq!(error.position, Some((2, 2)));
    }

    #[test]
    fn a_near_miss_gets_a_suggestion_and_a_far_one_does_not() {
        let message = "unknown field `clinets`, expected one of `endpoint`, `rate`, `clients`";
        assert!(with_suggestion(message).ends_with("did you mean `clients`?"));
        let message = "unknown field `banana`, expected one of `endpoint`, `rate`, `clients`";
        assert_eq!(with_suggestion(message), message);
    }
}
