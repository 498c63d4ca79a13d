//! The router against the real providers and the loopback provider simulator: every simulated
//! fault with one to three providers of mixed vendors, through `Router::generate` and
//! `Router::stream`, and the scenarios of issue 6 item 7 (Retry-After honoured, quota fails over
//! at once, bounded AllFailed, probe and recovery, cancellation while waiting, one bucket under
//! 200 concurrent requests, model and key fallbacks).
//!
//! Real sockets on 127.0.0.1 only. tokio's paused clock does not mix with real sockets (its
//! auto-advance fires HTTP timeouts spuriously), so time is shrunk through the router's own
//! scales instead: backoff of 20/40/80 ms, a rate window of one second, probes every 100 ms.
//! Every test is bounded by a timeout; the only real wait over one second is the Retry-After 2 s
//! case.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::http::HttpClient;
use storyteller_lsp::providers::{
    self, CompletionRequest, ErrorKind, Message, ProviderConfig, ProviderError, ProviderKind,
    StreamEvent, StreamResponse,
};
use storyteller_lsp::routing::{
    Attempt, AttemptOutcome, Budget, Health, KeyUsed, ProviderRef, RetryPolicy, RouteEntry,
    RouteError, Routed, Router, RouterEvent, RouterOptions, RouterState,
};
use storyteller_lsp::simulator::{Fault, Outcome as WireOutcome, RecordedRequest, SimulatorHandle};
use tokio::sync::broadcast;

const FOLDER: &str = "b1gsimfolder";

/// Generous enough that only the faults end a request: retries fit many times over.
const ACTION: Budget = Budget::Action(Duration::from_secs(20));

/// The vendors in the order the scenarios rotate them: the primary is any of them, its backups
/// are the next ones (OpenAI primary → Claude backup → Gemini third, and so on).
const RING: [ProviderKind; 7] = [
    ProviderKind::OpenAi,
    ProviderKind::Claude,
    ProviderKind::Gemini,
    ProviderKind::Yandex,
    ProviderKind::DeepSeek,
    ProviderKind::Scaleway,
    ProviderKind::Custom,
];

/// `n` vendors starting at `primary` in ring order.
fn vendors_from(primary: ProviderKind, n: usize) -> Vec<ProviderKind> {
    let start = RING.iter().position(|k| *k == primary).unwrap_or(0);
    (0..n).map(|i| RING[(start + i) % RING.len()]).collect()
}

fn user_key(kind: ProviderKind) -> String {
    format!("sk-user-{}-k001", kind.as_str())
}

fn config(sim: &SimulatorHandle, kind: ProviderKind, key: &str) -> ProviderConfig {
    let mut config = ProviderConfig::with_defaults(kind, Some(ApiKey::new(key)));
    config.endpoint = sim.endpoint(kind);
    if kind == ProviderKind::Custom {
        config.model = "llama3.2".into();
    }
    if kind == ProviderKind::Yandex {
        config.options.folder_id = Some(FOLDER.into());
    }
    config
}

/// Provider `id` (1 is the primary) of vendor `kind`, served by the simulator.
fn entry(sim: &SimulatorHandle, id: i64, kind: ProviderKind) -> RouteEntry {
    RouteEntry {
        provider: ProviderRef {
            id,
            kind,
            display_name: format!("{} #{id}", kind.display_name()),
        },
        is_primary: id == 1,
        position: u32::try_from(id).unwrap_or(u32::MAX),
        is_active: true,
        eu_resident: false,
        config: config(sim, kind, &user_key(kind)),
        system_key: None,
    }
}

/// Router options on a real-socket time scale: backoff 20/40/80 ms, a one-second rate window,
/// and probes far enough away that none runs during a scenario (a probe would take an armed
/// fault meant for a request).
fn options() -> RouterOptions {
    RouterOptions {
        health_interval: Duration::from_secs(600),
        offline_probe_interval: Duration::from_secs(600),
        probe_timeout: Duration::from_secs(2),
        rate_window: Duration::from_secs(1),
        retry: RetryPolicy {
            base_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        jitter_seed: Some(7),
        ..RouterOptions::default()
    }
}

/// One simulator, the real providers built on one shared HTTP client, and a router over them.
struct Loopback {
    sim: SimulatorHandle,
    router: Router,
    /// The vendor of provider `id` is `vendors[id - 1]`; each vendor appears once, so the
    /// simulator's per-vendor record is the provider's.
    vendors: Vec<ProviderKind>,
    events: broadcast::Receiver<RouterEvent>,
}

impl Loopback {
    async fn start(vendors: &[ProviderKind], options: RouterOptions) -> Self {
        Self::start_with(vendors, options, |_, _| {}).await
    }

    async fn start_with(
        vendors: &[ProviderKind],
        options: RouterOptions,
        adjust: impl FnOnce(&SimulatorHandle, &mut Vec<RouteEntry>),
    ) -> Self {
        let sim = SimulatorHandle::start().await.expect("simulator starts");
        let http = HttpClient::new().expect("HTTP client");
        let router = Router::new(
            Arc::new(move |config: &ProviderConfig| Ok(providers::build(config, &http))),
            options,
        );
        let events = router.subscribe();
        let mut entries: Vec<RouteEntry> = vendors
            .iter()
            .zip(1..)
            .map(|(kind, id)| entry(&sim, id, *kind))
            .collect();
        adjust(&sim, &mut entries);
        router.set_providers(entries);
        Loopback {
            sim,
            router,
            vendors: vendors.to_vec(),
            events,
        }
    }

    fn vendor(&self, id: i64) -> ProviderKind {
        self.vendors[usize::try_from(id - 1).unwrap_or(0)]
    }

    /// Generation requests (model listings excluded) that provider `id` received.
    fn generations(&self, id: i64) -> Vec<RecordedRequest> {
        self.sim
            .requests(Some(self.vendor(id)))
            .into_iter()
            .filter(|r| !is_listing(r))
            .collect()
    }

    fn count(&self, id: i64) -> usize {
        self.generations(id).len()
    }

    /// Generation requests per provider, in id order.
    fn counts(&self) -> Vec<usize> {
        (1..=self.vendors.len() as i64)
            .map(|id| self.count(id))
            .collect()
    }

    /// Model listings (health probes) that provider `id` received.
    fn probes(&self, id: i64) -> usize {
        self.sim
            .requests(Some(self.vendor(id)))
            .iter()
            .filter(|r| is_listing(r))
            .count()
    }

    /// State-change events since the last call. "Trying backup provider..." (`TryingBackup`,
    /// sent before each failover) is left out: this matrix checks where routing ends up, and
    /// `routing_failover.rs` / `routing_residency.rs` check when that event is sent.
    fn events(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if !matches!(event, RouterEvent::TryingBackup { .. }) {
                out.push(describe(&event));
            }
        }
        out
    }

    /// Waits for the next event, at most `within`.
    async fn next_event(&mut self, within: Duration) -> Option<RouterEvent> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// An endpoint where nothing listens, for as long as this value lives. The port stays bound but
/// never listens, so connections to it are refused and no simulator started meanwhile by a
/// concurrent scenario can be handed the same port (as a released port could be).
struct DeadEndpoint {
    _socket: tokio::net::TcpSocket,
    url: String,
}

impl DeadEndpoint {
    fn reserve() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("a free port");
        let addr = socket.local_addr().expect("its address");
        DeadEndpoint {
            _socket: socket,
            url: format!("http://{addr}/v1"),
        }
    }
}

fn is_listing(record: &RecordedRequest) -> bool {
    record.method == "GET" && record.path.ends_with("/models")
}

/// An event in a form that compares in one line: its name and the provider ids it names.
fn describe(event: &RouterEvent) -> String {
    match event {
        RouterEvent::RateLimitWait { provider, .. } => format!("RateLimitWait({})", provider.id),
        RouterEvent::FailedOver { from, to } => format!("FailedOver({}→{})", from.id, to.id),
        RouterEvent::Recovered { provider } => format!("Recovered({})", provider.id),
        RouterEvent::AllFailed => "AllFailed".into(),
        RouterEvent::Offline => "Offline".into(),
        RouterEvent::Online => "Online".into(),
        RouterEvent::KeyInvalid { provider } => format!("KeyInvalid({})", provider.id),
        RouterEvent::KeyRevoked { provider } => format!("KeyRevoked({})", provider.id),
        RouterEvent::QuotaExhausted { provider } => format!("QuotaExhausted({})", provider.id),
        RouterEvent::ModelFallback { provider, .. } => format!("ModelFallback({})", provider.id),
        RouterEvent::TryingBackup { provider } => format!("TryingBackup({})", provider.id),
        RouterEvent::InsecureHttpAllowed { provider, .. } => {
            format!("InsecureHttpAllowed({})", provider.id)
        }
        RouterEvent::InsecureHttpRefused { provider, .. } => {
            format!("InsecureHttpRefused({})", provider.id)
        }
    }
}

fn request(label: &str) -> CompletionRequest {
    let mut request = CompletionRequest::new(vec![Message::user(format!(
        "{label}: the rain had not stopped for three days when Ilse found the second letter."
    ))]);
    request.system = Some("Continue the story in the author's voice.".into());
    request.max_tokens = 80;
    request.timeout = Duration::from_secs(5);
    request
}

/// How a stream handed out by the router ended.
#[derive(Debug, Clone, PartialEq)]
enum StreamEnd {
    Done,
    Failed(ErrorKind),
    /// Ended with neither `Done` nor an error: a broken provider contract.
    Unterminated,
}

async fn drain(response: StreamResponse) -> (String, StreamEnd) {
    let mut events = response.events;
    let mut text = String::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(StreamEvent::Delta(delta)) => text.push_str(&delta),
            Ok(StreamEvent::Done { .. }) => return (text, StreamEnd::Done),
            Err(e) => return (text, StreamEnd::Failed(e.kind())),
        }
    }
    (text, StreamEnd::Unterminated)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Generate,
    Stream,
}

/// What one routed request came to, for either call.
#[derive(Debug)]
struct Observed {
    outcome: Outcome,
    /// The router's record (absent for `Offline`, `Cancelled` and local refusals).
    attempts: Option<Vec<Attempt>>,
    failed_over: bool,
    /// Streams only: the text handed out and how the stream ended.
    stream: Option<(String, StreamEnd)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Served(i64),
    AllFailed,
    Offline,
    Fatal,
    Cancelled,
    RateLimited,
    Other(String),
}

impl Observed {
    fn served<T>(routed: &Routed<T>, stream: Option<(String, StreamEnd)>) -> Self {
        Observed {
            outcome: Outcome::Served(routed.provider.id),
            attempts: Some(routed.attempts.clone()),
            failed_over: routed.failed_over,
            stream,
        }
    }

    fn failed(error: RouteError) -> Self {
        let (outcome, attempts) = match error {
            RouteError::AllFailed { attempts } => (Outcome::AllFailed, Some(attempts)),
            RouteError::Offline => (Outcome::Offline, None),
            RouteError::Fatal { .. } => (Outcome::Fatal, None),
            RouteError::Cancelled => (Outcome::Cancelled, None),
            RouteError::RateLimited { .. } => (Outcome::RateLimited, None),
            other => (Outcome::Other(other.to_string()), None),
        };
        Observed {
            outcome,
            attempts,
            failed_over: false,
            stream: None,
        }
    }

    /// Attempts that reached provider `id` (sent, whatever came back).
    fn sent_to(&self, id: i64) -> Option<usize> {
        self.attempts.as_ref().map(|attempts| {
            attempts
                .iter()
                .filter(|a| a.provider.id == id)
                .filter(|a| !matches!(a.outcome, AttemptOutcome::LimitedLocally { .. }))
                .count()
        })
    }
}

async fn route(router: &Router, via: Via, request: &CompletionRequest, budget: Budget) -> Observed {
    match via {
        Via::Generate => match router.generate(request, budget).await {
            Ok(routed) => Observed::served(&routed, None),
            Err(e) => Observed::failed(e),
        },
        Via::Stream => match router.stream(request, budget).await {
            Ok(routed) => {
                let observed = Observed::served(&routed, None);
                let end = drain(routed.value).await;
                Observed {
                    stream: Some(end),
                    ..observed
                }
            }
            Err(e) => Observed::failed(e),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The failover matrix: fault × vendor × number of providers × call.
// ---------------------------------------------------------------------------------------------

/// How the primary is broken.
#[derive(Debug, Clone)]
enum Breakage {
    /// The simulator injects this fault into the primary's requests (`None`: every request).
    Inject(Fault, Option<u32>),
    /// Nobody listens at the primary's endpoint.
    Unreachable,
}

/// How the router must treat the fault, as DESIGN.md §5 and PROVIDERS.md say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// The primary answers the first request.
    Answers,
    /// The stream starts and text reaches the caller, then it ends with this error: no failover
    /// once text was handed out.
    BreaksMidStream(ErrorKind),
    /// Not retried: fails over at once.
    FailsOver(ErrorKind),
    /// Refused as a bad request: no other provider is asked (it would get the same request).
    Refused,
    /// Retried with backoff: 3 retries alone, 1 when a backup exists; then fails over.
    Outage(ErrorKind),
    /// Nothing listens: retried alone (the machine may be offline, a local server starting),
    /// failed over at once when a backup exists.
    ConnectionRefused,
    /// Retried after the vendor's hint (or the backoff) 3 times, backup or not (a rate limit is
    /// not an outage); then fails over.
    RateLimited,
    /// One 429 with a hint, then the primary answers after waiting for it.
    RetriedOnce,
    /// The provider's default model is tried once; then it fails over.
    ModelFallbackThenFailsOver,
}

/// The request limits a fault needs: short ones for the faults that stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limits {
    Normal,
    Short,
}

struct Row {
    name: &'static str,
    breakage: Breakage,
    limits: Limits,
    handling: fn(ProviderKind, Via) -> Handling,
    /// The primary's configured model, when not the vendor's default.
    model: Option<&'static str>,
}

impl Row {
    fn with_model(self, model: &'static str) -> Row {
        Row {
            model: Some(model),
            ..self
        }
    }
}

fn row(
    name: &'static str,
    breakage: Breakage,
    limits: Limits,
    handling: fn(ProviderKind, Via) -> Handling,
) -> Row {
    Row {
        name,
        breakage,
        limits,
        handling,
        model: None,
    }
}

fn always(fault: Fault) -> Breakage {
    Breakage::Inject(fault, None)
}

/// Faults that the provider turns into an error before any text: same for both calls.
fn rows_status() -> Vec<Row> {
    use Handling::*;
    use Limits::Normal;
    vec![
        row(
            "401 invalid key",
            always(Fault::InvalidKey),
            Normal,
            |_, _| FailsOver(ErrorKind::InvalidKey),
        ),
        row("revoked key", always(Fault::KeyRevoked), Normal, |_, _| {
            FailsOver(ErrorKind::InvalidKey)
        }),
        row("403 forbidden", always(Fault::Forbidden), Normal, |_, _| {
            FailsOver(ErrorKind::InvalidKey)
        }),
        // The configured model is the vendor's default: nothing to fall back to.
        row(
            "404 model not found (default model)",
            always(Fault::ModelNotFound),
            Normal,
            |_, _| FailsOver(ErrorKind::ModelNotFound),
        ),
        // Another model is configured; the default one is tried once and is missing too.
        row(
            "404 model not found (own model)",
            always(Fault::ModelNotFound),
            Normal,
            |kind, _| match kind {
                // A custom endpoint has no default model to fall back to.
                ProviderKind::Custom => FailsOver(ErrorKind::ModelNotFound),
                _ => ModelFallbackThenFailsOver,
            },
        )
        .with_model("story-model-2025"),
        row(
            "429 quota (vendor shape)",
            always(Fault::Quota),
            Normal,
            |kind, _| match kind {
                // Scaleway and Yandex have no quota error apart from their rate limit.
                ProviderKind::Scaleway | ProviderKind::Yandex => RateLimited,
                _ => FailsOver(ErrorKind::QuotaExhausted),
            },
        ),
        row(
            "402 payment required",
            always(Fault::PaymentRequired),
            Normal,
            |_, _| FailsOver(ErrorKind::QuotaExhausted),
        ),
    ]
}

fn rows_rate_limits() -> Vec<Row> {
    use Handling::*;
    use Limits::Normal;
    vec![
        row(
            "429 Retry-After 1 s, once",
            Breakage::Inject(
                Fault::RateLimit {
                    retry_after_secs: 1,
                },
                Some(1),
            ),
            Normal,
            |_, _| RetriedOnce,
        ),
        row(
            "429 Retry-After HTTP-date, once",
            Breakage::Inject(
                Fault::RateLimitHttpDate {
                    retry_after_secs: 1,
                },
                Some(1),
            ),
            Normal,
            |_, _| RetriedOnce,
        ),
        row(
            "429 retry-after-ms 30, always",
            always(Fault::RateLimitMs { retry_after_ms: 30 }),
            Normal,
            |_, _| RateLimited,
        ),
    ]
}

fn rows_outages() -> Vec<Row> {
    use Handling::*;
    use Limits::Normal;
    let unavailable = |_, _| Outage(ErrorKind::Unavailable);
    vec![
        row(
            "408 request timeout",
            always(Fault::RequestTimeout),
            Normal,
            |_, _| Outage(ErrorKind::Timeout),
        ),
        row(
            "500 server error",
            always(Fault::ServerError),
            Normal,
            unavailable,
        ),
        row(
            "502 bad gateway",
            always(Fault::BadGateway),
            Normal,
            unavailable,
        ),
        row(
            "503 unavailable",
            always(Fault::Unavailable),
            Normal,
            unavailable,
        ),
        row(
            "504 gateway timeout",
            always(Fault::GatewayTimeout),
            Normal,
            |_, _| Outage(ErrorKind::Timeout),
        ),
        row(
            "529 overloaded",
            always(Fault::Overloaded),
            Normal,
            unavailable,
        ),
        row(
            "connection closed without a response",
            always(Fault::ConnectionRefused),
            Normal,
            |_, _| Outage(ErrorKind::Network),
        ),
        row("nobody listening", Breakage::Unreachable, Normal, |_, _| {
            ConnectionRefused
        }),
    ]
}

/// Faults in the body: a plain body cannot be used, a stream has already handed out text.
fn rows_bodies() -> Vec<Row> {
    use Handling::*;
    use Limits::{Normal, Short};
    vec![
        row(
            "reset mid-stream",
            always(Fault::ResetMidStream),
            Normal,
            |_, via| match via {
                Via::Generate => Outage(ErrorKind::Network),
                Via::Stream => BreaksMidStream(ErrorKind::Network),
            },
        ),
        row(
            "malformed JSON",
            always(Fault::MalformedJson),
            Normal,
            |_, via| match via {
                Via::Generate => FailsOver(ErrorKind::Protocol),
                Via::Stream => BreaksMidStream(ErrorKind::Protocol),
            },
        ),
        row(
            "truncated body",
            always(Fault::TruncatedStream),
            Normal,
            |_, via| match via {
                Via::Generate => FailsOver(ErrorKind::Protocol),
                Via::Stream => BreaksMidStream(ErrorKind::Protocol),
            },
        ),
        row(
            "vendor error mid-stream",
            always(Fault::ErrorMidStream),
            Normal,
            |_, via| match via {
                Via::Generate => FailsOver(ErrorKind::Protocol),
                Via::Stream => BreaksMidStream(ErrorKind::Unavailable),
            },
        ),
        row(
            "content filter",
            always(Fault::ContentFilter),
            Normal,
            |kind, _| match kind {
                // Gemini blocks the prompt itself (`promptFeedback.blockReason`): a refusal.
                ProviderKind::Gemini => Refused,
                // The others answer with a filtered finish: an answer, not a failure.
                _ => Answers,
            },
        ),
        row(
            "slow first byte within the limit",
            always(Fault::SlowFirstByte { delay_ms: 60 }),
            Normal,
            |_, _| Answers,
        ),
        row(
            "slow first byte beyond the limit",
            always(Fault::SlowFirstByte { delay_ms: 2_000 }),
            Short,
            |_, _| Outage(ErrorKind::Timeout),
        ),
        row(
            "stall mid-stream",
            always(Fault::StallMidStream { stall_ms: 2_000 }),
            Short,
            |_, via| match via {
                Via::Generate => Outage(ErrorKind::Timeout),
                Via::Stream => BreaksMidStream(ErrorKind::Timeout),
            },
        ),
    ]
}

/// What one request of a scenario must come to.
#[derive(Debug, PartialEq)]
struct Expected {
    outcome: Outcome,
    /// Requests the primary receives for this request.
    primary: usize,
    events: Vec<String>,
}

/// The expectation for the first request (`second == false`) and for the same request again.
/// With 3 providers the second one is down (503) too, so the third answers.
fn expected(handling: Handling, providers: usize, second: bool) -> Expected {
    use Handling::*;
    let backup = (providers > 1).then_some(providers as i64);
    let tell = |kind: ErrorKind| match kind {
        ErrorKind::InvalidKey => vec!["KeyInvalid(1)".to_string()],
        ErrorKind::QuotaExhausted => vec!["QuotaExhausted(1)".to_string()],
        _ => Vec::new(),
    };
    // The primary fails: `first` requests for the first request (`first_backed` with a backup),
    // `again` for the second one when it is alone; `told` events come before the last one.
    let fails = |first: usize, first_backed: usize, again: usize, told: Vec<String>, offline| {
        let (outcome, last) = match backup {
            Some(b) => (Outcome::Served(b), format!("FailedOver(1→{b})")),
            None if offline => (Outcome::Offline, "Offline".to_string()),
            None => (Outcome::AllFailed, "AllFailed".to_string()),
        };
        // A sticky failover sends the second request straight to the backup; alone, the same
        // failure again is no new state and tells nothing.
        let primary = match (second, backup) {
            (true, Some(_)) => 0,
            (true, None) => again,
            (false, Some(_)) => first_backed,
            (false, None) => first,
        };
        let events = if second {
            Vec::new()
        } else {
            told.into_iter().chain([last]).collect()
        };
        Expected {
            outcome,
            primary,
            events,
        }
    };
    let served = |primary: usize, events: Vec<String>| Expected {
        outcome: Outcome::Served(1),
        primary,
        events: if second { Vec::new() } else { events },
    };
    match handling {
        Answers | BreaksMidStream(_) => served(1, Vec::new()),
        Refused => Expected {
            outcome: Outcome::Fatal,
            primary: 1,
            events: Vec::new(),
        },
        RetriedOnce => served(if second { 1 } else { 2 }, vec!["RateLimitWait(1)".into()]),
        FailsOver(kind) => fails(1, 1, 1, tell(kind), false),
        Outage(kind) => fails(4, 2, 4, Vec::new(), kind == ErrorKind::Network),
        ConnectionRefused => fails(4, 1, 4, Vec::new(), true),
        RateLimited => fails(4, 4, 4, vec!["RateLimitWait(1)".into()], false),
        // The fallback is tried once per session: the second request uses the default model.
        ModelFallbackThenFailsOver => fails(2, 2, 1, vec!["ModelFallback(1)".into()], false),
    }
}

fn limits(request: &mut CompletionRequest, limits: Limits, via: Via) {
    if limits == Limits::Short {
        // The stalling faults last 2 s; a good answer on loopback takes milliseconds.
        request.first_byte_timeout = Duration::from_millis(400);
        request.idle_timeout = Duration::from_millis(400);
        if via == Via::Generate {
            request.timeout = Duration::from_millis(400);
        }
    }
}

/// Runs one cell of the matrix; returns what differed from the expectation.
async fn run_cell(row: &Row, primary: ProviderKind, providers: usize, via: Via) -> Vec<String> {
    let vendors = vendors_from(primary, providers);
    let unreachable = matches!(row.breakage, Breakage::Unreachable);
    let dead = DeadEndpoint::reserve();
    let mut lb = Loopback::start_with(&vendors, options(), |_, entries| {
        if let Some(model) = row.model {
            entries[0].config.model = model.into();
        }
        if unreachable {
            entries[0].config.endpoint = dead.url.clone();
        }
    })
    .await;
    if let Breakage::Inject(fault, times) = &row.breakage {
        lb.sim.inject(vendors[0], fault.clone(), *times);
    }
    if providers == 3 {
        lb.sim.inject(vendors[1], Fault::Unavailable, None);
    }
    let handling = (row.handling)(primary, via);
    let cell = format!(
        "[{} | {primary} primary, {providers} provider(s), {via:?}]",
        row.name
    );
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("{cell} {what}"));
        }
    };

    let mut before = vec![0; providers];
    for second in [false, true] {
        let mut req = request(row.name);
        limits(&mut req, row.limits, via);
        let observed = route(&lb.router, via, &req, ACTION).await;
        let want = expected(handling, providers, second);
        let which = if second {
            "second request"
        } else {
            "first request"
        };
        let counts = lb.counts();
        let new: Vec<usize> = counts.iter().zip(&before).map(|(c, b)| c - b).collect();
        before = counts;
        let events = lb.events();

        check(
            observed.outcome == want.outcome,
            format!(
                "{which}: outcome {:?}, expected {:?}",
                observed.outcome, want.outcome
            ),
        );
        // The primary's requests: counted at the simulator, or in the router's record when
        // nothing listens there.
        let primary_sent = if unreachable {
            observed.sent_to(1).unwrap_or(want.primary)
        } else {
            new[0]
        };
        check(
            primary_sent == want.primary,
            format!(
                "{which}: the primary got {primary_sent} request(s), expected {}",
                want.primary
            ),
        );
        check(
            events == want.events,
            format!("{which}: events {events:?}, expected {:?}", want.events),
        );
        if let Outcome::Served(id) = observed.outcome {
            check(
                observed.failed_over == (id != 1),
                format!("{which}: failed_over is {}", observed.failed_over),
            );
        }
        // The router's record and the wire agree: one attempt per request sent.
        if let Some(attempts) = &observed.attempts {
            for id in 1..=providers as i64 {
                if id == 1 && unreachable {
                    continue;
                }
                let recorded = observed.sent_to(id).unwrap_or_default();
                check(
                    recorded == new[(id - 1) as usize],
                    format!(
                        "{which}: provider {id} has {recorded} attempt(s) on record, the simulator saw {}",
                        new[(id - 1) as usize]
                    ),
                );
            }
            // A vendor's hint is honoured: the retry after it waited at least that long.
            for pair in attempts.windows(2) {
                let hint = pair[0].error().and_then(ProviderError::retry_after);
                if let Some(hint) = hint
                    && pair[1].provider.id == pair[0].provider.id
                {
                    check(
                        pair[1].waited >= hint,
                        format!(
                            "{which}: retried after {:?}, the vendor asked {hint:?}",
                            pair[1].waited
                        ),
                    );
                }
            }
        }
        match (&observed.stream, handling) {
            (Some((text, end)), Handling::BreaksMidStream(kind)) => {
                check(
                    !text.is_empty(),
                    format!("{which}: no text before the break"),
                );
                check(
                    *end == StreamEnd::Failed(kind),
                    format!("{which}: the stream ended {end:?}, expected a {kind} error"),
                );
            }
            (Some((_, end)), _) => check(
                *end == StreamEnd::Done,
                format!("{which}: the served stream ended {end:?}"),
            ),
            (None, _) => {}
        }
    }
    problems
}

/// Every cell of `rows` × vendor × 1–3 providers × both calls, concurrently (each cell has its
/// own simulator and router), so the real waits overlap. Reports every differing cell at once.
async fn run_matrix(rows: Vec<Row>) {
    let rows = Arc::new(rows);
    let mut cells = Vec::new();
    for r in 0..rows.len() {
        for primary in RING {
            for providers in 1..=3 {
                for via in [Via::Generate, Via::Stream] {
                    cells.push((r, primary, providers, via));
                }
            }
        }
    }
    let total = cells.len();
    let problems: Vec<String> = futures::stream::iter(cells)
        .map(|(r, primary, providers, via)| {
            let rows = Arc::clone(&rows);
            async move {
                let row = &rows[r];
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    run_cell(row, primary, providers, via),
                )
                .await
                {
                    Ok(problems) => problems,
                    Err(_) => vec![format!(
                        "[{} | {primary} primary, {providers} provider(s), {via:?}] did not finish within 30 s",
                        row.name
                    )],
                }
            }
        })
        .buffer_unordered(64)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    assert!(
        problems.is_empty(),
        "{} problem(s) in {total} cells:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_quota_and_model_errors_fail_over_as_designed_for_every_vendor() {
    run_matrix(rows_status()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_retried_after_the_vendor_hint_for_every_vendor() {
    run_matrix(rows_rate_limits()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_retry_then_fail_over_for_every_vendor() {
    run_matrix(rows_outages()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_slow_bodies_are_handled_for_every_vendor() {
    run_matrix(rows_bodies()).await;
}

// ---------------------------------------------------------------------------------------------
// The scenarios of issue 6 item 7, one by one.
// ---------------------------------------------------------------------------------------------

/// Runs `scenario` or fails the test when it outlasts `limit`.
async fn bounded<T>(limit: Duration, scenario: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, scenario)
        .await
        .unwrap_or_else(|_| panic!("the scenario did not finish within {limit:?}"))
}

/// Polls `condition` every 10 ms until it holds, at most `limit`.
async fn until(limit: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_two_seconds_is_waited_out_before_the_retry() {
    bounded(Duration::from_secs(15), async {
        let mut lb =
            Loopback::start(&[ProviderKind::OpenAi, ProviderKind::Claude], options()).await;
        lb.sim.inject(
            ProviderKind::OpenAi,
            Fault::RateLimit {
                retry_after_secs: 2,
            },
            Some(1),
        );
        let started = std::time::Instant::now();
        let routed = lb
            .router
            .generate(&request("retry after"), ACTION)
            .await
            .expect("the primary answers after the wait");
        let elapsed = started.elapsed();

        assert_eq!(
            routed.provider.id, 1,
            "a rate limit is no reason to fail over"
        );
        assert!(!routed.failed_over);
        assert_eq!(lb.counts(), vec![2, 0]);
        assert!(
            elapsed >= Duration::from_secs(2),
            "answered after {elapsed:?}"
        );
        let hint = routed.attempts[0]
            .error()
            .and_then(ProviderError::retry_after);
        assert_eq!(hint, Some(Duration::from_secs(2)));
        assert!(routed.attempts[1].waited >= Duration::from_secs(2));
        let events: Vec<RouterEvent> = std::iter::from_fn(|| lb.events.try_recv().ok()).collect();
        assert!(
            matches!(
                events.as_slice(),
                [RouterEvent::RateLimitWait { provider, wait }]
                    if provider.id == 1 && *wait == Duration::from_secs(2)
            ),
            "{events:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_request_fails_over_instead_of_waiting_out_a_long_retry_after() {
    bounded(Duration::from_secs(10), async {
        let mut lb =
            Loopback::start(&[ProviderKind::OpenAi, ProviderKind::Claude], options()).await;
        lb.sim.inject(
            ProviderKind::OpenAi,
            Fault::RateLimit {
                retry_after_secs: 2,
            },
            Some(1),
        );
        let inline = Budget::Interactive(Duration::from_secs(5));
        let routed = lb
            .router
            .generate(&request("ghost text"), inline)
            .await
            .expect("the backup answers");
        assert_eq!(routed.provider.id, 2);
        assert_eq!(lb.counts(), vec![1, 1]);
        assert_eq!(routed.attempts[1].waited, Duration::ZERO);
        assert_eq!(lb.events(), vec!["FailedOver(1→2)"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_quota_fails_over_at_once_with_exactly_one_request() {
    use ProviderKind::*;
    // Each vendor's quota shape (PROVIDERS.md): OpenAI 429 insufficient_quota, Claude 400 credit
    // balance, Gemini 429 PerDay, DeepSeek 402; and a plain 402 elsewhere.
    let table = [
        (OpenAi, Fault::Quota),
        (Claude, Fault::Quota),
        (Gemini, Fault::Quota),
        (DeepSeek, Fault::Quota),
        (Claude, Fault::PaymentRequired),
        (Scaleway, Fault::PaymentRequired),
        (Yandex, Fault::PaymentRequired),
    ];
    bounded(Duration::from_secs(20), async {
        for (primary, fault) in table {
            let case = format!("{primary} {fault:?}");
            let vendors = vendors_from(primary, 2);
            let mut lb = Loopback::start(&vendors, options()).await;
            lb.sim.inject(primary, fault, None);
            let routed = lb
                .router
                .generate(&request("quota"), ACTION)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(routed.provider.id, 2, "{case}");
            let record: Vec<_> = routed
                .attempts
                .iter()
                .map(|a| (a.provider.id, a.error().map(ProviderError::kind), a.waited))
                .collect();
            assert_eq!(
                record,
                vec![
                    (1, Some(ErrorKind::QuotaExhausted), Duration::ZERO),
                    (2, None, Duration::ZERO),
                ],
                "{case}: no retry, no backoff before the failover"
            );
            assert_eq!(
                lb.events(),
                vec!["QuotaExhausted(1)", "FailedOver(1→2)"],
                "{case}"
            );
            // Nothing retries behind the author's back, and the session stays on the backup.
            tokio::time::sleep(Duration::from_millis(100)).await;
            lb.router
                .generate(&request("again"), ACTION)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(lb.counts(), vec![1, 2], "{case}");
            assert!(lb.events().is_empty(), "{case}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_primary_fails_over_without_a_retry_for_every_budget() {
    let inline = Budget::Interactive(Duration::from_secs(5));
    bounded(Duration::from_secs(10), async {
        for budget in [ACTION, inline] {
            let dead = DeadEndpoint::reserve();
            let mut lb = Loopback::start_with(
                &[ProviderKind::Custom, ProviderKind::OpenAi],
                options(),
                |_, entries| {
                    // A local model server that is not running.
                    entries[0].config.endpoint = dead.url.clone();
                },
            )
            .await;
            let routed = lb
                .router
                .generate(&request("dead"), budget)
                .await
                .expect("the backup answers");
            let record: Vec<_> = routed
                .attempts
                .iter()
                .map(|a| (a.provider.id, a.error().map(ProviderError::kind), a.waited))
                .collect();
            assert_eq!(
                record,
                vec![
                    (1, Some(ErrorKind::Network), Duration::ZERO),
                    (2, None, Duration::ZERO)
                ],
                "{budget:?}"
            );
            assert!(matches!(
                routed.attempts[0].error(),
                Some(ProviderError::Network(d)) if d.connection_refused
            ));
            assert_eq!(lb.events(), vec!["FailedOver(1→2)"], "{budget:?}");
            assert_eq!(lb.router.status().providers[0].health, Health::Down);
        }

        // Nothing listens anywhere: the last provider gets its retries, then the router says
        // offline.
        let dead = [DeadEndpoint::reserve(), DeadEndpoint::reserve()];
        let mut lb = Loopback::start_with(
            &[ProviderKind::Custom, ProviderKind::OpenAi],
            options(),
            |_, entries| {
                for (entry, dead) in entries.iter_mut().zip(&dead) {
                    entry.config.endpoint = dead.url.clone();
                }
            },
        )
        .await;
        let result = lb.router.generate(&request("offline"), ACTION).await;
        assert!(matches!(result, Err(RouteError::Offline)), "{result:?}");
        assert_eq!(lb.events(), vec!["Offline"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_provider_fails_all_failed_comes_after_the_bounded_retries() {
    bounded(Duration::from_secs(10), async {
        let vendors = vendors_from(ProviderKind::OpenAi, 3);
        let mut lb = Loopback::start(&vendors, options()).await;
        for kind in &vendors {
            lb.sim.inject(*kind, Fault::Unavailable, None);
        }
        let attempts = match lb.router.generate(&request("all down"), ACTION).await {
            Err(RouteError::AllFailed { attempts }) => attempts,
            other => panic!("expected AllFailed, got {other:?}"),
        };
        // One retry each while a backup is left; the full three on the last provider.
        assert_eq!(lb.counts(), vec![2, 2, 4]);
        assert_eq!(attempts.len(), 8);
        // The waits are the policy's backoffs and nothing more: 20 + 20 + 20 + 40 + 80 ms at most.
        let waited: Duration = attempts.iter().map(|a| a.waited).sum();
        assert!(waited <= Duration::from_millis(180), "waited {waited:?}");
        assert_eq!(lb.events(), vec!["AllFailed"]);

        // The same failure again is no new state: nothing more is told.
        let again = lb.router.generate(&request("still down"), ACTION).await;
        assert!(matches!(again, Err(RouteError::AllFailed { .. })));
        assert!(lb.events().is_empty());
        assert_eq!(lb.router.status().state, RouterState::Degraded);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_providers_end_in_all_failed_within_the_request_budget() {
    bounded(Duration::from_secs(10), async {
        let vendors = vendors_from(ProviderKind::OpenAi, 3);
        let mut lb = Loopback::start(&vendors, options()).await;
        for kind in &vendors {
            lb.sim
                .inject(*kind, Fault::SlowFirstByte { delay_ms: 10_000 }, None);
        }
        let mut req = request("nobody answers");
        req.timeout = Duration::from_millis(300);
        // Two tries of 300 ms on each of the first two, and time left for the third.
        let budget = Budget::Action(Duration::from_millis(2_000));
        let result = tokio::time::timeout(
            budget.total() + Duration::from_secs(1),
            lb.router.generate(&req, budget),
        )
        .await
        .expect("the budget ends the request");
        assert!(
            matches!(&result, Err(RouteError::AllFailed { .. })),
            "{result:?}"
        );
        assert!(lb.counts().iter().all(|&n| n >= 1), "{:?}", lb.counts());
        assert_eq!(lb.events(), vec!["AllFailed"]);
        // Every request the router gave up on was dropped, not left running.
        until(Duration::from_secs(2), "every request disconnected", || {
            lb.sim
                .requests(None)
                .iter()
                .all(|r| r.outcome == WireOutcome::Disconnected)
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_primary_is_found_by_the_probe_and_routing_returns_to_it() {
    // Each vendor's own cheap probe (its model listing) brings it back.
    bounded(
        Duration::from_secs(20),
        futures::future::join_all(RING.map(recovery_through_probes)),
    )
    .await;
}

async fn recovery_through_probes(primary: ProviderKind) {
    let mut opts = options();
    opts.health_interval = Duration::from_millis(100);
    let mut lb = Loopback::start(&vendors_from(primary, 2), opts).await;
    lb.sim.inject(primary, Fault::Unavailable, None);

    let routed = lb.router.generate(&request("one"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2, "{primary}");
    assert_eq!(lb.events(), vec!["FailedOver(1→2)"], "{primary}");
    let primary_requests = lb.count(1);

    // While the primary is still down its probes fail and the backup keeps serving.
    until(Duration::from_secs(3), "two failed probes", || {
        lb.probes(1) >= 2
    })
    .await;
    let routed = lb.router.generate(&request("two"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 2, "{primary}");
    assert_eq!(
        lb.count(1),
        primary_requests,
        "{primary}: sticky, no request to the primary"
    );
    let status = lb.router.status();
    assert_eq!(status.state, RouterState::Degraded, "{primary}");
    assert!(status.failover, "{primary}");
    assert_eq!(status.active.map(|p| p.id), Some(2), "{primary}");
    assert_eq!(status.providers[0].health, Health::Down, "{primary}");
    assert!(lb.events().is_empty(), "{primary}");

    // The primary comes back: the next probe finds it and routing returns.
    lb.sim.clear(primary);
    let event = lb.next_event(Duration::from_secs(3)).await;
    assert_eq!(
        event.as_ref().map(describe).as_deref(),
        Some("Recovered(1)"),
        "{primary}"
    );
    let routed = lb.router.generate(&request("three"), ACTION).await.unwrap();
    assert_eq!(routed.provider.id, 1, "{primary}");
    assert!(!routed.failed_over, "{primary}");
    assert_eq!(lb.count(1), primary_requests + 1, "{primary}");
    let status = lb.router.status();
    assert_eq!(status.state, RouterState::Ready, "{primary}");
    assert!(!status.failover, "{primary}");
    assert!(lb.events().is_empty(), "{primary}: told once");

    // Nothing is failed over any more: the probes stop.
    let probes = lb.probes(1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(lb.probes(1), probes, "{primary}: probes after the recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_ends_by_itself_when_a_probe_gets_through() {
    bounded(Duration::from_secs(10), async {
        let mut opts = options();
        opts.offline_probe_interval = Duration::from_millis(100);
        let vendors = vendors_from(ProviderKind::Claude, 2);
        let mut lb = Loopback::start(&vendors, opts).await;
        for kind in &vendors {
            lb.sim.inject(*kind, Fault::ConnectionRefused, None);
        }
        let result = lb.router.generate(&request("offline"), ACTION).await;
        assert!(matches!(result, Err(RouteError::Offline)), "{result:?}");
        assert_eq!(lb.events(), vec!["Offline"]);

        // Back online with no request from the author: the probe notices.
        until(
            Duration::from_secs(3),
            "a failed probe while offline",
            || lb.probes(1) >= 1,
        )
        .await;
        lb.sim.clear_all();
        let event = lb.next_event(Duration::from_secs(3)).await;
        assert_eq!(event.as_ref().map(describe).as_deref(), Some("Online"));
        assert_eq!(lb.router.status().state, RouterState::Ready);
        let routed = lb
            .router
            .generate(&request("online"), ACTION)
            .await
            .unwrap();
        assert_eq!(routed.provider.id, 1);
        assert!(lb.events().is_empty(), "told once");

        let probes = lb.probes(1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(lb.probes(1), probes, "probes after coming online");
    })
    .await;
}

/// Where a request is when the author cancels it.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    /// Waiting for a slot of the local rate limit.
    ForTheLimiter,
    /// Sleeping out a vendor's `Retry-After`.
    ForRetryAfter,
    /// Sleeping out the backoff after a 429 without a hint.
    InRateLimitBackoff,
    /// Sleeping out the backoff after a 503.
    InOutageBackoff,
    /// Inside the HTTP call, before the first byte.
    ForTheFirstByte,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_waiting_request_returns_at_once_and_sends_nothing_more() {
    use ProviderKind::*;
    let table = [
        Waiting::ForTheLimiter,
        Waiting::ForRetryAfter,
        Waiting::InRateLimitBackoff,
        Waiting::InOutageBackoff,
        Waiting::ForTheFirstByte,
    ];
    bounded(Duration::from_secs(20), async {
        for waiting in table {
            let mut opts = options();
            // Waits of many seconds, so that only the cancellation can end them in time.
            opts.retry.base_delay = Duration::from_secs(10);
            if let Waiting::ForTheLimiter = waiting {
                opts.rate_window = Duration::from_secs(10);
                opts.rate_limits = BTreeMap::from([(Yandex, 1)]);
            }
            // Yandex: its quota answer is a 429 without a hint, so only the backoff applies.
            let mut lb = Loopback::start(&[Yandex, OpenAi], opts).await;
            match waiting {
                Waiting::ForTheLimiter => {
                    // The only token goes to a first request; the next slot is 10 s away.
                    lb.router.generate(&request("first"), ACTION).await.unwrap();
                    lb.events();
                }
                Waiting::ForRetryAfter => lb.sim.inject(
                    Yandex,
                    Fault::RateLimit {
                        retry_after_secs: 10,
                    },
                    None,
                ),
                Waiting::InRateLimitBackoff => lb.sim.inject(Yandex, Fault::Quota, None),
                Waiting::InOutageBackoff => lb.sim.inject(Yandex, Fault::Unavailable, None),
                Waiting::ForTheFirstByte => {
                    lb.sim
                        .inject(Yandex, Fault::SlowFirstByte { delay_ms: 10_000 }, None)
                }
            }
            let before = lb.counts();
            let req = request("cancelled");
            let cancel = req.cancel.clone();
            let router = lb.router.clone();
            let task = tokio::spawn(async move { router.generate(&req, ACTION).await });

            // Wait until the request is where this case wants it.
            match waiting {
                Waiting::ForTheLimiter | Waiting::ForRetryAfter | Waiting::InRateLimitBackoff => {
                    // Told right before the wait starts.
                    let event = lb.next_event(Duration::from_secs(3)).await;
                    assert_eq!(
                        event.as_ref().map(describe).as_deref(),
                        Some("RateLimitWait(1)"),
                        "{waiting:?}"
                    );
                }
                Waiting::InOutageBackoff => {
                    lb.sim
                        .wait_for_request(Yandex, Duration::from_secs(3), |r| {
                            r.outcome == WireOutcome::Completed
                        })
                        .await
                        .expect("the first answer");
                    // The answer is a few bytes: give the router a moment to enter the sleep.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Waiting::ForTheFirstByte => {
                    lb.sim
                        .wait_for_request(Yandex, Duration::from_secs(3), |_| true)
                        .await
                        .expect("the request arrives");
                }
            }
            cancel.cancel();
            let result = tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .unwrap_or_else(|_| panic!("{waiting:?}: the cancelled request kept waiting"))
                .expect("the task ends");
            assert!(
                matches!(result, Err(RouteError::Cancelled)),
                "{waiting:?}: {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent: Vec<usize> = lb
                .counts()
                .iter()
                .zip(&before)
                .map(|(a, b)| a - b)
                .collect();
            let expected = match waiting {
                Waiting::ForTheLimiter => vec![0, 0],
                _ => vec![1, 0],
            };
            assert_eq!(
                sent, expected,
                "{waiting:?}: requests after the cancellation"
            );
            if let Waiting::ForTheFirstByte = waiting {
                let outcome = lb.generations(1).last().map(|r| r.outcome);
                assert_eq!(
                    outcome,
                    Some(WireOutcome::Disconnected),
                    "the call was dropped"
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_never_exceed_the_bucket() {
    bounded(Duration::from_secs(20), async {
        // OpenAI's bucket of 50 per window, the window shrunk to a second: a slot every 20 ms.
        let per_window = 50u32;
        let interval = Duration::from_millis(20);
        let t0 = std::time::Instant::now();
        let lb = Loopback::start(&[ProviderKind::OpenAi], options()).await;
        assert_eq!(
            lb.router.status().providers[0].rate_limit.per_minute,
            per_window
        );
        // Inline requests: each waits at most a second for a slot, else is refused unsent.
        let budget = Budget::Interactive(Duration::from_secs(5));

        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let router = lb.router.clone();
                tokio::spawn(
                    async move { router.generate(&request(&format!("r{i}")), budget).await },
                )
            })
            .collect();
        let all = futures::future::join_all(tasks);
        tokio::pin!(all);
        // Sample the simulator's count while the requests run. The count is read before the
        // time, so a request counted arrived before the time it is checked against.
        let sample = || {
            let count = lb.count(1);
            (t0.elapsed(), count)
        };
        let mut samples = Vec::new();
        let results = loop {
            tokio::select! {
                results = &mut all => break results,
                _ = tokio::time::sleep(Duration::from_millis(5)) => samples.push(sample()),
            }
        };
        samples.push(sample());

        let mut served = 0;
        let mut refused = 0;
        for result in results {
            match result.expect("the task ends") {
                Ok(_) => served += 1,
                Err(RouteError::RateLimited { .. }) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(served + refused, 200);
        assert_eq!(lb.count(1), served, "a refused request is never sent");
        assert!(served >= 45, "the bucket's burst was used: {served} served");
        // The bucket started full at t0 and refills a slot per interval: by any time t the
        // simulator cannot have seen more than the full bucket plus the refills since t0.
        for (at, count) in samples {
            let bound = per_window as usize + (at.as_nanos() / interval.as_nanos()) as usize;
            assert!(
                count <= bound,
                "{count} requests by {at:?}, the bucket allows {bound}"
            );
        }
    })
    .await;
}

/// How the providers are broken while twenty requests run at once.
#[derive(Debug, Clone, Copy)]
enum Together {
    PrimaryDown,
    PrimaryQuota,
    PrimaryKeyInvalid,
    PrimaryModelMissing,
    PrimaryRateLimitedOnce,
    EverythingRefused,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_tell_each_state_change_once() {
    use ProviderKind::*;
    let table = [
        (
            Together::PrimaryDown,
            Outcome::Served(2),
            vec!["FailedOver(1→2)"],
        ),
        (
            Together::PrimaryQuota,
            Outcome::Served(2),
            vec!["QuotaExhausted(1)", "FailedOver(1→2)"],
        ),
        (
            Together::PrimaryKeyInvalid,
            Outcome::Served(2),
            vec!["KeyInvalid(1)", "FailedOver(1→2)"],
        ),
        (
            Together::PrimaryModelMissing,
            Outcome::Served(1),
            vec!["ModelFallback(1)"],
        ),
        (
            Together::PrimaryRateLimitedOnce,
            Outcome::Served(1),
            vec!["RateLimitWait(1)"],
        ),
        (
            Together::EverythingRefused,
            Outcome::Offline,
            vec!["Offline"],
        ),
    ];
    bounded(Duration::from_secs(20), async {
        for (case, outcome, events) in table {
            let mut lb = Loopback::start_with(&[OpenAi, Claude], options(), |_, entries| {
                if let Together::PrimaryModelMissing = case {
                    entries[0].config.model = "gpt-missing".into();
                }
            })
            .await;
            match case {
                Together::PrimaryDown => lb.sim.inject(OpenAi, Fault::Unavailable, None),
                Together::PrimaryQuota => lb.sim.inject(OpenAi, Fault::Quota, None),
                Together::PrimaryKeyInvalid => lb.sim.inject(OpenAi, Fault::InvalidKey, None),
                Together::PrimaryModelMissing => {}
                Together::PrimaryRateLimitedOnce => lb.sim.inject(
                    OpenAi,
                    Fault::RateLimit {
                        retry_after_secs: 1,
                    },
                    Some(20),
                ),
                Together::EverythingRefused => {
                    lb.sim.inject(OpenAi, Fault::ConnectionRefused, None);
                    lb.sim.inject(Claude, Fault::ConnectionRefused, None);
                }
            }
            let observed = futures::future::join_all((0..20).map(|i| {
                let router = lb.router.clone();
                async move {
                    let via = if i % 2 == 0 {
                        Via::Generate
                    } else {
                        Via::Stream
                    };
                    route(&router, via, &request(&format!("r{i}")), ACTION).await
                }
            }))
            .await;
            for o in &observed {
                assert_eq!(o.outcome, outcome, "{case:?}");
            }
            assert_eq!(lb.events(), events, "{case:?}");
        }
    })
    .await;
}

/// The model the simulator was asked for, wherever the vendor puts it.
fn model_of(record: &RecordedRequest) -> String {
    ["model", "modelUri"]
        .iter()
        .find_map(|field| record.body.get(field).and_then(|v| v.as_str()))
        .map(str::to_string)
        // Gemini names the model in the path.
        .unwrap_or_else(|| record.path.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_falls_back_to_the_default_model_once() {
    use ProviderKind::*;
    let table = [
        (OpenAi, "gpt-4-missing"),
        (Claude, "claude-missing-3"),
        (Gemini, "gemini-missing-pro"),
        // Retired in 2026-07 (PROVIDERS.md): a stored provider naming it still works.
        (DeepSeek, "deepseek-chat"),
        (Yandex, "yandexgpt-missing/latest"),
        (Scaleway, "llama-3.1-8b-missing"),
    ];
    bounded(Duration::from_secs(20), async {
        for (kind, missing) in table {
            let vendors = vendors_from(kind, 2);
            let mut lb = Loopback::start_with(&vendors, options(), |_, entries| {
                entries[0].config.model = missing.into();
            })
            .await;
            let routed = lb
                .router
                .generate(&request("model"), ACTION)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(routed.provider.id, 1, "{kind}: no failover");
            let models: Vec<String> = lb.generations(1).iter().map(model_of).collect();
            assert_eq!(models.len(), 2, "{kind}: {models:?}");
            assert!(models[0].contains(missing), "{kind}: {models:?}");
            assert!(
                models[1].contains(kind.default_model()),
                "{kind}: {models:?}"
            );
            let events: Vec<RouterEvent> =
                std::iter::from_fn(|| lb.events.try_recv().ok()).collect();
            assert!(
                matches!(
                    events.as_slice(),
                    [RouterEvent::ModelFallback { provider, missing: m, default_model }]
                        if provider.id == 1 && m == missing && default_model == kind.default_model()
                ),
                "{kind}: {events:?}"
            );

            // The rest of the session asks for the default model directly.
            lb.router.generate(&request("again"), ACTION).await.unwrap();
            let last = lb.generations(1).last().map(model_of).unwrap_or_default();
            assert_eq!(lb.counts(), vec![3, 0], "{kind}");
            assert!(last.contains(kind.default_model()), "{kind}: {last}");
            assert_eq!(lb.router.status().providers[0].model, kind.default_model());
            assert!(lb.events().is_empty(), "{kind}: told once");
        }
    })
    .await;
}

/// The credential a recorded request carried (masked by the simulator: `••••` + last 4).
fn credential(record: &RecordedRequest) -> String {
    ["authorization", "x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|h| record.header(h))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_user_key_falls_back_to_the_system_key_for_every_vendor() {
    bounded(Duration::from_secs(20), async {
        for kind in RING {
            let vendors = vendors_from(kind, 2);
            let mut lb = Loopback::start_with(&vendors, options(), |sim, entries| {
                // The simulator rejects keys containing "invalid".
                entries[0].config = config(sim, kind, &format!("sk-invalid-{kind}-u111"));
                entries[0].system_key = Some(ApiKey::new(format!("sk-system-{kind}-s222")));
            })
            .await;
            let routed = lb
                .router
                .generate(&request("keys"), ACTION)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(
                routed.provider.id, 1,
                "{kind}: the system key serves, no failover"
            );
            let keys: Vec<KeyUsed> = routed.attempts.iter().map(|a| a.key).collect();
            assert_eq!(keys, vec![KeyUsed::User, KeyUsed::System], "{kind}");
            let sent: Vec<String> = lb.generations(1).iter().map(credential).collect();
            assert_eq!(sent.len(), 2, "{kind}: {sent:?}");
            assert!(sent[0].ends_with("••••u111"), "{kind}: {sent:?}");
            assert!(sent[1].ends_with("••••s222"), "{kind}: {sent:?}");
            assert_eq!(lb.events(), vec!["KeyInvalid(1)"], "{kind}");

            // The rest of the session uses the system key directly.
            lb.router.generate(&request("again"), ACTION).await.unwrap();
            let last = lb.generations(1).last().map(credential).unwrap_or_default();
            assert!(last.ends_with("••••s222"), "{kind}: {last}");
            assert_eq!(lb.counts(), vec![3, 0], "{kind}");
            assert_eq!(lb.router.status().providers[0].key, KeyUsed::System);
            assert!(lb.events().is_empty(), "{kind}: told once");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_system_key_fails_over_after_one_try() {
    bounded(Duration::from_secs(10), async {
        let mut lb = Loopback::start_with(
            &[ProviderKind::OpenAi, ProviderKind::Claude],
            options(),
            |sim, entries| {
                entries[0].config = config(sim, ProviderKind::OpenAi, "sk-invalid-user-u111");
                entries[0].system_key = Some(ApiKey::new("sk-invalid-system-s222"));
            },
        )
        .await;
        let routed = lb.router.generate(&request("keys"), ACTION).await.unwrap();
        assert_eq!(routed.provider.id, 2);
        let keys: Vec<(i64, KeyUsed)> = routed
            .attempts
            .iter()
            .map(|a| (a.provider.id, a.key))
            .collect();
        assert_eq!(
            keys,
            vec![(1, KeyUsed::User), (1, KeyUsed::System), (2, KeyUsed::User)]
        );
        assert_eq!(lb.counts(), vec![2, 1]);
        assert_eq!(lb.events(), vec!["KeyInvalid(1)", "FailedOver(1→2)"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_mid_session_is_told_as_revoked_and_fails_over() {
    bounded(Duration::from_secs(20), async {
        for kind in RING {
            let vendors = vendors_from(kind, 2);
            let mut lb = Loopback::start(&vendors, options()).await;
            let routed = lb.router.generate(&request("works"), ACTION).await.unwrap();
            assert_eq!(routed.provider.id, 1, "{kind}");

            lb.sim.inject(kind, Fault::KeyRevoked, None);
            let routed = lb
                .router
                .generate(&request("revoked"), ACTION)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(routed.provider.id, 2, "{kind}");
            assert_eq!(
                lb.counts(),
                vec![2, 1],
                "{kind}: the revoked key is not retried"
            );
            assert_eq!(
                lb.events(),
                vec!["KeyRevoked(1)", "FailedOver(1→2)"],
                "{kind}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_is_told_once_and_online_when_a_request_gets_through() {
    bounded(Duration::from_secs(10), async {
        let vendors = vendors_from(ProviderKind::Gemini, 2);
        let mut lb = Loopback::start(&vendors, options()).await;
        for kind in &vendors {
            lb.sim.inject(*kind, Fault::ConnectionRefused, None);
        }
        for _ in 0..2 {
            let result = lb.router.stream(&request("offline"), ACTION).await;
            assert!(matches!(result, Err(RouteError::Offline)), "{result:?}");
        }
        assert_eq!(
            lb.events(),
            vec!["Offline"],
            "one event for the state, not per request"
        );
        assert_eq!(lb.router.status().state, RouterState::Offline);

        lb.sim.clear_all();
        let routed = lb.router.stream(&request("online"), ACTION).await.unwrap();
        assert_eq!(routed.provider.id, 1);
        let (text, end) = drain(routed.value).await;
        assert!(!text.is_empty());
        assert_eq!(end, StreamEnd::Done);
        assert_eq!(lb.events(), vec!["Online"]);
        assert_eq!(lb.router.status().state, RouterState::Ready);
    })
    .await;
}
