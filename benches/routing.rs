//! Router overhead per request — limiter slot, retry policy, dispatch, bookkeeping — with an
//! in-process provider that answers at once, so everything measured is the router's own cost.
//! Target (issue 6): p99 < 100 µs per request.
//!
//! Criterion reports means; the percentiles the target is about are printed at the end from a
//! separate run of timed requests.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::Criterion;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, Message, ModelInfo, ProviderConfig, ProviderError, ProviderKind, StreamResponse,
};
use storyteller_lsp::routing::{
    Budget, Failure, ProviderRef, Rate, RetryPolicy, RouteEntry, Router, RouterOptions, TokenBucket,
};

/// Answers at once; the provider at endpoint "quota" fails at once with an exhausted quota.
#[derive(Debug)]
struct InstantProvider {
    config: ProviderConfig,
}

#[async_trait]
impl AiProvider for InstantProvider {
    fn kind(&self) -> ProviderKind {
        self.config.kind
    }
    fn capabilities(&self) -> Capabilities {
        self.config.kind.entry().capabilities
    }
    fn model_info(&self) -> ModelInfo {
        ModelInfo {
            id: self.config.model.clone(),
            display_name: None,
        }
    }
    async fn generate(&self, _request: &CompletionRequest) -> Result<Completion, ProviderError> {
        if self.config.endpoint == "quota" {
            return Err(ProviderError::QuotaExhausted(Detail::new("bench")));
        }
        Ok(Completion {
            text: "and the door opened".into(),
            finish: FinishReason::Stop,
            usage: None,
            model: self.config.model.clone(),
            rate_limit: None,
        })
    }
    async fn stream(&self, _request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        Err(ProviderError::BadRequest(Detail::new("not benched")))
    }
    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![self.model_info()])
    }
    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError> {
        Ok(ConnectionReport {
            model: self.config.model.clone(),
            latency_ms: 0,
        })
    }
}

fn entry(id: i64, kind: ProviderKind, endpoint: &str) -> RouteEntry {
    let mut config = ProviderConfig::with_defaults(kind, Some(ApiKey::new("bench-key-000000")));
    config.endpoint = endpoint.into();
    RouteEntry {
        provider: ProviderRef {
            id,
            kind,
            display_name: kind.display_name().into(),
        },
        is_primary: id == 1,
        position: id as u32,
        is_active: true,
        eu_resident: false,
        config,
        system_key: None,
    }
}

/// A router whose buckets never make a request wait, so the limiter's arithmetic is measured
/// without its sleeping.
fn router(entries: Vec<RouteEntry>) -> Router {
    let mut options = RouterOptions {
        jitter_seed: Some(1),
        ..RouterOptions::default()
    };
    for kind in ProviderKind::ALL {
        options.rate_limits.insert(kind, u32::MAX);
    }
    let router = Router::new(
        Arc::new(|config: &ProviderConfig| {
            Ok(Arc::new(InstantProvider {
                config: config.clone(),
            }) as Arc<dyn AiProvider>)
        }),
        options,
    );
    router.set_providers(entries);
    router
}

fn request() -> CompletionRequest {
    let mut request = CompletionRequest::new(vec![Message::user(
        "She had kept the letter for eleven years, unopened, in the drawer with the spoons.",
    )]);
    request.system = Some("Continue the story in the author's voice.".into());
    request
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime for the bench")
}

fn bench_router(c: &mut Criterion) {
    let rt = runtime();
    let budget = Budget::Interactive(Duration::from_secs(5));
    let req = request();

    let single = rt.block_on(async { router(vec![entry(1, ProviderKind::OpenAi, "ok")]) });
    c.bench_function("router/generate/one provider", |b| {
        b.iter(|| rt.block_on(single.generate(black_box(&req), budget)))
    });

    let three = rt.block_on(async {
        router(vec![
            entry(1, ProviderKind::OpenAi, "ok"),
            entry(2, ProviderKind::Claude, "ok"),
            entry(3, ProviderKind::Gemini, "ok"),
        ])
    });
    c.bench_function("router/generate/three providers", |b| {
        b.iter(|| rt.block_on(three.generate(black_box(&req), budget)))
    });

    // The primary fails at once (quota): the cost of a failover inside the router. The failover
    // is sticky, so build a fresh router per batch to keep measuring the failing path.
    c.bench_function("router/generate/quota on primary, fail over", |b| {
        b.iter_batched(
            || {
                rt.block_on(async {
                    router(vec![
                        entry(1, ProviderKind::OpenAi, "quota"),
                        entry(2, ProviderKind::Claude, "ok"),
                    ])
                })
            },
            |r| rt.block_on(r.generate(black_box(&req), budget)),
            criterion::BatchSize::SmallInput,
        )
    });

    let bucket = rt.block_on(async { TokenBucket::new(Rate::per_minute(u32::MAX)) });
    c.bench_function("limiter/try_acquire", |b| {
        b.iter(|| rt.block_on(async { black_box(bucket.try_acquire()) }))
    });

    let policy = RetryPolicy::default();
    let error = ProviderError::Unavailable(Detail::new("bench").with_status(503));
    c.bench_function("retry/decide", |b| {
        b.iter(|| {
            policy.decide(black_box(Failure {
                error: &error,
                attempt: 1,
                budget: Budget::Action(Duration::from_secs(30)),
                elapsed: Duration::ZERO,
                has_backup: true,
                jitter: 0.5,
            }))
        })
    });
}

/// Times `n` requests one by one and prints p50, p99 and max.
fn report_percentiles() {
    let rt = runtime();
    let budget = Budget::Interactive(Duration::from_secs(5));
    let req = request();
    let scenarios = [
        ("one provider", vec![entry(1, ProviderKind::OpenAi, "ok")]),
        (
            "three providers",
            vec![
                entry(1, ProviderKind::OpenAi, "ok"),
                entry(2, ProviderKind::Claude, "ok"),
                entry(3, ProviderKind::Gemini, "ok"),
            ],
        ),
    ];
    for (name, entries) in scenarios {
        let router = rt.block_on(async { router(entries) });
        let n = 100_000;
        for _ in 0..1_000 {
            let _ = rt.block_on(router.generate(&req, budget));
        }
        let mut samples: Vec<Duration> = (0..n)
            .map(|_| {
                let start = Instant::now();
                let result = rt.block_on(router.generate(&req, budget));
                let elapsed = start.elapsed();
                assert!(result.is_ok());
                elapsed
            })
            .collect();
        samples.sort();
        let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)];
        println!(
            "router overhead, {name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({n} requests)",
            at(0.50).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            samples[n - 1].as_secs_f64() * 1e6,
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_router(&mut criterion);
    criterion.final_summary();
    report_percentiles();
}
