//! Turning a vendor's failure (status, headers, error body) into the one [`ProviderError`]
//! taxonomy, and reading the retry and rate-limit hints vendors put in headers (PROVIDERS.md).
//!
//! This module owns every vendor-specific error rule; the providers call [`classify_failure`] and
//! never map statuses themselves. It must never put a key, or any of the vendor's free text, into
//! a [`Detail`]: a vendor's message can quote the request — the author's manuscript — (OpenAI's
//! "Invalid value: '…'", a content filter citing the passage), and details are logged. What a
//! detail keeps of an error body is its machine-readable code and type ([`describe_vendor_error`]);
//! the message is read here (a retry hint, Anthropic's credit balance) and dropped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::error::{Detail, ProviderError};
use super::{ProviderKind, RateLimitHint};
use crate::secret::ApiKey;

/// Longest message [`scrub`] keeps: our own descriptions (transport errors) stay short.
const MAX_MESSAGE_CHARS: usize = 300;

/// Longest vendor code, type or request id kept; longer ones are not identifiers.
const MAX_IDENTIFIER_CHARS: usize = 64;

/// What the request was doing when it failed; a 404 means a missing model only for generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Generate,
    ListModels,
}

/// The facts about a failed call that classification needs.
#[derive(Debug, Clone, Copy)]
pub struct FailureContext<'a> {
    pub kind: ProviderKind,
    pub operation: Operation,
    pub model: &'a str,
    pub key: Option<&'a ApiKey>,
}

/// The parts of any vendor's error body we use, whatever its shape.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VendorError {
    pub message: String,
    /// OpenAI `code` (string or number), Anthropic `error.type`, Gemini `status`.
    pub code: Option<String>,
    /// OpenAI/Scaleway `type`.
    pub error_type: Option<String>,
    /// A numeric status inside the body (Gemini `code`, Yandex `httpCode`, Scaleway gateway
    /// `status`), used for errors that arrive mid-stream after a 200.
    pub status: Option<u16>,
    /// Gemini `ErrorInfo.reason` values.
    pub reasons: Vec<String>,
    /// Gemini `QuotaFailure` violation `quotaId` values.
    pub quota_ids: Vec<String>,
    /// Gemini `RetryInfo.retryDelay`.
    pub retry_delay: Option<Duration>,
    pub request_id: Option<String>,
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_status(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Reads an error body of any of the shapes in PROVIDERS.md. `None` when the JSON holds no error.
pub fn parse_vendor_error(body: &Value) -> Option<VendorError> {
    // Gemini sometimes wraps its error in a one-element array.
    let body = match body {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let obj = body.as_object()?;
    let mut out = VendorError {
        request_id: obj.get("request_id").and_then(as_text),
        ..VendorError::default()
    };
    match obj.get("error") {
        // OpenAI, Scaleway (recent), Anthropic, Gemini, Yandex: an `error` object.
        Some(Value::Object(err)) => {
            out.message = err.get("message").and_then(as_text).unwrap_or_default();
            out.error_type = err.get("type").and_then(as_text);
            out.code = err
                .get("code")
                .filter(|c| c.is_string())
                .and_then(as_text)
                .or_else(|| err.get("status").and_then(as_text))
                .or_else(|| out.error_type.clone());
            out.status = err
                .get("httpCode")
                .and_then(as_status)
                .or_else(|| err.get("code").and_then(as_status));
            if let Some(Value::Array(details)) = err.get("details") {
                read_google_details(details, &mut out);
            }
        }
        // Scaleway gateway: {"status":401,"error":"UNAUTHORIZED","message":"…"}.
        Some(Value::String(code)) => {
            out.code = Some(code.clone());
            out.message = obj.get("message").and_then(as_text).unwrap_or_default();
            out.status = obj.get("status").and_then(as_status);
        }
        // Scaleway (older models): a top-level {"object":"error", …}.
        _ if obj.get("object").and_then(Value::as_str) == Some("error") => {
            out.message = obj.get("message").and_then(as_text).unwrap_or_default();
            out.error_type = obj.get("type").and_then(as_text);
            out.code = obj.get("code").and_then(as_text);
            out.status = obj.get("code").and_then(as_status);
        }
        _ => return None,
    }
    Some(out)
}

fn read_google_details(details: &[Value], out: &mut VendorError) {
    for d in details {
        if let Some(reason) = d.get("reason").and_then(Value::as_str) {
            out.reasons.push(reason.to_string());
        }
        if let Some(Value::Array(violations)) = d.get("violations") {
            for v in violations {
                if let Some(id) = v.get("quotaId").and_then(Value::as_str) {
                    out.quota_ids.push(id.to_string());
                }
            }
        }
        if let Some(delay) = d.get("retryDelay").and_then(Value::as_str) {
            out.retry_delay = parse_go_duration(delay);
        }
    }
}

/// The message with the provider's own key (and every registered secret) removed, bounded in
/// length and on one line.
pub fn scrub(message: &str, key: Option<&ApiKey>) -> String {
    let mut text = message.to_string();
    if let Some(key) = key {
        let k = key.expose().trim();
        if !k.is_empty() {
            text = text.replace(k, crate::telemetry::REDACTED);
        }
    }
    let text = crate::telemetry::redact(&text).into_owned();
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Classifies a non-success HTTP response (or an error object that arrived mid-stream, with
/// `status` taken from the body).
pub fn classify_failure(
    ctx: FailureContext<'_>,
    status: u16,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> ProviderError {
    let text = String::from_utf8_lossy(body);
    let parsed = serde_json::from_str::<Value>(text.trim())
        .ok()
        .and_then(|v| parse_vendor_error(&v));
    let vendor = parsed.unwrap_or_else(|| VendorError {
        message: text.trim().to_string(),
        ..VendorError::default()
    });
    classify_vendor_error(ctx, status, headers, vendor)
}

/// What a [`Detail`] may say about a vendor's error: its code and type when they are plain
/// identifiers, never its message (see the module doc).
pub fn describe_vendor_error(vendor: &VendorError) -> String {
    let code = vendor.code.as_deref().filter(|c| is_identifier(c));
    let error_type = vendor
        .error_type
        .as_deref()
        .filter(|t| is_identifier(t) && Some(*t) != code);
    match (code, error_type) {
        (Some(code), Some(error_type)) => format!("vendor error `{code}` ({error_type})"),
        (Some(code), None) => format!("vendor error `{code}`"),
        (None, Some(error_type)) => format!("vendor error ({error_type})"),
        (None, None) if vendor.message.is_empty() => "an empty error body".to_string(),
        (None, None) => "the vendor's message is not kept (it may quote the request)".to_string(),
    }
}

/// A vendor code, type or request id: letters, digits and `_ - . :`, not too long.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= MAX_IDENTIFIER_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// A JSON error without the text it failed on: serde's own message can quote a value of the
/// response (generated text, which may repeat the manuscript).
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "invalid JSON",
        Category::Data => "JSON of an unexpected shape",
        Category::Eof => "JSON that ends too soon",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Classifies an already parsed vendor error.
pub fn classify_vendor_error(
    ctx: FailureContext<'_>,
    status: u16,
    headers: Option<&HeaderMap>,
    vendor: VendorError,
) -> ProviderError {
    let now = Utc::now();
    let detail = Detail {
        status: Some(status),
        message: describe_vendor_error(&vendor),
        request_id: vendor
            .request_id
            .clone()
            .or_else(|| headers.and_then(request_id_header))
            .filter(|id| is_identifier(id)),
        should_retry: headers.and_then(should_retry_header),
        connection_refused: false,
    };
    let retry_after = headers
        .and_then(|h| retry_after_header(h, now))
        .or(vendor.retry_delay)
        .or_else(|| retry_after_in_message(&vendor.message));
    let code = vendor.code.as_deref().unwrap_or("");
    let error_type = vendor.error_type.as_deref().unwrap_or("");
    let model_missing = || ProviderError::ModelNotFound {
        model: ctx.model.to_string(),
        detail: detail.clone(),
    };
    let rate_limited = || ProviderError::RateLimited {
        retry_after,
        detail: detail.clone(),
    };

    // Rules shared by every vendor first, then each vendor's own.
    match (ctx.kind, status) {
        (_, 401) => ProviderError::InvalidKey(detail),
        (_, 402) => ProviderError::QuotaExhausted(detail),
        (_, 408) | (_, 504) => ProviderError::Timeout(detail),
        (_, 404) if ctx.operation == Operation::Generate => model_missing(),
        (_, 500..=503) | (_, 529) => ProviderError::Unavailable(detail),

        (ProviderKind::Claude, 400)
            if vendor
                .message
                .to_ascii_lowercase()
                .contains("credit balance") =>
        {
            ProviderError::QuotaExhausted(detail)
        }
        (ProviderKind::Gemini, 400) if vendor.reasons.iter().any(|r| r == "API_KEY_INVALID") => {
            ProviderError::InvalidKey(detail)
        }
        (ProviderKind::Gemini, 429) if vendor.quota_ids.iter().any(|q| q.contains("PerDay")) => {
            ProviderError::QuotaExhausted(detail)
        }
        (ProviderKind::Scaleway, 422) if ctx.operation == Operation::Generate => model_missing(),
        // DeepSeek answers an unknown (or retired) model with a 400 "Model Not Exist".
        (ProviderKind::DeepSeek, 400)
            if ctx.operation == Operation::Generate
                && vendor.message.eq_ignore_ascii_case("model not exist") =>
        {
            model_missing()
        }

        // OpenAI sends quota exhaustion as a 429; so do gateways copying it (Custom).
        (_, 429) if code == "insufficient_quota" || error_type == "insufficient_quota" => {
            ProviderError::QuotaExhausted(detail)
        }
        (_, 429) => rate_limited(),
        // 403: OpenAI region/permission, Scaleway invalid key, Gemini PERMISSION_DENIED, Yandex,
        // Anthropic permission_error. Each means this key cannot be used here.
        (_, 403) => ProviderError::InvalidKey(detail),
        (_, 409) => ProviderError::Unavailable(detail),
        (_, 400..=499) => ProviderError::BadRequest(detail),
        (_, 500..=599) => ProviderError::Unavailable(detail),
        _ => ProviderError::Protocol {
            detail,
            partial: None,
        },
    }
}

/// The HTTP status an error event that arrived mid-stream stands for: the number in the body,
/// else Anthropic's error type, else a server error.
pub fn status_of_stream_error(vendor: &VendorError) -> u16 {
    if let Some(status) = vendor.status.filter(|s| (400..=599).contains(s)) {
        return status;
    }
    match vendor.code.as_deref().or(vendor.error_type.as_deref()) {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("billing_error") => 402,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("rate_limit_error") | Some("rate_limit_exceeded") | Some("RESOURCE_EXHAUSTED") => 429,
        Some("insufficient_quota") => 429,
        Some("timeout_error") | Some("DEADLINE_EXCEEDED") => 504,
        Some("overloaded_error") => 529,
        Some("UNAVAILABLE") => 503,
        _ => 500,
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn request_id_header(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-goog-request-id"]
        .iter()
        .find_map(|name| header_str(headers, name))
        .map(str::to_string)
}

fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match header_str(headers, "x-should-retry")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `retry-after-ms` first (it is the more precise), then `Retry-After` as delta-seconds or an
/// HTTP-date relative to `now`, then LiteLLM's `llm_provider-retry-after` (the proxy sends its
/// own and the upstream's Retry-After only under that name, e.g. with the 429 of an rpm limit).
pub fn retry_after_header(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value =
        header_str(headers, "retry-after").or_else(|| header_str(headers, LITELLM_RETRY_AFTER))?;
    parse_retry_after(value, now)
}

/// The name under which LiteLLM's proxy forwards a Retry-After.
const LITELLM_RETRY_AFTER: &str = "llm_provider-retry-after";

/// One `Retry-After` value: delta-seconds (`120`, also `1.5` from lenient servers) or an
/// HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`); a date in the past means "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// A Go-style duration as OpenAI and Google write them: `1s`, `6m0s`, `12ms`, `1.5s`, `26s`,
/// `1h2m3.5s`, `0s`.
pub fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// OpenAI's message text "… Please try again in 16.062s." (or "in 120ms"), used only when no
/// header gave a hint.
fn retry_after_in_message(message: &str) -> Option<Duration> {
    let start = message.find("try again in ")? + "try again in ".len();
    let tail = &message[start..];
    let end = tail
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(tail.len());
    parse_go_duration(tail[..end].trim_end_matches('.'))
}

/// The vendor's view of our request budget, from its rate-limit headers; `None` when it sent
/// none (Gemini, Yandex, most Custom servers).
pub fn rate_limit_hint(
    kind: ProviderKind,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<RateLimitHint> {
    let number = |name: &str| header_str(headers, name).and_then(|v| v.parse::<u32>().ok());
    let hint = match kind {
        ProviderKind::Claude => RateLimitHint {
            remaining: number("anthropic-ratelimit-requests-remaining"),
            limit: number("anthropic-ratelimit-requests-limit"),
            reset_after: header_str(headers, "anthropic-ratelimit-requests-reset")
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|at| {
                    (at.with_timezone(&Utc) - now)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                }),
        },
        // The OpenAI convention; Gemini and Yandex send none of these, so nothing is found.
        ProviderKind::OpenAi
        | ProviderKind::Gemini
        | ProviderKind::DeepSeek
        | ProviderKind::Yandex
        | ProviderKind::Scaleway
        | ProviderKind::OpenRouter
        | ProviderKind::Custom => RateLimitHint {
            remaining: number("x-ratelimit-remaining-requests"),
            limit: number("x-ratelimit-limit-requests"),
            reset_after: header_str(headers, "x-ratelimit-reset-requests")
                .and_then(parse_go_duration),
        },
    };
    (hint != RateLimitHint::default()).then_some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn ctx(kind: ProviderKind) -> FailureContext<'static> {
        FailureContext {
            kind,
            operation: Operation::Generate,
            model: "m",
            key: None,
        }
    }

    #[test]
    fn go_durations_parse_like_openai_writes_them() {
        let cases = [
            ("1s", Some(1000)),
            ("6m0s", Some(360_000)),
            ("12ms", Some(12)),
            ("1.5s", Some(1500)),
            ("26s", Some(26_000)),
            ("1h2m3.5s", Some(3_723_500)),
            ("0s", Some(0)),
            ("", None),
            ("s", None),
            ("12 parsecs", None),
            ("3x", None),
        ];
        for (input, want) in cases {
            let got = parse_go_duration(input).map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_http_dates_and_milliseconds() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z")
            .unwrap()
            .with_timezone(&Utc);
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<u64>);
        let cases: [Case<'_>; 8] = [
            (&[("retry-after", "2")], Some(2000)),
            (
                &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                Some(30_000),
            ),
            (&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")], Some(0)),
            (
                &[("retry-after-ms", "1500"), ("retry-after", "9")],
                Some(1500),
            ),
            (&[("retry-after", "soon")], None),
            (&[("llm_provider-retry-after", "60")], Some(60_000)),
            (
                &[("retry-after", "2"), ("llm_provider-retry-after", "60")],
                Some(2000),
            ),
            (&[], None),
        ];
        for (pairs, want) in cases {
            let got = retry_after_header(&headers(pairs), now).map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{pairs:?}");
        }
    }

    #[test]
    fn rate_limit_hints_come_from_each_vendors_headers() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let openai = headers(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
        ]);
        assert_eq!(
            rate_limit_hint(ProviderKind::OpenAi, &openai, now),
            Some(RateLimitHint {
                remaining: Some(59),
                limit: Some(60),
                reset_after: Some(Duration::from_secs(1)),
            })
        );
        let claude = headers(&[
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z"),
        ]);
        assert_eq!(
            rate_limit_hint(ProviderKind::Claude, &claude, now),
            Some(RateLimitHint {
                remaining: Some(3),
                limit: None,
                reset_after: Some(Duration::from_secs(20)),
            })
        );
        assert_eq!(
            rate_limit_hint(ProviderKind::Gemini, &HeaderMap::new(), now),
            None
        );
    }

    #[test]
    fn vendor_rules_map_to_the_taxonomy() {
        use super::super::ErrorKind as K;
        use ProviderKind::*;
        let cases: &[(ProviderKind, u16, &str, K)] = &[
            (
                OpenAi,
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                K::QuotaExhausted,
            ),
            (
                OpenAi,
                429,
                r#"{"error":{"message":"Rate limit reached. Please try again in 16.062s.","type":"requests","code":"rate_limit_exceeded"}}"#,
                K::RateLimited,
            ),
            (
                OpenAi,
                401,
                r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
                K::InvalidKey,
            ),
            (
                OpenAi,
                404,
                r#"{"error":{"message":"The model does not exist","code":"model_not_found"}}"#,
                K::ModelNotFound,
            ),
            (
                OpenAi,
                400,
                r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
                K::BadRequest,
            ),
            (
                DeepSeek,
                402,
                r#"{"error":{"message":"Insufficient Balance"}}"#,
                K::QuotaExhausted,
            ),
            (
                DeepSeek,
                422,
                r#"{"error":{"message":"Invalid max_tokens"}}"#,
                K::BadRequest,
            ),
            (
                Scaleway,
                403,
                r#"{"status":403,"error":"FORBIDDEN","message":"invalid key"}"#,
                K::InvalidKey,
            ),
            (
                Scaleway,
                422,
                r#"{"object":"error","message":"model not found","type":"NotFoundError","code":422}"#,
                K::ModelNotFound,
            ),
            (
                Claude,
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                K::Unavailable,
            ),
            (
                Claude,
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#,
                K::QuotaExhausted,
            ),
            (
                Claude,
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#,
                K::BadRequest,
            ),
            (
                Claude,
                402,
                r#"{"type":"error","error":{"type":"billing_error","message":"billing"}}"#,
                K::QuotaExhausted,
            ),
            (
                Claude,
                504,
                r#"{"type":"error","error":{"type":"timeout_error","message":"timeout"}}"#,
                K::Timeout,
            ),
            (
                Gemini,
                400,
                r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
                K::InvalidKey,
            ),
            (
                Gemini,
                400,
                r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#,
                K::BadRequest,
            ),
            (
                Gemini,
                429,
                r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#,
                K::QuotaExhausted,
            ),
            (
                Gemini,
                429,
                r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q"}}"#,
                K::RateLimited,
            ),
            (
                Gemini,
                403,
                r#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"denied"}}"#,
                K::InvalidKey,
            ),
            (
                Yandex,
                401,
                r#"{"error":{"grpcCode":16,"httpCode":401,"message":"Unknown api key","httpStatus":"Unauthorized"}}"#,
                K::InvalidKey,
            ),
            (
                Yandex,
                429,
                r#"{"error":{"grpcCode":8,"httpCode":429,"message":"rate quota limit exceed"}}"#,
                K::RateLimited,
            ),
            (Yandex, 503, "", K::Unavailable),
            (Custom, 502, "<html>Bad gateway</html>", K::Unavailable),
            (Custom, 408, "", K::Timeout),
        ];
        for (kind, status, body, want) in cases {
            let got = classify_failure(ctx(*kind), *status, None, body.as_bytes());
            assert_eq!(got.kind(), *want, "{kind} {status} {body}");
        }
    }

    #[test]
    fn gemini_retry_info_and_openai_message_give_the_hint() {
        let body = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}"#;
        let err = classify_failure(ctx(ProviderKind::Gemini), 429, None, body.as_bytes());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(26)));
        let body = r#"{"error":{"message":"Rate limit reached. Please try again in 16.062s.","code":"rate_limit_exceeded"}}"#;
        let err = classify_failure(ctx(ProviderKind::OpenAi), 429, None, body.as_bytes());
        assert_eq!(err.retry_after(), Some(Duration::from_millis(16_062)));
    }

    #[test]
    fn the_providers_key_is_scrubbed_from_vendor_messages() {
        let key = ApiKey::new("AQVN-classify-sentinel-98iI");
        let body = r#"{"error":{"grpcCode":16,"httpCode":401,"message":"Unknown api key 'AQVN-classify-sentinel-98iI'"}}"#;
        let err = classify_failure(
            FailureContext {
                key: Some(&key),
                ..ctx(ProviderKind::Yandex)
            },
            401,
            None,
            body.as_bytes(),
        );
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("classify-sentinel"), "{shown}");
    }

    #[test]
    fn details_keep_the_vendors_code_and_type_but_never_its_message() {
        let quoting = r#"{"error":{"message":"Invalid value: 'Mara lit the SENTINEL lamp'","type":"invalid_request_error","code":"invalid_value"}}"#;
        let proxy = "<html><body>Mara lit the SENTINEL lamp</body></html>";
        let odd_code = r#"{"error":{"message":"m","code":"Mara lit the SENTINEL lamp"}}"#;
        let cases = [
            (
                quoting,
                "vendor error `invalid_value` (invalid_request_error)",
            ),
            (
                proxy,
                "the vendor's message is not kept (it may quote the request)",
            ),
            (
                odd_code,
                "the vendor's message is not kept (it may quote the request)",
            ),
            ("", "an empty error body"),
        ];
        for (body, want) in cases {
            let err = classify_failure(ctx(ProviderKind::OpenAi), 400, None, body.as_bytes());
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("SENTINEL"), "{shown}");
            assert_eq!(
                err.detail().map(|d| d.message.as_str()),
                Some(want),
                "{body}"
            );
        }
    }

    #[test]
    fn json_errors_are_described_without_the_value() {
        let e = serde_json::from_str::<u32>(r#""Mara lit the SENTINEL lamp""#).unwrap_err();
        assert!(
            e.to_string().contains("SENTINEL"),
            "serde quotes the value: {e}"
        );
        let described = describe_json_error(&e);
        assert!(!described.contains("SENTINEL"), "{described}");
        assert!(
            described.starts_with("JSON of an unexpected shape"),
            "{described}"
        );
    }

    #[test]
    fn long_and_multiline_messages_are_bounded() {
        let msg = "line\n".repeat(200);
        let out = scrub(&msg, None);
        assert!(!out.contains('\n'));
        assert!(out.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn x_should_retry_and_request_ids_are_kept() {
        let h = headers(&[("x-should-retry", "false"), ("x-request-id", "req_1")]);
        let err = classify_failure(ctx(ProviderKind::OpenAi), 500, Some(&h), b"{}");
        let d = err.detail().unwrap();
        assert_eq!(d.should_retry, Some(false));
        assert_eq!(d.request_id.as_deref(), Some("req_1"));
    }
}
