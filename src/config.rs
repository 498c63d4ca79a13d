//! The `storyteller` settings (DESIGN.md §3): plain data with defaults, decoded leniently.
//!
//! Settings arrive as JSON from `initializationOptions` or `workspace/didChangeConfiguration`.
//! Decoding never fails: an invalid value produces a warning that names the key, and the default
//! (or the previous value) is kept. The LSP layer shows the warnings; this module knows no LSP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::providers::ProviderKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStoreChoice {
    /// The OS keychain when usable, else the encrypted file (with a warning).
    Auto,
    Keychain,
    File,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineSettings {
    pub enabled: bool,
    pub debounce_ms: u64,
    pub max_tokens: u32,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionSettings {
    pub max_tokens: u32,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverSettings {
    pub enabled: bool,
    pub health_check_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub credential_store: CredentialStoreChoice,
    pub languages: Vec<String>,
    pub inline: InlineSettings,
    pub actions: ActionSettings,
    /// Per-minute request budgets that override the catalogue defaults.
    pub rate_limits: BTreeMap<ProviderKind, u32>,
    pub failover: FailoverSettings,
    pub eu_only: bool,
    pub context_files: Vec<String>,
    pub log_level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: None,
            credential_store: CredentialStoreChoice::Auto,
            languages: vec!["markdown".into(), "plaintext".into()],
            inline: InlineSettings {
                enabled: true,
                debounce_ms: 120,
                max_tokens: 80,
                timeout_ms: 5_000,
            },
            actions: ActionSettings {
                max_tokens: 800,
                timeout_ms: 30_000,
            },
            rate_limits: BTreeMap::new(),
            failover: FailoverSettings {
                enabled: true,
                health_check_secs: 300,
            },
            eu_only: false,
            context_files: vec![
                "notes/**/*.md".into(),
                "characters/**/*.md".into(),
                "places/**/*.md".into(),
                "locations/**/*.md".into(),
                "STORY.md".into(),
            ],
            log_level: "info".into(),
        }
    }
}

impl Settings {
    pub fn inline_timeout(&self) -> Duration {
        Duration::from_millis(self.inline.timeout_ms)
    }

    pub fn action_timeout(&self) -> Duration {
        Duration::from_millis(self.actions.timeout_ms)
    }

    /// The per-minute budget of a provider kind: the setting, else the catalogue default.
    pub fn per_minute(&self, kind: ProviderKind) -> u32 {
        self.rate_limits
            .get(&kind)
            .copied()
            .unwrap_or_else(|| kind.entry().default_per_minute)
    }

    /// The data directory: the `dataDir` setting, else `STORYTELLER_DATA_DIR`, else the platform's
    /// data directory (`~/.local/share/storyteller` on Linux). `None` only when the platform has
    /// no home directory and nothing was configured.
    pub fn data_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Some(dir.clone());
        }
        if let Some(dir) = std::env::var_os("STORYTELLER_DATA_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        directories::ProjectDirs::from("", "", "storyteller").map(|d| d.data_dir().to_path_buf())
    }

    /// Decodes `value` (the `storyteller` section, or an object that contains it) over `self`.
    /// Returns the new settings and one warning per key that was invalid or unknown.
    pub fn merged(&self, value: &Value) -> (Settings, Vec<String>) {
        let mut next = self.clone();
        let mut warnings = Vec::new();
        let section = match value.get("storyteller") {
            Some(inner) => inner,
            None => value,
        };
        match section {
            Value::Null => {}
            Value::Object(map) => {
                let mut d = Decoder {
                    warnings: &mut warnings,
                };
                for (key, v) in map {
                    d.field(&mut next, key, v);
                }
            }
            other => warnings.push(format!(
                "storyteller: expected an object of settings, got {}; keeping the current settings",
                describe(other)
            )),
        }
        (next, warnings)
    }
}

struct Decoder<'w> {
    warnings: &'w mut Vec<String>,
}

impl Decoder<'_> {
    fn warn(&mut self, key: &str, expected: &str, got: &Value) {
        self.warnings.push(format!(
            "storyteller.{key}: expected {expected}, got {}; keeping the previous value",
            describe(got)
        ));
    }

    fn bool(&mut self, key: &str, v: &Value, slot: &mut bool) {
        match v {
            Value::Bool(b) => *slot = *b,
            Value::Null => {}
            other => self.warn(key, "true or false", other),
        }
    }

    fn int<T: TryFrom<u64> + Copy>(
        &mut self,
        key: &str,
        v: &Value,
        min: u64,
        max: u64,
        slot: &mut T,
    ) {
        let parsed = v.as_u64().filter(|n| (min..=max).contains(n));
        match (parsed, v) {
            (_, Value::Null) => {}
            (Some(n), _) => {
                if let Ok(n) = T::try_from(n) {
                    *slot = n;
                }
            }
            (None, other) => self.warn(key, &format!("an integer from {min} to {max}"), other),
        }
    }

    fn strings(&mut self, key: &str, v: &Value, slot: &mut Vec<String>) {
        match v {
            Value::Null => {}
            Value::Array(items) if items.iter().all(Value::is_string) => {
                *slot = items
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
            }
            other => self.warn(key, "a list of strings", other),
        }
    }

    fn object<'v>(
        &mut self,
        key: &str,
        v: &'v Value,
    ) -> Option<&'v serde_json::Map<String, Value>> {
        match v {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                self.warn(key, "an object", other);
                None
            }
        }
    }

    fn unknown(&mut self, key: &str) {
        self.warnings
            .push(format!("storyteller.{key}: unknown setting, ignored"));
    }

    fn field(&mut self, s: &mut Settings, key: &str, v: &Value) {
        match key {
            "dataDir" => match v {
                Value::String(p) if !p.trim().is_empty() => s.data_dir = Some(PathBuf::from(p)),
                Value::Null => s.data_dir = None,
                other => self.warn(key, "a directory path", other),
            },
            "credentialStore" => match v.as_str() {
                Some("auto") => s.credential_store = CredentialStoreChoice::Auto,
                Some("keychain") => s.credential_store = CredentialStoreChoice::Keychain,
                Some("file") => s.credential_store = CredentialStoreChoice::File,
                _ if v.is_null() => {}
                _ => self.warn(key, "\"auto\", \"keychain\" or \"file\"", v),
            },
            "languages" => self.strings(key, v, &mut s.languages),
            "contextFiles" => self.strings(key, v, &mut s.context_files),
            "euOnly" => self.bool(key, v, &mut s.eu_only),
            "logLevel" => match v.as_str() {
                Some(level @ ("error" | "warn" | "info" | "debug" | "trace")) => {
                    s.log_level = level.to_string()
                }
                _ if v.is_null() => {}
                _ => self.warn(key, "one of error, warn, info, debug, trace", v),
            },
            "inline" => {
                if let Some(map) = self.object(key, v) {
                    for (k, v) in map {
                        let full = format!("inline.{k}");
                        match k.as_str() {
                            "enabled" => self.bool(&full, v, &mut s.inline.enabled),
                            "debounceMs" => self.int(&full, v, 0, 5_000, &mut s.inline.debounce_ms),
                            "maxTokens" => self.int(&full, v, 1, 4_096, &mut s.inline.max_tokens),
                            "timeoutMs" => {
                                self.int(&full, v, 100, 120_000, &mut s.inline.timeout_ms)
                            }
                            _ => self.unknown(&full),
                        }
                    }
                }
            }
            "actions" => {
                if let Some(map) = self.object(key, v) {
                    for (k, v) in map {
                        let full = format!("actions.{k}");
                        match k.as_str() {
                            "maxTokens" => self.int(&full, v, 1, 32_768, &mut s.actions.max_tokens),
                            "timeoutMs" => {
                                self.int(&full, v, 1_000, 600_000, &mut s.actions.timeout_ms)
                            }
                            _ => self.unknown(&full),
                        }
                    }
                }
            }
            "failover" => {
                if let Some(map) = self.object(key, v) {
                    for (k, v) in map {
                        let full = format!("failover.{k}");
                        match k.as_str() {
                            "enabled" => self.bool(&full, v, &mut s.failover.enabled),
                            "healthCheckSecs" => {
                                self.int(&full, v, 5, 86_400, &mut s.failover.health_check_secs)
                            }
                            _ => self.unknown(&full),
                        }
                    }
                }
            }
            "rateLimits" => {
                if let Some(map) = self.object(key, v) {
                    for (k, v) in map {
                        let full = format!("rateLimits.{k}");
                        match k.parse::<ProviderKind>() {
                            Ok(kind) => {
                                let mut per_minute = s.per_minute(kind);
                                let before = self.warnings.len();
                                self.int(&full, v, 1, 100_000, &mut per_minute);
                                if self.warnings.len() == before && !v.is_null() {
                                    s.rate_limits.insert(kind, per_minute);
                                }
                            }
                            Err(_) => self.unknown(&full),
                        }
                    }
                }
            }
            _ => self.unknown(key),
        }
    }
}

fn describe(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        let short: String = text.chars().take(40).collect();
        format!("{short}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_values_apply() {
        let (s, warnings) = Settings::default().merged(&json!({
            "storyteller": {
                "inline": {"debounceMs": 200, "enabled": false},
                "rateLimits": {"openai": 10},
                "failover": {"healthCheckSecs": 60},
                "euOnly": true,
                "credentialStore": "file",
                "contextFiles": ["lore/*.md"]
            }
        }));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(s.inline.debounce_ms, 200);
        assert!(!s.inline.enabled);
        assert_eq!(s.per_minute(ProviderKind::OpenAi), 10);
        assert_eq!(s.per_minute(ProviderKind::Claude), 40);
        assert_eq!(s.failover.health_check_secs, 60);
        assert!(s.eu_only);
        assert_eq!(s.credential_store, CredentialStoreChoice::File);
        assert_eq!(s.context_files, vec!["lore/*.md"]);
    }

    #[test]
    fn invalid_values_warn_with_the_key_and_keep_defaults() {
        let (s, warnings) = Settings::default().merged(&json!({
            "inline": {"debounceMs": "fast", "maxTokens": -3},
            "rateLimits": {"openai": 0, "acme": 5},
            "credentialStore": "vault",
            "languages": "markdown",
            "colour": "blue"
        }));
        assert_eq!(s, Settings::default());
        let joined = warnings.join("\n");
        for key in [
            "storyteller.inline.debounceMs",
            "storyteller.inline.maxTokens",
            "storyteller.rateLimits.openai",
            "storyteller.rateLimits.acme",
            "storyteller.credentialStore",
            "storyteller.languages",
            "storyteller.colour",
        ] {
            assert!(joined.contains(key), "no warning names {key}: {joined}");
        }
    }

    #[test]
    fn a_non_object_section_keeps_everything() {
        let (s, warnings) = Settings::default().merged(&json!({"storyteller": 42}));
        assert_eq!(s, Settings::default());
        assert_eq!(warnings.len(), 1);
    }
}
