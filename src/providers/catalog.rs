//! The provider kinds StoryTeller LSP knows, with their defaults (DESIGN.md §5).
//!
//! This module owns facts about vendors (ids, default models and endpoints, environment variables,
//! default rate limits); it performs no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A kind of provider. `as_str` is the `provider_name` stored in SQLite and used on the wire of
/// the executeCommand contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[serde(rename = "openai")]
    OpenAi,
    Claude,
    Gemini,
    #[serde(rename = "deepseek")]
    DeepSeek,
    Yandex,
    Scaleway,
    #[serde(rename = "openrouter")]
    OpenRouter,
    Custom,
}

/// What a provider kind can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub streaming: bool,
    pub model_listing: bool,
    pub auth_types: Vec<AuthType>,
    pub eu_resident: bool,
    /// Context window of the default model, in tokens.
    pub context_window: u32,
    /// Whether a key is required (Custom endpoints often run without one).
    pub key_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    ApiKey,
    Oauth,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::ApiKey => "api_key",
            AuthType::Oauth => "oauth",
        }
    }
}

impl FromStr for AuthType {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api_key" => Ok(AuthType::ApiKey),
            "oauth" => Ok(AuthType::Oauth),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

/// The catalogue entry of one provider kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    #[serde(rename = "provider")]
    pub kind: ProviderKind,
    pub display_name: &'static str,
    pub default_model: &'static str,
    /// Base URL up to and including the API version segment; empty for Custom.
    pub default_endpoint: &'static str,
    /// Environment variable holding the system key, if the kind has one.
    pub key_env: Option<&'static str>,
    pub key_help_url: &'static str,
    pub default_per_minute: u32,
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown provider kind `{0}` (expected one of openai, claude, gemini, deepseek, yandex, scaleway, openrouter, custom)"
)]
pub struct UnknownKind(pub String);

impl ProviderKind {
    pub const ALL: [ProviderKind; 8] = [
        ProviderKind::OpenAi,
        ProviderKind::Claude,
        ProviderKind::Gemini,
        ProviderKind::DeepSeek,
        ProviderKind::Yandex,
        ProviderKind::Scaleway,
        ProviderKind::OpenRouter,
        ProviderKind::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Claude => "claude",
            ProviderKind::Gemini => "gemini",
            ProviderKind::DeepSeek => "deepseek",
            ProviderKind::Yandex => "yandex",
            ProviderKind::Scaleway => "scaleway",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::Custom => "custom",
        }
    }

    pub fn entry(self) -> CatalogEntry {
        let caps = |eu_resident, context_window, key_required| Capabilities {
            streaming: true,
            model_listing: true,
            auth_types: vec![AuthType::ApiKey],
            eu_resident,
            context_window,
            key_required,
        };
        match self {
            ProviderKind::OpenAi => CatalogEntry {
                kind: self,
                display_name: "OpenAI",
                default_model: "gpt-4o",
                default_endpoint: "https://api.openai.com/v1",
                key_env: Some("OPENAI_API_KEY"),
                key_help_url: "https://platform.openai.com/api-keys",
                default_per_minute: 50,
                capabilities: caps(false, 128_000, true),
            },
            ProviderKind::Claude => CatalogEntry {
                kind: self,
                display_name: "Anthropic Claude",
                default_model: "claude-sonnet-4-5",
                default_endpoint: "https://api.anthropic.com/v1",
                key_env: Some("ANTHROPIC_API_KEY"),
                key_help_url: "https://console.anthropic.com/settings/keys",
                default_per_minute: 40,
                capabilities: caps(false, 200_000, true),
            },
            ProviderKind::Gemini => CatalogEntry {
                kind: self,
                display_name: "Google Gemini",
                default_model: "gemini-2.5-flash",
                default_endpoint: "https://generativelanguage.googleapis.com/v1beta",
                key_env: Some("GEMINI_API_KEY"),
                key_help_url: "https://aistudio.google.com/app/apikey",
                default_per_minute: 60,
                capabilities: caps(false, 1_048_576, true),
            },
            ProviderKind::DeepSeek => CatalogEntry {
                kind: self,
                display_name: "DeepSeek",
                default_model: "deepseek-flash",
                default_endpoint: "https://api.deepseek.com",
                key_env: Some("DEEPSEEK_API_KEY"),
                key_help_url: "https://platform.deepseek.com/api_keys",
                default_per_minute: 30,
                capabilities: caps(false, 128_000, true),
            },
            ProviderKind::Yandex => CatalogEntry {
                kind: self,
                display_name: "Yandex AI Studio",
                default_model: "yandexgpt-lite/latest",
                default_endpoint: "https://llm.api.cloud.yandex.net/foundationModels/v1",
                key_env: Some("YANDEX_API_KEY"),
                key_help_url: "https://yandex.cloud/en/docs/iam/operations/api-key/create",
                default_per_minute: 20,
                capabilities: caps(false, 32_768, true),
            },
            ProviderKind::Scaleway => CatalogEntry {
                kind: self,
                display_name: "Scaleway (EU)",
                default_model: "mistral-small-3.2-24b-instruct-2506",
                default_endpoint: "https://api.scaleway.ai/v1",
                key_env: Some("SCW_SECRET_KEY"),
                key_help_url: "https://console.scaleway.com/iam/api-keys",
                default_per_minute: 10,
                capabilities: caps(true, 128_000, true),
            },
            ProviderKind::OpenRouter => CatalogEntry {
                kind: self,
                display_name: "OpenRouter",
                default_model: "openai/gpt-4o-mini",
                default_endpoint: "https://openrouter.ai/api/v1",
                key_env: Some("OPENROUTER_API_KEY"),
                key_help_url: "https://openrouter.ai/keys",
                default_per_minute: 20,
                capabilities: Capabilities {
                    // A key comes from a pasted API key or from "Sign in with OpenRouter" (PKCE).
                    auth_types: vec![AuthType::ApiKey, AuthType::Oauth],
                    ..caps(false, 128_000, true)
                },
            },
            ProviderKind::Custom => CatalogEntry {
                kind: self,
                display_name: "Custom (OpenAI-compatible)",
                default_model: "",
                default_endpoint: "",
                key_env: None,
                key_help_url: "https://github.com/ollama/ollama/blob/main/docs/openai.md",
                default_per_minute: 60,
                capabilities: caps(false, 8_192, false),
            },
        }
    }

    pub fn display_name(self) -> &'static str {
        self.entry().display_name
    }

    pub fn default_model(self) -> &'static str {
        self.entry().default_model
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// The hosts where a vendor keeps the text it is sent inside the EU: exact host names, and
/// suffixes (starting with a dot) for hosts made per deployment. Only Scaleway's are known
/// (PROVIDERS.md: Generative APIs at `api.scaleway.ai`, Paris; Managed Inference deployments
/// in its EU regions Paris, Amsterdam and Warsaw). Every other kind, Custom included, has none.
pub fn eu_hosts(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Scaleway => &[
            "api.scaleway.ai",
            ".fr-par.scaleway.com",
            ".nl-ams.scaleway.com",
            ".pl-waw.scaleway.com",
        ],
        ProviderKind::OpenAi
        | ProviderKind::Claude
        | ProviderKind::Gemini
        | ProviderKind::DeepSeek
        | ProviderKind::Yandex
        | ProviderKind::OpenRouter
        | ProviderKind::Custom => &[],
    }
}

/// Whether a provider at `endpoint` keeps text in the EU: decided by the endpoint's host, not
/// by the kind (a Scaleway entry pointed at another host is not EU). A custom endpoint has no
/// known hosts: it is EU only when the author declared it with the `euResident` option
/// (`declared`), which the other kinds do not take.
pub fn eu_resident(kind: ProviderKind, endpoint: &str, declared: Option<bool>) -> bool {
    if kind == ProviderKind::Custom {
        return declared == Some(true);
    }
    let Some(host) = reqwest::Url::parse(endpoint.trim()).ok().and_then(|url| {
        url.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
    }) else {
        return false;
    };
    eu_hosts(kind)
        .iter()
        .any(|known| match known.strip_prefix('.') {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(*known),
            None => host == *known,
        })
}

/// The whole catalogue, in display order.
pub fn catalog() -> Vec<CatalogEntry> {
    ProviderKind::ALL
        .into_iter()
        .map(ProviderKind::entry)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert!("anthropic".parse::<ProviderKind>().is_err());
    }

    #[test]
    fn residency_is_decided_by_the_endpoint_host() {
        use ProviderKind::*;
        let cases: &[(ProviderKind, &str, Option<bool>, bool)] = &[
            (Scaleway, "https://api.scaleway.ai/v1", None, true),
            (Scaleway, "https://API.Scaleway.ai./0a1b2c/v1", None, true),
            (
                Scaleway,
                "https://abc-123.ifr.fr-par.scaleway.com/v1",
                None,
                true,
            ),
            (Scaleway, "https://x.nl-ams.scaleway.com/v1", None, true),
            (
                Scaleway,
                "https://api.scaleway.ai.example.com/v1",
                None,
                false,
            ),
            (Scaleway, "https://evilapi.scaleway.ai/v1", None, false),
            (
                Scaleway,
                "https://fr-par.scaleway.com.attacker.net/v1",
                None,
                false,
            ),
            (Scaleway, "https://gateway.example.us/v1", None, false),
            (Scaleway, "http://127.0.0.1:8080/scaleway/v1", None, false),
            (
                Scaleway,
                "http://127.0.0.1:8080/scaleway/v1",
                Some(true),
                false,
            ),
            (OpenAi, "https://api.openai.com/v1", None, false),
            (OpenAi, "https://api.scaleway.ai/v1", None, false),
            (Custom, "https://llm.example.eu/v1", None, false),
            (Custom, "https://llm.example.eu/v1", Some(true), true),
            (Custom, "http://localhost:11434/v1", Some(true), true),
            (Custom, "https://llm.example.eu/v1", Some(false), false),
        ];
        for (kind, endpoint, declared, want) in cases {
            assert_eq!(
                eu_resident(*kind, endpoint, *declared),
                *want,
                "{kind} at {endpoint} ({declared:?})"
            );
        }
    }

    #[test]
    fn only_scaleway_is_eu_resident_by_default() {
        let eu: Vec<_> = catalog()
            .into_iter()
            .filter(|e| e.capabilities.eu_resident)
            .map(|e| e.kind)
            .collect();
        assert_eq!(eu, vec![ProviderKind::Scaleway]);
    }
}
