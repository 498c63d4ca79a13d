//! Yandex AI Studio Foundation Models (`POST /completion`, a streamed JSON sequence with
//! cumulative text, and the OpenAI-compatible `GET {host}/v1/models`).
//!
//! The folder travels in `modelUri` (`gpt://<folder>/<model>`), from `options.folderId` or else
//! `YANDEX_FOLDER_ID`; with an API key no `x-folder-id` header is sent. Streamed alternatives hold
//! the whole text so far: only the new suffix becomes a delta.

use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::classify::Operation;
use super::endpoint::{Endpoint, FixedUrl, LISTING_TIMEOUT, OwnedContext};
use super::http::{self, Attempt, HttpClient, StreamDecoder};
use super::ndjson::JsonSeqParser;
use super::openai::malformed;
use super::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, ModelInfo, ProviderConfig, ProviderError, ProviderKind, Role, StreamEvent,
    StreamResponse, Usage,
};

pub const FOLDER_ENV: &str = "YANDEX_FOLDER_ID";
const FOUNDATION_SUFFIX: &str = "/foundationModels/v1";

#[derive(Debug)]
pub struct Yandex {
    ep: Endpoint,
    /// `/completion`, parsed once.
    completion_url: FixedUrl,
    folder: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompletionBody<'a> {
    model_uri: String,
    completion_options: CompletionOptions,
    messages: Vec<YMessage<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompletionOptions {
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// An int64 in Yandex's API, written as a string like every int64 of its JSON mapping.
    max_tokens: String,
}

#[derive(Serialize)]
struct YMessage<'a> {
    role: &'static str,
    text: &'a str,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<ResultBody>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultBody {
    #[serde(default)]
    alternatives: Vec<Alternative>,
    #[serde(default)]
    usage: Option<YUsage>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    message: Option<AltMessage>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct AltMessage {
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct YUsage {
    #[serde(default)]
    input_text_tokens: Option<Value>,
    #[serde(default)]
    completion_tokens: Option<Value>,
}

impl YUsage {
    fn usage(&self) -> Usage {
        // Counts are int64 written as strings; numbers are accepted too.
        let count = |v: &Option<Value>| match v {
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            _ => 0,
        };
        Usage {
            input_tokens: count(&self.input_text_tokens),
            output_tokens: count(&self.completion_tokens),
        }
    }
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// What an alternative's status means for the stream.
fn status_finish(status: &str) -> Option<FinishReason> {
    match status {
        "ALTERNATIVE_STATUS_FINAL" => Some(FinishReason::Stop),
        "ALTERNATIVE_STATUS_TRUNCATED_FINAL" => Some(FinishReason::Length),
        "ALTERNATIVE_STATUS_CONTENT_FILTER" => Some(FinishReason::ContentFilter),
        "ALTERNATIVE_STATUS_TOOL_CALLS" => Some(FinishReason::Other),
        _ => None,
    }
}

impl Yandex {
    pub fn new(config: &ProviderConfig, http: &HttpClient) -> Self {
        let folder = config
            .options
            .folder_id
            .clone()
            .or_else(|| std::env::var(FOLDER_ENV).ok())
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty());
        let ep = Endpoint::new(config, http);
        Yandex {
            completion_url: ep.fixed("/completion"),
            ep,
            folder,
        }
    }

    fn folder(&self) -> Result<&str, ProviderError> {
        self.folder.as_deref().ok_or_else(|| {
            self.ep
                .misconfigured("no folder id (set options.folderId or YANDEX_FOLDER_ID)")
        })
    }

    fn model_uri(&self) -> Result<String, ProviderError> {
        if self.ep.model.contains("://") {
            return Ok(self.ep.model.clone());
        }
        Ok(format!("gpt://{}/{}", self.folder()?, self.ep.model))
    }

    /// `{host}/v1/models`: the OpenAI-compatible surface sits at the host root, beside
    /// `/foundationModels/v1`.
    fn models_url(&self) -> String {
        match self.ep.base.strip_suffix(FOUNDATION_SUFFIX) {
            Some(root) => format!("{root}/v1/models"),
            None => self.ep.url("/models"),
        }
    }

    fn body<'a>(
        &self,
        request: &'a CompletionRequest,
        stream: bool,
    ) -> Result<CompletionBody<'a>, ProviderError> {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(YMessage {
                role: "system",
                text: system,
            });
        }
        messages.extend(request.messages.iter().map(|m| YMessage {
            role: match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            text: &m.content,
        }));
        Ok(CompletionBody {
            model_uri: self.model_uri()?,
            completion_options: CompletionOptions {
                stream,
                temperature: request.temperature,
                max_tokens: request.max_tokens.to_string(),
            },
            messages,
        })
    }

    fn authorized(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        if self.ep.base.is_empty() {
            return Err(self.ep.misconfigured("no endpoint URL"));
        }
        let key = self.ep.required_key()?;
        Ok(builder.header("Authorization", format!("Api-Key {}", key.expose())))
    }

    async fn post(
        &self,
        request: &CompletionRequest,
        stream: bool,
        attempt: &Attempt,
    ) -> Result<reqwest::Response, ProviderError> {
        let body = self.body(request, stream)?;
        let builder = http::with_json(
            self.completion_url.post(self.ep.http.reqwest()),
            &body,
            request.text_len(),
        );
        http::send(
            self.authorized(builder)?,
            attempt,
            self.ep.ctx(Operation::Generate),
        )
        .await
    }
}

#[async_trait]
impl AiProvider for Yandex {
    fn kind(&self) -> ProviderKind {
        self.ep.kind
    }

    fn capabilities(&self) -> Capabilities {
        self.ep.capabilities()
    }

    fn model_info(&self) -> ModelInfo {
        self.ep.model_info()
    }

    async fn generate(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let attempt = Attempt::for_request(request, false);
        let response = self.post(request, false, &attempt).await?;
        let body = http::read_body(response, &attempt).await?;
        let parsed: Envelope = http::parse_json(&body)?;
        self.ep
            .owned_ctx(Operation::Generate)
            .check_error_field(parsed.error.as_ref())?;
        let result = parsed.result.ok_or_else(|| ProviderError::Protocol {
            detail: Detail::new("the response has no result"),
            partial: None,
        })?;
        let alternative = result.alternatives.first();
        let status = alternative.and_then(|a| a.status.as_deref()).unwrap_or("");
        let finish = status_finish(status).unwrap_or(FinishReason::Other);
        // A filtered answer's text is the vendor's refusal, not a continuation.
        let text = match finish {
            FinishReason::ContentFilter => String::new(),
            _ => alternative
                .and_then(|a| a.message.as_ref())
                .map(|m| m.text.clone())
                .unwrap_or_default(),
        };
        Ok(Completion {
            text,
            finish,
            usage: result.usage.as_ref().map(YUsage::usage),
            // `modelVersion` is a release date, not a model id: the configured model answered.
            model: self.ep.model.clone(),
            rate_limit: None,
        })
    }

    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        let attempt = Attempt::for_request(request, true);
        let response = self.post(request, true, &attempt).await?;
        Ok(StreamResponse {
            model: self.ep.model.clone(),
            rate_limit: None,
            events: http::drive_stream(
                response,
                YandexStreamDecoder::new(self.ep.owned_ctx(Operation::Generate)),
                attempt,
            ),
        })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let attempt = Attempt::bounded(LISTING_TIMEOUT);
        let builder = self
            .ep
            .http
            .reqwest()
            .get(self.models_url())
            .header("OpenAI-Project", self.folder()?);
        let response = http::send(
            self.authorized(builder)?,
            &attempt,
            self.ep.ctx(Operation::ListModels),
        )
        .await?;
        let list: ModelList = http::read_json(response, &attempt).await?;
        Ok(list
            .data
            .into_iter()
            .filter_map(|m| {
                // `gpt://<folder>/yandexgpt-lite/latest` → `yandexgpt-lite/latest`; embedding
                // models (`emb://`) cannot continue a story.
                let rest = m.id.strip_prefix("gpt://")?;
                let (_folder, model) = rest.split_once('/')?;
                Some(ModelInfo {
                    id: model.to_string(),
                    display_name: None,
                })
            })
            .collect())
    }

    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError> {
        let started = Instant::now();
        self.list_models().await?;
        Ok(ConnectionReport {
            model: self.ep.model.clone(),
            latency_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// Decodes the JSON sequence of cumulative alternatives into suffix deltas.
pub struct YandexStreamDecoder {
    parser: JsonSeqParser,
    ctx: OwnedContext,
    objects: Vec<String>,
    /// The whole text so far, as the vendor last sent it.
    sent: String,
    usage: Option<Usage>,
}

impl YandexStreamDecoder {
    pub fn new(ctx: OwnedContext) -> Self {
        YandexStreamDecoder {
            parser: JsonSeqParser::new(),
            ctx,
            objects: Vec::new(),
            sent: String::new(),
            usage: None,
        }
    }
}

impl StreamDecoder for YandexStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // Objects framed before a framing error are handled first (see `ChatStreamDecoder`).
        let framed = self.parser.push(chunk, &mut self.objects);
        let objects = std::mem::take(&mut self.objects);
        for object in objects {
            let parsed: Envelope =
                serde_json::from_str(&object).map_err(|e| malformed("stream line", &e))?;
            self.ctx.check_error_field(parsed.error.as_ref())?;
            let Some(result) = parsed.result else {
                continue;
            };
            if let Some(usage) = &result.usage {
                self.usage = Some(usage.usage());
            }
            let Some(alternative) = result.alternatives.into_iter().next() else {
                continue;
            };
            let finish = alternative.status.as_deref().and_then(status_finish);
            if finish == Some(FinishReason::ContentFilter) {
                // The text was replaced by a refusal: end the suggestion with what was sent.
                out.push(StreamEvent::Done {
                    finish: FinishReason::ContentFilter,
                    usage: self.usage,
                });
                return Ok(());
            }
            let text = alternative.message.map(|m| m.text).unwrap_or_default();
            match text.strip_prefix(self.sent.as_str()) {
                Some(suffix) if !suffix.is_empty() => {
                    out.push(StreamEvent::Delta(suffix.to_string()));
                    self.sent = text;
                }
                Some(_) => {}
                None => {
                    return Err(ProviderError::Protocol {
                        detail: Detail::new("the stream rewrote text it had already sent"),
                        partial: None,
                    });
                }
            }
            if let Some(finish) = finish {
                out.push(StreamEvent::Done {
                    finish,
                    usage: self.usage,
                });
                return Ok(());
            }
        }
        framed.map_err(|e| ProviderError::Protocol {
            detail: Detail::new(e.to_string()),
            partial: None,
        })
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::Protocol {
            detail: Detail::new(if self.parser.mid_object() {
                "the stream ended inside a JSON object"
            } else {
                "the stream ended before a final alternative"
            }),
            partial: None,
        })
    }
}
