//! Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`, `GET /models`).
//!
//! The key travels only in the `x-goog-api-key` header — never as `?key=`, which would put it in
//! URLs, proxies' logs and error texts that quote the URL.

use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::anthropic::alternating;
use super::classify::Operation;
use super::endpoint::{Endpoint, FixedUrl, LISTING_TIMEOUT, OwnedContext};
use super::http::{self, Attempt, HttpClient, StreamDecoder};
use super::openai::{malformed, sse_error};
use super::sse::{SseEvent, SseParser};
use super::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, ModelInfo, ProviderConfig, ProviderError, ProviderKind, Role, StreamEvent,
    StreamResponse, Usage,
};

/// Gemini accepts at most 5 stop sequences.
const MAX_STOP: usize = 5;
const MAX_MODEL_PAGES: usize = 5;

#[derive(Debug)]
pub struct Gemini {
    ep: Endpoint,
    /// The model id without a `models/` prefix.
    model_path: String,
    /// `:generateContent` and `:streamGenerateContent?alt=sse` of the model, parsed once.
    generate_url: FixedUrl,
    stream_url: FixedUrl,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    contents: Vec<ContentOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemOut<'a>>,
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct ContentOut {
    role: &'static str,
    parts: [TextPart; 1],
}

#[derive(Serialize)]
struct TextPart {
    text: String,
}

#[derive(Serialize)]
struct SystemOut<'a> {
    parts: [BorrowedPart<'a>; 1],
}

#[derive(Serialize)]
struct BorrowedPart<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    max_output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<PartIn>,
}

#[derive(Deserialize)]
struct PartIn {
    #[serde(default)]
    text: Option<String>,
    /// Thought summaries are not part of the continuation.
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u32,
    #[serde(default)]
    candidates_token_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelPage {
    #[serde(default)]
    models: Vec<GeminiModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiModel {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    supported_generation_methods: Vec<String>,
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Other,
    }
}

fn blocked(reason: &str) -> ProviderError {
    ProviderError::BadRequest(Detail::new(format!(
        "Gemini blocked the prompt ({reason}); rephrase the passage or use another provider"
    )))
}

impl GenerateResponse {
    /// The text of the first candidate, its finish reason, or the block that stopped it.
    fn text(&self) -> Result<(String, Option<FinishReason>), ProviderError> {
        let Some(candidate) = self.candidates.first() else {
            if let Some(reason) = self
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_deref())
            {
                return Err(blocked(reason));
            }
            return Ok((String::new(), None));
        };
        let text = candidate
            .content
            .iter()
            .flat_map(|c| &c.parts)
            .filter(|p| !p.thought)
            .filter_map(|p| p.text.as_deref())
            .collect();
        Ok((text, candidate.finish_reason.as_deref().map(finish_reason)))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage_metadata.map(|u| Usage {
            input_tokens: u.prompt_token_count,
            output_tokens: u.candidates_token_count,
        })
    }
}

impl Gemini {
    pub fn new(config: &ProviderConfig, http: &HttpClient) -> Self {
        let ep = Endpoint::new(config, http);
        let model_path = ep.model.trim_start_matches("models/").to_string();
        Gemini {
            generate_url: ep.fixed(&format!("/models/{model_path}:generateContent")),
            stream_url: ep.fixed(&format!(
                "/models/{model_path}:streamGenerateContent?alt=sse"
            )),
            ep,
            model_path,
        }
    }

    fn body<'a>(&'a self, request: &'a CompletionRequest) -> GenerateRequest<'a> {
        // Gemini 2.5 Flash thinks by default and spends the output budget on it, which leaves a
        // short inline completion empty; a budget of 0 turns thinking off (Flash and Flash-Lite
        // only — Pro refuses it).
        let thinking_config = self
            .model_path
            .contains("2.5-flash")
            .then_some(ThinkingConfig { thinking_budget: 0 });
        GenerateRequest {
            contents: alternating(&request.messages)
                .into_iter()
                .map(|(role, text)| ContentOut {
                    role: match role {
                        Role::User => "user",
                        Role::Assistant => "model",
                    },
                    parts: [TextPart { text }],
                })
                .collect(),
            system_instruction: request
                .system
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|text| SystemOut {
                    parts: [BorrowedPart { text }],
                }),
            generation_config: GenerationConfig {
                max_output_tokens: request.max_tokens,
                temperature: request.temperature,
                stop_sequences: &request.stop[..request.stop.len().min(MAX_STOP)],
                thinking_config,
            },
        }
    }

    fn authorized(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        if self.ep.base.is_empty() {
            return Err(self.ep.misconfigured("no endpoint URL"));
        }
        let key = self.ep.required_key()?;
        Ok(builder.header("x-goog-api-key", key.expose()))
    }

    async fn post(
        &self,
        request: &CompletionRequest,
        stream: bool,
        attempt: &Attempt,
    ) -> Result<reqwest::Response, ProviderError> {
        let url = if stream {
            &self.stream_url
        } else {
            &self.generate_url
        };
        let builder = http::with_json(
            url.post(self.ep.http.reqwest()),
            &self.body(request),
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
impl AiProvider for Gemini {
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
        let parsed: GenerateResponse = http::parse_json(&body)?;
        self.ep
            .owned_ctx(Operation::Generate)
            .check_error_field(parsed.error.as_ref())?;
        let (text, finish) = parsed.text()?;
        Ok(Completion {
            text,
            finish: finish.unwrap_or(FinishReason::Other),
            usage: parsed.usage(),
            model: parsed
                .model_version
                .clone()
                .unwrap_or_else(|| self.model_path.clone()),
            rate_limit: None,
        })
    }

    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        let attempt = Attempt::for_request(request, true);
        let response = self.post(request, true, &attempt).await?;
        Ok(StreamResponse {
            model: self.model_path.clone(),
            rate_limit: None,
            events: http::drive_stream(
                response,
                GeminiStreamDecoder::new(self.ep.owned_ctx(Operation::Generate)),
                attempt,
            ),
        })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let attempt = Attempt::bounded(LISTING_TIMEOUT);
        let mut models = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut pairs = vec![("pageSize", "1000")];
            if let Some(token) = &page_token {
                pairs.push(("pageToken", token.as_str()));
            }
            let builder = self
                .ep
                .http
                .reqwest()
                .get(self.ep.url_with_query("/models", &pairs)?);
            let response = http::send(
                self.authorized(builder)?,
                &attempt,
                self.ep.ctx(Operation::ListModels),
            )
            .await?;
            let page: ModelPage = http::read_json(response, &attempt).await?;
            models.extend(
                page.models
                    .into_iter()
                    .filter(|m| {
                        m.supported_generation_methods
                            .iter()
                            .any(|g| g == "generateContent")
                    })
                    .map(|m| ModelInfo {
                        id: m.name.trim_start_matches("models/").to_string(),
                        display_name: m.display_name,
                    }),
            );
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        Ok(models)
    }

    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError> {
        let started = Instant::now();
        self.list_models().await?;
        Ok(ConnectionReport {
            model: self.model_path.clone(),
            latency_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// Decodes `data: {GenerateContentResponse}` events; the stream has no end marker, so it ends
/// well only when a finish reason arrived before the body ended.
pub struct GeminiStreamDecoder {
    sse: SseParser,
    ctx: OwnedContext,
    events: Vec<SseEvent>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl GeminiStreamDecoder {
    pub fn new(ctx: OwnedContext) -> Self {
        GeminiStreamDecoder {
            sse: SseParser::with_bare_json_lines(),
            ctx,
            events: Vec::new(),
            finish: None,
            usage: None,
        }
    }
}

impl GeminiStreamDecoder {
    fn handle(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let events = std::mem::take(&mut self.events);
        for event in events {
            let parsed: GenerateResponse =
                serde_json::from_str(&event.data).map_err(|e| malformed("stream chunk", &e))?;
            self.ctx.check_error_field(parsed.error.as_ref())?;
            let (text, finish) = parsed.text()?;
            if !text.is_empty() {
                out.push(StreamEvent::Delta(text));
            }
            if let Some(usage) = parsed.usage() {
                self.usage = Some(usage);
            }
            if finish.is_some() {
                self.finish = finish;
            }
        }
        Ok(())
    }
}

impl StreamDecoder for GeminiStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // Events framed before a framing error are handled first (see `ChatStreamDecoder`).
        let framed = self.sse.push(chunk, &mut self.events);
        self.handle(out)?;
        framed.map_err(sse_error)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // A last line that ends with the body (python-genai's own fixture ends so with an error
        // object) is read: an error in it wins; a cut line does not parse.
        if self.sse.mid_event() {
            self.sse.end(&mut self.events).map_err(sse_error)?;
            self.handle(out)?;
        }
        match self.finish {
            Some(finish) if !self.sse.mid_event() => {
                out.push(StreamEvent::Done {
                    finish,
                    usage: self.usage,
                });
                Ok(())
            }
            _ => Err(ProviderError::Protocol {
                detail: Detail::new("the stream ended before a finish reason"),
                partial: None,
            }),
        }
    }
}
