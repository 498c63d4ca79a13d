//! The secret type keys live in while in memory, and the mask shown in their place. A leaf:
//! providers, store, routing and the simulator take an `ApiKey` from here without depending on
//! `credentials/` (which stores keys), so neither points back at the other.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// An API key. Zeroized on drop; `Debug` and `Display` print only the mask, so a key cannot
/// reach a log or an error text by formatting.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key and registers it with the log redaction layer, the second line of defence.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        crate::telemetry::register_secret(&key);
        ApiKey(SecretString::from(key))
    }

    /// The key itself. Call sites are few and reviewed: an HTTP header, the credential store.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// `••••` + the last 4 characters, for display.
    pub fn hint(&self) -> String {
        mask(self.expose())
    }

    pub fn is_empty(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.hint())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint())
    }
}

/// `••••` + the last 4 characters; keys of 8 characters or fewer show no characters at all, so a
/// short key is never half revealed.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "••••".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_key() {
        let key = ApiKey::new("sk-test-SENTINEL-abcd");
        assert_eq!(format!("{key}"), "••••abcd");
        assert_eq!(format!("{key:?}"), "ApiKey(••••abcd)");
        assert!(!format!("{key:?}{key}").contains("SENTINEL"));
    }

    #[test]
    fn short_keys_are_fully_masked() {
        assert_eq!(mask("abc"), "••••");
        assert_eq!(mask("12345678"), "••••");
        assert_eq!(mask("123456789"), "••••6789");
    }
}
