//! Anthropic's Messages API (`POST /messages`, SSE with named events, `GET /models`).
//!
//! The Messages API wants a conversation that starts with the user and alternates roles; the
//! caller's conversation is adjusted here (consecutive turns of one role merged, a user turn put
//! first when missing) so callers never need to know.

use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::classify::Operation;
use super::endpoint::{Endpoint, FixedUrl, LISTING_TIMEOUT, OwnedContext};
use super::http::{self, Attempt, HttpClient, StreamDecoder};
use super::openai::{malformed, sse_error};
use super::sse::{SseEvent, SseParser};
use super::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, Message, ModelInfo, ProviderConfig, ProviderError, ProviderKind, Role,
    StreamEvent, StreamResponse, Usage,
};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Put first when a conversation does not start with the user (the Messages API refuses that).
const OPENING_USER_TURN: &str = "Continue.";

/// The conversation as an alternating list starting with a user turn: turns of one role in a row
/// are joined with a blank line, empty turns dropped. Shared with Gemini, which prefers the same.
pub(crate) fn alternating(messages: &[Message]) -> Vec<(Role, String)> {
    let mut out: Vec<(Role, String)> = Vec::with_capacity(messages.len() + 1);
    for m in messages.iter().filter(|m| !m.content.trim().is_empty()) {
        match out.last_mut() {
            Some((role, text)) if *role == m.role => {
                text.push_str("\n\n");
                text.push_str(&m.content);
            }
            _ => out.push((m.role, m.content.clone())),
        }
    }
    if out.first().is_none_or(|(role, _)| *role != Role::User) {
        out.insert(0, (Role::User, OPENING_USER_TURN.to_string()));
    }
    out
}

#[derive(Debug)]
pub struct Anthropic {
    ep: Endpoint,
    /// `/messages`, parsed once.
    messages_url: FixedUrl,
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<TurnOut>,
    // No `temperature` (nor `top_p`/`top_k`): the anthropic SDK (2.x, 2026-10) no longer has
    // sampling parameters, API version 2026-10-21 refuses them, and generation-5 models refuse
    // them under 2023-06-01 too. Alternatives differ by their prompt (`assist::inline`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    stream: bool,
}

#[derive(Serialize)]
struct TurnOut {
    role: Role,
    content: String,
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct ClaudeUsage {
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct ModelPage {
    #[serde(default)]
    data: Vec<ClaudeModel>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct ClaudeModel {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
}

impl MessagesResponse {
    /// The text blocks joined, why the model stopped, and the token counts.
    fn whole(&self) -> (String, FinishReason, Usage) {
        let text = self
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect();
        let finish = self
            .stop_reason
            .as_deref()
            .map_or(FinishReason::Other, stop_reason);
        let usage = self.usage.unwrap_or_default();
        let usage = Usage {
            input_tokens: usage.input_tokens.unwrap_or(0),
            output_tokens: usage.output_tokens.unwrap_or(0),
        };
        (text, finish, usage)
    }
}

/// Whether a successful response is a JSON document rather than an event stream.
fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// Model listings are paged; more than this many pages is not a listing an author reads.
const MAX_MODEL_PAGES: usize = 5;

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

impl Anthropic {
    pub fn new(config: &ProviderConfig, http: &HttpClient) -> Self {
        let ep = Endpoint::new(config, http);
        Anthropic {
            messages_url: ep.fixed("/messages"),
            ep,
        }
    }

    fn body<'a>(&'a self, request: &'a CompletionRequest, stream: bool) -> MessagesRequest<'a> {
        MessagesRequest {
            model: &self.ep.model,
            max_tokens: request.max_tokens,
            system: request.system.as_deref().filter(|s| !s.is_empty()),
            messages: alternating(&request.messages)
                .into_iter()
                .map(|(role, content)| TurnOut { role, content })
                .collect(),
            stop_sequences: &request.stop,
            stream,
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
        Ok(builder
            .header("x-api-key", key.expose())
            .header("anthropic-version", ANTHROPIC_VERSION))
    }

    async fn post(
        &self,
        request: &CompletionRequest,
        stream: bool,
        attempt: &Attempt,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut builder = http::with_json(
            self.messages_url.post(self.ep.http.reqwest()),
            &self.body(request, stream),
            request.text_len(),
        );
        if stream {
            builder = builder.header("Accept", "text/event-stream");
        }
        http::send(
            self.authorized(builder)?,
            attempt,
            self.ep.ctx(Operation::Generate),
        )
        .await
    }
}

#[async_trait]
impl AiProvider for Anthropic {
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
        let rate_limit =
            super::classify::rate_limit_hint(self.ep.kind, response.headers(), chrono::Utc::now());
        let parsed: MessagesResponse = http::read_json(response, &attempt).await?;
        let (text, finish, usage) = parsed.whole();
        Ok(Completion {
            text,
            finish,
            usage: Some(usage),
            model: parsed.model.unwrap_or_else(|| self.ep.model.clone()),
            rate_limit,
        })
    }

    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        let attempt = Attempt::for_request(request, true);
        let response = self.post(request, true, &attempt).await?;
        let rate_limit =
            super::classify::rate_limit_hint(self.ep.kind, response.headers(), chrono::Utc::now());
        if is_json(&response) {
            // A gateway that ignores `stream: true` (LiteLLM's proxy answers `/v1/messages` so
            // for its mock models) sends the whole message: one delta, then the end.
            let parsed: MessagesResponse = http::read_json(response, &attempt).await?;
            let (text, finish, usage) = parsed.whole();
            let mut events = Vec::with_capacity(2);
            if !text.is_empty() {
                events.push(Ok(StreamEvent::Delta(text)));
            }
            events.push(Ok(StreamEvent::Done {
                finish,
                usage: Some(usage),
            }));
            return Ok(StreamResponse {
                model: parsed.model.unwrap_or_else(|| self.ep.model.clone()),
                rate_limit,
                events: Box::pin(futures::stream::iter(events)),
            });
        }
        Ok(StreamResponse {
            model: self.ep.model.clone(),
            rate_limit,
            events: http::drive_stream(
                response,
                MessagesStreamDecoder::new(self.ep.owned_ctx(Operation::Generate)),
                attempt,
            ),
        })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let attempt = Attempt::bounded(LISTING_TIMEOUT);
        let mut models = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let pairs: Vec<(&str, &str)> = after.iter().map(|a| ("after_id", a.as_str())).collect();
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
            models.extend(page.data.into_iter().map(|m| ModelInfo {
                id: m.id,
                display_name: m.display_name,
            }));
            match (page.has_more, page.last_id) {
                (true, Some(last)) => after = Some(last),
                _ => break,
            }
        }
        Ok(models)
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

/// Decodes `message_start` … `content_block_delta` … `message_delta` … `message_stop`, and
/// `error` events mid-stream.
pub struct MessagesStreamDecoder {
    sse: SseParser,
    ctx: OwnedContext,
    events: Vec<SseEvent>,
    finish: Option<FinishReason>,
    usage: Usage,
    saw_usage: bool,
}

#[derive(Deserialize)]
struct StreamData {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default)]
    delta: Option<DeltaData>,
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

#[derive(Deserialize)]
struct DeltaData {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

impl MessagesStreamDecoder {
    pub fn new(ctx: OwnedContext) -> Self {
        MessagesStreamDecoder {
            sse: SseParser::new(),
            ctx,
            events: Vec::new(),
            finish: None,
            usage: Usage::default(),
            saw_usage: false,
        }
    }

    fn add_usage(&mut self, usage: Option<ClaudeUsage>) {
        if let Some(u) = usage {
            if let Some(n) = u.input_tokens {
                self.usage.input_tokens = n;
                self.saw_usage = true;
            }
            if let Some(n) = u.output_tokens {
                self.usage.output_tokens = n;
                self.saw_usage = true;
            }
        }
    }
}

impl MessagesStreamDecoder {
    /// Handles framed events; `Ok(true)` once `message_stop` has ended the stream.
    fn handle(&mut self, out: &mut Vec<StreamEvent>) -> Result<bool, ProviderError> {
        let events = std::mem::take(&mut self.events);
        for event in events {
            let data: StreamData =
                serde_json::from_str(&event.data).map_err(|e| malformed("stream event", &e))?;
            let name = if event.event.is_empty() {
                data.kind.as_str()
            } else {
                event.event.as_str()
            };
            match name {
                "message_start" => self.add_usage(data.message.and_then(|m| m.usage)),
                "content_block_delta" => {
                    if let Some(delta) = data.delta
                        && delta.kind.as_deref() == Some("text_delta")
                        && let Some(text) = delta.text.filter(|t| !t.is_empty())
                    {
                        out.push(StreamEvent::Delta(text));
                    }
                }
                "message_delta" => {
                    if let Some(reason) = data.delta.and_then(|d| d.stop_reason) {
                        self.finish = Some(stop_reason(&reason));
                    }
                    self.add_usage(data.usage);
                }
                "message_stop" => {
                    out.push(StreamEvent::Done {
                        finish: self.finish.unwrap_or(FinishReason::Stop),
                        usage: self.saw_usage.then_some(self.usage),
                    });
                    return Ok(true);
                }
                "error" => {
                    let value: Value = serde_json::from_str(&event.data)
                        .map_err(|e| malformed("error event", &e))?;
                    return Err(self.ctx.error_in_body(&value).unwrap_or_else(|| {
                        ProviderError::Unavailable(Detail::new("error event without details"))
                    }));
                }
                // ping, content_block_start/stop, and event types added later.
                _ => {}
            }
        }
        Ok(false)
    }
}

impl StreamDecoder for MessagesStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // Events framed before a framing error are handled first (see `ChatStreamDecoder`).
        let framed = self.sse.push(chunk, &mut self.events);
        if self.handle(out)? {
            return Ok(());
        }
        framed.map_err(sse_error)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // The body may end right after `message_stop`'s data line, without the blank line
        // (anthropic-sdk-python's own recorded fixtures do): that event is whole if it parses.
        if self.sse.mid_event() {
            self.sse.end(&mut self.events).map_err(sse_error)?;
            if self.handle(out)? {
                return Ok(());
            }
        }
        Err(ProviderError::Protocol {
            detail: Detail::new("the stream ended before `message_stop`"),
            partial: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_are_made_to_start_with_the_user_and_alternate() {
        let got = alternating(&[
            Message::assistant("Once"),
            Message::user("a"),
            Message::user("b"),
            Message::user("  "),
            Message::assistant("c"),
        ]);
        assert_eq!(
            got,
            vec![
                (Role::User, OPENING_USER_TURN.to_string()),
                (Role::Assistant, "Once".to_string()),
                (Role::User, "a\n\nb".to_string()),
                (Role::Assistant, "c".to_string()),
            ]
        );
        assert_eq!(
            alternating(&[]),
            vec![(Role::User, OPENING_USER_TURN.to_string())]
        );
    }
}
