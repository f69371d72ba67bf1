//! Suite errors with the file, line and column, and for a misspelt key the
//! one most likely meant.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::suggest::suggest;

/// A suite that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SuiteError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column, when the error has a place.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SuiteError {
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

impl SuiteError {
    pub(crate) fn unreadable(path: &Path, error: &std::io::Error) -> Self {
        SuiteError {
            path: path.to_owned(),
            position: None,
            message: format!("cannot read: {error}"),
        }
    }
}

/// Turns byte offsets and toml errors into [`SuiteError`]s for one file.
pub(super) struct Locator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str, path: &'a Path) -> Self {
        Locator { text, path }
    }

    pub(super) fn span(&self, span: Range<usize>, message: impl Into<String>) -> SuiteError {
        SuiteError {
            path: self.path.to_owned(),
            position: Some(self.position(span.start)),
            message: message.into(),
        }
    }

    pub(super) fn whole(&self, message: impl Into<String>) -> SuiteError {
        SuiteError {
            path: self.path.to_owned(),
            position: None,
            message: message.into(),
        }
    }

    pub(super) fn toml(&self, error: &toml::de::Error) -> SuiteError {
        // toml's message (or, where it gives none, what its parser stopped at).
        let message = with_suggestion(&fault_server::toml_message(error, self.text));
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
pub(crate) fn with_suggestion(message: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
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
    fn a_near_miss_gets_a_suggestion_and_a_far_one_does_not() {
        let message = "unknown field `clinets`, expected one of `endpoint`, `rate`, `clients`";
        assert!(with_suggestion(message).ends_with("did you mean `clients`?"));
        let message = "unknown field `banana`, expected one of `endpoint`, `rate`, `clients`";
        assert_eq!(with_suggestion(message), message);
    }
}
