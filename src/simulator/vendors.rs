//! Each vendor's side of the wire, as the simulator plays it: which path is which operation,
//! where the key is, how a request body reads, and what success and error bodies look like
//! (PROVIDERS.md). Pure functions: no I/O, no state.

use bytes::Bytes;
use serde_json::{Value, json};

use super::Fault;
use super::prose::{Continuation, Prompt, continue_story, pieces};
use crate::providers::ProviderKind;
use crate::secret::mask;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A completion; Gemini names the model and streaming in the path.
    Generate {
        path_model: Option<String>,
        path_stream: bool,
    },
    Models,
    /// OpenRouter's `GET /key`: what the key is (label, limit, usage).
    KeyInfo,
    Unknown,
}

/// A parsed generation request.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub prompt: Prompt,
}

/// A response before faults shape its body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    /// Body pieces: one for a plain body, one per event for a stream.
    pub pieces: Vec<Bytes>,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            pieces: vec![Bytes::from(body.to_string())],
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

pub(crate) fn operation(kind: ProviderKind, method: &str, rest: &str) -> Op {
    let rest = match kind {
        // DeepSeek accepts its paths with or without `/v1`.
        ProviderKind::DeepSeek => rest.strip_prefix("/v1").unwrap_or(rest),
        _ => rest,
    };
    let generate = Op::Generate {
        path_model: None,
        path_stream: false,
    };
    match (kind, method, rest) {
        (_, "GET", "/models") => Op::Models,
        (ProviderKind::OpenRouter, "GET", "/key") => Op::KeyInfo,
        (
            ProviderKind::OpenAi
            | ProviderKind::DeepSeek
            | ProviderKind::Scaleway
            | ProviderKind::OpenRouter
            | ProviderKind::Custom,
            "POST",
            "/chat/completions",
        ) => generate,
        (ProviderKind::Claude, "POST", "/messages") => generate,
        (ProviderKind::Yandex, "POST", "/completion") => generate,
        (ProviderKind::Gemini, "POST", path) => {
            let Some(action) = path.strip_prefix("/models/") else {
                return Op::Unknown;
            };
            match action.rsplit_once(':') {
                Some((model, "generateContent")) => Op::Generate {
                    path_model: Some(model.to_string()),
                    path_stream: false,
                },
                Some((model, "streamGenerateContent")) => Op::Generate {
                    path_model: Some(model.to_string()),
                    path_stream: true,
                },
                _ => Op::Unknown,
            }
        }
        _ => Op::Unknown,
    }
}

/// The key the request carries, the vendor's way.
pub(crate) fn credential(
    kind: ProviderKind,
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let key = match kind {
        ProviderKind::Claude => header("x-api-key"),
        ProviderKind::Gemini => header("x-goog-api-key").or_else(|| {
            query?
                .split('&')
                .find_map(|p| p.strip_prefix("key=").map(str::to_string))
        }),
        ProviderKind::Yandex => header("authorization").and_then(|v| {
            v.strip_prefix("Api-Key ")
                .or_else(|| v.strip_prefix("Bearer "))
                .map(str::to_string)
        }),
        _ => header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_string)),
    };
    key.filter(|k| !k.trim().is_empty())
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn number(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a generation body, or the vendor's 400 naming what is wrong.
pub(crate) fn parse_call(kind: ProviderKind, op: &Op, body: &Value) -> Result<Call, Reply> {
    let bad = |message: &str| error_reply(kind, &Spec::bad_request(message), 0);
    let Op::Generate {
        path_model,
        path_stream,
    } = op
    else {
        return Err(bad("not a generation request"));
    };
    let mut prompt = Prompt::default();
    let (model, stream, include_usage) = match kind {
        ProviderKind::Claude => {
            let model = body.get("model").and_then(Value::as_str).unwrap_or("");
            prompt.max_tokens =
                number(body.get("max_tokens")).ok_or_else(|| bad("max_tokens: Field required"))?;
            prompt.system = text_of(body.get("system").unwrap_or(&Value::Null));
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("messages: Field required"))?;
            let mut expected = "user";
            for (i, m) in messages.iter().enumerate() {
                let role = m.get("role").and_then(Value::as_str).unwrap_or("");
                if role != expected {
                    return Err(bad(&format!(
                        "messages.{i}: roles must alternate between \"user\" and \"assistant\", starting with \"user\""
                    )));
                }
                expected = if role == "user" { "assistant" } else { "user" };
                prompt
                    .texts
                    .push(text_of(m.get("content").unwrap_or(&Value::Null)));
            }
            prompt.stop = strings(body.get("stop_sequences"));
            let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            (model.to_string(), stream, true)
        }
        ProviderKind::Gemini => {
            let contents = body
                .get("contents")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    bad("* GenerateContentRequest.contents: contents is not specified")
                })?;
            for c in contents {
                let parts = c.get("parts").unwrap_or(&Value::Null);
                prompt.texts.push(text_of(parts));
            }
            if let Some(system) = body.get("systemInstruction") {
                prompt.system = text_of(system.get("parts").unwrap_or(&Value::Null));
            }
            let config = body.get("generationConfig");
            prompt.max_tokens =
                number(config.and_then(|c| c.get("maxOutputTokens"))).unwrap_or(8192);
            prompt.stop = strings(config.and_then(|c| c.get("stopSequences")));
            let model = path_model.clone().unwrap_or_default();
            (model, *path_stream, true)
        }
        ProviderKind::Yandex => {
            let uri = body.get("modelUri").and_then(Value::as_str).unwrap_or("");
            let model = match uri.strip_prefix("gpt://").and_then(|r| r.split_once('/')) {
                Some((folder, model)) if !folder.is_empty() && !model.is_empty() => model,
                _ => return Err(bad("invalid model_uri")),
            };
            let options = body.get("completionOptions");
            prompt.max_tokens = number(options.and_then(|o| o.get("maxTokens"))).unwrap_or(2000);
            for m in body
                .get("messages")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("messages: field required"))?
            {
                let text = m.get("text").and_then(Value::as_str).unwrap_or("");
                match m.get("role").and_then(Value::as_str) {
                    Some("system") => prompt.system = text.to_string(),
                    _ => prompt.texts.push(text.to_string()),
                }
            }
            let stream = options
                .and_then(|o| o.get("stream"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            (model.to_string(), stream, true)
        }
        _ => {
            let model = body.get("model").and_then(Value::as_str).unwrap_or("");
            if model.is_empty() {
                return Err(bad("you must provide a model parameter"));
            }
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .filter(|m| !m.is_empty())
                .ok_or_else(|| bad("'messages' must contain at least one message"))?;
            for m in messages {
                let text = text_of(m.get("content").unwrap_or(&Value::Null));
                match m.get("role").and_then(Value::as_str) {
                    Some("system") | Some("developer") => prompt.system = text,
                    _ => prompt.texts.push(text),
                }
            }
            prompt.max_tokens = number(body.get("max_completion_tokens"))
                .or_else(|| number(body.get("max_tokens")))
                .unwrap_or(512);
            prompt.stop = strings(body.get("stop"));
            let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            let include_usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            (model.to_string(), stream, include_usage)
        }
    };
    prompt.model = model.clone();
    Ok(Call {
        model,
        stream,
        include_usage,
        prompt,
    })
}

/// Whether the vendor knows no such model (see the module doc of `simulator`).
pub(crate) fn model_missing(kind: ProviderKind, model: &str) -> bool {
    model.contains("missing")
        || (kind == ProviderKind::DeepSeek
            && matches!(model, "deepseek-chat" | "deepseek-reasoner"))
}

fn sse(event: Option<&str>, data: &Value, crlf: bool) -> Bytes {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if let Some(event) = event {
        out.push_str(&format!("event: {event}{nl}"));
    }
    out.push_str(&format!("data: {data}{nl}{nl}"));
    Bytes::from(out)
}

/// A successful generation, streamed or not: `scripted` verbatim when given (finish "stop"),
/// else the prose generator's continuation.
pub(crate) fn success(
    kind: ProviderKind,
    call: &Call,
    request_no: u32,
    filtered: bool,
    scripted: Option<String>,
) -> Reply {
    let mut story = continue_story(&call.prompt);
    if let Some(text) = scripted {
        story.output_tokens = u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX);
        story.text = text;
        story.truncated = false;
        story.stopped = false;
    }
    let seed = u64::from(request_no) ^ story.text.len() as u64;
    match kind {
        ProviderKind::Claude => claude_success(call, &story, seed, request_no, filtered),
        ProviderKind::Gemini => gemini_success(call, &story, seed, filtered),
        ProviderKind::Yandex => yandex_success(call, &story, seed, filtered),
        _ => openai_success(kind, call, &story, seed, request_no, filtered),
    }
}

fn openai_success(
    kind: ProviderKind,
    call: &Call,
    story: &Continuation,
    seed: u64,
    n: u32,
    filtered: bool,
) -> Reply {
    let finish = if filtered {
        "content_filter"
    } else if story.truncated {
        "length"
    } else {
        "stop"
    };
    let text = if filtered { "" } else { story.text.as_str() };
    let usage = json!({
        "prompt_tokens": story.input_tokens,
        "completion_tokens": story.output_tokens,
        "total_tokens": story.input_tokens + story.output_tokens,
    });
    let id = format!("chatcmpl-sim{n}");
    let created = 1_767_225_600 + u64::from(n);
    if !call.stream {
        let body = json!({
            "id": id, "object": "chat.completion", "created": created, "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": null, "finish_reason": finish}],
            "usage": usage,
        });
        let mut reply = Reply::json(200, &body);
        if kind == ProviderKind::DeepSeek {
            // DeepSeek keeps a queued non-streamed request alive with blank lines.
            reply.pieces[0] = Bytes::from(format!("\n\n{body}"));
        }
        return reply;
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created,
               "model": call.model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut out = Vec::new();
    if kind == ProviderKind::DeepSeek {
        out.push(Bytes::from_static(b": keep-alive\n\n"));
    }
    out.push(sse(
        None,
        &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        false,
    ));
    for piece in pieces(text, seed) {
        out.push(sse(
            None,
            &chunk(json!({"content": piece}), Value::Null),
            false,
        ));
    }
    out.push(sse(None, &chunk(json!({}), json!(finish)), false));
    if call.include_usage {
        let usage_chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created,
                                 "model": call.model, "choices": [], "usage": usage});
        out.push(sse(None, &usage_chunk, false));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    stream_reply(out, "text/event-stream")
}

fn stream_reply(pieces: Vec<Bytes>, content_type: &'static str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("cache-control".into(), "no-cache".into())],
        content_type,
        pieces,
    }
}

fn claude_success(call: &Call, story: &Continuation, seed: u64, n: u32, filtered: bool) -> Reply {
    let stop = if filtered {
        "refusal"
    } else if story.stopped {
        "stop_sequence"
    } else if story.truncated {
        "max_tokens"
    } else {
        "end_turn"
    };
    let text = if filtered { "" } else { story.text.as_str() };
    let id = format!("msg_sim{n}");
    if !call.stream {
        return Reply::json(
            200,
            &json!({
                "id": id, "type": "message", "role": "assistant", "model": call.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop, "stop_sequence": null,
                "usage": {"input_tokens": story.input_tokens, "output_tokens": story.output_tokens},
            }),
        );
    }
    let mut out = vec![
        sse(
            Some("message_start"),
            &json!({"type": "message_start", "message": {"id": id, "type": "message",
                "role": "assistant", "model": call.model, "content": [], "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": story.input_tokens, "output_tokens": 1}}}),
            false,
        ),
        sse(
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
            false,
        ),
        sse(Some("ping"), &json!({"type": "ping"}), false),
    ];
    for piece in pieces(text, seed) {
        out.push(sse(
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
            false,
        ));
    }
    out.push(sse(
        Some("content_block_stop"),
        &json!({"type": "content_block_stop", "index": 0}),
        false,
    ));
    out.push(sse(
        Some("message_delta"),
        &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": story.output_tokens}}),
        false,
    ));
    out.push(sse(
        Some("message_stop"),
        &json!({"type": "message_stop"}),
        false,
    ));
    stream_reply(out, "text/event-stream")
}

fn gemini_success(call: &Call, story: &Continuation, seed: u64, filtered: bool) -> Reply {
    let usage = json!({
        "promptTokenCount": story.input_tokens,
        "candidatesTokenCount": story.output_tokens,
        "totalTokenCount": story.input_tokens + story.output_tokens,
    });
    if filtered {
        // A prompt blocked by safety: no candidates at all.
        let body = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage,
                          "modelVersion": call.model});
        return if call.stream {
            stream_reply(vec![sse(None, &body, true)], "text/event-stream")
        } else {
            Reply::json(200, &body)
        };
    }
    let finish = if story.truncated {
        "MAX_TOKENS"
    } else {
        "STOP"
    };
    let candidate = |text: &str, finish: Option<&str>| {
        let mut c = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if let Some(f) = finish {
            c["finishReason"] = json!(f);
        }
        c
    };
    if !call.stream {
        return Reply::json(
            200,
            &json!({"candidates": [candidate(&story.text, Some(finish))],
                    "usageMetadata": usage, "modelVersion": call.model, "responseId": "sim"}),
        );
    }
    let parts = pieces(&story.text, seed);
    let last = parts.len().saturating_sub(1);
    let mut out: Vec<Bytes> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut body = json!({"candidates": [candidate(p, (i == last).then_some(finish))],
                                  "modelVersion": call.model, "responseId": "sim"});
            if i == last {
                body["usageMetadata"] = usage.clone();
            }
            sse(None, &body, true)
        })
        .collect();
    if out.is_empty() {
        out.push(sse(
            None,
            &json!({"candidates": [candidate("", Some(finish))], "usageMetadata": usage}),
            true,
        ));
    }
    stream_reply(out, "text/event-stream")
}

fn yandex_success(call: &Call, story: &Continuation, seed: u64, filtered: bool) -> Reply {
    let usage = json!({
        "inputTextTokens": story.input_tokens.to_string(),
        "completionTokens": story.output_tokens.to_string(),
        "totalTokens": (story.input_tokens + story.output_tokens).to_string(),
    });
    let line = |text: &str, status: &str, usage: &Value| {
        let body = json!({"result": {"alternatives": [{"message": {"role": "assistant", "text": text},
                          "status": status}], "usage": usage, "modelVersion": "23.10.2024"}});
        Bytes::from(format!("{body}\n"))
    };
    let final_status = if story.truncated {
        "ALTERNATIVE_STATUS_TRUNCATED_FINAL"
    } else {
        "ALTERNATIVE_STATUS_FINAL"
    };
    let refusal = "К сожалению, я не могу ответить на этот вопрос.";
    if !call.stream {
        let (text, status) = if filtered {
            (refusal, "ALTERNATIVE_STATUS_CONTENT_FILTER")
        } else {
            (story.text.as_str(), final_status)
        };
        let mut reply = Reply::json(200, &Value::Null);
        reply.pieces = vec![line(text, status, &usage)];
        return reply;
    }
    let mut out = Vec::new();
    let mut sofar = String::new();
    let parts = pieces(&story.text, seed);
    let show = if filtered {
        parts.len() / 2
    } else {
        parts.len()
    };
    for part in &parts[..show] {
        sofar.push_str(part);
        out.push(line(&sofar, "ALTERNATIVE_STATUS_PARTIAL", &usage));
    }
    if filtered {
        out.push(line(refusal, "ALTERNATIVE_STATUS_CONTENT_FILTER", &usage));
    } else {
        out.push(line(&sofar, final_status, &usage));
    }
    stream_reply(out, "application/json")
}

/// OpenRouter's `GET /key` answer for a key it accepts.
pub(crate) fn key_info() -> Reply {
    Reply::json(
        200,
        &json!({"data": {"label": "sk-or-v1-sim…", "limit": null, "usage": 0,
                         "is_free_tier": false, "rate_limit": {"requests": 20, "interval": "10s"}}}),
    )
}

/// The model listing in the vendor's shape.
pub(crate) fn models(kind: ProviderKind, folder: Option<&str>) -> Reply {
    let ids: &[&str] = match kind {
        ProviderKind::OpenAi => &["gpt-4o", "gpt-4o-mini", "gpt-4.1"],
        ProviderKind::DeepSeek => &["deepseek-flash", "deepseek-v4-pro"],
        ProviderKind::Scaleway => &[
            "mistral-small-3.2-24b-instruct-2506",
            "llama-3.3-70b-instruct",
        ],
        ProviderKind::OpenRouter => &[
            "openai/gpt-4o-mini",
            "anthropic/claude-sonnet-4.5",
            "mistralai/mistral-small-3.2-24b-instruct",
        ],
        ProviderKind::Custom => &["llama3.2", "qwen2.5:7b"],
        ProviderKind::Claude => &["claude-sonnet-4-5", "claude-haiku-4-5"],
        ProviderKind::Gemini => &["gemini-2.5-flash", "gemini-2.5-pro"],
        ProviderKind::Yandex => &["yandexgpt-lite/latest", "yandexgpt/latest", "yandexgpt/rc"],
    };
    let body = match kind {
        ProviderKind::Claude => json!({
            "data": ids.iter().map(|id| json!({"type": "model", "id": id,
                "display_name": id.replace('-', " "), "created_at": "2025-09-29T00:00:00Z"}))
                .collect::<Vec<_>>(),
            "has_more": false, "first_id": ids[0], "last_id": ids[ids.len() - 1],
        }),
        ProviderKind::Gemini => {
            let mut models: Vec<Value> = ids
                .iter()
                .map(|id| {
                    json!({"name": format!("models/{id}"), "displayName": id,
                    "supportedGenerationMethods": ["generateContent", "countTokens"]})
                })
                .collect();
            models.push(
                json!({"name": "models/text-embedding-004", "displayName": "Text Embedding 004",
                "supportedGenerationMethods": ["embedContent"]}),
            );
            json!({ "models": models })
        }
        ProviderKind::Yandex => {
            let folder = folder.unwrap_or("");
            let mut data: Vec<Value> = ids
                .iter()
                .map(|id| {
                    json!({"id": format!("gpt://{folder}/{id}"), "object": "model",
                                 "owned_by": "yandex"})
                })
                .collect();
            data.push(
                json!({"id": format!("emb://{folder}/text-search-doc/latest"),
                             "object": "model", "owned_by": "yandex"}),
            );
            json!({"object": "list", "data": data})
        }
        _ => json!({
            "object": "list",
            "data": ids.iter().map(|id| json!({"id": id, "object": "model",
                "created": 1_715_367_049, "owned_by": "system"})).collect::<Vec<_>>(),
        }),
    };
    Reply::json(200, &body)
}

/// The vendor's view of an error, before it is rendered in the vendor's shape.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    status: u16,
    message: String,
    /// OpenAI `type` / `code`.
    oa_type: &'static str,
    oa_code: Option<&'static str>,
    claude_type: &'static str,
    google_status: &'static str,
    google_details: Vec<Value>,
    grpc: u32,
    headers: Vec<(String, String)>,
}

impl Spec {
    fn new(status: u16, message: impl Into<String>) -> Spec {
        let (oa_type, claude_type, google_status, grpc) = match status {
            400 => (
                "invalid_request_error",
                "invalid_request_error",
                "INVALID_ARGUMENT",
                3,
            ),
            401 => (
                "invalid_request_error",
                "authentication_error",
                "UNAUTHENTICATED",
                16,
            ),
            402 => (
                "insufficient_balance",
                "billing_error",
                "FAILED_PRECONDITION",
                9,
            ),
            403 => (
                "invalid_request_error",
                "permission_error",
                "PERMISSION_DENIED",
                7,
            ),
            404 => ("invalid_request_error", "not_found_error", "NOT_FOUND", 5),
            408 => ("timeout", "timeout_error", "DEADLINE_EXCEEDED", 4),
            422 => (
                "invalid_request_error",
                "invalid_request_error",
                "INVALID_ARGUMENT",
                3,
            ),
            429 => ("requests", "rate_limit_error", "RESOURCE_EXHAUSTED", 8),
            504 => ("timeout", "timeout_error", "DEADLINE_EXCEEDED", 4),
            529 => ("server_error", "overloaded_error", "UNAVAILABLE", 14),
            503 => ("server_error", "api_error", "UNAVAILABLE", 14),
            _ => ("server_error", "api_error", "INTERNAL", 13),
        };
        Spec {
            status,
            message: message.into(),
            oa_type,
            oa_code: None,
            claude_type,
            google_status,
            google_details: Vec::new(),
            grpc,
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_request(message: &str) -> Spec {
        Spec::new(400, message)
    }

    fn code(mut self, code: &'static str) -> Spec {
        self.oa_code = Some(code);
        self
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Spec {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn reason_phrase(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// Renders `spec` in the vendor's error shape.
pub(crate) fn error_reply(kind: ProviderKind, spec: &Spec, request_no: u32) -> Reply {
    let body = match kind {
        ProviderKind::Claude => json!({
            "type": "error",
            "error": {"type": spec.claude_type, "message": spec.message},
            "request_id": format!("req_sim{request_no}"),
        }),
        ProviderKind::Gemini => json!({"error": {
            "code": spec.status, "message": spec.message, "status": spec.google_status,
            "details": spec.google_details,
        }}),
        ProviderKind::Yandex => json!({"error": {
            "grpcCode": spec.grpc, "httpCode": spec.status, "message": spec.message,
            "httpStatus": reason_phrase(spec.status), "details": [],
        }}),
        ProviderKind::Scaleway => match spec.status {
            // Scaleway's three shapes: gateway errors for auth, the older top-level object for
            // a missing model, the OpenAI-like one with a numeric code otherwise.
            401 | 403 => json!({
                "status": spec.status,
                "error": reason_phrase(spec.status).to_ascii_uppercase().replace(' ', "_"),
                "message": spec.message,
            }),
            422 => json!({"object": "error", "message": spec.message, "type": "NotFoundError",
                          "param": null, "code": spec.status}),
            _ => json!({"error": {"message": spec.message, "type": spec.oa_type, "param": null,
                                  "code": spec.status}}),
        },
        _ => json!({"error": {"message": spec.message, "type": spec.oa_type, "param": null,
                              "code": spec.oa_code}}),
    };
    let mut reply = if spec.status == 502 {
        // A 502 comes from a proxy in front of the vendor: HTML, not JSON.
        Reply {
            status: 502,
            headers: Vec::new(),
            content_type: "text/html",
            pieces: vec![Bytes::from_static(
                b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
            )],
        }
    } else {
        Reply::json(spec.status, &body)
    };
    reply.headers.extend(spec.headers.iter().cloned());
    let id_header = if kind == ProviderKind::Claude {
        "request-id"
    } else {
        "x-request-id"
    };
    reply.header(id_header, format!("req_sim{request_no}"))
}

/// A content-filter refusal that quotes the passage it objects to — the end of the request's
/// last message, i.e. the manuscript just before the cursor — the way some vendors quote an
/// offending value. Short, so that a client keeping a few hundred characters of a vendor
/// message keeps the quote.
pub(crate) fn echo_prompt_reply(kind: ProviderKind, call: &Call, request_no: u32) -> Reply {
    let text = call.prompt.texts.last().map(String::as_str).unwrap_or("");
    let chars: Vec<char> = text.chars().collect();
    let quoted: String = chars[chars.len().saturating_sub(200)..].iter().collect();
    let spec = Spec::bad_request(&format!(
        "The content \"{quoted}\" was refused by the input filter."
    ));
    error_reply(kind, &spec, request_no)
}

fn openai_style_mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "sk-…".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

fn yandex_mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

fn http_date_in(secs: u64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(0));
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn google_retry(delay: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
}

fn google_quota(quota_id: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
           "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                           "quotaId": quota_id}]})
}

/// The error response a status-type fault produces, or `None` for faults that shape the body
/// or the connection instead.
pub(crate) fn fault_reply(
    kind: ProviderKind,
    fault: &Fault,
    model: &str,
    key: &str,
    request_no: u32,
) -> Option<Reply> {
    use ProviderKind::*;
    let openai_like = matches!(kind, OpenAi | DeepSeek | Custom | Scaleway | OpenRouter);
    let spec = match fault {
        Fault::InvalidKey | Fault::KeyRevoked => {
            let revoked = matches!(fault, Fault::KeyRevoked);
            match kind {
                Gemini => {
                    let mut s = Spec::new(
                        400,
                        if revoked {
                            "API key expired. Please renew the API key."
                        } else {
                            "API key not valid. Please pass a valid API key."
                        },
                    );
                    s.google_details = vec![json!({
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"}})];
                    s
                }
                Scaleway => Spec::new(403, "authentication is denied: invalid secret key"),
                Claude => Spec::new(
                    401,
                    if revoked {
                        "This API key has been disabled."
                    } else {
                        "invalid x-api-key"
                    },
                ),
                Yandex => Spec::new(
                    401,
                    if revoked {
                        format!("The API key '{}' was revoked", yandex_mask(key))
                    } else {
                        format!("Unknown api key '{}'", yandex_mask(key))
                    },
                ),
                // Some gateways quote the whole key back: the client must scrub it.
                Custom => Spec::new(401, format!("Invalid API key: {key}")).code("invalid_api_key"),
                _ => Spec::new(
                    401,
                    if revoked {
                        format!("The API key {} has been revoked.", openai_style_mask(key))
                    } else {
                        format!(
                            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                            openai_style_mask(key)
                        )
                    },
                )
                .code("invalid_api_key"),
            }
        }
        Fault::Forbidden => match kind {
            Scaleway => Spec::new(
                403,
                "insufficient permissions: GenerativeApisFullAccess required",
            ),
            _ if openai_like => Spec::new(403, "Country, region, or territory not supported")
                .code("unsupported_country_region_territory"),
            _ => Spec::new(403, "Permission denied for this key."),
        },
        Fault::ModelNotFound => match kind {
            DeepSeek => Spec::new(400, "Model Not Exist").code("invalid_request_error"),
            Scaleway => Spec::new(422, format!("Model '{model}' not found")),
            Claude => Spec::new(404, format!("model: {model}")),
            Gemini => Spec::new(
                404,
                format!(
                    "models/{model} is not found for API version v1beta, or is not supported for generateContent."
                ),
            ),
            Yandex => Spec::new(404, format!("Model {model} not found")),
            _ => Spec::new(
                404,
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
            .code("model_not_found"),
        },
        Fault::RequestTimeout => Spec::new(408, "Request timed out."),
        Fault::RateLimit { retry_after_secs } => {
            let s = rate_limit_spec(kind, *retry_after_secs as f64);
            if kind == Gemini {
                let mut s = s;
                s.google_details
                    .push(google_retry(&format!("{retry_after_secs}s")));
                s
            } else {
                s.header("retry-after", retry_after_secs.to_string())
            }
        }
        Fault::RateLimitHttpDate { retry_after_secs } => {
            rate_limit_spec(kind, *retry_after_secs as f64)
                .header("retry-after", http_date_in(*retry_after_secs))
        }
        Fault::RateLimitMs { retry_after_ms } => {
            rate_limit_spec(kind, *retry_after_ms as f64 / 1000.0)
                .header("retry-after-ms", retry_after_ms.to_string())
                .header("retry-after", retry_after_ms.div_ceil(1000).to_string())
        }
        Fault::Quota => match kind {
            DeepSeek => Spec::new(402, "Insufficient Balance").code("invalid_request_error"),
            Claude => Spec::new(
                400,
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            ),
            Gemini => {
                let mut s = Spec::new(
                    429,
                    "You exceeded your current quota, please check your plan and billing details.",
                );
                s.google_details = vec![
                    google_quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
                    google_retry("65205s"),
                ];
                s
            }
            OpenAi | Custom => Spec::new(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
            )
            .code("insufficient_quota"),
            // OpenRouter: out of credits is a 402 in its {"error": {"code", "message"}} shape.
            OpenRouter => Spec::new(
                402,
                "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
            ),
            // Scaleway and Yandex have no separate quota error: their 429 is a rate limit.
            Scaleway | Yandex => rate_limit_spec(kind, 1.0),
        },
        Fault::PaymentRequired => match kind {
            Claude => Spec::new(402, "Your account has a billing issue."),
            _ => Spec::new(402, "Insufficient Balance"),
        },
        Fault::ServerError => Spec::new(
            500,
            "The server had an error while processing your request.",
        ),
        Fault::BadGateway => Spec::new(502, "Bad gateway"),
        Fault::Unavailable => Spec::new(503, "The model is overloaded. Please try again later."),
        Fault::GatewayTimeout => Spec::new(504, "Request timed out before the model answered."),
        Fault::Overloaded => Spec::new(529, "Overloaded"),
        Fault::NoModelListing => Spec::new(404, "404 page not found"),
        _ => return None,
    };
    Some(error_reply(kind, &spec, request_no))
}

fn rate_limit_spec(kind: ProviderKind, secs: f64) -> Spec {
    match kind {
        ProviderKind::Gemini => {
            let mut s = Spec::new(429, "Resource has been exhausted (e.g. check quota).");
            s.google_details = vec![google_quota(
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            )];
            s
        }
        ProviderKind::Yandex => Spec::new(
            429,
            "ai.textGenerationCompletionSessionsCount.count gauge quota limit exceed: allowed 10 requests",
        ),
        ProviderKind::Claude => Spec::new(
            429,
            "Number of request tokens has exceeded your per-minute rate limit.",
        ),
        _ => Spec::new(
            429,
            format!("Rate limit reached for requests. Please try again in {secs:.3}s."),
        )
        .code("rate_limit_exceeded"),
    }
}

/// The vendor's error event in the middle of an otherwise good stream.
pub(crate) fn error_event(kind: ProviderKind) -> Bytes {
    match kind {
        ProviderKind::Claude => sse(
            Some("error"),
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            false,
        ),
        ProviderKind::Gemini => sse(
            None,
            &json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                              "status": "UNAVAILABLE"}}),
            true,
        ),
        ProviderKind::Yandex => Bytes::from(format!(
            "{}\n",
            json!({"error": {"grpcCode": 14, "httpCode": 503, "message": "Service is unavailable",
                             "httpStatus": "Service Unavailable", "details": []}})
        )),
        // Scaleway: a 5xx after the 200, in its older top-level shape.
        ProviderKind::Scaleway => sse(
            None,
            &json!({"object": "error", "message": "Internal server error",
                    "type": "InternalServerError", "param": null, "code": 500}),
            false,
        ),
        _ => sse(
            None,
            &json!({"error": {"message": "The server had an error while processing your request.",
                              "type": "server_error", "param": null, "code": null}}),
            false,
        ),
    }
}

/// A piece of body that is not valid JSON, framed as the vendor frames its data.
pub(crate) fn malformed_piece(kind: ProviderKind, stream: bool) -> Bytes {
    match (kind, stream) {
        (ProviderKind::Yandex, _) => {
            Bytes::from_static(b"{\"result\": {\"alternatives\": [oops]}}\n")
        }
        (_, true) => {
            Bytes::from_static(b"data: {\"choices\": [{\"delta\": {\"content\": \"The\"\n\n")
        }
        (_, false) => Bytes::from_static(b"{\"id\": \"sim\", \"choices\": [{\"message\": "),
    }
}

/// Standard rate-limit headers with a decreasing `remaining`, for vendors that send them.
pub(crate) fn rate_limit_headers(kind: ProviderKind, served: u32) -> Vec<(String, String)> {
    const LIMIT: u32 = 60;
    let remaining = LIMIT - 1 - (served.saturating_sub(1) % LIMIT);
    match kind {
        ProviderKind::OpenAi => vec![
            ("x-ratelimit-limit-requests".into(), LIMIT.to_string()),
            (
                "x-ratelimit-remaining-requests".into(),
                remaining.to_string(),
            ),
            ("x-ratelimit-reset-requests".into(), "1s".into()),
            ("x-ratelimit-limit-tokens".into(), "150000".into()),
            ("x-ratelimit-remaining-tokens".into(), "149000".into()),
            ("x-ratelimit-reset-tokens".into(), "6m0s".into()),
        ],
        ProviderKind::Claude => {
            let reset = (chrono::Utc::now() + chrono::Duration::seconds(60))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            vec![
                (
                    "anthropic-ratelimit-requests-limit".into(),
                    LIMIT.to_string(),
                ),
                (
                    "anthropic-ratelimit-requests-remaining".into(),
                    remaining.to_string(),
                ),
                ("anthropic-ratelimit-requests-reset".into(), reset),
            ]
        }
        _ => Vec::new(),
    }
}

/// Masks a credential header value: the scheme stays, the secret becomes `••••` + last 4.
pub(crate) fn mask_credential(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, secret)) if matches!(scheme, "Bearer" | "Api-Key") => {
            format!("{scheme} {}", mask(secret))
        }
        _ => mask(value),
    }
}
