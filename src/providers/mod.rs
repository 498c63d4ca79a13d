//! The provider layer: one [`AiProvider`] trait and the concrete vendors behind it (DESIGN.md §5).
//!
//! Callers fill a [`CompletionRequest`] once; switching providers changes no calling code.
//! This layer knows HTTP and vendor wire formats; it knows nothing of LSP, SQLite or the keychain.
//! Invariant: an API key leaves this layer only inside an HTTP request header.

pub mod anthropic;
pub mod catalog;
pub mod classify;
pub mod endpoint;
pub mod error;
pub mod gemini;
pub mod http;
pub mod ndjson;
pub mod openai;
pub mod sse;
pub mod yandex;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use catalog::{AuthType, Capabilities, CatalogEntry, ProviderKind};
pub use error::{Detail, ErrorKind, ProviderError};

use crate::secret::ApiKey;

/// Who said a message in the conversation sent to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// One request for generated text, independent of the vendor.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    pub stop: Vec<String>,
    /// Cancelled when the editor cancels or a newer request supersedes this one; the HTTP request
    /// is dropped at once.
    pub cancel: CancellationToken,
    /// Overall time allowed for one HTTP attempt (connect + response, or the whole stream).
    pub timeout: Duration,
    /// Streams only: the longest wait for the response headers and the first body bytes.
    pub first_byte_timeout: Duration,
    /// Streams only: the longest silence between two chunks; a stall mid-stream becomes
    /// [`ProviderError::Timeout`] after the deltas already delivered.
    pub idle_timeout: Duration,
}

impl CompletionRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        CompletionRequest {
            system: None,
            messages,
            max_tokens: 256,
            temperature: None,
            stop: Vec::new(),
            cancel: CancellationToken::new(),
            timeout: DEFAULT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The bytes of text it carries (system prompt, messages, stop sequences): what a request
    /// body is mostly made of.
    pub fn text_len(&self) -> usize {
        self.system.as_ref().map_or(0, String::len)
            + self.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + self.stop.iter().map(String::len).sum::<usize>()
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The token budget ran out.
    Length,
    /// The vendor filtered the content.
    ContentFilter,
    Other,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// What the vendor's rate-limit headers said about the remaining budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHint {
    /// Requests left in the vendor's current window.
    pub remaining: Option<u32>,
    /// The vendor's window size in requests.
    pub limit: Option<u32>,
    /// Time until the vendor's window resets.
    pub reset_after: Option<Duration>,
}

/// A finished, non-streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub finish: FinishReason,
    pub usage: Option<Usage>,
    /// The model that answered, as the vendor named it.
    pub model: String,
    pub rate_limit: Option<RateLimitHint>,
}

/// One item of a streamed generation. A well-formed stream is zero or more `Delta`s followed by
/// exactly one `Done`; a failure mid-stream is an `Err` item (for [`ProviderError::Protocol`] with the
/// text received so far in `partial`) and ends the stream. For any other mid-stream error (a
/// stall → `Timeout`, a reset → `Network`) the deltas already delivered are the partial text.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Delta(String),
    Done {
        finish: FinishReason,
        usage: Option<Usage>,
    },
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A stream whose response headers have arrived.
pub struct StreamResponse {
    pub model: String,
    pub rate_limit: Option<RateLimitHint>,
    pub events: EventStream,
}

impl std::fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResponse")
            .field("model", &self.model)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub id: String,
    pub display_name: Option<String>,
}

/// The outcome of a successful cheap connection test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionReport {
    pub model: String,
    pub latency_ms: u64,
}

/// Per-kind settings that travel with a provider row (`options` of the command contract).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderOptions {
    /// Yandex folder id (else `YANDEX_FOLDER_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// Custom endpoints only: the user declares the endpoint EU-resident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eu_resident: Option<bool>,
    /// OpenAI only: `OpenAI-Organization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// OpenAI only: `OpenAI-Project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Any kind: plain `http://` to a host other than this computer is allowed (with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
}

/// Everything needed to build one concrete provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Base URL up to and including the version segment (DESIGN.md §5).
    pub endpoint: String,
    pub model: String,
    pub api_key: Option<ApiKey>,
    pub options: ProviderOptions,
}

impl ProviderConfig {
    /// A config with the catalogue's default endpoint and model.
    pub fn with_defaults(kind: ProviderKind, api_key: Option<ApiKey>) -> Self {
        let entry = kind.entry();
        ProviderConfig {
            kind,
            endpoint: entry.default_endpoint.to_string(),
            model: entry.default_model.to_string(),
            api_key,
            options: ProviderOptions::default(),
        }
    }
}

/// Default overall timeout of one HTTP attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default first-byte timeout of a stream (headers and first body bytes). Vendors that queue a
/// request keep it alive with comments (DeepSeek), which count as bytes.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default longest silence between two chunks of a stream.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Connect timeout of every request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One AI vendor (or OpenAI-compatible endpoint), configured with a model and a key.
///
/// Object safe: the router holds `Arc<dyn AiProvider>`. Every method honours the request's
/// cancellation token and timeout; dropping a returned future aborts its HTTP request.
#[async_trait]
pub trait AiProvider: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> ProviderKind;
    fn capabilities(&self) -> Capabilities;
    /// The configured model.
    fn model_info(&self) -> ModelInfo;

    async fn generate(&self, request: &CompletionRequest) -> Result<Completion, ProviderError>;
    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError>;
    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError>;
    /// The cheapest call that proves the key and endpoint work (a model listing where the vendor
    /// has one, no tokens spent).
    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError>;
}

/// Builds the provider for `config`, sharing `http`'s connection pool. Configuration problems
/// (no endpoint for Custom, no Yandex folder id, no key where one is required) surface as errors
/// of the first call, so a stored row can always be turned into a provider and tested.
pub fn build(config: &ProviderConfig, http: &http::HttpClient) -> std::sync::Arc<dyn AiProvider> {
    use std::sync::Arc;
    match config.kind {
        ProviderKind::OpenAi
        | ProviderKind::DeepSeek
        | ProviderKind::Scaleway
        | ProviderKind::OpenRouter
        | ProviderKind::Custom => Arc::new(openai::OpenAiCompatible::new(config, http)),
        ProviderKind::Claude => Arc::new(anthropic::Anthropic::new(config, http)),
        ProviderKind::Gemini => Arc::new(gemini::Gemini::new(config, http)),
        ProviderKind::Yandex => Arc::new(yandex::Yandex::new(config, http)),
    }
}
