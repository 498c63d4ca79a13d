//! System keys: API keys and settings taken from environment variables (DESIGN.md §5, §6), the
//! last level of key resolution.
//!
//! The environment is read through the [`Environment`] trait so tests and embedders supply their
//! own (a [`VarMap`]) instead of mutating the process environment. Values are trimmed; an empty
//! value counts as absent. Values read here are held in zeroized buffers and become [`ApiKey`]s.
//!
//! This module never logs a value, only variable names.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::ApiKey;
use crate::providers::ProviderKind;

/// Replaces the machine id as the secret the credentials file key is derived from.
pub const CREDENTIALS_KEY_VAR: &str = "STORYTELLER_CREDENTIALS_KEY";

/// The Yandex Cloud folder used when a Yandex provider row has no `folderId` option.
pub const YANDEX_FOLDER_ID_VAR: &str = "YANDEX_FOLDER_ID";

/// Where environment variables come from.
pub trait Environment: Send + Sync {
    /// The raw value of `name`, or `None` when it is unset or not valid Unicode.
    fn var(&self, name: &str) -> Option<Zeroizing<String>>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<Zeroizing<String>> {
        std::env::var(name).ok().map(Zeroizing::new)
    }
}

/// A fixed set of variables, for tests and for callers that assemble an environment themselves.
#[derive(Default)]
pub struct VarMap(BTreeMap<String, Zeroizing<String>>);

impl VarMap {
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), Zeroizing::new(value.into()));
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for VarMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = VarMap::default();
        for (k, v) in iter {
            map.set(k, v);
        }
        map
    }
}

impl Environment for VarMap {
    fn var(&self, name: &str) -> Option<Zeroizing<String>> {
        self.0.get(name).cloned()
    }
}

/// The trimmed value of `name`; `None` when unset or blank.
pub fn non_empty(env: &dyn Environment, name: &str) -> Option<Zeroizing<String>> {
    let value = env.var(name)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == value.len() {
        Some(value)
    } else {
        Some(Zeroizing::new(trimmed.to_string()))
    }
}

/// The system key of `kind` (its catalogue `key_env`, e.g. `OPENAI_API_KEY`); `None` when the
/// variable is unset or blank, and always for Custom, which has no system key.
///
/// For Yandex this is `YANDEX_API_KEY` alone: the folder may come from the provider row's
/// options, so [`yandex_folder_id`] is looked up separately, only when the row has none.
pub fn system_key(kind: ProviderKind, env: &dyn Environment) -> Option<ApiKey> {
    let name = kind.entry().key_env?;
    let value = non_empty(env, name)?;
    Some(ApiKey::new(value.as_str()))
}

/// `YANDEX_FOLDER_ID`, trimmed; `None` when unset or blank. Not a secret.
pub fn yandex_folder_id(env: &dyn Environment) -> Option<String> {
    non_empty(env, YANDEX_FOLDER_ID_VAR).map(|v| v.as_str().to_string())
}

/// The names of the system-key variables that are set, for `doctor` and status displays.
pub fn present_system_keys(env: &dyn Environment) -> Vec<(ProviderKind, &'static str)> {
    ProviderKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let name = kind.entry().key_env?;
            non_empty(env, name).map(|_| (kind, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_its_own_variable() {
        let cases = [
            (ProviderKind::OpenAi, "OPENAI_API_KEY"),
            (ProviderKind::Claude, "ANTHROPIC_API_KEY"),
            (ProviderKind::Gemini, "GEMINI_API_KEY"),
            (ProviderKind::DeepSeek, "DEEPSEEK_API_KEY"),
            (ProviderKind::Yandex, "YANDEX_API_KEY"),
            (ProviderKind::Scaleway, "SCW_SECRET_KEY"),
            (ProviderKind::OpenRouter, "OPENROUTER_API_KEY"),
        ];
        for (kind, var) in cases {
            let value = format!("key-for-{var}-0123");
            let env: VarMap = [(var, value.as_str())].into_iter().collect();
            let key = system_key(kind, &env).unwrap_or_else(|| panic!("{var} not read"));
            assert_eq!(key.expose(), value);
            for other in ProviderKind::ALL.into_iter().filter(|k| *k != kind) {
                assert!(system_key(other, &env).is_none(), "{other} read {var}");
            }
        }
    }

    #[test]
    fn blank_values_count_as_absent_and_values_are_trimmed() {
        for blank in ["", "   ", "\n"] {
            let env: VarMap = [("OPENAI_API_KEY", blank)].into_iter().collect();
            assert!(
                system_key(ProviderKind::OpenAi, &env).is_none(),
                "{blank:?}"
            );
            assert!(present_system_keys(&env).is_empty());
        }
        let env: VarMap = [
            ("GEMINI_API_KEY", "  AIza-trimmed-key \n"),
            ("YANDEX_FOLDER_ID", " b1gfolder "),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            system_key(ProviderKind::Gemini, &env).map(|k| k.expose().to_string()),
            Some("AIza-trimmed-key".to_string())
        );
        assert_eq!(yandex_folder_id(&env).as_deref(), Some("b1gfolder"));
    }

    #[test]
    fn custom_endpoints_have_no_system_key() {
        let env: VarMap = ProviderKind::ALL
            .into_iter()
            .filter_map(|k| k.entry().key_env)
            .map(|name| (name, "some-value-123456"))
            .collect();
        assert!(system_key(ProviderKind::Custom, &env).is_none());
        assert_eq!(present_system_keys(&env).len(), 7);
    }

    #[test]
    fn env_example_documents_every_variable() {
        let example = include_str!("../../.env.example");
        let names = ProviderKind::ALL
            .into_iter()
            .filter_map(|k| k.entry().key_env)
            .chain([YANDEX_FOLDER_ID_VAR, CREDENTIALS_KEY_VAR]);
        for name in names {
            assert!(
                example.lines().any(|l| l.starts_with(&format!("{name}="))),
                ".env.example has no {name}= line"
            );
        }
        for kind in ProviderKind::ALL
            .into_iter()
            .filter(|k| k.entry().key_env.is_some())
        {
            let url = kind.entry().key_help_url;
            assert!(example.contains(url), ".env.example lacks {url}");
        }
    }
}
