//! Every provider against the simulator: each fault maps to the documented error kind and retry
//! hint, keys never leak into errors, requests carry exactly the headers and body shape of
//! PROVIDERS.md, and streaming, listing, connection tests, cancellation and timeouts behave.
//!
//! Real sockets on 127.0.0.1, short real timeouts (tens to hundreds of ms), no paused clock.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::http::HttpClient;
use storyteller_lsp::providers::{
    self, AiProvider, CompletionRequest, ErrorKind, FinishReason, Message, ProviderConfig,
    ProviderError, ProviderKind, ProviderOptions, StreamEvent,
};
use storyteller_lsp::simulator::{Fault, Outcome, SimulatorHandle, unreachable_endpoint};

const FOLDER: &str = "b1gsimfolder";

fn sentinel(kind: ProviderKind) -> String {
    format!("sk-SENTINEL-{}-0123456789abcdef", kind.as_str())
}

fn config(sim: &SimulatorHandle, kind: ProviderKind, key: Option<&str>) -> ProviderConfig {
    let mut config = ProviderConfig::with_defaults(kind, key.map(ApiKey::new));
    config.endpoint = sim.endpoint(kind);
    if kind == ProviderKind::Custom {
        config.model = "llama3.2".into();
    }
    config.options = ProviderOptions {
        folder_id: (kind == ProviderKind::Yandex).then(|| FOLDER.to_string()),
        ..ProviderOptions::default()
    };
    config
}

fn provider(sim: &SimulatorHandle, http: &HttpClient, kind: ProviderKind) -> Arc<dyn AiProvider> {
    providers::build(&config(sim, kind, Some(&sentinel(kind))), http)
}

fn request() -> CompletionRequest {
    let mut r = CompletionRequest::new(vec![Message::user(
        "The lamp flickered. Elena looked across the table at Marcus and said",
    )]);
    r.system = Some("You continue fiction in the author's voice.".into());
    r.max_tokens = 120;
    r.temperature = Some(0.7);
    r.stop = vec!["\n\n".into()];
    r.timeout = Duration::from_secs(5);
    r
}

fn http() -> HttpClient {
    HttpClient::new().expect("client")
}

/// Runs the stream to its end: the text, and the `Done` or the error that ended it.
async fn drain(
    provider: &dyn AiProvider,
    request: &CompletionRequest,
) -> (String, Result<StreamEvent, ProviderError>) {
    let response = match provider.stream(request).await {
        Ok(r) => r,
        Err(e) => return (String::new(), Err(e)),
    };
    let mut events = response.events;
    let mut text = String::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(StreamEvent::Delta(d)) => text.push_str(&d),
            Ok(done @ StreamEvent::Done { .. }) => {
                assert!(events.next().await.is_none(), "nothing after Done");
                return (text, Ok(done));
            }
            Err(e) => {
                assert!(events.next().await.is_none(), "nothing after an error");
                return (text, Err(e));
            }
        }
    }
    panic!("stream ended without Done or an error");
}

#[derive(Debug, Clone, Copy)]
enum Retry {
    Any,
    Exactly(Duration),
    Within(Duration, Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Generate,
    Stream,
}

fn faults() -> Vec<(Fault, Via)> {
    use Fault::*;
    let mut out: Vec<(Fault, Via)> = [
        InvalidKey,
        KeyRevoked,
        Forbidden,
        ModelNotFound,
        RequestTimeout,
        RateLimit {
            retry_after_secs: 2,
        },
        RateLimitHttpDate {
            retry_after_secs: 4,
        },
        RateLimitMs {
            retry_after_ms: 1500,
        },
        Quota,
        PaymentRequired,
        ServerError,
        BadGateway,
        Unavailable,
        GatewayTimeout,
        Overloaded,
        ConnectionRefused,
        MalformedJson,
        TruncatedStream,
        SlowFirstByte { delay_ms: 5_000 },
    ]
    .into_iter()
    .map(|f| (f, Via::Generate))
    .collect();
    out.extend(
        [
            RateLimit {
                retry_after_secs: 2,
            },
            ConnectionRefused,
            ResetMidStream,
            MalformedJson,
            TruncatedStream,
            ErrorMidStream,
            SlowFirstByte { delay_ms: 5_000 },
            StallMidStream { stall_ms: 5_000 },
        ]
        .into_iter()
        .map(|f| (f, Via::Stream)),
    );
    out
}

/// PROVIDERS.md, as a table: what each fault must become for each vendor.
fn expected(kind: ProviderKind, fault: &Fault) -> (ErrorKind, Retry) {
    use ErrorKind as K;
    use Fault::*;
    match fault {
        InvalidKey | KeyRevoked | Forbidden => (K::InvalidKey, Retry::Any),
        ModelNotFound => (K::ModelNotFound, Retry::Any),
        RequestTimeout | GatewayTimeout | SlowFirstByte { .. } | StallMidStream { .. } => {
            (K::Timeout, Retry::Any)
        }
        RateLimit { retry_after_secs } => (
            K::RateLimited,
            Retry::Exactly(Duration::from_secs(*retry_after_secs)),
        ),
        // An HTTP-date has whole seconds: the wait is up to a second shorter than asked.
        RateLimitHttpDate { retry_after_secs } => (
            K::RateLimited,
            Retry::Within(
                Duration::from_secs(retry_after_secs - 2),
                Duration::from_secs(*retry_after_secs),
            ),
        ),
        RateLimitMs { retry_after_ms } => (
            K::RateLimited,
            Retry::Exactly(Duration::from_millis(*retry_after_ms)),
        ),
        // Scaleway and Yandex have no quota error distinct from their rate limit.
        Quota if matches!(kind, ProviderKind::Scaleway | ProviderKind::Yandex) => {
            (K::RateLimited, Retry::Any)
        }
        Quota | PaymentRequired => (K::QuotaExhausted, Retry::Any),
        ServerError | BadGateway | Unavailable | Overloaded | ErrorMidStream => {
            (K::Unavailable, Retry::Any)
        }
        ConnectionRefused | ResetMidStream => (K::Network, Retry::Any),
        MalformedJson | TruncatedStream => (K::Protocol, Retry::Any),
        other => panic!("no expectation for {other:?}"),
    }
}

async fn run_fault_table(sim: &SimulatorHandle, http: &HttpClient, kind: ProviderKind) {
    let provider = provider(sim, http, kind);
    let key = sentinel(kind);
    for (fault, via) in faults() {
        sim.inject(kind, fault.clone(), Some(1));
        let mut req = request();
        // Short real limits with wide margins: a loaded CI machine answers a good request well
        // inside them, and the slow faults below last far longer.
        // Streams get a long overall limit, so only their first-byte and idle limits can catch
        // the slow faults (a stream that waited them out would succeed and fail the case).
        req.timeout = match via {
            Via::Generate => Duration::from_millis(2_500),
            Via::Stream => Duration::from_secs(30),
        };
        req.first_byte_timeout = Duration::from_millis(600);
        req.idle_timeout = Duration::from_millis(600);
        let (text, err) = match via {
            Via::Generate => (String::new(), provider.generate(&req).await.err()),
            Via::Stream => {
                let (text, end) = drain(provider.as_ref(), &req).await;
                (text, end.err())
            }
        };
        sim.clear(kind);
        let case = format!("{kind} {fault:?} via {via:?}");
        let err = err.unwrap_or_else(|| panic!("{case}: expected an error"));
        let (want_kind, want_retry) = expected(kind, &fault);
        assert_eq!(err.kind(), want_kind, "{case}: {err}");
        match want_retry {
            Retry::Any => {}
            Retry::Exactly(d) => assert_eq!(err.retry_after(), Some(d), "{case}"),
            Retry::Within(lo, hi) => {
                let got = err
                    .retry_after()
                    .unwrap_or_else(|| panic!("{case}: no retry"));
                assert!(
                    lo <= got && got <= hi,
                    "{case}: {got:?} not in {lo:?}..{hi:?}"
                );
            }
        }
        // Streams name the limit that fired: the first-byte and idle limits are shorter than
        // the overall one, so the overall deadline must not be what caught these.
        if via == Via::Stream {
            let stage = match fault {
                Fault::SlowFirstByte { .. } => Some("first byte"),
                Fault::StallMidStream { .. } => Some("stalled"),
                _ => None,
            };
            if let Some(stage) = stage {
                assert!(err.to_string().contains(stage), "{case}: {err}");
            }
        }
        let shown = format!("{err} | {err:?}");
        assert!(!shown.contains(&key), "{case}: key leaked: {shown}");
        assert!(
            !shown.contains("SENTINEL"),
            "{case}: key part leaked: {shown}"
        );
        // Mid-stream failures come after some text, which the caller keeps.
        if via == Via::Stream
            && matches!(
                fault,
                Fault::ResetMidStream | Fault::TruncatedStream | Fault::ErrorMidStream
            )
        {
            assert!(!text.is_empty(), "{case}: no text before the failure");
        }
        if let ProviderError::Protocol { partial, .. } = &err
            && via == Via::Stream
        {
            assert_eq!(partial.as_deref(), Some(text.as_str()), "{case}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_maps_every_fault_to_the_documented_error() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    let runs = ProviderKind::ALL
        .into_iter()
        .map(|kind| run_fault_table(&sim, &http, kind));
    futures::future::join_all(runs).await;
}

#[tokio::test]
async fn planted_bad_keys_are_rejected_without_a_fault_and_never_echoed() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in ProviderKind::ALL {
        for key in [
            format!("sk-invalid-SENTINEL-{kind}-abcdef"),
            format!("sk-revoked-SENTINEL-{kind}-abcdef"),
        ] {
            let p = providers::build(&config(&sim, kind, Some(&key)), &http);
            let err = p.generate(&request()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{kind} {key}: {err}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&key), "{kind}: {shown}");
            let err = p.test_connection().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{kind} test_connection");
        }
    }
}

#[tokio::test]
async fn a_gateway_quoting_the_whole_key_is_scrubbed() {
    let sim = SimulatorHandle::start().await.unwrap();
    let key = "gw-invalid-SENTINEL-0123456789";
    let p = providers::build(&config(&sim, ProviderKind::Custom, Some(key)), &http());
    let err = p.generate(&request()).await.unwrap_err();
    // The vendor's message (which quotes the key) is not kept at all.
    assert!(!format!("{err} {err:?}").contains(key));
}

fn body(r: &storyteller_lsp::simulator::RecordedRequest) -> &Value {
    &r.body
}

#[tokio::test]
async fn requests_carry_each_vendors_documented_headers_and_body() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in ProviderKind::ALL {
        let p = provider(&sim, &http, kind);
        p.generate(&request()).await.unwrap();
        drain(p.as_ref(), &request()).await.1.unwrap();
        let reqs = sim.requests(Some(kind));
        assert_eq!(reqs.len(), 2, "{kind}");
        let hint = format!("••••{}", &sentinel(kind)[sentinel(kind).len() - 4..]);
        for (r, streaming) in reqs.iter().zip([false, true]) {
            let case = format!("{kind} stream={streaming}");
            let b = body(r);
            assert_eq!(r.method, "POST", "{case}");
            assert_eq!(r.header("content-type"), Some("application/json"), "{case}");
            assert!(
                r.header("user-agent")
                    .is_some_and(|ua| ua.starts_with("storyteller-lsp/")),
                "{case}"
            );
            assert!(!r.query.as_deref().unwrap_or("").contains("key="), "{case}");
            let no_header = |name: &str| assert_eq!(r.header(name), None, "{case}: {name}");
            match kind {
                ProviderKind::Claude => {
                    assert!(r.path.ends_with("/v1/messages"), "{case}");
                    assert_eq!(r.header("x-api-key"), Some(hint.as_str()), "{case}");
                    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"), "{case}");
                    no_header("authorization");
                    assert_eq!(b["model"], "claude-sonnet-4-5");
                    assert_eq!(b["max_tokens"], 120);
                    assert_eq!(b["system"], "You continue fiction in the author's voice.");
                    assert_eq!(b["messages"][0]["role"], "user");
                    assert_eq!(b["stop_sequences"][0], "\n\n");
                    assert_eq!(b["stream"], streaming);
                }
                ProviderKind::Gemini => {
                    let action = if streaming {
                        "/models/gemini-2.5-flash:streamGenerateContent"
                    } else {
                        "/models/gemini-2.5-flash:generateContent"
                    };
                    assert!(r.path.ends_with(action), "{case}: {}", r.path);
                    assert_eq!(r.query.as_deref(), streaming.then_some("alt=sse"), "{case}");
                    assert_eq!(r.header("x-goog-api-key"), Some(hint.as_str()), "{case}");
                    no_header("authorization");
                    assert_eq!(b["contents"][0]["role"], "user");
                    assert!(b["contents"][0]["parts"][0]["text"].is_string());
                    assert_eq!(
                        b["systemInstruction"]["parts"][0]["text"],
                        "You continue fiction in the author's voice."
                    );
                    let gc = &b["generationConfig"];
                    assert_eq!(gc["maxOutputTokens"], 120);
                    assert_eq!(gc["stopSequences"][0], "\n\n");
                    assert!(gc["temperature"].is_number());
                    assert_eq!(gc["thinkingConfig"]["thinkingBudget"], 0);
                }
                ProviderKind::Yandex => {
                    assert!(
                        r.path.ends_with("/foundationModels/v1/completion"),
                        "{case}"
                    );
                    assert_eq!(
                        r.header("authorization"),
                        Some(format!("Api-Key {hint}").as_str()),
                        "{case}"
                    );
                    no_header("x-folder-id");
                    assert_eq!(
                        b["modelUri"],
                        format!("gpt://{FOLDER}/yandexgpt-lite/latest")
                    );
                    let opts = &b["completionOptions"];
                    assert_eq!(opts["maxTokens"], "120", "maxTokens is a string");
                    assert_eq!(opts["stream"], streaming);
                    assert_eq!(b["messages"][0]["role"], "system");
                    assert!(b["messages"][1]["text"].is_string());
                }
                _ => {
                    assert!(r.path.ends_with("/chat/completions"), "{case}");
                    assert_eq!(
                        r.header("authorization"),
                        Some(format!("Bearer {hint}").as_str()),
                        "{case}"
                    );
                    no_header("x-api-key");
                    assert_eq!(b["messages"][0]["role"], "system");
                    assert_eq!(b["messages"][1]["role"], "user");
                    let (used, unused) = if kind == ProviderKind::OpenAi {
                        ("max_completion_tokens", "max_tokens")
                    } else {
                        ("max_tokens", "max_completion_tokens")
                    };
                    assert_eq!(b[used], 120, "{case}");
                    assert!(b.get(unused).is_none(), "{case}");
                    assert_eq!(b["stop"][0], "\n\n");
                    assert_eq!(b["stream"], streaming);
                    let wants_usage = streaming && kind != ProviderKind::Custom;
                    assert_eq!(
                        b.pointer("/stream_options/include_usage"),
                        wants_usage.then_some(&Value::Bool(true)),
                        "{case}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn custom_endpoints_without_a_key_send_no_authorization() {
    let sim = SimulatorHandle::start().await.unwrap();
    let p = providers::build(&config(&sim, ProviderKind::Custom, None), &http());
    p.generate(&request()).await.unwrap();
    let r = &sim.requests(Some(ProviderKind::Custom))[0];
    assert_eq!(r.header("authorization"), None);
}

#[tokio::test]
async fn every_provider_streams_the_same_text_it_generates() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in ProviderKind::ALL {
        let p = provider(&sim, &http, kind);
        let whole = p.generate(&request()).await.unwrap();
        assert!(
            whole.text.contains("Elena") || whole.text.contains("Marcus"),
            "{kind}: {}",
            whole.text
        );
        let (text, done) = drain(p.as_ref(), &request()).await;
        assert_eq!(text, whole.text, "{kind}");
        match done.unwrap() {
            StreamEvent::Done { finish, usage } => {
                assert_eq!(finish, whole.finish, "{kind}");
                assert!(matches!(finish, FinishReason::Stop | FinishReason::Length));
                // Custom servers are not asked for usage in streams (strict ones refuse
                // `stream_options`).
                if kind != ProviderKind::Custom {
                    let usage = usage.unwrap_or_else(|| panic!("{kind}: no usage"));
                    assert!(usage.output_tokens > 0 && usage.input_tokens > 0, "{kind}");
                }
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn one_pooled_connection_serves_successive_requests_and_streams() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    let openai = provider(&sim, &http, ProviderKind::OpenAi);
    let claude = provider(&sim, &http, ProviderKind::Claude);
    // A stream polled to its end reads the end of the body too, so its connection is back in
    // the pool before the next request.
    for _ in 0..3 {
        openai.generate(&request()).await.unwrap();
        drain(openai.as_ref(), &request()).await.1.unwrap();
        drain(claude.as_ref(), &request()).await.1.unwrap();
    }
    assert_eq!(
        sim.connections_accepted(),
        1,
        "providers share one pooled client"
    );
}

#[tokio::test]
async fn rate_limit_headers_reach_the_caller_with_decreasing_remaining() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in [ProviderKind::OpenAi, ProviderKind::Claude] {
        let p = provider(&sim, &http, kind);
        let first = p.generate(&request()).await.unwrap().rate_limit.unwrap();
        let second = p.stream(&request()).await.unwrap().rate_limit.unwrap();
        assert_eq!(first.limit, Some(60), "{kind}");
        assert_eq!(first.remaining, Some(59), "{kind}");
        assert_eq!(second.remaining, Some(58), "{kind}");
        assert!(first.reset_after.is_some(), "{kind}");
    }
}

#[tokio::test]
async fn every_provider_lists_models_and_tests_its_connection() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in ProviderKind::ALL {
        let p = provider(&sim, &http, kind);
        let models = p.list_models().await.unwrap();
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        let default = if kind == ProviderKind::Custom {
            "llama3.2"
        } else {
            kind.default_model()
        };
        assert!(ids.contains(&default), "{kind}: {ids:?}");
        assert!(
            ids.iter()
                .all(|id| !id.contains("embed") && !id.contains("emb://")),
            "{kind}: {ids:?}"
        );
        let report = p.test_connection().await.unwrap();
        assert_eq!(report.model, default, "{kind}");
        let listing = sim.requests(Some(kind)).pop().unwrap();
        assert_eq!(
            listing.method, "GET",
            "{kind}: test_connection spends no tokens"
        );
        if kind == ProviderKind::Yandex {
            assert_eq!(listing.path, "/yandex/v1/models");
            assert_eq!(listing.header("openai-project"), Some(FOLDER));
        }
    }
}

#[tokio::test]
async fn a_custom_server_without_model_listing_is_tested_with_a_one_token_chat() {
    let sim = SimulatorHandle::start().await.unwrap();
    sim.inject(ProviderKind::Custom, Fault::NoModelListing, None);
    let p = provider(&sim, &http(), ProviderKind::Custom);
    p.test_connection().await.unwrap();
    let reqs = sim.requests(Some(ProviderKind::Custom));
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].status),
        ("GET", Some(404))
    );
    assert_eq!(reqs[1].body["max_tokens"], 1);
}

#[tokio::test]
async fn retired_and_missing_models_are_model_not_found() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for (kind, model) in [
        (ProviderKind::DeepSeek, "deepseek-chat"),
        (ProviderKind::OpenAi, "gpt-missing"),
        (ProviderKind::Gemini, "gemini-missing"),
        (ProviderKind::Scaleway, "missing-7b"),
    ] {
        let mut c = config(&sim, kind, Some(&sentinel(kind)));
        c.model = model.into();
        let err = providers::build(&c, &http)
            .generate(&request())
            .await
            .unwrap_err();
        match err {
            ProviderError::ModelNotFound { model: m, .. } => assert_eq!(m, model),
            other => panic!("{kind}: {other}"),
        }
    }
}

#[tokio::test]
async fn content_filters_end_the_suggestion_or_explain_the_block() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Claude,
        ProviderKind::Yandex,
    ] {
        sim.inject(kind, Fault::ContentFilter, Some(1));
        let (_text, end) = drain(provider(&sim, &http, kind).as_ref(), &request()).await;
        match end {
            Ok(StreamEvent::Done { finish, .. }) => {
                assert_eq!(finish, FinishReason::ContentFilter, "{kind}")
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    sim.inject(ProviderKind::Gemini, Fault::ContentFilter, Some(1));
    let err = provider(&sim, &http, ProviderKind::Gemini)
        .generate(&request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert!(err.to_string().contains("SAFETY"), "{err}");
}

#[tokio::test]
async fn cancelling_while_waiting_aborts_the_upstream_request() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for kind in [ProviderKind::OpenAi, ProviderKind::Gemini] {
        sim.set_latency(kind, Duration::from_secs(3));
        let p = provider(&sim, &http, kind);
        let req = request();
        let cancel = req.cancel.clone();
        let call = tokio::spawn(async move { p.generate(&req).await });
        sim.wait_for_request(kind, Duration::from_secs(2), |_| true)
            .await
            .expect("request reached the simulator");
        cancel.cancel();
        let result = call.await.unwrap();
        assert_eq!(result.unwrap_err(), ProviderError::Cancelled, "{kind}");
        let seen = sim
            .wait_for_request(kind, Duration::from_secs(2), |r| {
                r.outcome == Outcome::Disconnected
            })
            .await;
        assert!(seen.is_some(), "{kind}: the simulator saw no disconnect");
    }
}

#[tokio::test]
async fn cancelling_or_dropping_a_stream_closes_the_connection() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    for (kind, cancel_first) in [(ProviderKind::Claude, true), (ProviderKind::Yandex, false)] {
        sim.inject(kind, Fault::StallMidStream { stall_ms: 5_000 }, Some(1));
        let p = provider(&sim, &http, kind);
        let req = request();
        let mut events = p.stream(&req).await.unwrap().events;
        assert!(matches!(
            events.next().await,
            Some(Ok(StreamEvent::Delta(_)))
        ));
        if cancel_first {
            req.cancel.cancel();
            assert_eq!(
                events.next().await,
                Some(Err(ProviderError::Cancelled)),
                "{kind}"
            );
        }
        drop(events);
        let seen = sim
            .wait_for_request(kind, Duration::from_secs(2), |r| {
                r.outcome == Outcome::Disconnected
            })
            .await;
        assert!(seen.is_some(), "{kind}: the simulator saw no disconnect");
    }
}

#[tokio::test]
async fn the_overall_timeout_bounds_a_slow_answer() {
    let sim = SimulatorHandle::start().await.unwrap();
    sim.set_latency(ProviderKind::Scaleway, Duration::from_secs(3));
    let mut req = request();
    req.timeout = Duration::from_millis(200);
    let err = provider(&sim, &http(), ProviderKind::Scaleway)
        .generate(&req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn nobody_listening_is_a_network_error() {
    let http = http();
    for kind in [ProviderKind::OpenAi, ProviderKind::Claude] {
        let mut c = ProviderConfig::with_defaults(kind, Some(ApiKey::new(sentinel(kind))));
        let unreachable = unreachable_endpoint().unwrap();
        c.endpoint = unreachable.to_string();
        let err = providers::build(&c, &http)
            .generate(&request())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Network, "{kind}: {err}");
    }
}

#[tokio::test]
async fn missing_configuration_is_reported_before_any_request() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    let mut custom = config(&sim, ProviderKind::Custom, None);
    custom.endpoint = String::new();
    let err = providers::build(&custom, &http)
        .generate(&request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    let no_key = config(&sim, ProviderKind::OpenAi, None);
    let err = providers::build(&no_key, &http)
        .generate(&request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
    if std::env::var_os("YANDEX_FOLDER_ID").is_none() {
        let mut yandex = config(
            &sim,
            ProviderKind::Yandex,
            Some(&sentinel(ProviderKind::Yandex)),
        );
        yandex.options.folder_id = None;
        let err = providers::build(&yandex, &http)
            .generate(&request())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        assert!(err.to_string().contains("YANDEX_FOLDER_ID"), "{err}");
    }
    assert!(sim.requests(None).is_empty());
}

#[tokio::test]
async fn the_control_api_arms_faults_and_reports_requests() {
    let sim = SimulatorHandle::start().await.unwrap();
    let http = http();
    let control = http.reqwest();
    let base = sim.base_url();
    let armed = control
        .post(format!("{base}/_sim/faults"))
        .header("content-type", "application/json")
        .body(r#"{"provider":"openai","fault":"rate_limit","retryAfterSecs":7,"times":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(armed.status(), 200);
    let p = provider(&sim, &http, ProviderKind::OpenAi);
    let err = p.generate(&request()).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    p.generate(&request()).await.unwrap();
    let records: Value = control
        .get(format!("{base}/_sim/requests?provider=openai"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["fault"], "rate_limit");
    assert_eq!(records[0]["status"], 429);
    assert_eq!(records[1]["outcome"], "completed");
    assert!(
        !records[0].to_string().contains("SENTINEL"),
        "keys are masked"
    );
    let health: Value = control
        .get(format!("{base}/_sim/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["endpoints"]["claude"],
        sim.endpoint(ProviderKind::Claude)
    );
    let bad = control
        .post(format!("{base}/_sim/faults"))
        .body(r#"{"provider":"openai","fault":"no_such_fault"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
