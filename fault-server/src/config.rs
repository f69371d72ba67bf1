//! The fault server's TOML configuration file. The commented example at
//! `fault-server/examples/dependencies.toml` shows every key.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::located::{LocatedError, Locator};
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
pub type ConfigError = LocatedError;

impl ServerConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| LocatedError::unreadable(path, &e))?;
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
        let at = Locator::new(text, path);
        let config: ServerConfig = toml::from_str(text).map_err(|e| at.toml(&e))?;
        if config.max_connections == Some(0) {
            return Err(at.whole("max_connections must be at least 1"));
        }
        if let Some(timeout) = config.idle_timeout {
            if timeout.is_zero() {
                return Err(at.whole("idle_timeout must be above 0"));
            }
            crate::fault::check_duration("idle_timeout", timeout).map_err(|e| at.whole(e))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for spanned in &config.dependencies {
            let spec = spanned.get_ref();
            let span = spanned.span();
            spec.validate()
                .map_err(|e| at.span(span.clone(), format!("dependency `{}`: {e}", spec.name)))?;
            if !seen.insert(spec.name.as_str()) {
                return Err(at.span(
                    span,
                    format!("a dependency named `{}` is defined twice", spec.name),
                ));
            }
        }
        Ok(config)
    }
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
}
