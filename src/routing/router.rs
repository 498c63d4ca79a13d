//! The router: which provider answers a request, and what happens when it cannot (DESIGN.md §5).
//!
//! Owns: the routing order (primary first, then active providers by position; the `euOnly`
//! filter; the EU border a failover stops at until the project consents; plain-HTTP rows to
//! other hosts left out), sticky failover for the session, offline detection, the per-request loop of
//! limiter → call → retry policy → failover, the recoveries that rebuild a provider (the default
//! model when the configured one is missing; the system key when the user key is rejected), and
//! the deduplicated [`RouterEvent`]s that tell the LSP layer what changed.
//!
//! Inputs are plain data ([`RouteEntry`]) assembled by the application layer from the store and
//! the credentials; concrete providers come from an injected [`ProviderFactory`].
//!
//! Must never: know LSP, SQLite or the keychain; hold a lock across `.await`; send a request
//! after its cancellation; fail over once a stream has handed out text; log a key or prompt text.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::providers::{
    AiProvider, Completion, CompletionRequest, ConnectionReport, Detail, ErrorKind, ProviderConfig,
    ProviderError, ProviderKind, RateLimitHint, StreamResponse,
};
use crate::secret::ApiKey;

use super::health::{ProbeSubject, ProbeTarget, spawn_probes};
use super::limiter::{AcquireError, Limiter, Rate, TokenBucket};
use super::retry::{Decision, Failure, RetryPolicy};
use super::{Budget, EuConsent, ProviderRef, RouterEvent};
use crate::providers::endpoint::{Transport, host_of};

/// Waits shorter than this are routine pacing, not worth telling the author about.
const NOTICEABLE_WAIT: Duration = Duration::from_secs(2);

/// How many undelivered events a slow subscriber may fall behind by before it misses some.
const EVENT_CAPACITY: usize = 64;

/// One configured provider, as the application layer hands it to the router.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub provider: ProviderRef,
    pub is_primary: bool,
    /// Failover order among non-primary providers (lower first).
    pub position: u32,
    /// `is_active = 0` rows are never routed to.
    pub is_active: bool,
    /// Whether the provider keeps data in the EU (Scaleway; a custom endpoint the user marked).
    pub eu_resident: bool,
    /// Endpoint, model, options and the resolved user key (project key or named session).
    pub config: ProviderConfig,
    /// The key from the environment, tried when the user key is rejected.
    pub system_key: Option<ApiKey>,
}

/// Builds concrete providers; the router rebuilds one with the default model or the system key.
pub trait ProviderFactory: Send + Sync {
    fn build(&self, config: &ProviderConfig) -> Result<Arc<dyn AiProvider>, ProviderError>;
}

impl<F> ProviderFactory for F
where
    F: Fn(&ProviderConfig) -> Result<Arc<dyn AiProvider>, ProviderError> + Send + Sync,
{
    fn build(&self, config: &ProviderConfig) -> Result<Arc<dyn AiProvider>, ProviderError> {
        self(config)
    }
}

/// The router's tunables: the routing settings of DESIGN.md §3 plus the time scales that tests
/// against real sockets shrink (they cannot use tokio's paused clock).
#[derive(Debug, Clone)]
pub struct RouterOptions {
    pub eu_only: bool,
    pub failover_enabled: bool,
    /// Probe period of the primary while failed over (`failover.healthCheckSecs`).
    pub health_interval: Duration,
    /// Probe period while offline: shorter, because offline also disables the code actions that
    /// would otherwise discover the way back.
    pub offline_probe_interval: Duration,
    pub probe_timeout: Duration,
    /// Per-window budgets that override the catalogue's `default_per_minute`.
    pub rate_limits: BTreeMap<ProviderKind, u32>,
    /// The window the budgets count in (a minute).
    pub rate_window: Duration,
    pub retry: RetryPolicy,
    /// Seeds the backoff jitter; `None` seeds from the OS.
    pub jitter_seed: Option<u64>,
}

impl RouterOptions {
    pub fn from_settings(settings: &Settings) -> Self {
        let health_interval = Duration::from_secs(settings.failover.health_check_secs);
        RouterOptions {
            eu_only: settings.eu_only,
            failover_enabled: settings.failover.enabled,
            health_interval,
            offline_probe_interval: health_interval.min(Duration::from_secs(30)),
            probe_timeout: Duration::from_secs(10),
            rate_limits: settings.rate_limits.clone(),
            rate_window: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            jitter_seed: None,
        }
    }

    fn rate_for(&self, kind: ProviderKind) -> Rate {
        let per_window = self
            .rate_limits
            .get(&kind)
            .copied()
            .unwrap_or_else(|| kind.entry().default_per_minute);
        Rate::new(per_window, self.rate_window)
    }
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions::from_settings(&Settings::default())
    }
}

/// Which key a provider was called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsed {
    /// The project's key or a named session's.
    User,
    /// The system key from the environment, after the user key was rejected.
    System,
    /// No key (a custom endpoint that needs none).
    None,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Succeeded,
    Failed(ProviderError),
    /// Not sent: the provider's local bucket had no slot within the request's budget.
    LimitedLocally {
        wait: Duration,
    },
}

/// One try of one provider, for the record returned with every routed result.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub provider: ProviderRef,
    pub model: String,
    pub key: KeyUsed,
    /// Time spent waiting (rate limit, backoff) before this attempt.
    pub waited: Duration,
    pub outcome: AttemptOutcome,
}

impl Attempt {
    pub fn error(&self) -> Option<&ProviderError> {
        match &self.outcome {
            AttemptOutcome::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// A routed answer with the record of how it was obtained.
#[derive(Debug)]
pub struct Routed<T> {
    pub value: T,
    /// The provider that answered.
    pub provider: ProviderRef,
    /// Every attempt of this request, the successful one last.
    pub attempts: Vec<Attempt>,
    /// The answer came from a provider other than the preferred one (the primary, or the first
    /// EU-resident provider under `euOnly`).
    pub failed_over: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("no active AI provider is configured")]
    NotConfigured,
    #[error("euOnly is set but no active provider is EU-resident")]
    NoEuProvider,
    #[error("every active provider failed")]
    AllFailed { attempts: Vec<Attempt> },
    /// Every provider failed with a network error.
    #[error("offline: no provider could be reached")]
    Offline,
    #[error("cancelled")]
    Cancelled,
    /// The request itself was refused (a bad request): another provider would refuse it too.
    /// Carries the provider that refused it, so the message names it without asking again.
    #[error("{} refused the request: {error}", provider.display_name)]
    Fatal {
        provider: ProviderRef,
        error: Box<ProviderError>,
    },
    /// The only providers left use plain HTTP to another host without `allowInsecureHttp`:
    /// nothing was sent (a key would travel in clear).
    #[error(
        "{}",
        crate::messages::residency::insecure_http_refused(provider, host)
    )]
    InsecureHttp { provider: String, host: String },
    /// The EU-resident providers failed and the next one is outside the EU: the project has not
    /// answered whether text may leave the EU, so nothing was sent to it.
    #[error("text would leave the EU: {} needs the author's consent", provider.display_name)]
    ConsentNeeded {
        provider: ProviderRef,
        attempts: Vec<Attempt>,
    },
    /// No provider had a rate-limit slot within the request's budget; nothing was sent.
    #[error("rate limited locally; the next slot is in {} ms", retry_in.as_millis())]
    RateLimited { retry_in: Duration },
}

/// A provider's health as the status reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    Ok,
    /// Rate-limited: waiting for the vendor's window.
    Cooling,
    /// Failed its last request or probe.
    Down,
    /// Not used yet this session.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RouterState {
    Ready,
    Offline,
    /// Serving, but failed over or with a provider down.
    Degraded,
    NotConfigured,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitStatus {
    pub per_minute: u32,
    pub remaining: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    #[serde(flatten)]
    pub provider: ProviderRef,
    /// The model in use (the default one after a model fallback).
    pub model: String,
    pub key: KeyUsed,
    pub is_primary: bool,
    pub is_active: bool,
    pub health: Health,
    pub rate_limit: RateLimitStatus,
    #[serde(serialize_with = "serialize_time")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The snapshot behind `storyteller.status` and the health columns of `providers.list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterStatus {
    pub state: RouterState,
    /// The provider requests go to first.
    pub active: Option<ProviderRef>,
    pub primary: Option<ProviderRef>,
    /// Routing is failed over (sticky) away from the primary.
    pub failover: bool,
    pub providers: Vec<ProviderStatus>,
    /// The project's answer to "Send to … (outside the EU)?", and how the status says it.
    pub eu_consent: EuConsent,
    pub eu_consent_text: String,
}

fn serialize_time<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => serializer.serialize_str(&t.to_rfc3339()),
        None => serializer.serialize_none(),
    }
}

/// Routes requests across the configured providers. Cheap to clone; clones share all state.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

struct Inner {
    factory: Arc<dyn ProviderFactory>,
    events: broadcast::Sender<RouterEvent>,
    limiter: Limiter,
    state: Mutex<State>,
    rng: Mutex<StdRng>,
    /// For starting probe loops from `&self` methods.
    this: Weak<Inner>,
}

struct State {
    options: RouterOptions,
    /// In routing order: primary first, then by position (inactive ones included, for status).
    routes: Vec<Route>,
    /// The provider serving since a failover; `None` while the preferred provider serves.
    sticky: Option<i64>,
    offline: bool,
    /// An `AllFailed` event was sent and nothing has succeeded since.
    all_failed: bool,
    /// Stops the running probe loop, if any.
    probe: Option<CancellationToken>,
    /// Whether text may fail over from an EU-resident provider to one outside the EU.
    consent: EuConsent,
}

#[derive(Clone)]
struct Route {
    entry: RouteEntry,
    /// The config in use: the entry's, possibly with the default model or the system key.
    effective: ProviderConfig,
    provider: Result<Arc<dyn AiProvider>, ProviderError>,
    key: KeyUsed,
    model_fell_back: bool,
    health: Health,
    /// The key in use has answered at least once this session.
    key_worked: bool,
    /// What made it unhealthy, when it is.
    last_error: Option<ErrorKind>,
    last_used_at: Option<DateTime<Utc>>,
    /// Events already sent about this provider, so each is sent once per state change.
    told: Told,
    bucket: Arc<TokenBucket>,
    /// Plain HTTP to another host is refused, or allowed with a warning.
    transport: Transport,
    /// The transport warning (or refusal) was told, once per provider.
    transport_told: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Told {
    key_invalid: bool,
    quota: bool,
    rate_limited: bool,
    /// "Trying backup provider...": once per failover episode (until it answers again).
    trying_backup: bool,
}

impl Route {
    fn usable(&self, eu_only: bool) -> bool {
        self.entry.is_active && !self.transport.is_refused() && (!eu_only || self.entry.eu_resident)
    }
}

/// A provider chosen for one request, copied out of the state so no lock is held while calling.
struct Candidate {
    id: i64,
    provider_ref: ProviderRef,
    provider: Result<Arc<dyn AiProvider>, ProviderError>,
    model: String,
    key: KeyUsed,
    bucket: Arc<TokenBucket>,
    down: bool,
}

struct Plan {
    candidates: Vec<Candidate>,
    /// The preferred provider: the primary, or the first usable one.
    home: i64,
    /// The first provider left out because it is outside the EU and the project has not
    /// answered whether text may go there.
    held_back: Option<ProviderRef>,
}

/// The running record of one request.
struct Run<'r> {
    request: &'r CompletionRequest,
    budget: Budget,
    policy: RetryPolicy,
    started: Instant,
    attempts: Vec<Attempt>,
    /// A provider before the current one failed (so an answer now is a failover).
    failed_before: bool,
}

impl Run<'_> {
    fn remaining(&self) -> Duration {
        self.budget.total().saturating_sub(self.started.elapsed())
    }

    fn record(&mut self, candidate: &Candidate, waited: Duration, outcome: AttemptOutcome) {
        self.attempts.push(Attempt {
            provider: candidate.provider_ref.clone(),
            model: candidate.model.clone(),
            key: candidate.key,
            waited,
            outcome,
        });
    }
}

/// How trying one candidate ended.
enum Tried<T> {
    Answered(T),
    NextProvider,
    Stop(RouteError),
}

/// What a routed call returns besides its value: the vendor's rate-limit view.
trait Answer {
    fn rate_limit(&self) -> Option<&RateLimitHint>;
}

impl Answer for Completion {
    fn rate_limit(&self) -> Option<&RateLimitHint> {
        self.rate_limit.as_ref()
    }
}

impl Answer for StreamResponse {
    fn rate_limit(&self) -> Option<&RateLimitHint> {
        self.rate_limit.as_ref()
    }
}

impl Router {
    pub fn new(factory: Arc<dyn ProviderFactory>, options: RouterOptions) -> Self {
        let rng = match options.jitter_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let inner = Arc::new_cyclic(|this| Inner {
            factory,
            events,
            limiter: Limiter::new(),
            state: Mutex::new(State {
                options,
                routes: Vec::new(),
                sticky: None,
                offline: false,
                all_failed: false,
                probe: None,
                consent: EuConsent::Unanswered,
            }),
            rng: Mutex::new(rng),
            this: this.clone(),
        });
        Router { inner }
    }

    /// Events from now on. Each state change is sent once; a subscriber more than 64 events
    /// behind misses the oldest (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<RouterEvent> {
        self.inner.events.subscribe()
    }

    /// Replaces the configured providers (after add, remove, update, setPrimary). A provider whose
    /// identity, config and keys are unchanged keeps its built client, health, recoveries and
    /// rate-limit state; a new primary, or an edited one (a new key, model or endpoint), clears
    /// the sticky failover, so the next request goes to it.
    pub fn set_providers(&self, mut entries: Vec<RouteEntry>) {
        // Primary first, then by position; the id breaks ties so the order is stable.
        entries.sort_by_key(|e| (!e.is_primary, e.position, e.provider.id));
        let options = self.inner.lock().options.clone();

        // Unchanged entries keep their state; new or edited ones are built outside the lock (a
        // factory may take a while: TLS roots, an HTTP client).
        let kept: Vec<Option<Route>> = {
            let state = self.inner.lock();
            entries
                .iter()
                .map(|entry| {
                    state
                        .routes
                        .iter()
                        .find(|r| same_provider(&r.entry, entry))
                        .cloned()
                })
                .collect()
        };
        let routes: Vec<Route> = entries
            .into_iter()
            .zip(kept)
            .map(|(entry, kept)| {
                let bucket = self
                    .inner
                    .limiter
                    .bucket(entry.provider.id, options.rate_for(entry.provider.kind));
                match kept {
                    Some(route) => Route {
                        entry,
                        bucket,
                        ..route
                    },
                    None => {
                        let effective = entry.config.clone();
                        Route {
                            provider: self.inner.factory.build(&effective),
                            key: key_used(&effective, entry.system_key.as_ref()),
                            effective,
                            model_fell_back: false,
                            health: Health::Unknown,
                            key_worked: false,
                            last_error: None,
                            last_used_at: None,
                            told: Told::default(),
                            bucket,
                            transport: Transport::of_config(&entry.config),
                            transport_told: false,
                            entry,
                        }
                    }
                }
            })
            .collect();
        let ids: Vec<i64> = routes.iter().map(|r| r.entry.provider.id).collect();
        self.inner.limiter.retain(&ids);

        let mut state = self.inner.lock();
        let old_home = home_entry(&state).cloned();
        state.routes = routes;
        let new_home = home_entry(&state).cloned();
        let home_changed = match (&old_home, &new_home) {
            (Some(old), Some(new)) => !same_provider(old, new),
            (None, None) => false,
            _ => true,
        };
        if home_changed || sticky_gone(&state) {
            clear_failover(&mut state);
        }
    }

    /// The author chose the primary (setPrimary, add with `primary`, "Make … primary"), even the
    /// one that already was: the next request goes to it (DESIGN.md §5). The sticky failover
    /// ends, and a primary known to be down is tried again rather than skipped, with its problems
    /// (quota, key) told again if they recur — the author asked for it explicitly.
    pub fn primary_chosen(&self) {
        let mut state = self.inner.lock();
        clear_failover(&mut state);
        let eu_only = eu_only(&state);
        if let Some(home) = state.routes.iter_mut().find(|r| r.usable(eu_only)) {
            if home.health == Health::Down {
                home.health = Health::Unknown;
                home.last_error = None;
            }
            home.told = Told::default();
        }
    }

    /// The project's answer to "Send to … (outside the EU)?" (stored by the caller). "Keep EU
    /// only" routes as `euOnly` does, so a sticky failover outside the EU ends.
    pub fn set_eu_consent(&self, consent: EuConsent) {
        let mut state = self.inner.lock();
        state.consent = consent;
        if sticky_gone(&state) {
            clear_failover(&mut state);
        }
    }

    pub fn eu_consent(&self) -> EuConsent {
        self.inner.lock().consent
    }

    /// Applies changed settings: `euOnly`, `failover`, `rateLimits`.
    pub fn apply_settings(&self, settings: &Settings) {
        let mut state = self.inner.lock();
        let old_home = home_entry(&state).map(|e| e.provider.id);
        let mut options = RouterOptions::from_settings(settings);
        // Time scales and the seed are not settings; keep what the router was built with.
        options.rate_window = state.options.rate_window;
        options.offline_probe_interval = state
            .options
            .offline_probe_interval
            .min(options.health_interval);
        options.probe_timeout = state.options.probe_timeout;
        options.retry = state.options.retry;
        options.jitter_seed = state.options.jitter_seed;
        state.options = options;
        for route in &state.routes {
            route
                .bucket
                .set_rate(state.options.rate_for(route.entry.provider.kind));
        }
        let new_home = home_entry(&state).map(|e| e.provider.id);
        if old_home != new_home || !state.options.failover_enabled || sticky_gone(&state) {
            clear_failover(&mut state);
        }
    }

    /// Generates a completion through the first provider that can answer.
    ///
    /// Callers enter a span naming the action (`tracing::info_span!("assist", action = "…")`):
    /// the router's failure records inherit it, so a log line says what the author was doing.
    pub async fn generate(
        &self,
        request: &CompletionRequest,
        budget: Budget,
    ) -> Result<Routed<Completion>, RouteError> {
        self.inner
            .route(request, budget, |provider| async move {
                provider.generate(request).await
            })
            .await
    }

    /// Starts a streamed completion. Failover happens only until the first event arrives; once
    /// text has been handed out, a failure is an `Err` item of the stream.
    pub async fn stream(
        &self,
        request: &CompletionRequest,
        budget: Budget,
    ) -> Result<Routed<StreamResponse>, RouteError> {
        self.inner
            .route(request, budget, |provider| async move {
                let StreamResponse {
                    model,
                    rate_limit,
                    mut events,
                } = provider.stream(request).await?;
                // The first event decides: an error before any text can still fail over.
                match events.next().await {
                    Some(Ok(first)) => Ok(StreamResponse {
                        model,
                        rate_limit,
                        events: Box::pin(futures::stream::once(async { Ok(first) }).chain(events)),
                    }),
                    Some(Err(e)) => Err(e),
                    None => Err(ProviderError::Protocol {
                        detail: Detail::new("the stream ended before its first event"),
                        partial: None,
                    }),
                }
            })
            .await
    }

    /// Provider `id` just passed a connection test (add, or an update that touched the
    /// connection): a route that has not been used yet shows "ok" instead of "unknown".
    pub fn record_tested(&self, id: i64) {
        let mut state = self.inner.lock();
        if let Some(route) = state.routes.iter_mut().find(|r| r.entry.provider.id == id)
            && route.health == Health::Unknown
        {
            route.health = Health::Ok;
        }
    }

    pub fn status(&self) -> RouterStatus {
        let state = self.inner.lock();
        let eu_only = eu_only(&state);
        let home = home_entry(&state).map(|e| e.provider.clone());
        let primary = state
            .routes
            .iter()
            .find(|r| r.entry.is_primary)
            .map(|r| r.entry.provider.clone());
        let active = match state.sticky {
            Some(id) => find(&state, id).map(|r| r.entry.provider.clone()),
            None => home.clone(),
        };
        let providers: Vec<ProviderStatus> = state
            .routes
            .iter()
            .map(|r| {
                let bucket = r.bucket.snapshot();
                let health = if bucket.held && r.health != Health::Down {
                    Health::Cooling
                } else {
                    r.health
                };
                ProviderStatus {
                    provider: r.entry.provider.clone(),
                    model: r.effective.model.clone(),
                    key: r.key,
                    is_primary: r.entry.is_primary,
                    is_active: r.entry.is_active,
                    health,
                    rate_limit: RateLimitStatus {
                        per_minute: bucket.per_window,
                        remaining: bucket.remaining,
                    },
                    last_used_at: r.last_used_at,
                }
            })
            .collect();
        let usable_down = state
            .routes
            .iter()
            .zip(&providers)
            .any(|(r, p)| r.usable(eu_only) && p.health == Health::Down);
        let router_state = if home.is_none() {
            RouterState::NotConfigured
        } else if state.offline {
            RouterState::Offline
        } else if state.sticky.is_some() || usable_down {
            RouterState::Degraded
        } else {
            RouterState::Ready
        };
        RouterStatus {
            state: router_state,
            active,
            primary,
            failover: state.sticky.is_some(),
            providers,
            eu_consent: state.consent,
            eu_consent_text: state.consent.text().to_string(),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Critical sections only move plain data; a poisoned lock still holds a usable state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, events: Vec<RouterEvent>) {
        for event in events {
            tracing::debug!(?event, "router event");
            // No subscriber is not an error: nobody is listening yet.
            let _ = self.events.send(event);
        }
    }

    fn jitter(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random::<f64>()
    }

    fn plan(&self) -> Result<Plan, RouteError> {
        let mut state = self.lock();
        let eu_only = eu_only(&state);
        let events = tell_transport(&mut state, eu_only);
        let plan = plan_of(&state, eu_only);
        drop(state);
        self.emit(events);
        plan
    }

    /// One request: each candidate in turn until one answers, the request is refused or
    /// cancelled, or the budget runs out.
    async fn route<'r, T, F, Fut>(
        &self,
        request: &'r CompletionRequest,
        budget: Budget,
        call: F,
    ) -> Result<Routed<T>, RouteError>
    where
        T: Answer,
        F: Fn(Arc<dyn AiProvider>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>> + 'r,
    {
        let mut plan = self.plan()?;
        let mut run = Run {
            request,
            budget,
            policy: self.lock().options.retry,
            started: Instant::now(),
            attempts: Vec::new(),
            failed_before: false,
        };
        for index in 0..plan.candidates.len() {
            match self.try_candidate(&mut plan, index, &mut run, &call).await {
                Tried::Answered(value) => {
                    let candidate = &plan.candidates[index];
                    return Ok(Routed {
                        value,
                        provider: candidate.provider_ref.clone(),
                        attempts: run.attempts,
                        failed_over: candidate.id != plan.home,
                    });
                }
                Tried::NextProvider => {
                    if index + 1 < plan.candidates.len() {
                        self.tell_trying_backup(&plan.candidates[index], &run.attempts);
                    }
                }
                Tried::Stop(error) => return Err(error),
            }
        }
        // Offline is offline whatever lies past the border: no question then.
        let offline = !run.attempts.is_empty()
            && run
                .attempts
                .iter()
                .all(|a| a.error().is_some_and(|e| e.kind() == ErrorKind::Network));
        if let Some(provider) = plan.held_back.filter(|_| !offline) {
            tracing::info!(
                provider = %provider.display_name,
                "the EU-resident providers failed; the next one is outside the EU and the project has not allowed it"
            );
            return Err(RouteError::ConsentNeeded {
                provider,
                attempts: run.attempts,
            });
        }
        Err(self.on_all_failed(run.attempts))
    }

    /// Tries one candidate: limiter slot → call → (recover | retry | move on).
    async fn try_candidate<'r, T, F, Fut>(
        &self,
        plan: &mut Plan,
        index: usize,
        run: &mut Run<'r>,
        call: &F,
    ) -> Tried<T>
    where
        T: Answer,
        F: Fn(Arc<dyn AiProvider>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>> + 'r,
    {
        let cancel = &run.request.cancel;
        let mut failures = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            if cancel.is_cancelled() {
                return Tried::Stop(RouteError::Cancelled);
            }
            let remaining = run.remaining();
            if remaining.is_zero() {
                return Tried::NextProvider;
            }
            let candidate = &plan.candidates[index];
            let provider = match &candidate.provider {
                Ok(provider) => Arc::clone(provider),
                Err(error) => {
                    // The factory could not build it (a bad endpoint): nothing to retry.
                    log_failure(candidate, error, 1, Decision::FailOver);
                    run.record(candidate, waited, AttemptOutcome::Failed(error.clone()));
                    self.mark(candidate.id, Health::Down, error.kind());
                    run.failed_before = true;
                    return Tried::NextProvider;
                }
            };

            // The local rate limit; an interactive request takes no long wait.
            let max_wait = if run.budget.is_interactive() {
                remaining.min(run.policy.interactive_max_wait)
            } else {
                remaining
            };
            let slot = match candidate.bucket.reserve(max_wait) {
                Ok(slot) => slot,
                Err(AcquireError::TooLong { wait }) => {
                    tracing::info!(
                        provider = %candidate.provider_ref.display_name,
                        provider_id = candidate.id,
                        wait_ms = wait.as_millis() as u64,
                        "no rate-limit slot within the budget; trying the next provider"
                    );
                    run.record(candidate, waited, AttemptOutcome::LimitedLocally { wait });
                    return Tried::NextProvider;
                }
                Err(AcquireError::Cancelled) => return Tried::Stop(RouteError::Cancelled),
            };
            if slot.delay() >= NOTICEABLE_WAIT {
                self.tell_rate_limited(candidate, slot.delay());
            }
            match slot.wait(cancel).await {
                Ok(delay) => waited += delay,
                Err(_) => return Tried::Stop(RouteError::Cancelled),
            }

            // The call: bounded by the budget (an interactive request leaves a share for the
            // providers after this one) and by `request.timeout` (the provider enforces it too;
            // enforcing it here keeps the budget even when a provider does not), and dropped at
            // once on cancellation.
            let left = plan.candidates.len() - index;
            let mut limit = run.remaining().min(run.request.timeout);
            if run.budget.is_interactive() && left > 1 {
                limit = limit.min(run.remaining() / u32::try_from(left).unwrap_or(u32::MAX));
            }
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(ProviderError::Cancelled),
                outcome = tokio::time::timeout(limit, call(provider)) => {
                    outcome.unwrap_or_else(|_| Err(ProviderError::Timeout(Detail::new(
                        "no answer within the request's time budget",
                    ))))
                }
            };

            let error = match outcome {
                Ok(value) => {
                    if let Some(hint) = value.rate_limit() {
                        candidate.bucket.observe_hint(hint);
                    }
                    run.record(candidate, waited, AttemptOutcome::Succeeded);
                    self.on_success(candidate, plan.home, run.failed_before, waited);
                    return Tried::Answered(value);
                }
                Err(ProviderError::Cancelled) => return Tried::Stop(RouteError::Cancelled),
                Err(error) => error,
            };
            run.record(candidate, waited, AttemptOutcome::Failed(error.clone()));
            waited = Duration::ZERO;
            if let ProviderError::RateLimited { retry_after, .. } = &error {
                candidate.bucket.observe_rate_limited(*retry_after);
            }
            // Recoveries that rebuild the provider and try it again at once (not a retry).
            if let Some(rebuilt) = self.recover(candidate, &error) {
                plan.candidates[index] = rebuilt;
                continue;
            }

            failures += 1;
            let decision = run.policy.decide(Failure {
                error: &error,
                attempt: failures,
                budget: run.budget,
                elapsed: run.started.elapsed(),
                has_backup: plan.candidates[index + 1..].iter().any(|c| !c.down),
                jitter: self.jitter(),
            });
            log_failure(candidate, &error, failures, decision);
            let rate_limited = error.kind() == ErrorKind::RateLimited;
            match decision {
                Decision::RetryAfter(wait) => {
                    if rate_limited {
                        self.mark(candidate.id, Health::Cooling, error.kind());
                        self.tell_rate_limited(candidate, wait);
                    }
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Tried::Stop(RouteError::Cancelled),
                        _ = tokio::time::sleep(wait) => waited = wait,
                    }
                }
                Decision::FailOver => {
                    let health = if rate_limited {
                        Health::Cooling
                    } else {
                        Health::Down
                    };
                    self.mark(candidate.id, health, error.kind());
                    run.failed_before = true;
                    return Tried::NextProvider;
                }
                Decision::GiveUp => {
                    return Tried::Stop(RouteError::Fatal {
                        provider: candidate.provider_ref.clone(),
                        error: Box::new(error),
                    });
                }
            }
        }
    }

    /// Rebuilds a provider after an error a rebuild can fix: the default model for a missing
    /// model (once), the system key for a rejected user key. Returns the new candidate.
    fn recover(&self, candidate: &Candidate, error: &ProviderError) -> Option<Candidate> {
        let mut events = Vec::new();
        let mut state = self.lock();
        let route = state
            .routes
            .iter_mut()
            .find(|r| r.entry.provider.id == candidate.id)?;
        let rebuilt = match error {
            ProviderError::ModelNotFound { .. } => {
                if route.effective.model != candidate.model {
                    // A concurrent request already switched models: use its provider.
                    Some(())
                } else {
                    let default_model = route.entry.provider.kind.default_model();
                    if route.model_fell_back
                        || default_model.is_empty()
                        || default_model == candidate.model
                    {
                        None
                    } else {
                        let mut config = route.effective.clone();
                        config.model = default_model.to_string();
                        tracing::warn!(
                            provider = %route.entry.provider.display_name,
                            provider_id = candidate.id,
                            missing = %candidate.model,
                            default_model,
                            "model not found; falling back to the provider's default model"
                        );
                        events.push(RouterEvent::ModelFallback {
                            provider: route.entry.provider.clone(),
                            missing: candidate.model.clone(),
                            default_model: default_model.to_string(),
                        });
                        route.provider = self.factory.build(&config);
                        route.effective = config;
                        route.model_fell_back = true;
                        Some(())
                    }
                }
            }
            ProviderError::InvalidKey(_) => {
                if !route.told.key_invalid {
                    route.told.key_invalid = true;
                    let provider = route.entry.provider.clone();
                    // A key that answered earlier this session was revoked, not mistyped.
                    events.push(if route.key_worked && route.key == candidate.key {
                        RouterEvent::KeyRevoked { provider }
                    } else {
                        RouterEvent::KeyInvalid { provider }
                    });
                }
                if route.key != candidate.key {
                    Some(())
                } else if let (KeyUsed::User, Some(system)) = (route.key, &route.entry.system_key) {
                    let mut config = route.effective.clone();
                    config.api_key = Some(system.clone());
                    tracing::warn!(
                        provider = %route.entry.provider.display_name,
                        provider_id = candidate.id,
                        "user key rejected; trying the system key from the environment"
                    );
                    route.provider = self.factory.build(&config);
                    route.effective = config;
                    route.key = KeyUsed::System;
                    route.key_worked = false;
                    Some(())
                } else {
                    None
                }
            }
            ProviderError::QuotaExhausted(_) => {
                if !route.told.quota {
                    route.told.quota = true;
                    events.push(RouterEvent::QuotaExhausted {
                        provider: route.entry.provider.clone(),
                    });
                }
                None
            }
            _ => None,
        };
        let next = rebuilt.map(|()| Candidate {
            id: candidate.id,
            provider_ref: route.entry.provider.clone(),
            provider: route.provider.clone(),
            model: route.effective.model.clone(),
            key: route.key,
            bucket: Arc::clone(&route.bucket),
            down: candidate.down,
        });
        drop(state);
        self.emit(events);
        next
    }

    /// "{provider} is currently unavailable. Trying backup provider...": the router moves on
    /// from a provider that failed, once per failover episode (until it answers again). Quota
    /// and key problems have texts of their own; a provider only skipped for its rate limit did
    /// not fail.
    fn tell_trying_backup(&self, candidate: &Candidate, attempts: &[Attempt]) {
        let failed = attempts
            .iter()
            .rev()
            .find(|a| a.provider.id == candidate.id)
            .and_then(Attempt::error)
            .is_some_and(|e| {
                !matches!(
                    e.kind(),
                    ErrorKind::InvalidKey | ErrorKind::QuotaExhausted | ErrorKind::Cancelled
                )
            });
        if !failed {
            return;
        }
        let mut state = self.lock();
        let Some(route) = state
            .routes
            .iter_mut()
            .find(|r| r.entry.provider.id == candidate.id)
        else {
            return;
        };
        if route.told.trying_backup {
            return;
        }
        route.told.trying_backup = true;
        let event = RouterEvent::TryingBackup {
            provider: route.entry.provider.clone(),
        };
        drop(state);
        self.emit(vec![event]);
    }

    fn mark(&self, id: i64, health: Health, cause: ErrorKind) {
        let mut state = self.lock();
        if let Some(route) = state.routes.iter_mut().find(|r| r.entry.provider.id == id) {
            route.health = health;
            route.last_error = Some(cause);
        }
    }

    fn tell_rate_limited(&self, candidate: &Candidate, wait: Duration) {
        let mut state = self.lock();
        let Some(route) = state
            .routes
            .iter_mut()
            .find(|r| r.entry.provider.id == candidate.id)
        else {
            return;
        };
        if route.told.rate_limited {
            return;
        }
        route.told.rate_limited = true;
        let event = RouterEvent::RateLimitWait {
            provider: route.entry.provider.clone(),
            wait,
        };
        drop(state);
        self.emit(vec![event]);
    }

    /// A provider answered: health, online state, sticky failover and the events they imply.
    fn on_success(&self, candidate: &Candidate, home: i64, after_failures: bool, waited: Duration) {
        let mut events = Vec::new();
        let mut state = self.lock();
        let failover_enabled = state.options.failover_enabled;
        let home_ref = find(&state, home).map(|r| r.entry.provider.clone());
        // A down primary that was skipped counts as a failover too, so it gets probed.
        let home_down = find(&state, home).is_some_and(|r| r.health == Health::Down);
        if let Some(route) = state
            .routes
            .iter_mut()
            .find(|r| r.entry.provider.id == candidate.id)
        {
            route.health = Health::Ok;
            route.key_worked = true;
            route.last_error = None;
            route.last_used_at = Some(Utc::now());
            // The rate-limited state ends with a request that did not have to wait for long;
            // until then a run of waiting requests is one state, told once.
            route.told = Told {
                rate_limited: route.told.rate_limited && waited >= NOTICEABLE_WAIT,
                ..Told::default()
            };
        }
        state.all_failed = false;
        if state.offline {
            come_online(&mut state);
            events.push(RouterEvent::Online);
        }
        if candidate.id == home {
            if state.sticky.take().is_some()
                && let Some(home_ref) = home_ref
            {
                events.push(RouterEvent::Recovered { provider: home_ref });
            }
        } else if failover_enabled
            && (after_failures || home_down)
            && state.sticky != Some(candidate.id)
        {
            let from = state
                .sticky
                .and_then(|id| find(&state, id))
                .map(|r| r.entry.provider.clone())
                .or(home_ref);
            if let Some(from) = from {
                tracing::warn!(
                    from = %from.display_name,
                    to = %candidate.provider_ref.display_name,
                    "failed over; staying on the backup until the primary answers a health probe"
                );
                events.push(RouterEvent::FailedOver {
                    from,
                    to: candidate.provider_ref.clone(),
                });
            }
            state.sticky = Some(candidate.id);
            self.ensure_probing(&mut state);
        }
        drop(state);
        self.emit(events);
    }

    fn on_all_failed(&self, attempts: Vec<Attempt>) -> RouteError {
        let errors: Vec<&ProviderError> = attempts.iter().filter_map(Attempt::error).collect();
        if errors.is_empty() {
            // Nothing was sent: every provider was busy within this budget.
            let retry_in = attempts
                .iter()
                .filter_map(|a| match a.outcome {
                    AttemptOutcome::LimitedLocally { wait } => Some(wait),
                    _ => None,
                })
                .min();
            return match retry_in {
                Some(retry_in) => RouteError::RateLimited { retry_in },
                None => RouteError::AllFailed { attempts },
            };
        }
        let offline = errors.iter().all(|e| e.kind() == ErrorKind::Network);
        let mut events = Vec::new();
        let mut state = self.lock();
        let error = if offline {
            if !state.offline {
                state.offline = true;
                tracing::warn!("every provider failed with a network error: offline");
                events.push(RouterEvent::Offline);
                self.ensure_probing(&mut state);
            }
            RouteError::Offline
        } else {
            if !state.all_failed {
                state.all_failed = true;
                tracing::warn!(attempts = attempts.len(), "every active provider failed");
                events.push(RouterEvent::AllFailed);
            }
            RouteError::AllFailed { attempts }
        };
        drop(state);
        self.emit(events);
        error
    }

    /// Starts the probe loop unless one runs. Called with the state locked.
    fn ensure_probing(&self, state: &mut State) {
        if state.probe.is_some() {
            return;
        }
        let stop = CancellationToken::new();
        if spawn_probes(self.this.clone(), stop.clone()) {
            state.probe = Some(stop);
        }
    }
}

impl ProbeSubject for Inner {
    fn probe_interval(&self) -> Duration {
        let state = self.lock();
        if state.offline && state.sticky.is_none() {
            state.options.offline_probe_interval
        } else {
            state.options.health_interval
        }
    }

    fn probe_target(&self, stop: &CancellationToken) -> Option<ProbeTarget> {
        let mut state = self.lock();
        if stop.is_cancelled() {
            // Whoever cancelled this loop also took it out of the state.
            return None;
        }
        let needed = state.sticky.is_some() || state.offline;
        let target = needed
            .then(|| {
                let eu_only = eu_only(&state);
                state.routes.iter().find(|r| r.usable(eu_only))
            })
            .flatten()
            .and_then(|r| {
                let provider = r.provider.as_ref().ok()?;
                Some(ProbeTarget {
                    id: r.entry.provider.id,
                    provider: Arc::clone(provider),
                    timeout: state.options.probe_timeout,
                })
            });
        if target.is_none() {
            // The only live loop is the stored one: it ends now, and a later failover starts a
            // fresh one.
            state.probe = None;
        }
        target
    }

    fn record_probe(&self, target: &ProbeTarget, outcome: Result<ConnectionReport, ProviderError>) {
        let mut events = Vec::new();
        let mut state = self.lock();
        let home = home_entry(&state).map(|e| e.provider.clone());
        let is_home = home.as_ref().is_some_and(|h| h.id == target.id);
        let health = match &outcome {
            Ok(_) => Health::Ok,
            Err(ProviderError::Cancelled) => return,
            Err(ProviderError::RateLimited { .. }) => Health::Cooling,
            Err(_) => Health::Down,
        };
        if let Some(route) = state
            .routes
            .iter_mut()
            .find(|r| r.entry.provider.id == target.id)
        {
            route.health = health;
            route.last_error = outcome.as_ref().err().map(ProviderError::kind);
        }
        if outcome.is_ok() {
            if state.offline {
                come_online(&mut state);
                events.push(RouterEvent::Online);
            }
            if is_home
                && state.sticky.take().is_some()
                && let Some(home) = home
            {
                tracing::info!(provider = %home.display_name, "primary answered its health probe; routing back");
                events.push(RouterEvent::Recovered { provider: home });
            }
        }
        drop(state);
        self.emit(events);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(probe) = state.probe.take() {
            probe.cancel();
        }
    }
}

/// The order of one request (see [`Inner::plan`]), computed with the state locked.
fn plan_of(state: &State, eu_only: bool) -> Result<Plan, RouteError> {
    let usable: Vec<&Route> = state.routes.iter().filter(|r| r.usable(eu_only)).collect();
    let Some(home) = usable.first() else {
        let refused = state.routes.iter().find(|r| {
            r.entry.is_active && r.transport.is_refused() && (!eu_only || r.entry.eu_resident)
        });
        if let Some(refused) = refused {
            return Err(RouteError::InsecureHttp {
                provider: refused.entry.provider.display_name.clone(),
                host: host_of(&refused.entry.config.endpoint),
            });
        }
        let any_active = state.routes.iter().any(|r| r.entry.is_active);
        return Err(if eu_only && any_active {
            RouteError::NoEuProvider
        } else {
            RouteError::NotConfigured
        });
    };
    // Text leaves the EU only with the project's consent: while it is unanswered, a failover
    // from an EU-resident preferred provider stops at the EU border.
    let held_at_border =
        !eu_only && state.consent == EuConsent::Unanswered && home.entry.eu_resident;
    let home = home.entry.provider.id;
    let mut order: Vec<&Route> = if state.options.failover_enabled {
        // The sticky provider first, then the rest with known-down ones last.
        let mut rest: Vec<&Route> = usable
            .iter()
            .copied()
            .filter(|r| Some(r.entry.provider.id) != state.sticky)
            .collect();
        rest.sort_by_key(|r| r.health == Health::Down);
        let sticky = usable
            .iter()
            .copied()
            .filter(|r| Some(r.entry.provider.id) == state.sticky);
        sticky.chain(rest).collect()
    } else {
        usable.into_iter().take(1).collect()
    };
    let mut held_back = None;
    if held_at_border {
        held_back = order
            .iter()
            .find(|r| !r.entry.eu_resident)
            .map(|r| r.entry.provider.clone());
        order.retain(|r| r.entry.eu_resident);
    }
    let candidates = order
        .drain(..)
        .map(|r| Candidate {
            id: r.entry.provider.id,
            provider_ref: r.entry.provider.clone(),
            provider: r.provider.clone(),
            model: r.effective.model.clone(),
            key: r.key,
            bucket: Arc::clone(&r.bucket),
            down: r.health == Health::Down,
        })
        .collect();
    Ok(Plan {
        candidates,
        home,
        held_back,
    })
}

/// The transport events not yet sent: plain HTTP allowed by `allowInsecureHttp` (a warning), or
/// a stored row refused while others serve. Once per provider; a refusal that leaves nothing to
/// route to is the request's error instead.
fn tell_transport(state: &mut State, eu_only: bool) -> Vec<RouterEvent> {
    let anything_usable = state.routes.iter().any(|r| r.usable(eu_only));
    let mut events = Vec::new();
    for route in &mut state.routes {
        if route.transport_told || !route.entry.is_active {
            continue;
        }
        // Named (its endpoint parsed) only when there is something to tell: most routes have
        // nothing, on every request.
        let named = || {
            (
                route.entry.provider.clone(),
                host_of(&route.entry.config.endpoint),
            )
        };
        match route.transport {
            Transport::InsecureAllowed => {
                let (provider, host) = named();
                tracing::warn!(
                    provider = %provider.display_name,
                    provider_id = provider.id,
                    host = %host,
                    "plain http to a remote host, allowed by allowInsecureHttp: the key travels unencrypted"
                );
                events.push(RouterEvent::InsecureHttpAllowed { provider, host });
            }
            Transport::Refused if anything_usable => {
                let (provider, host) = named();
                tracing::warn!(
                    provider = %provider.display_name,
                    provider_id = provider.id,
                    host = %host,
                    "plain http to a remote host refused; the provider is skipped"
                );
                events.push(RouterEvent::InsecureHttpRefused { provider, host });
            }
            _ => continue,
        }
        route.transport_told = true;
    }
    events
}

/// Leaves the offline state. Network failures seen while offline say nothing about the providers
/// themselves, so those providers are "unknown" again rather than "down".
fn come_online(state: &mut State) {
    state.offline = false;
    for route in &mut state.routes {
        if route.health == Health::Down && route.last_error == Some(ErrorKind::Network) {
            route.health = Health::Unknown;
            route.last_error = None;
        }
    }
}

/// Whether only EU-resident providers may serve: the `euOnly` setting, or the project's answer
/// "Keep EU only".
fn eu_only(state: &State) -> bool {
    state.options.eu_only || state.consent == EuConsent::KeepEuOnly
}

fn find(state: &State, id: i64) -> Option<&Route> {
    state.routes.iter().find(|r| r.entry.provider.id == id)
}

fn home_entry(state: &State) -> Option<&RouteEntry> {
    let eu_only = eu_only(state);
    state
        .routes
        .iter()
        .find(|r| r.usable(eu_only))
        .map(|r| &r.entry)
}

/// Whether the provider the session failed over to can no longer be routed to (removed,
/// deactivated, or excluded by `euOnly`).
fn sticky_gone(state: &State) -> bool {
    state.sticky.is_some_and(|id| {
        !state
            .routes
            .iter()
            .any(|r| r.entry.provider.id == id && r.usable(eu_only(state)))
    })
}

/// Ends the sticky failover and its probes: the preferred provider serves the next request.
fn clear_failover(state: &mut State) {
    state.sticky = None;
    if !state.offline
        && let Some(probe) = state.probe.take()
    {
        probe.cancel();
    }
}

/// Whose key a route starts with: the system key when the row runs on it (`keySource: env`,
/// or no key of its own), else the project's or session's.
fn key_used(config: &ProviderConfig, system_key: Option<&ApiKey>) -> KeyUsed {
    match &config.api_key {
        Some(key) if !key.is_empty() && system_key == Some(key) => KeyUsed::System,
        Some(key) if !key.is_empty() => KeyUsed::User,
        _ => KeyUsed::None,
    }
}

/// Whether two entries build the same provider (so its client, health and recoveries carry
/// over); flags such as primary, position or active do not change the provider itself.
fn same_provider(a: &RouteEntry, b: &RouteEntry) -> bool {
    a.provider == b.provider
        && a.config.kind == b.config.kind
        && a.config.endpoint == b.config.endpoint
        && a.config.model == b.config.model
        && a.config.api_key == b.config.api_key
        && a.config.options == b.config.options
        && a.system_key == b.system_key
}

/// One line per failure: kind, provider, what the router does next. The caller's span carries the
/// action name. Never the prompt, never a key: a detail holds our description and the vendor's
/// error code, never the vendor's message (see `providers::classify`).
fn log_failure(candidate: &Candidate, error: &ProviderError, attempt: u32, decision: Decision) {
    let next = match decision {
        Decision::RetryAfter(_) => "retry",
        Decision::FailOver => "fail over",
        Decision::GiveUp => "give up",
    };
    let wait_ms = match decision {
        Decision::RetryAfter(wait) => wait.as_millis() as u64,
        _ => 0,
    };
    let detail = error.detail();
    tracing::warn!(
        provider = %candidate.provider_ref.display_name,
        provider_id = candidate.id,
        kind = %error.kind(),
        status = ?error.status(),
        request_id = ?detail.and_then(|d| d.request_id.as_deref()),
        message = %detail.map(|d| truncate(&d.message, 200)).unwrap_or_default(),
        attempt,
        next,
        wait_ms,
        "provider request failed"
    );
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}
    fn assert_send<T: Send>(_: &T) {}

    /// The LSP layer spawns routed requests on tokio tasks: a non-`Send` future (a lock guard
    /// held across `.await`, say) must fail to compile here rather than there.
    #[test]
    fn the_router_and_its_futures_can_cross_threads() {
        assert_send_sync::<Router>();
        let router = Router::new(
            Arc::new(|_: &ProviderConfig| Err(ProviderError::BadRequest(Detail::new("none")))),
            RouterOptions::default(),
        );
        let request = CompletionRequest::new(Vec::new());
        let budget = Budget::Action(Duration::from_secs(1));
        assert_send(&router.generate(&request, budget));
        assert_send(&router.stream(&request, budget));
    }

    #[test]
    fn long_vendor_messages_are_cut_for_the_log() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 3), "ééé…");
    }
}
