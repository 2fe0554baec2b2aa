//! A string that must never be printed: API keys, passwords.

use std::fmt;

/// A secret value. `Debug` prints `[redacted]`; there is no `Display`; the clear value is
/// only reachable through [`Secret::expose`], at the one place it is sent upstream.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Normalises a raw value the way operators paste keys: trims whitespace and strips
    /// one pair of surrounding quotes (`"…"` or `'…'`), then trims again.
    pub fn normalized(raw: &str) -> Self {
        let t = raw.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| t.strip_prefix(*q).and_then(|rest| rest.strip_suffix(*q)))
            .unwrap_or(t);
        Secret(unquoted.trim().to_string())
    }

    /// The clear value, for the header or body that carries it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty after normalisation.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every occurrence of this secret from `text` (for upstream error bodies that
    /// echo what they received).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn keys_are_trimmed_and_unquoted() {
        assert_eq!(Secret::normalized("  \"sk-abc\"\n").expose(), "sk-abc");
        assert_eq!(Secret::normalized("'xi-123' ").expose(), "xi-123");
        assert_eq!(Secret::normalized("plain").expose(), "plain");
        assert_eq!(Secret::normalized("\"unbalanced").expose(), "\"unbalanced");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::normalized("sk-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(
            s.scrub("bad key sk-very-secret given"),
            "bad key [redacted] given"
        );
    }
}
