//! A loopback HTTP server that speaks every provider's wire format and injects faults, for tests,
//! end-to-end tests in other processes, and `storyteller-lsp demo`.
//!
//! It owns: serving the eight providers under their own path prefixes, deterministic story prose
//! ([`prose`]), per-provider fault injection and latency, and a record of every request. It must
//! never listen beyond the loopback address it is given, never keep a key unmasked (recorded
//! headers hold only `••••` + the last 4 characters), and never call out to the network.
//!
//! # Endpoints
//! [`SimulatorHandle::endpoint`] gives the base URL for a [`ProviderKind`]:
//! `/openai/v1`, `/deepseek`, `/scaleway/v1`, `/openrouter/api/v1`, `/custom/v1`, `/claude/v1`,
//! `/gemini/v1beta`, `/yandex/foundationModels/v1` (and the Yandex listing at `/yandex/v1/models`).
//! OpenRouter's sign-in stand-in ([`oauth`]): the authorization page at `/openrouter/auth` and
//! the code exchange at `/openrouter/api/v1/auth/keys`.
//!
//! Keys: any non-empty key works, unless it contains `invalid` (→ that vendor's invalid-key
//! error) or `revoked` (→ its revoked-key error). Custom needs no key. Models whose name contains
//! `missing`, and DeepSeek's retired `deepseek-chat` / `deepseek-reasoner`, get the vendor's
//! model-not-found error.
//!
//! # Control API (JSON over HTTP, for other processes)
//! - `POST /_sim/faults` `{"provider":"openai","fault":"rate_limit","retryAfterSecs":2,"times":1}`
//!   arms a fault for the next `times` requests to that provider (omit `times` for "until
//!   cleared"). Faults, with their optional fields:
//!   `invalid_key`, `key_revoked`, `forbidden`, `model_not_found`, `request_timeout` (408),
//!   `rate_limit` {`retryAfterSecs`} (429 + `Retry-After: N`; Gemini: `RetryInfo` in the body),
//!   `rate_limit_http_date` {`retryAfterSecs`} (429 + `Retry-After: <HTTP-date>`),
//!   `rate_limit_ms` {`retryAfterMs`} (429 + `retry-after-ms`), `quota` (each vendor's quota
//!   shape: OpenAI 429 `insufficient_quota`, DeepSeek 402, Claude 400 credit balance, Gemini 429
//!   `PerDay`), `payment_required` (402), `server_error` (500), `bad_gateway` (502),
//!   `unavailable` (503), `gateway_timeout` (504), `overloaded` (529), `connection_refused` (the
//!   socket closes without a response), `reset_mid_stream`, `malformed_json`,
//!   `truncated_stream` (the body ends early but cleanly), `error_mid_stream` (the vendor's error
//!   event after some text), `content_filter`, `slow_first_byte` {`delayMs`},
//!   `stall_mid_stream` {`stallMs`}, `no_model_listing` (listing requests get 404),
//!   `echo_prompt` (a 400 whose message quotes the end of the request's last message — the
//!   manuscript before the cursor — as some vendors' content filters do: what a leak test needs
//!   to prove the text never reaches a log).
//! - `POST /_sim/chaos` `{"provider":"openai","seed":7,"probability":0.3,"faults":[{"fault":"server_error"},…]}`:
//!   each request to that provider that no armed fault takes gets one of `faults` with
//!   `probability`, drawn from a generator seeded with `seed` (the same sequence of draws on
//!   every run; which request gets which draw follows their arrival order).
//! - `DELETE /_sim/faults` (all, chaos included) or `DELETE /_sim/faults?provider=openai`.
//! - `POST /_sim/latency` `{"provider":"openai","ms":200}`: a delay before every response.
//! - `GET /_sim/requests?provider=openai` → `[{"id","provider","method","path","query",
//!   "headers":{…masked…},"body":…,"status","fault","outcome":"pending|completed|disconnected"}]`;
//!   `DELETE /_sim/requests` forgets them.
//! - `GET /_sim/health` → `{"ok":true,"endpoints":{"openai":"http://127.0.0.1:PORT/openai/v1",…}}`.
//! - `POST /_sim/replies` `{"provider":"openai","texts":["Here is the continuation: …","…"]}`
//!   queues scripted replies: the next generation requests to that provider answer with these
//!   texts verbatim, one each, in order (streamed or not, in that vendor's wire format, finish
//!   reason "stop"); then the prose generator answers again. Armed faults still come first.
//!   `DELETE /_sim/replies` (all) or `DELETE /_sim/replies?provider=openai` drops what is queued.
//!   For tests of what the server does with real chat models' habits (preambles, sign-offs).

pub mod oauth;
pub mod prose;
mod server;
mod vendors;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::providers::ProviderKind;

/// A failure the simulator can be told to produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "fault",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    InvalidKey,
    KeyRevoked,
    Forbidden,
    ModelNotFound,
    RequestTimeout,
    RateLimit {
        #[serde(default = "one")]
        retry_after_secs: u64,
    },
    RateLimitHttpDate {
        #[serde(default = "one")]
        retry_after_secs: u64,
    },
    RateLimitMs {
        #[serde(default = "one")]
        retry_after_ms: u64,
    },
    Quota,
    PaymentRequired,
    ServerError,
    BadGateway,
    Unavailable,
    GatewayTimeout,
    Overloaded,
    ConnectionRefused,
    ResetMidStream,
    MalformedJson,
    TruncatedStream,
    ErrorMidStream,
    ContentFilter,
    SlowFirstByte {
        #[serde(default = "one_second_ms")]
        delay_ms: u64,
    },
    StallMidStream {
        #[serde(default = "two_minutes_ms")]
        stall_ms: u64,
    },
    NoModelListing,
    EchoPrompt,
}

fn one() -> u64 {
    1
}
fn one_second_ms() -> u64 {
    1_000
}
fn two_minutes_ms() -> u64 {
    120_000
}

impl Fault {
    /// The snake_case name used on the control API and in records.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("fault").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether the fault acts on a request of this shape (a listing fault leaves chats alone).
    fn applies_to(&self, listing: bool) -> bool {
        match self {
            Fault::NoModelListing => listing,
            Fault::ContentFilter | Fault::ErrorMidStream | Fault::EchoPrompt => !listing,
            _ => true,
        }
    }
}

/// What became of a recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Pending,
    Completed,
    /// The client went away before the response was finished (a cancelled request).
    Disconnected,
}

/// One request as the simulator saw it, with keys masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub id: u64,
    pub provider: ProviderKind,
    pub method: String,
    pub path: String,
    /// The query string, with any `key=` value masked.
    pub query: Option<String>,
    /// Lower-case header names; credential headers masked (`Bearer ••••abcd`).
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`null` when empty, a string when not JSON).
    pub body: Value,
    pub status: Option<u16>,
    pub fault: Option<String>,
    pub outcome: Outcome,
    /// When the request (body included) had been read; for benches that subtract the
    /// simulator's own time from a round trip.
    #[serde(skip)]
    pub received_at: Option<Instant>,
    /// When the last byte of the response was handed to the connection.
    #[serde(skip)]
    pub completed_at: Option<Instant>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Debug)]
struct ArmedFault {
    fault: Fault,
    remaining: Option<u32>,
}

/// Random faults for load tests: each request draws one of `faults` with `probability`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chaos {
    pub seed: u64,
    pub probability: f64,
    pub faults: Vec<Fault>,
}

#[derive(Debug)]
struct ArmedChaos {
    chaos: Chaos,
    rng: StdRng,
}

#[derive(Debug, Default)]
struct Tables {
    faults: HashMap<ProviderKind, Vec<ArmedFault>>,
    chaos: HashMap<ProviderKind, ArmedChaos>,
    latency: HashMap<ProviderKind, Duration>,
    /// Scripted replies, oldest first.
    replies: HashMap<ProviderKind, std::collections::VecDeque<String>>,
    /// Oldest first, ids increasing (so an id is found by binary search).
    records: Vec<RecordedRequest>,
    next_id: u64,
    served: HashMap<ProviderKind, u32>,
}

#[derive(Debug, Default)]
pub(crate) struct SimState {
    tables: Mutex<Tables>,
    /// TCP connections accepted so far (clients that pool connections open few).
    pub(crate) connections: std::sync::atomic::AtomicU64,
    changed: Notify,
    base_url: Mutex<String>,
    /// OpenRouter's sign-in stand-in (`oauth.rs`).
    pub(crate) oauth: oauth::OAuthState,
}

impl SimState {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inject(&self, kind: ProviderKind, fault: Fault, times: Option<u32>) {
        self.lock()
            .faults
            .entry(kind)
            .or_default()
            .push(ArmedFault {
                fault,
                remaining: times,
            });
    }

    fn clear(&self, kind: Option<ProviderKind>) {
        let mut t = self.lock();
        match kind {
            Some(kind) => {
                t.faults.remove(&kind);
                t.chaos.remove(&kind);
                t.latency.remove(&kind);
            }
            None => {
                t.faults.clear();
                t.chaos.clear();
                t.latency.clear();
            }
        }
    }

    fn set_chaos(&self, kind: ProviderKind, chaos: Chaos) {
        let rng = StdRng::seed_from_u64(chaos.seed);
        self.lock().chaos.insert(kind, ArmedChaos { chaos, rng });
    }

    fn script_replies(&self, kind: ProviderKind, texts: Vec<String>) {
        self.lock().replies.entry(kind).or_default().extend(texts);
    }

    fn clear_replies(&self, kind: Option<ProviderKind>) {
        let mut t = self.lock();
        match kind {
            Some(kind) => {
                t.replies.remove(&kind);
            }
            None => t.replies.clear(),
        }
    }

    /// The next scripted reply of `kind`, if one is queued.
    pub(crate) fn take_reply(&self, kind: ProviderKind) -> Option<String> {
        self.lock().replies.get_mut(&kind)?.pop_front()
    }

    fn set_latency(&self, kind: ProviderKind, latency: Duration) {
        self.lock().latency.insert(kind, latency);
    }

    pub(crate) fn latency(&self, kind: ProviderKind) -> Duration {
        self.lock().latency.get(&kind).copied().unwrap_or_default()
    }

    /// Takes the next armed fault that applies, counting it down; else draws from the chaos of
    /// `kind`, if any.
    pub(crate) fn take_fault(&self, kind: ProviderKind, listing: bool) -> Option<Fault> {
        let mut t = self.lock();
        if let Some(list) = t.faults.get_mut(&kind)
            && let Some(index) = list.iter().position(|f| f.fault.applies_to(listing))
        {
            let fault = list[index].fault.clone();
            if let Some(n) = &mut list[index].remaining {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    list.remove(index);
                }
            }
            return Some(fault);
        }
        let armed = t.chaos.get_mut(&kind)?;
        let probability = armed.chaos.probability.clamp(0.0, 1.0);
        if armed.chaos.faults.is_empty() || !armed.rng.random_bool(probability) {
            return None;
        }
        let pick = armed.rng.random_range(0..armed.chaos.faults.len());
        Some(armed.chaos.faults[pick].clone()).filter(|f| f.applies_to(listing))
    }

    /// Counts a served request; returns how many this provider has served (for decreasing
    /// rate-limit headers).
    pub(crate) fn count(&self, kind: ProviderKind) -> u32 {
        let mut t = self.lock();
        let n = t.served.entry(kind).or_default();
        *n += 1;
        *n
    }

    pub(crate) fn record(&self, mut request: RecordedRequest) -> u64 {
        let mut t = self.lock();
        t.next_id += 1;
        request.id = t.next_id;
        let id = request.id;
        t.records.push(request);
        drop(t);
        self.changed.notify_waiters();
        id
    }

    pub(crate) fn update(&self, id: u64, f: impl FnOnce(&mut RecordedRequest)) {
        let mut t = self.lock();
        if let Ok(index) = t.records.binary_search_by_key(&id, |r| r.id) {
            f(&mut t.records[index]);
        }
        drop(t);
        self.changed.notify_waiters();
    }

    fn requests(&self, kind: Option<ProviderKind>) -> Vec<RecordedRequest> {
        self.lock()
            .records
            .iter()
            .filter(|r| kind.is_none_or(|k| r.provider == k))
            .cloned()
            .collect()
    }

    fn clear_requests(&self) {
        self.lock().records.clear();
    }

    pub(crate) fn base_url(&self) -> String {
        self.base_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The path prefix a provider kind is served under.
pub fn path_prefix(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "/openai/v1",
        ProviderKind::DeepSeek => "/deepseek",
        ProviderKind::Scaleway => "/scaleway/v1",
        ProviderKind::OpenRouter => "/openrouter/api/v1",
        ProviderKind::Custom => "/custom/v1",
        ProviderKind::Claude => "/claude/v1",
        ProviderKind::Gemini => "/gemini/v1beta",
        ProviderKind::Yandex => "/yandex/foundationModels/v1",
    }
}

/// A running simulator. Dropping the handle stops it.
#[derive(Debug)]
pub struct SimulatorHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: CancellationToken,
}

impl SimulatorHandle {
    /// Starts a simulator on `127.0.0.1` with an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a simulator on `addr`, which must be a loopback address.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the simulator listens on loopback addresses only",
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::default());
        *state.base_url.lock().unwrap_or_else(|p| p.into_inner()) = format!("http://{addr}");
        let shutdown = CancellationToken::new();
        tokio::spawn(server::serve(listener, state.clone(), shutdown.clone()));
        Ok(SimulatorHandle {
            addr,
            state,
            shutdown,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL to put in `ProviderConfig.endpoint` for `kind`.
    pub fn endpoint(&self, kind: ProviderKind) -> String {
        format!("{}{}", self.base_url(), path_prefix(kind))
    }

    /// Arms `fault` for the next `times` requests to `kind` (`None`: until cleared).
    pub fn inject(&self, kind: ProviderKind, fault: Fault, times: Option<u32>) {
        self.state.inject(kind, fault, times);
    }

    /// Removes the faults and latency of `kind`.
    pub fn clear(&self, kind: ProviderKind) {
        self.state.clear(Some(kind));
    }

    pub fn clear_all(&self) {
        self.state.clear(None);
    }

    pub fn set_latency(&self, kind: ProviderKind, latency: Duration) {
        self.state.set_latency(kind, latency);
    }

    /// Queues `texts` as the verbatim answers of the next generation requests to `kind`, one
    /// each (see the module doc, `POST /_sim/replies`).
    pub fn script_replies(&self, kind: ProviderKind, texts: impl IntoIterator<Item = String>) {
        self.state.script_replies(kind, texts.into_iter().collect());
    }

    /// Drops the scripted replies still queued (all providers when `kind` is `None`).
    pub fn clear_replies(&self, kind: Option<ProviderKind>) {
        self.state.clear_replies(kind);
    }

    /// Random faults for every later request to `kind` (see the module doc); replaces earlier
    /// chaos of `kind`. [`SimulatorHandle::clear`] ends it.
    pub fn set_chaos(&self, kind: ProviderKind, chaos: Chaos) {
        self.state.set_chaos(kind, chaos);
    }

    /// The requests seen so far, oldest first (all providers when `kind` is `None`).
    pub fn requests(&self, kind: Option<ProviderKind>) -> Vec<RecordedRequest> {
        self.state.requests(kind)
    }

    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// How many TCP connections the simulator has accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.state
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until some recorded request of `kind` satisfies `pred`, at most `timeout`.
    pub async fn wait_for_request(
        &self,
        kind: ProviderKind,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> Option<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.state.changed.notified();
            if let Some(r) = self.requests(Some(kind)).into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// Stops serving; open connections are closed.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A base URL on which nothing listens (connection refused), for network-failure tests. The port
/// stays bound (without listening) while the value lives, so no other server — a simulator
/// started at the same moment — can take it.
pub fn unreachable_endpoint() -> std::io::Result<UnreachableEndpoint> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = socket.local_addr()?;
    Ok(UnreachableEndpoint {
        url: format!("http://{addr}/v1"),
        _reserved: socket,
    })
}

/// See [`unreachable_endpoint`]; derefs to the URL.
#[derive(Debug)]
pub struct UnreachableEndpoint {
    url: String,
    _reserved: tokio::net::TcpSocket,
}

impl std::ops::Deref for UnreachableEndpoint {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for UnreachableEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Serves the simulator on `addr` until Ctrl-C or until standard input closes, after printing
/// `storyteller simulator listening on http://ADDR` as the first line on stdout.
pub async fn run_standalone(addr: SocketAddr) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = SimulatorHandle::start_on(addr).await?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("storyteller simulator listening on {}\n", handle.base_url()).as_bytes())
        .await?;
    stdout.flush().await?;
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = stdin_closed => {}
    }
    handle.shutdown();
    Ok(())
}
