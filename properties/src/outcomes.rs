//! [`Outcomes`]: which edge requests a property judges by how they ended —
//! a status (`503`), a class (`5xx`), or an answer that never came
//! (`timeout`, `connect_error`, `reset`), one or several.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::EdgeOutcome;

/// One way an edge request can end, as a suite writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// An answer with this status.
    Code(u16),
    /// An answer in this class: `5` is `5xx`.
    Class(u16),
    /// No answer within the client timeout.
    Timeout,
    /// The connection could not be made.
    ConnectError,
    /// The connection was reset or closed before an answer.
    Reset,
}

impl Ending {
    fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "`{text}` is neither a status code (429), a class (5xx), `timeout`, `connect_error` nor `reset`"
            )
        };
        match text {
            "timeout" => return Ok(Ending::Timeout),
            "connect_error" => return Ok(Ending::ConnectError),
            "reset" => return Ok(Ending::Reset),
            _ => {}
        }
        match text.as_bytes() {
            [class @ b'1'..=b'5', b'x', b'x'] => Ok(Ending::Class(u16::from(class - b'0'))),
            _ => {
                let code: u16 = text.parse().map_err(|_| invalid())?;
                Ending::code(code).ok_or_else(invalid)
            }
        }
    }

    fn code(code: u16) -> Option<Self> {
        (100..=599).contains(&code).then_some(Ending::Code(code))
    }

    fn matches(self, outcome: EdgeOutcome) -> bool {
        match (self, outcome) {
            (Ending::Code(code), EdgeOutcome::Status(s)) => s == code,
            (Ending::Class(class), EdgeOutcome::Status(s)) => s / 100 == class,
            (Ending::Timeout, EdgeOutcome::Timeout)
            | (Ending::ConnectError, EdgeOutcome::ConnectError)
            | (Ending::Reset, EdgeOutcome::Reset) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Code(code) => write!(f, "{code}"),
            Ending::Class(class) => write!(f, "{class}xx"),
            Ending::Timeout => f.write_str("timeout"),
            Ending::ConnectError => f.write_str("connect_error"),
            Ending::Reset => f.write_str("reset"),
        }
    }
}

/// The edge requests a property judges by how they ended: any of a list of
/// statuses (`503`), classes (`5xx`), `timeout`, `connect_error` and
/// `reset`. In a suite, a status is an integer or a string, and a list is an
/// array: `status = 503`, `status = "5xx"`, `status = ["503", "timeout"]`.
///
/// ```
/// use faultline_properties::{EdgeOutcome, Outcomes};
///
/// let shed: Outcomes = "5xx".parse()?;
/// assert!(shed.matches(EdgeOutcome::Status(503)));
/// assert!(!shed.matches(EdgeOutcome::Status(200)));
/// let gone: Outcomes = serde_json::from_str(r#"[504, "timeout"]"#)?;
/// assert!(gone.matches(EdgeOutcome::Timeout));
/// assert_eq!(gone.to_string(), "504|timeout");
/// assert!("6xx".parse::<Outcomes>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcomes(Vec<Ending>);

impl Outcomes {
    /// Whether a request that ended with `outcome` is selected.
    pub fn matches(&self, outcome: EdgeOutcome) -> bool {
        self.0.iter().any(|ending| ending.matches(outcome))
    }
}

impl std::str::FromStr for Outcomes {
    type Err = String;

    /// One ending (`"503"`, `"5xx"`, `"timeout"`), or several joined by `|`.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split('|')
            .map(|part| Ending::parse(part.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(Outcomes)
    }
}

impl fmt::Display for Outcomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ending) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{ending}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Outcomes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OutcomesVisitor;
        impl<'de> Visitor<'de> for OutcomesVisitor {
            type Value = Outcomes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a status code (503), a class (\"5xx\"), \"timeout\", \"connect_error\", \"reset\", or a list of them",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Outcomes, E> {
                u16::try_from(v)
                    .ok()
                    .and_then(Ending::code)
                    .map(|e| Outcomes(vec![e]))
                    .ok_or_else(|| E::custom(format!("{v} is not a status code (100 to 599)")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Outcomes, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("{v} is not a status code (100 to 599)"))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Outcomes, E> {
                Ending::parse(v)
                    .map(|e| Outcomes(vec![e]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outcomes, A::Error> {
                let mut endings = Vec::new();
                while let Some(one) = seq.next_element::<Outcomes>()? {
                    endings.extend(one.0);
                }
                if endings.is_empty() {
                    return Err(de::Error::custom("an empty list selects no request"));
                }
                Ok(Outcomes(endings))
            }
        }
        deserializer.deserialize_any(OutcomesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classes_and_endings_parse_and_nonsense_does_not() {
        for (text, shown) in [
            ("429", "429"),
            ("5xx", "5xx"),
            ("timeout", "timeout"),
            ("503|reset", "503|reset"),
        ] {
            assert_eq!(text.parse::<Outcomes>().unwrap().to_string(), shown);
        }
        for bad in ["6xx", "abc", "99", "600", ""] {
            assert!(bad.parse::<Outcomes>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Outcomes>("[]").is_err());
        assert!(serde_json::from_str::<Outcomes>("-1").is_err());
        assert!(serde_json::from_str::<Outcomes>("700").is_err());
    }

    #[test]
    fn a_class_selects_its_hundred_and_an_ending_only_itself() {
        let shed: Outcomes = "5xx".parse().unwrap();
        assert!(shed.matches(EdgeOutcome::Status(500)));
        assert!(shed.matches(EdgeOutcome::Status(599)));
        assert!(!shed.matches(EdgeOutcome::Status(499)));
        assert!(!shed.matches(EdgeOutcome::Timeout));
        let gone: Outcomes = "timeout".parse().unwrap();
        assert!(gone.matches(EdgeOutcome::Timeout));
        assert!(!gone.matches(EdgeOutcome::Reset));
    }
}
