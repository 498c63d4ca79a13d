//! Streams and error bodies recorded by the vendors' own SDK test suites (openai-python,
//! anthropic-sdk-python, python-genai; sources in `tests/fixtures/vendor/README.md`) replayed byte
//! for byte over loopback to the providers: the text and the error kind must be what the vendor
//! meant. Each body is written in small pieces of varying size, so that frames and UTF-8 sequences
//! are split the way a network splits them.

use std::time::Duration;

use futures::StreamExt;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::http::HttpClient;
use storyteller_lsp::providers::{
    self, AiProvider, CompletionRequest, ErrorKind, FinishReason, Message, ProviderConfig,
    ProviderError, ProviderKind, StreamEvent, Usage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/tests/fixtures/vendor/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Header lines `name: value` of a recorded response (`*.headers`).
fn fixture_headers(path: &str) -> Vec<(String, String)> {
    String::from_utf8(fixture(path))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// One canned HTTP response, served to every connection until the test ends.
#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Canned {
    fn sse(body: Vec<u8>) -> Self {
        Canned {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body,
        }
    }

    fn json(status: u16, body: Vec<u8>) -> Self {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }
}

/// Serves `canned` on a loopback port; returns the base URL. The server reads the whole request
/// (headers and `Content-Length` body) before answering, then closes the connection.
async fn serve(canned: Canned) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let canned = canned.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body_start = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(p) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_start]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < body_start + length {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let mut out = format!("HTTP/1.1 {} Recorded\r\n", canned.status);
                for (name, value) in &canned.headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    canned.body.len()
                ));
                if socket.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
                // Pieces of 1, 7, 64 and 3 bytes in turn: frames, lines and UTF-8 split anywhere.
                let mut rest = &canned.body[..];
                for size in [1usize, 7, 64, 3].iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (piece, tail) = rest.split_at((*size).min(rest.len()));
                    if socket.write_all(piece).await.is_err() {
                        return;
                    }
                    let _ = socket.flush().await;
                    rest = tail;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn provider(kind: ProviderKind, canned: Canned) -> std::sync::Arc<dyn AiProvider> {
    let base = serve(canned).await;
    let mut config = ProviderConfig::with_defaults(kind, Some(ApiKey::new("sk-replay-0123456789")));
    config.endpoint = format!("{base}/v1");
    if kind == ProviderKind::Custom {
        config.model = "llama3.2".into();
    }
    providers::build(&config, &HttpClient::new().unwrap())
}

fn request() -> CompletionRequest {
    let mut r = CompletionRequest::new(vec![Message::user("Elena waited by the door.")]);
    r.max_tokens = 64;
    r.timeout = Duration::from_secs(10);
    r
}

/// What a stream delivered: its text, its end, or the error that ended it.
#[derive(Debug)]
struct Replayed {
    text: String,
    end: Result<(FinishReason, Option<Usage>), ProviderError>,
}

async fn stream(p: &dyn AiProvider) -> Replayed {
    let mut events = p.stream(&request()).await.expect("stream opens").events;
    let mut text = String::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(StreamEvent::Delta(piece)) => text.push_str(&piece),
            Ok(StreamEvent::Done { finish, usage }) => {
                assert!(events.next().await.is_none(), "nothing after Done");
                return Replayed {
                    text,
                    end: Ok((finish, usage)),
                };
            }
            Err(e) => {
                return Replayed { text, end: Err(e) };
            }
        }
    }
    panic!("the stream ended without Done or an error; text so far: {text:?}");
}

const OPENAI_TEXT: &str = "I'm unable to provide real-time weather updates. To get the current \
weather in San Francisco, I recommend checking a reliable weather website or a weather app.";

#[tokio::test]
async fn openai_recorded_stream_gives_its_text_to_every_compatible_kind() {
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::DeepSeek,
        ProviderKind::Scaleway,
        ProviderKind::Custom,
    ] {
        let p = provider(kind, Canned::sse(fixture("openai/chat_stream_text.sse"))).await;
        let got = stream(p.as_ref()).await;
        assert_eq!(got.text, OPENAI_TEXT, "{kind}");
        let (finish, usage) = got.end.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(finish, FinishReason::Stop, "{kind}");
        assert_eq!(
            usage,
            Some(Usage {
                input_tokens: 14,
                output_tokens: 30
            }),
            "{kind}"
        );
    }
}

/// gpt-4o refusing a request streams `delta.refusal`, never `delta.content`: nothing may reach the
/// manuscript, and the end must say the model declined (not an empty natural stop).
#[tokio::test]
async fn openai_recorded_refusal_ends_as_content_filter_with_no_text() {
    let p = provider(
        ProviderKind::OpenAi,
        Canned::sse(fixture("openai/chat_stream_refusal.sse")),
    )
    .await;
    let got = stream(p.as_ref()).await;
    assert_eq!(got.text, "");
    let (finish, _) = got.end.unwrap();
    assert_eq!(finish, FinishReason::ContentFilter);
}

/// The SDK's basic fixture ends with `message_stop` and no blank line after it: the last line
/// ends at the end of the body. The event is whole; the stream ended well.
#[tokio::test]
async fn anthropic_basic_stream_whose_last_event_ends_with_the_body() {
    let p = provider(
        ProviderKind::Claude,
        Canned::sse(fixture("anthropic/basic_response.sse")),
    )
    .await;
    let got = stream(p.as_ref()).await;
    assert_eq!(got.text, "Hello there!");
    let (finish, usage) = got.end.unwrap();
    assert_eq!(finish, FinishReason::Stop);
    assert_eq!(
        usage,
        Some(Usage {
            input_tokens: 11,
            output_tokens: 6
        })
    );
}

/// A live recording from api.anthropic.com, whose JSON payloads are padded with spaces.
#[tokio::test]
async fn anthropic_live_recorded_stream_with_padded_events() {
    let p = provider(
        ProviderKind::Claude,
        Canned::sse(fixture("anthropic/live_stream_padded.sse")),
    )
    .await;
    let got = stream(p.as_ref()).await;
    assert_eq!(got.text, "[12345,67890]");
    let (finish, usage) = got.end.unwrap();
    assert_eq!(finish, FinishReason::Stop);
    assert_eq!(
        usage,
        Some(Usage {
            input_tokens: 135,
            output_tokens: 10
        })
    );
}

#[tokio::test]
async fn anthropic_recorded_refusal_ends_as_content_filter() {
    let p = provider(
        ProviderKind::Claude,
        Canned::sse(fixture("anthropic/refusal_response.sse")),
    )
    .await;
    let got = stream(p.as_ref()).await;
    assert_eq!(got.text, "");
    assert_eq!(got.end.unwrap().0, FinishReason::ContentFilter);
}

/// A real 429 from api.anthropic.com: `x-should-retry: true`, no `retry-after`, a request id.
#[tokio::test]
async fn anthropic_recorded_rate_limit_is_rate_limited_and_retryable() {
    let mut canned = Canned::json(429, fixture("anthropic/rate_limit_429.json"));
    canned.headers = fixture_headers("anthropic/rate_limit_429.headers");
    let p = provider(ProviderKind::Claude, canned).await;
    let errors = [
        p.generate(&request()).await.unwrap_err(),
        p.stream(&request()).await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert_eq!(e.retry_after(), None);
        let detail = e.detail().unwrap();
        assert_eq!(detail.status, Some(429));
        assert_eq!(detail.should_retry, Some(true));
        assert_eq!(
            detail.request_id.as_deref(),
            Some("req_011CYK5n67SytMUxm8WMZUWY")
        );
        // The vendor's message names the organisation: it is not kept.
        assert!(!e.to_string().contains("5576611f"), "{e}");
    }
}

#[tokio::test]
async fn gemini_recorded_response_gives_its_text() {
    let p = provider(
        ProviderKind::Gemini,
        Canned::json(200, fixture("gemini/generate_content_batch.json")),
    )
    .await;
    let done = p.generate(&request()).await.unwrap();
    assert_eq!(
        done.text,
        "This recipe makes a moist and delicious banana bread!"
    );
    assert_eq!(done.finish, FinishReason::Stop);
}

/// python-genai's stream fixture: a response line, then an error object on a line of its own,
/// neither with a `data:` prefix. The SDK reads both and raises a server error after the text.
#[tokio::test]
async fn gemini_recorded_error_mid_stream_is_unavailable_after_the_text() {
    let p = provider(
        ProviderKind::Gemini,
        Canned::sse(fixture("gemini/stream_midstream_error.txt")),
    )
    .await;
    let got = stream(p.as_ref()).await;
    assert_eq!(got.text, "test");
    let e = got.end.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn gemini_recorded_error_bodies_keep_their_kind() {
    for (file, status, kind) in [
        (
            "gemini/error_400_invalid_argument.json",
            400,
            ErrorKind::BadRequest,
        ),
        (
            "gemini/error_500_internal.json",
            500,
            ErrorKind::Unavailable,
        ),
    ] {
        let p = provider(ProviderKind::Gemini, Canned::json(status, fixture(file))).await;
        for e in [
            p.generate(&request()).await.unwrap_err(),
            p.stream(&request()).await.unwrap_err(),
        ] {
            assert_eq!(e.kind(), kind, "{file}: {e}");
            assert_eq!(e.status(), Some(status), "{file}");
            assert!(!e.to_string().contains("error message"), "{file}: {e}");
        }
    }
}

/// LiteLLM's proxy (recorded from 1.108.7): the 429 of an rpm limit carries its Retry-After only
/// as `llm_provider-retry-after`, and a `code` of "429" in an OpenAI-shaped error body.
#[tokio::test]
async fn litellm_recorded_rate_limit_is_rate_limited_with_its_retry_hint() {
    let mut canned = Canned::json(429, fixture("litellm/rate_limit_429.json"));
    canned.headers = fixture_headers("litellm/rate_limit_429.headers");
    for kind in [ProviderKind::Custom, ProviderKind::OpenAi] {
        let p = provider(kind, canned.clone()).await;
        for e in [
            p.generate(&request()).await.unwrap_err(),
            p.stream(&request()).await.unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::RateLimited, "{kind}: {e}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(60)), "{kind}");
            assert!(!e.to_string().contains("story-limited"), "{e}");
        }
    }
}

/// LiteLLM's `/v1/messages` answers a `stream: true` request for a mock model with the whole
/// message as JSON (recorded from 1.108.7): the stream is that text, then its end.
#[tokio::test]
async fn a_stream_request_answered_with_a_whole_message_gives_its_text() {
    let mut canned = Canned::json(200, fixture("litellm/messages_stream_mock_reply.json"));
    canned.headers = fixture_headers("litellm/messages_stream_mock_reply.headers");
    let p = provider(ProviderKind::Claude, canned).await;
    let got = stream(p.as_ref()).await;
    assert_eq!(
        got.text,
        "The lamp guttered, and Elena stepped into the cold hall."
    );
    let (finish, usage) = got.end.unwrap();
    assert_eq!(finish, FinishReason::Stop);
    assert_eq!(
        usage,
        Some(Usage {
            input_tokens: 2095,
            output_tokens: 503
        })
    );
}

#[tokio::test]
async fn openai_recorded_answers_not_streamed_give_text_or_refusal() {
    let p = provider(
        ProviderKind::OpenAi,
        Canned::json(200, fixture("openai/chat_text.json")),
    )
    .await;
    let done = p.generate(&request()).await.unwrap();
    assert!(
        done.text
            .starts_with("I'm unable to provide real-time weather updates.")
    );
    assert_eq!(done.finish, FinishReason::Stop);
    assert_eq!(
        done.usage,
        Some(Usage {
            input_tokens: 14,
            output_tokens: 37
        })
    );

    let p = provider(
        ProviderKind::OpenAi,
        Canned::json(200, fixture("openai/chat_refusal.json")),
    )
    .await;
    let done = p.generate(&request()).await.unwrap();
    assert_eq!(done.text, "");
    assert_eq!(done.finish, FinishReason::ContentFilter);
}
