//! The fault server's TOML configuration file. The commented example at
//! `fault-server/examples/dependencies.toml` shows every key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::DependencySpec;

/// A parsed configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Seeds every random decision; a random seed (printed at start) when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Records kept per journal.
    #[serde(default)]
    pub journal_capacity: Option<usize>,
    /// Data-plane connections at once, over every dependency (default: the
    /// open-file limit less a reserve for the control API; see
    /// [`crate::default_max_connections`]).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Close a data-plane connection idle this long (no call in flight, none
    /// arriving or ending); default never.
    #[serde(default, with = "humantime_serde::option")]
    pub idle_timeout: Option<std::time::Duration>,
    /// Where the control API listens.
    #[serde(default)]
    pub control: Option<ControlConfig>,
    /// The dependencies to start.
    #[serde(default)]
    pub dependencies: Vec<Spanned<DependencySpec>>,
}

/// The `[control]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Listen address.
    pub listen: SocketAddr,
}

/// A configuration file that could not be used: where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when the error has a place.
    pub line: Option<usize>,
    /// 1-based column, when the error has a place.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(
                    f,
                    "{}:{line}:{column}: {}",
                    self.path.display(),
                    self.message
                )
            }
            _ => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl ServerConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` names it in errors.
    ///
    /// ```
    /// use fault_server::ServerConfig;
    /// let text = "[[dependencies]]\nname = \"crm\"\n[[dependencies.faults]]\nlatency = { fixd = \"8s\" }\n";
    /// let err = ServerConfig::parse(text, "deps.toml".as_ref()).unwrap_err();
    /// assert_eq!(err.to_string().split(':').take(3).collect::<Vec<_>>(), ["deps.toml", "4", "13"]);
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let at = |offset: Option<usize>, message: String| {
            let (line, column) = match offset {
                Some(offset) => {
                    let (line, column) = line_column(text, offset);
                    (Some(line), Some(column))
                }
                None => (None, None),
            };
            ConfigError {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let config: ServerConfig = toml::from_str(text)
            .map_err(|e| at(e.span().map(|s| s.start), toml_message(&e, text)))?;
        if config.max_connections == Some(0) {
            return Err(at(None, "max_connections must be at least 1".into()));
        }
        if let Some(timeout) = config.idle_timeout {
            if timeout.is_zero() {
                return Err(at(None, "idle_timeout must be above 0".into()));
            }
            crate::fault::check_duration("idle_timeout", timeout).map_err(|e| at(None, e))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for spanned in &config.dependencies {
            let spec = spanned.get_ref();
            let start = Some(spanned.span().start);
            spec.validate()
                .map_err(|e| at(start, format!("dependency `{}`: {e}", spec.name)))?;
            if !seen.insert(spec.name.as_str()) {
                return Err(at(
                    start,
                    format!("a dependency named `{}` is defined twice", spec.name),
                ));
            }
        }
        Ok(config)
    }
}

/// toml's message for an error in `text`; or, for a syntax error toml gives
/// without one (a control character in a comment), what the parser stopped
/// at (`invalid TOML: unexpected control character U+0000`). Shared with
/// the harness's suite files.
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

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, String> {
        ServerConfig::parse(text, Path::new("f.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../examples/dependencies.toml");
        let config = parse(text).unwrap();
        assert!(config.dependencies.len() >= 3);
    }

    #[test]
    fn an_unknown_key_is_located() {
        let err = parse("seed = 1\n[control]\nlisten = \"127.0.0.1:0\"\nport = 3\n").unwrap_err();
        assert!(err.starts_with("f.toml:4:1: unknown field `port`"), "{err}");
    }

    #[test]
    fn a_bad_fault_is_located_at_its_value() {
        let err =
            parse("[[dependencies]]\nname = \"a\"\nfaults = [{ error = { status = 9000 } }]\n")
                .unwrap_err();
        assert!(err.starts_with("f.toml:3:"), "{err}");
        assert!(err.contains("status"), "{err}");
    }

    #[test]
    fn a_duplicate_name_is_located_at_the_second_definition() {
        let err =
            parse("[[dependencies]]\nname = \"a\"\n[[dependencies]]\nname = \"a\"\n").unwrap_err();
        assert!(err.starts_with("f.toml:3:1:"), "{err}");
        assert!(err.contains("defined twice"), "{err}");
    }

    #[test]
    fn a_bad_name_is_refused() {
        let err = parse("[[dependencies]]\nname = \"a b\"\n").unwrap_err();
        assert!(err.contains("name"), "{err}");
    }

    #[test]
    fn a_syntax_error_toml_leaves_without_a_message_still_says_what_is_wrong() {
        // Found by the `config` fuzz target: toml's message for this is empty.
        let err = parse("#\0").unwrap_err();
        assert_eq!(
            err,
            "f.toml:1:2: invalid TOML: unexpected control character U+0000"
        );
    }

    #[test]
    fn line_column_counts_characters_not_bytes() {
        assert_eq!(line_column("é\nab", 4), (2, 2));
    }
}
