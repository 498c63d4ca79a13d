//! The OpenAI chat-completions wire format, one implementation with presets for OpenAI, DeepSeek,
//! Scaleway (EU), OpenRouter and Custom OpenAI-compatible servers (Ollama, llama.cpp, vLLM, LM Studio…).
//!
//! Presets differ only in facts (which token field, whether usage can be requested in a stream,
//! how many stop sequences, whether a key is required); the requests, the SSE decoding and the
//! error handling are shared.

use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::classify::Operation;
use super::endpoint::{Endpoint, FixedUrl, LISTING_TIMEOUT, OwnedContext};
use super::http::{self, Attempt, HttpClient, StreamDecoder};
use super::sse::{SseEvent, SseParser};
use super::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, Message, ModelInfo, ProviderConfig, ProviderError, ProviderKind, Role,
    StreamEvent, StreamResponse, Usage,
};

/// What differs between OpenAI-compatible vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Preset {
    /// OpenAI deprecated `max_tokens` for `max_completion_tokens` (its reasoning models refuse the
    /// old name); the compatible servers document `max_tokens`.
    completion_tokens_field: bool,
    /// `stream_options.include_usage`; strict self-hosted servers reject unknown fields.
    stream_usage: bool,
    /// OpenAI refuses more than 4 stop sequences.
    max_stop: usize,
    key_required: bool,
    /// `OpenAI-Organization` / `OpenAI-Project` headers.
    org_headers: bool,
    /// A path that proves the key when the model listing does not (OpenRouter lists its models
    /// without a key; its `GET /key` needs one).
    key_check: Option<&'static str>,
}

fn preset(kind: ProviderKind) -> Preset {
    match kind {
        ProviderKind::OpenAi => Preset {
            completion_tokens_field: true,
            stream_usage: true,
            max_stop: 4,
            key_required: true,
            org_headers: true,
            key_check: None,
        },
        ProviderKind::DeepSeek | ProviderKind::Scaleway => Preset {
            completion_tokens_field: false,
            stream_usage: true,
            max_stop: 4,
            key_required: true,
            org_headers: false,
            key_check: None,
        },
        // OpenRouter documents `max_tokens` and forwards `stream_options.include_usage`.
        ProviderKind::OpenRouter => Preset {
            completion_tokens_field: false,
            stream_usage: true,
            max_stop: 4,
            key_required: true,
            org_headers: false,
            key_check: Some("/key"),
        },
        ProviderKind::Custom
        | ProviderKind::Claude
        | ProviderKind::Gemini
        | ProviderKind::Yandex => Preset {
            completion_tokens_field: false,
            stream_usage: false,
            max_stop: 4,
            key_required: false,
            org_headers: false,
            key_check: None,
        },
    }
}

#[derive(Debug)]
pub struct OpenAiCompatible {
    ep: Endpoint,
    /// `/chat/completions`, parsed once.
    chat_url: FixedUrl,
    preset: Preset,
    organization: Option<String>,
    project: Option<String>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<OaUsage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    object: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Content>,
    #[serde(default)]
    delta: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    content: Option<String>,
    /// The model declined (OpenAI, structured outputs): the refusal comes here instead of
    /// `content`, with `finish_reason: "stop"`. Its text is the model's, never the author's
    /// manuscript: it is not inserted.
    #[serde(default)]
    refusal: Option<String>,
}

impl Content {
    fn refused(&self) -> bool {
        self.refusal.as_deref().is_some_and(|r| !r.is_empty())
    }
}

#[derive(Deserialize, Clone, Copy)]
struct OaUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

impl From<OaUsage> for Usage {
    fn from(u: OaUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
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

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

impl ChatResponse {
    fn is_error(&self) -> bool {
        self.error.is_some() || self.object.as_deref() == Some("error")
    }
}

impl OpenAiCompatible {
    pub fn new(config: &ProviderConfig, http: &HttpClient) -> Self {
        let org = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let ep = Endpoint::new(config, http);
        OpenAiCompatible {
            chat_url: ep.fixed("/chat/completions"),
            ep,
            preset: preset(config.kind),
            organization: org(&config.options.organization),
            project: org(&config.options.project),
        }
    }

    fn body<'a>(&'a self, request: &'a CompletionRequest, stream: bool) -> ChatRequest<'a> {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(ChatMessage {
                role: "system",
                content: system,
            });
        }
        messages.extend(request.messages.iter().map(|m: &Message| ChatMessage {
            role: match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: &m.content,
        }));
        let max = Some(request.max_tokens);
        ChatRequest {
            model: &self.ep.model,
            messages,
            max_tokens: max.filter(|_| !self.preset.completion_tokens_field),
            max_completion_tokens: max.filter(|_| self.preset.completion_tokens_field),
            temperature: request.temperature,
            stop: &request.stop[..request.stop.len().min(self.preset.max_stop)],
            stream,
            stream_options: (stream && self.preset.stream_usage).then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    fn check_config(&self) -> Result<(), ProviderError> {
        if self.ep.base.is_empty() {
            return Err(self.ep.misconfigured("no endpoint URL"));
        }
        if self.preset.key_required {
            self.ep.required_key()?;
        }
        Ok(())
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut builder = builder;
        if let Some(key) = &self.ep.key {
            builder = builder.bearer_auth(key.expose());
        }
        if self.preset.org_headers {
            if let Some(org) = &self.organization {
                builder = builder.header("OpenAI-Organization", org);
            }
            if let Some(project) = &self.project {
                builder = builder.header("OpenAI-Project", project);
            }
        }
        builder
    }

    async fn post_chat(
        &self,
        request: &CompletionRequest,
        stream: bool,
        attempt: &Attempt,
    ) -> Result<reqwest::Response, ProviderError> {
        self.check_config()?;
        let mut builder = http::with_json(
            self.chat_url.post(self.ep.http.reqwest()),
            &self.body(request, stream),
            request.text_len(),
        );
        if stream {
            builder = builder.header("Accept", "text/event-stream");
        }
        http::send(
            self.authorized(builder),
            attempt,
            self.ep.ctx(Operation::Generate),
        )
        .await
    }

    async fn one_token_chat(&self) -> Result<(), ProviderError> {
        let mut request = CompletionRequest::new(vec![Message::user("Hi")]);
        request.max_tokens = 1;
        request.timeout = LISTING_TIMEOUT;
        self.generate(&request).await.map(|_| ())
    }
}

#[async_trait]
impl AiProvider for OpenAiCompatible {
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
        let response = self.post_chat(request, false, &attempt).await?;
        let rate_limit =
            super::classify::rate_limit_hint(self.ep.kind, response.headers(), chrono::Utc::now());
        let body = http::read_body(response, &attempt).await?;
        let parsed: ChatResponse = http::parse_json(&body)?;
        if parsed.is_error() {
            let value: Value = http::parse_json(&body)?;
            if let Some(err) = self.ep.owned_ctx(Operation::Generate).error_in_body(&value) {
                return Err(err);
            }
        }
        let choice = parsed
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::Protocol {
                detail: Detail::new("the response has no choices"),
                partial: None,
            })?;
        let refused = choice.message.as_ref().is_some_and(Content::refused);
        Ok(Completion {
            text: choice.message.and_then(|m| m.content).unwrap_or_default(),
            finish: if refused {
                FinishReason::ContentFilter
            } else {
                choice
                    .finish_reason
                    .as_deref()
                    .map_or(FinishReason::Other, finish_reason)
            },
            usage: parsed.usage.map(Usage::from),
            model: parsed.model.unwrap_or_else(|| self.ep.model.clone()),
            rate_limit,
        })
    }

    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        let attempt = Attempt::for_request(request, true);
        let response = self.post_chat(request, true, &attempt).await?;
        let rate_limit =
            super::classify::rate_limit_hint(self.ep.kind, response.headers(), chrono::Utc::now());
        let decoder = ChatStreamDecoder::new(self.ep.owned_ctx(Operation::Generate));
        Ok(StreamResponse {
            model: self.ep.model.clone(),
            rate_limit,
            events: http::drive_stream(response, decoder, attempt),
        })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.check_config()?;
        let attempt = Attempt::bounded(LISTING_TIMEOUT);
        let builder = self.authorized(self.ep.http.reqwest().get(self.ep.url("/models")));
        let response = http::send(builder, &attempt, self.ep.ctx(Operation::ListModels)).await?;
        let list: ModelList = http::read_json(response, &attempt).await?;
        Ok(list
            .data
            .into_iter()
            .map(|m| ModelInfo {
                id: m.id,
                display_name: None,
            })
            .collect())
    }

    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError> {
        let started = Instant::now();
        match self.list_models().await {
            Ok(_) => {}
            // Many self-hosted servers have no model listing: a 1-token chat proves the rest.
            Err(ProviderError::BadRequest(d))
                if self.ep.kind == ProviderKind::Custom
                    && matches!(d.status, Some(404) | Some(405) | Some(501)) =>
            {
                self.one_token_chat().await?
            }
            Err(e) => return Err(e),
        }
        if let Some(path) = self.preset.key_check {
            let attempt = Attempt::bounded(LISTING_TIMEOUT);
            let builder = self.authorized(self.ep.http.reqwest().get(self.ep.url(path)));
            let response =
                http::send(builder, &attempt, self.ep.ctx(Operation::ListModels)).await?;
            let _: Value = http::read_json(response, &attempt).await?;
        }
        Ok(ConnectionReport {
            model: self.ep.model.clone(),
            latency_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// Decodes `data: {chat.completion.chunk}` … `data: [DONE]`.
pub struct ChatStreamDecoder {
    sse: SseParser,
    ctx: OwnedContext,
    events: Vec<SseEvent>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// A `delta.refusal` arrived: the stream ends as [`FinishReason::ContentFilter`].
    refused: bool,
}

impl ChatStreamDecoder {
    pub fn new(ctx: OwnedContext) -> Self {
        ChatStreamDecoder {
            sse: SseParser::new(),
            ctx,
            events: Vec::new(),
            finish: None,
            usage: None,
            refused: false,
        }
    }

    fn done(&self) -> StreamEvent {
        StreamEvent::Done {
            finish: if self.refused {
                FinishReason::ContentFilter
            } else {
                self.finish.unwrap_or(FinishReason::Stop)
            },
            usage: self.usage,
        }
    }
}

pub(crate) fn sse_error(e: super::sse::SseError) -> ProviderError {
    ProviderError::Protocol {
        detail: Detail::new(e.to_string()),
        partial: None,
    }
}

pub(crate) fn malformed(what: &str, e: &serde_json::Error) -> ProviderError {
    ProviderError::Protocol {
        detail: Detail::new(format!(
            "malformed {what}: {}",
            super::classify::describe_json_error(e)
        )),
        partial: None,
    }
}

impl StreamDecoder for ChatStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // Events framed before a framing error arrived first: they are handled (a vendor
        // error event among them wins) before the framing error is reported.
        let framed = self.sse.push(chunk, &mut self.events);
        let events = std::mem::take(&mut self.events);
        for event in events {
            let data = event.data.trim();
            if data == "[DONE]" {
                out.push(self.done());
                return Ok(());
            }
            let parsed: ChatResponse =
                serde_json::from_str(data).map_err(|e| malformed("stream chunk", &e))?;
            if parsed.is_error() {
                let value: Value =
                    serde_json::from_str(data).map_err(|e| malformed("stream chunk", &e))?;
                if let Some(err) = self.ctx.error_in_body(&value) {
                    return Err(err);
                }
            }
            if let Some(usage) = parsed.usage {
                self.usage = Some(usage.into());
            }
            if let Some(choice) = parsed.choices.into_iter().next() {
                self.refused |= choice.delta.as_ref().is_some_and(Content::refused);
                if let Some(text) = choice
                    .delta
                    .and_then(|d| d.content)
                    .filter(|t| !t.is_empty())
                {
                    out.push(StreamEvent::Delta(text));
                }
                if let Some(reason) = choice.finish_reason {
                    self.finish = Some(finish_reason(&reason));
                }
            }
        }
        framed.map_err(sse_error)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // Some compatible servers omit `[DONE]`; a finish reason already says the text is whole.
        if self.finish.is_some() && !self.sse.mid_event() {
            out.push(self.done());
            return Ok(());
        }
        Err(ProviderError::Protocol {
            detail: Detail::new("the stream ended before `[DONE]`"),
            partial: None,
        })
    }
}
