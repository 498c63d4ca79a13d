//! Provider-layer benches: parse throughput of each stream format, and the per-request overhead of
//! the `AiProvider` path against the simulator with zero latency, next to a direct reqwest call
//! to the same endpoint (the baseline: same socket, same bytes, no provider code).
//!
//! `cargo bench --bench providers` runs the criterion groups, then prints p50/p99 of the trait
//! path and of the baseline from a plain timed loop (criterion reports means, the target is p99).
//! Each format's parse throughput is also timed on its own and recorded for
//! `scripts/bench-report` (which runs only that, in quick mode; see `benches/support`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use futures::StreamExt;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::anthropic::MessagesStreamDecoder;
use storyteller_lsp::providers::classify::Operation;
use storyteller_lsp::providers::endpoint::OwnedContext;
use storyteller_lsp::providers::gemini::GeminiStreamDecoder;
use storyteller_lsp::providers::http::{HttpClient, StreamDecoder};
use storyteller_lsp::providers::openai::ChatStreamDecoder;
use storyteller_lsp::providers::yandex::YandexStreamDecoder;
use storyteller_lsp::providers::{
    self, AiProvider, CompletionRequest, Message, ProviderConfig, ProviderKind,
};
use storyteller_lsp::simulator::SimulatorHandle;

const CHUNK: usize = 4096;

fn repeat_until(one: &str, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + one.len());
    while out.len() < bytes {
        out.push_str(one);
    }
    out
}

fn bodies() -> Vec<(&'static str, ProviderKind, String)> {
    let size = 1 << 20;
    let openai = repeat_until(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the rain — on the slates\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        size,
    ) + "data: [DONE]\n\n";
    let anthropic = repeat_until(
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the rain — on the slates\"}}\n\n",
        size,
    ) + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let gemini = repeat_until(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" the rain — on the slates\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n",
        size,
    ) + "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\".\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}]}\r\n\r\n";
    // Yandex repeats the whole text so far; a realistic body grows quadratically, so the bench
    // uses a fixed-length text that keeps the same prefix.
    let mut yandex = String::new();
    let mut text = String::new();
    while yandex.len() < size {
        text.push_str(" дождь");
        if text.len() > 400 {
            break;
        }
        yandex.push_str(&format!(
            "{{\"result\":{{\"alternatives\":[{{\"message\":{{\"role\":\"assistant\",\"text\":\"{text}\"}},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}}],\"usage\":{{\"inputTextTokens\":\"10\",\"completionTokens\":\"2\",\"totalTokens\":\"12\"}},\"modelVersion\":\"23.10.2024\"}}}}\n"
        ));
    }
    let line = format!(
        "{{\"result\":{{\"alternatives\":[{{\"message\":{{\"role\":\"assistant\",\"text\":\"{text}\"}},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}}],\"usage\":{{\"inputTextTokens\":\"10\",\"completionTokens\":\"2\",\"totalTokens\":\"12\"}},\"modelVersion\":\"23.10.2024\"}}}}\n"
    );
    while yandex.len() < size {
        yandex.push_str(&line);
    }
    yandex.push_str(&line.replace("PARTIAL", "FINAL"));
    vec![
        ("sse_openai", ProviderKind::OpenAi, openai),
        ("sse_anthropic", ProviderKind::Claude, anthropic),
        ("sse_gemini", ProviderKind::Gemini, gemini),
        ("ndjson_yandex", ProviderKind::Yandex, yandex),
    ]
}

fn decoder(kind: ProviderKind) -> Box<dyn StreamDecoder> {
    let ctx = OwnedContext {
        kind,
        operation: Operation::Generate,
        model: "m".into(),
        key: None,
    };
    match kind {
        ProviderKind::Claude => Box::new(MessagesStreamDecoder::new(ctx)),
        ProviderKind::Gemini => Box::new(GeminiStreamDecoder::new(ctx)),
        ProviderKind::Yandex => Box::new(YandexStreamDecoder::new(ctx)),
        _ => Box::new(ChatStreamDecoder::new(ctx)),
    }
}

fn decode_all(kind: ProviderKind, body: &[u8]) -> usize {
    let mut d = decoder(kind);
    let mut events = Vec::with_capacity(64);
    let mut count = 0;
    for chunk in body.chunks(CHUNK) {
        if d.feed(chunk, &mut events).is_err() {
            break;
        }
        count += events.len();
        events.clear();
    }
    count
}

fn parse_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_parse");
    for (name, kind, body) in bodies() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_all(kind, std::hint::black_box(body.as_bytes())))
        });
    }
    group.finish();
}

struct Rig {
    rt: tokio::runtime::Runtime,
    _sim: SimulatorHandle,
    http: HttpClient,
    providers: Vec<(ProviderKind, Arc<dyn AiProvider>, String, String)>,
}

fn rig() -> Rig {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(SimulatorHandle::start()).unwrap();
    let http = HttpClient::new().unwrap();
    let providers = [ProviderKind::OpenAi, ProviderKind::Claude]
        .into_iter()
        .map(|kind| {
            let mut config =
                ProviderConfig::with_defaults(kind, Some(ApiKey::new("sk-bench-0123456789")));
            config.endpoint = sim.endpoint(kind);
            let path = match kind {
                ProviderKind::Claude => "/messages",
                _ => "/chat/completions",
            };
            let url = format!("{}{path}", sim.endpoint(kind));
            (kind, providers::build(&config, &http), url, String::new())
        })
        .collect();
    let mut rig = Rig {
        rt,
        _sim: sim,
        http,
        providers,
    };
    // The baseline sends exactly the body the provider sent.
    for entry in &mut rig.providers {
        let p = entry.1.clone();
        rig.rt
            .block_on(async { p.generate(&request()).await.unwrap() });
        let recorded = rig._sim.requests(Some(entry.0)).pop().unwrap();
        entry.3 = recorded.body.to_string();
    }
    rig
}

fn request() -> CompletionRequest {
    let mut r = CompletionRequest::new(vec![Message::user(
        "The lamp flickered. Elena looked across the table at Marcus and said",
    )]);
    r.max_tokens = 60;
    r
}

async fn baseline(http: &HttpClient, kind: ProviderKind, url: &str, body: &str, stream: bool) {
    let body = if stream {
        body.replace("\"stream\":false", "\"stream\":true")
    } else {
        body.to_string()
    };
    let mut builder = http
        .reqwest()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    builder = match kind {
        ProviderKind::Claude => builder
            .header("x-api-key", "sk-bench-0123456789")
            .header("anthropic-version", "2023-06-01"),
        _ => builder.bearer_auth("sk-bench-0123456789"),
    };
    let response = builder.send().await.unwrap();
    let mut bytes = response.bytes_stream();
    while let Some(chunk) = bytes.next().await {
        std::hint::black_box(chunk.unwrap());
    }
}

/// How much of our stream path sits on top of a direct call, for the percentile table.
#[derive(Clone, Copy)]
enum Layer {
    /// Our decoder over the direct call's bytes.
    Decoder,
    /// The whole driver (timers, cancellation, decoder) over the direct call's response.
    Driver,
}

async fn baseline_layered(
    http: &HttpClient,
    kind: ProviderKind,
    url: &str,
    body: &str,
    layer: Layer,
) {
    let body = body.replace("\"stream\":false", "\"stream\":true");
    let mut builder = http
        .reqwest()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    builder = match kind {
        ProviderKind::Claude => builder
            .header("x-api-key", "sk-bench-0123456789")
            .header("anthropic-version", "2023-06-01"),
        _ => builder.bearer_auth("sk-bench-0123456789"),
    };
    let response = builder.send().await.unwrap();
    match layer {
        Layer::Decoder => {
            let mut d = decoder(kind);
            let mut events = Vec::new();
            let mut bytes = response.bytes_stream();
            while let Some(chunk) = bytes.next().await {
                d.feed(&chunk.unwrap(), &mut events).unwrap();
            }
            std::hint::black_box(events);
        }
        Layer::Driver => {
            let attempt = storyteller_lsp::providers::http::Attempt::for_request(&request(), true);
            let mut events = storyteller_lsp::providers::http::drive_stream(
                response,
                BoxedDecoder(decoder(kind)),
                attempt,
            );
            while let Some(e) = events.next().await {
                std::hint::black_box(e.unwrap());
            }
        }
    }
}

struct BoxedDecoder(Box<dyn StreamDecoder>);

impl StreamDecoder for BoxedDecoder {
    fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<storyteller_lsp::providers::StreamEvent>,
    ) -> Result<(), storyteller_lsp::providers::ProviderError> {
        self.0.feed(chunk, out)
    }
    fn finish(
        &mut self,
        out: &mut Vec<storyteller_lsp::providers::StreamEvent>,
    ) -> Result<(), storyteller_lsp::providers::ProviderError> {
        self.0.finish(out)
    }
}

async fn trait_path(p: &dyn AiProvider, stream: bool) {
    let req = request();
    if stream {
        let mut events = p.stream(&req).await.unwrap().events;
        while let Some(e) = events.next().await {
            std::hint::black_box(e.unwrap());
        }
    } else {
        std::hint::black_box(p.generate(&req).await.unwrap());
    }
}

fn request_overhead(c: &mut Criterion) {
    let rig = rig();
    let mut group = c.benchmark_group("request");
    group.measurement_time(Duration::from_secs(4));
    for (kind, p, url, body) in &rig.providers {
        for stream in [false, true] {
            let mode = if stream { "stream" } else { "generate" };
            group.bench_function(format!("{kind}_{mode}_trait"), |b| {
                b.iter(|| rig.rt.block_on(trait_path(p.as_ref(), stream)))
            });
            group.bench_function(format!("{kind}_{mode}_direct_reqwest"), |b| {
                b.iter(|| {
                    rig.rt
                        .block_on(baseline(&rig.http, *kind, url, body, stream))
                })
            });
        }
    }
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// The stream a provider call produced, replayed from memory through the same driver and
/// decoder: the trait path's own work per streamed request, with no network and no server.
fn replay_percentiles(rig: &Rig) {
    const N: usize = 3000;
    for (kind, p, _, _) in &rig.providers {
        // Record the real body once, as the chunks the client received.
        let chunks: Vec<bytes::Bytes> = rig.rt.block_on(async {
            let url = format!(
                "{}{}",
                rig._sim.endpoint(*kind),
                if *kind == ProviderKind::Claude {
                    "/messages"
                } else {
                    "/chat/completions"
                }
            );
            let recorded = {
                trait_path(p.as_ref(), true).await;
                rig._sim
                    .requests(Some(*kind))
                    .pop()
                    .unwrap()
                    .body
                    .to_string()
            };
            let mut builder = rig
                .http
                .reqwest()
                .post(url)
                .header("content-type", "application/json")
                .body(recorded);
            builder = match kind {
                ProviderKind::Claude => builder
                    .header("x-api-key", "sk-bench-0123456789")
                    .header("anthropic-version", "2023-06-01"),
                _ => builder.bearer_auth("sk-bench-0123456789"),
            };
            let mut out = Vec::new();
            let mut body = builder.send().await.unwrap().bytes_stream();
            while let Some(c) = body.next().await {
                out.push(c.unwrap());
            }
            out
        });
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        let mut times = Vec::with_capacity(N);
        for _ in 0..N {
            let chunks = chunks.clone();
            let t = Instant::now();
            rig.rt.block_on(async {
                let attempt =
                    storyteller_lsp::providers::http::Attempt::for_request(&request(), true);
                let body = futures::stream::iter(chunks.into_iter().map(Ok));
                let mut events = storyteller_lsp::providers::http::drive_bytes(
                    body,
                    BoxedDecoder(decoder(*kind)),
                    attempt,
                );
                while let Some(e) = events.next().await {
                    std::hint::black_box(e.unwrap());
                }
            });
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "  {kind:7} stream replayed from memory ({} chunks, {total} bytes) through driver + decoder: p50 {:>6.1} µs p99 {:>6.1} µs",
            chunks.len(),
            percentile(&times, 0.5).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
        );
    }
}

/// p50/p99 from a plain loop, alternating the two paths so both see the same machine load.
fn print_percentiles() {
    let rig = rig();
    replay_percentiles(&rig);
    const N: usize = 3000;
    println!("\nper-request latency against the simulator (zero latency), {N} requests each:");
    for (kind, p, url, body) in &rig.providers {
        for stream in [false, true] {
            let mode = if stream { "stream" } else { "generate" };
            let (mut ours, mut base) = (Vec::with_capacity(N), Vec::with_capacity(N));
            let (mut decoded, mut driven) = (Vec::with_capacity(N), Vec::with_capacity(N));
            for _ in 0..N {
                if stream {
                    let t = Instant::now();
                    rig.rt.block_on(baseline_layered(
                        &rig.http,
                        *kind,
                        url,
                        body,
                        Layer::Decoder,
                    ));
                    decoded.push(t.elapsed());
                    let t = Instant::now();
                    rig.rt
                        .block_on(baseline_layered(&rig.http, *kind, url, body, Layer::Driver));
                    driven.push(t.elapsed());
                }
                let t = Instant::now();
                rig.rt.block_on(trait_path(p.as_ref(), stream));
                ours.push(t.elapsed());
                let t = Instant::now();
                rig.rt
                    .block_on(baseline(&rig.http, *kind, url, body, stream));
                base.push(t.elapsed());
            }
            ours.sort();
            base.sort();
            decoded.sort();
            driven.sort();
            if stream {
                println!(
                    "  {kind:7} {mode:8} direct + our decoder p50 {:>7.1} µs p99 {:>7.1} µs | direct + our driver p50 {:>7.1} µs p99 {:>7.1} µs",
                    percentile(&decoded, 0.5).as_secs_f64() * 1e6,
                    percentile(&decoded, 0.99).as_secs_f64() * 1e6,
                    percentile(&driven, 0.5).as_secs_f64() * 1e6,
                    percentile(&driven, 0.99).as_secs_f64() * 1e6,
                );
            }
            println!(
                "  {kind:7} {mode:8} trait p50 {:>7.1} µs p99 {:>7.1} µs | direct reqwest p50 {:>7.1} µs p99 {:>7.1} µs | overhead p50 {:>6.1} µs p99 {:>6.1} µs",
                percentile(&ours, 0.5).as_secs_f64() * 1e6,
                percentile(&ours, 0.99).as_secs_f64() * 1e6,
                percentile(&base, 0.5).as_secs_f64() * 1e6,
                percentile(&base, 0.99).as_secs_f64() * 1e6,
                (percentile(&ours, 0.5).as_secs_f64() - percentile(&base, 0.5).as_secs_f64()) * 1e6,
                (percentile(&ours, 0.99).as_secs_f64() - percentile(&base, 0.99).as_secs_f64())
                    * 1e6,
            );
        }
    }
}

/// Each format's 1 MB body decoded in 4 KB chunks, timed whole: the median of the runs, as MB/s.
fn report_throughput() {
    let runs = support::iterations(60, 20);
    for (name, kind, body) in bodies() {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            std::hint::black_box(decode_all(kind, std::hint::black_box(body.as_bytes())));
            times.push(start.elapsed());
        }
        times.sort();
        let median = support::percentile(&times, 0.5);
        let mb_per_s = body.len() as f64 / (1024.0 * 1024.0) / median.as_secs_f64();
        support::record(&format!("parse_{name}"), mb_per_s, "MB/s");
        println!(
            "stream parse {name}: {:.2} MB in {median:?} (median of {runs}) = {mb_per_s:.0} MB/s",
            body.len() as f64 / (1024.0 * 1024.0)
        );
    }
}

criterion_group!(benches, parse_throughput, request_overhead);

fn main() {
    report_throughput();
    if !support::with_criterion() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs this binary with `--bench` absent: keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        print_percentiles();
    }
}
