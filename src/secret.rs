//! A string that must never be printed: storage secret keys, token signing keys, admin tokens.

use std::fmt;

/// Holds a secret value. `Debug` and `Display` print `***`, so a secret that ends up in a
/// log line, an error message or a panic shows nothing useful to whoever reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Whether there is no secret at all (an empty string in the file).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret itself, for the few places that must use it (signing, HMAC keys).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read as a plain string (a configuration file's secret), and never printed after.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("wJalrXUtnFEMI");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "wJalrXUtnFEMI");
    }

    #[test]
    fn a_deserialized_secret_prints_nothing_either() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct File {
            key: Secret,
        }
        let file: File = serde_json::from_str(r#"{"key": "hunter2"}"#).unwrap();
        assert_eq!(file.key.expose(), "hunter2");
        assert!(!format!("{file:?}").contains("hunter2"));
    }
}
