//! Router overhead per request — limiter slot, retry policy, dispatch, bookkeeping — with an
//! in-process provider that answers at once, so everything measured is the router's own cost.
//! Target (issue 6): p99 < 100 µs per request.
//!
//! Then the same over loopback HTTP against the provider simulator (zero latency): a request
//! through the router next to the same request straight to the provider, and the first request
//! after the primary died (connection refused) next to a first request to a healthy primary.
//! Target (issue 6): the failover adds < 5 ms.
//!
//! Criterion reports means; the percentiles the targets are about are printed at the end from
//! separate runs of timed requests, and recorded for `scripts/bench-report` (which, in quick mode,
//! runs only those, with fewer requests; see `benches/support`).

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::Criterion;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::http::HttpClient;
use storyteller_lsp::providers::{
    self, AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, Message, ModelInfo, ProviderConfig, ProviderError, ProviderKind, StreamResponse,
};
use storyteller_lsp::routing::{
    Budget, Failure, ProviderRef, Rate, RetryPolicy, RouteEntry, Router, RouterOptions, TokenBucket,
};
use storyteller_lsp::simulator::SimulatorHandle;

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
        let n = support::iterations(100_000, 20_000);
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
        let metric = name.replace(' ', "_");
        support::record(
            &format!("router_{metric}_p50"),
            support::micros(at(0.50)),
            "µs",
        );
        support::record(
            &format!("router_{metric}_p99"),
            support::micros(at(0.99)),
            "µs",
        );
        println!(
            "router overhead, {name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({n} requests)",
            at(0.50).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            samples[n - 1].as_secs_f64() * 1e6,
        );
    }
}

/// The simulator, one shared HTTP client, and the configs of a healthy and a dead provider.
struct Loopback {
    rt: tokio::runtime::Runtime,
    _sim: SimulatorHandle,
    http: HttpClient,
    /// DeepSeek: the OpenAI wire format without rate-limit headers, so no vendor hint throttles
    /// the bench's thousands of requests.
    healthy: ProviderConfig,
    /// Nobody listens at its endpoint: every connection is refused.
    dead: ProviderConfig,
    /// Keeps the dead endpoint's port bound (never listening), so nothing else can take it.
    _dead_port: tokio::net::TcpSocket,
}

fn loopback() -> Loopback {
    // Two workers, like the server: the simulator's tasks run beside the client's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the bench");
    let sim = rt
        .block_on(SimulatorHandle::start())
        .expect("the simulator starts");
    let http = HttpClient::new().expect("an HTTP client");
    let key = || Some(ApiKey::new("sk-bench-key-000000"));
    let mut healthy = ProviderConfig::with_defaults(ProviderKind::DeepSeek, key());
    healthy.endpoint = sim.endpoint(ProviderKind::DeepSeek);
    let dead_port = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("a free port");
        socket
    });
    let mut dead = ProviderConfig::with_defaults(ProviderKind::OpenAi, key());
    dead.endpoint = format!(
        "http://{}/v1",
        dead_port.local_addr().expect("the dead port's address")
    );
    Loopback {
        rt,
        _sim: sim,
        http,
        healthy,
        dead,
        _dead_port: dead_port,
    }
}

impl Loopback {
    /// A fresh router over real providers: `configs[0]` primary, the rest its backups.
    fn router(&self, configs: &[&ProviderConfig], retry: RetryPolicy) -> Router {
        let mut options = RouterOptions {
            jitter_seed: Some(1),
            retry,
            ..RouterOptions::default()
        };
        for kind in ProviderKind::ALL {
            options.rate_limits.insert(kind, u32::MAX);
        }
        let http = self.http.clone();
        let router = Router::new(
            Arc::new(move |config: &ProviderConfig| Ok(providers::build(config, &http))),
            options,
        );
        let entries = configs
            .iter()
            .zip(1..)
            .map(|(config, id)| RouteEntry {
                config: (*config).clone(),
                ..entry(id, config.kind, &config.endpoint)
            })
            .collect();
        // Building providers and the first limiter slot need the runtime's context.
        self.rt.block_on(async { router.set_providers(entries) });
        router
    }

    fn time(&self, router: &Router, budget: Budget) -> Duration {
        let req = request();
        let start = Instant::now();
        let result = self.rt.block_on(router.generate(&req, budget));
        let elapsed = start.elapsed();
        assert!(result.is_ok(), "{result:?}");
        elapsed
    }
}

const INLINE: Budget = Budget::Interactive(Duration::from_secs(5));
const ACTION: Budget = Budget::Action(Duration::from_secs(30));

fn bench_loopback(c: &mut Criterion, lb: &Loopback) {
    let req = request();
    let direct = providers::build(&lb.healthy, &lb.http);
    c.bench_function("loopback/generate/provider directly", |b| {
        b.iter(|| lb.rt.block_on(direct.generate(black_box(&req))))
    });
    let router = lb.router(&[&lb.healthy], RetryPolicy::default());
    c.bench_function("loopback/generate/through the router", |b| {
        b.iter(|| lb.rt.block_on(router.generate(black_box(&req), INLINE)))
    });
    // A failover is sticky: every iteration gets a fresh router whose primary is dead.
    c.bench_function("loopback/first request/healthy primary", |b| {
        b.iter_batched(
            || lb.router(&[&lb.healthy], RetryPolicy::default()),
            |r| lb.rt.block_on(r.generate(black_box(&req), INLINE)),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("loopback/first request/dead primary, fail over", |b| {
        b.iter_batched(
            || lb.router(&[&lb.dead, &lb.healthy], RetryPolicy::default()),
            |r| lb.rt.block_on(r.generate(black_box(&req), INLINE)),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
    (at(0.50), at(0.99), samples[n - 1].as_secs_f64() * 1e6)
}

/// p50/p99 over loopback, alternating the two sides of each comparison so both see the same
/// machine load.
fn report_loopback_percentiles(lb: &Loopback) {
    let req = request();
    let direct = providers::build(&lb.healthy, &lb.http);
    let router = lb.router(&[&lb.healthy], RetryPolicy::default());
    for _ in 0..500 {
        let _ = lb.rt.block_on(direct.generate(&req));
        let _ = lb.rt.block_on(router.generate(&req, INLINE));
    }
    let n = support::iterations(20_000, 3_000);
    let (mut straight, mut routed) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let start = Instant::now();
        let result = lb.rt.block_on(direct.generate(&req));
        straight.push(start.elapsed());
        assert!(result.is_ok());
        routed.push(lb.time(&router, INLINE));
    }
    let (s50, s99, smax) = percentiles(&mut straight);
    let (r50, r99, rmax) = percentiles(&mut routed);
    println!("\nover loopback, {n} requests each:");
    println!("  provider directly     p50 {s50:>7.1} µs  p99 {s99:>7.1} µs  max {smax:>8.1} µs");
    println!("  through the router    p50 {r50:>7.1} µs  p99 {r99:>7.1} µs  max {rmax:>8.1} µs");
    println!(
        "  router's part         p50 {:>7.1} µs  p99 {:>7.1} µs",
        r50 - s50,
        r99 - s99
    );
    support::record("loopback_direct_p50", s50, "µs");
    support::record("loopback_direct_p99", s99, "µs");
    support::record("loopback_routed_p50", r50, "µs");
    support::record("loopback_routed_p99", r99, "µs");

    let n = support::iterations(2_000, 300);
    let (mut healthy, mut inline, mut action) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let fresh = |configs: &[&ProviderConfig]| lb.router(configs, RetryPolicy::default());
        healthy.push(lb.time(&fresh(&[&lb.healthy]), INLINE));
        inline.push(lb.time(&fresh(&[&lb.dead, &lb.healthy]), INLINE));
        action.push(lb.time(&fresh(&[&lb.dead, &lb.healthy]), ACTION));
    }
    let (h50, h99, _) = percentiles(&mut healthy);
    support::record("first_request_healthy_p50", h50, "µs");
    support::record("first_request_healthy_p99", h99, "µs");
    println!("\nfirst request of a fresh router, {n} requests each:");
    println!("  healthy primary                       p50 {h50:>7.1} µs  p99 {h99:>7.1} µs");
    for (name, samples) in [("inline", &mut inline), ("action", &mut action)] {
        let (f50, f99, fmax) = percentiles(samples);
        println!(
            "  dead primary, fails over ({name})     p50 {f50:>7.1} µs  p99 {f99:>7.1} µs  max {fmax:>8.1} µs"
        );
        println!(
            "    added by the failover               p50 {:>7.1} µs  p99 {:>7.1} µs",
            f50 - h50,
            f99 - h99
        );
        support::record(&format!("failover_{name}_p50"), f50, "µs");
        support::record(&format!("failover_{name}_p99"), f99, "µs");
    }
}

/// The limiter's own cost per slot (a bucket that never makes anyone wait): the median over
/// batches of 10,000 `try_acquire`.
fn report_limiter() {
    let rt = runtime();
    let bucket = rt.block_on(async { TokenBucket::new(Rate::per_minute(u32::MAX)) });
    let batches = support::iterations(200, 50);
    let mut times = Vec::with_capacity(batches);
    rt.block_on(async {
        for _ in 0..batches {
            let start = Instant::now();
            for _ in 0..10_000 {
                black_box(bucket.try_acquire());
            }
            times.push(start.elapsed() / 10_000);
        }
    });
    times.sort();
    let median = support::percentile(&times, 0.5);
    support::record("limiter_try_acquire", median.as_secs_f64() * 1e9, "ns");
    println!("limiter try_acquire: median {median:?} per slot");
}

fn main() {
    let lb = loopback();
    if support::with_criterion() {
        let mut criterion = Criterion::default().configure_from_args();
        bench_router(&mut criterion);
        bench_loopback(&mut criterion, &lb);
        criterion.final_summary();
    }
    report_limiter();
    report_percentiles();
    report_loopback_percentiles(&lb);
}
