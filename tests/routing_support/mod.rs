//! Shared by the `routing_*` tests: a scripted provider, the factory that builds it, and a harness
//! that wires a [`Router`] to them.
//!
//! The scripted provider is a test double for the routing logic only: each call follows a script
//! (answer, fail with a given error, hang, after a delay) and is recorded with its virtual time.
//! Scenarios are written against [`Fault`] and [`Harness`], not against the double, so that a
//! later pass can run the same tables against real providers and the loopback simulator by
//! changing how a `Fault` is installed and which factory the harness uses.
#![allow(dead_code)] // each test crate uses a different part of this module

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use storyteller_lsp::credentials::ApiKey;
use storyteller_lsp::providers::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, Detail,
    FinishReason, Message, ModelInfo, ProviderConfig, ProviderError, ProviderKind, RateLimitHint,
    StreamEvent, StreamResponse,
};
use storyteller_lsp::routing::{ProviderRef, RouteEntry, Router, RouterEvent, RouterOptions};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// What a scripted provider does on one call.
#[derive(Debug, Clone)]
pub enum Step {
    Answer(String),
    /// Answers and reports the vendor's rate-limit headers.
    AnswerWithHint(String, RateLimitHint),
    Fail(ProviderError),
    /// Streams only: the response starts, then its first event is this error.
    FailFirstEvent(ProviderError),
    /// Streams only: one delta, then this error.
    BreakAfterDelta(String, ProviderError),
    /// Never answers, and ignores the request's cancellation token.
    Hang,
    After(Duration, Box<Step>),
}

/// What happened on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    Generate,
    Stream,
    Probe,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub kind: CallKind,
    pub at: Instant,
    pub model: String,
    /// The key the provider was built with (test keys only; never a real key).
    pub key: Option<String>,
    /// The content of the request's first message.
    pub label: String,
}

/// Chooses a step from the call: its index among this backend's calls, model and key.
pub type Script = Arc<dyn Fn(&Call, usize) -> Step + Send + Sync>;

pub fn always(step: Step) -> Script {
    Arc::new(move |_, _| step.clone())
}

/// `steps` in order, then `then` forever.
pub fn sequence(steps: Vec<Step>, then: Step) -> Script {
    Arc::new(move |_, index| steps.get(index).cloned().unwrap_or_else(|| then.clone()))
}

pub fn detail(status: u16) -> Detail {
    Detail::new("scripted failure").with_status(status)
}

/// A provider-side fault, as a scenario names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Healthy,
    /// Connection refused / DNS failure.
    Network,
    /// No answer until the attempt's timeout.
    Hang,
    /// The vendor timed out (504 mapped to Timeout).
    Timeout,
    Status408,
    Unavailable503,
    Overloaded529,
    /// 429 without a Retry-After.
    RateLimited,
    /// 429 with this many seconds of Retry-After.
    RateLimitedFor(u64),
    Quota,
    InvalidKey,
    ModelNotFound,
    BadRequest,
    Protocol,
}

impl Fault {
    pub fn error(self) -> Option<ProviderError> {
        Some(match self {
            Fault::Healthy | Fault::Hang => return None,
            Fault::Network => ProviderError::Network(Detail::new("connection refused")),
            Fault::Timeout => ProviderError::Timeout(detail(504)),
            Fault::Status408 => ProviderError::Timeout(detail(408)),
            Fault::Unavailable503 => ProviderError::Unavailable(detail(503)),
            Fault::Overloaded529 => ProviderError::Unavailable(detail(529)),
            Fault::RateLimited => ProviderError::RateLimited {
                retry_after: None,
                detail: detail(429),
            },
            Fault::RateLimitedFor(secs) => ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(secs)),
                detail: detail(429),
            },
            Fault::Quota => ProviderError::QuotaExhausted(detail(429)),
            Fault::InvalidKey => ProviderError::InvalidKey(detail(401)),
            Fault::ModelNotFound => ProviderError::ModelNotFound {
                model: "scripted".into(),
                detail: detail(404),
            },
            Fault::BadRequest => ProviderError::BadRequest(detail(400)),
            Fault::Protocol => ProviderError::Protocol {
                detail: Detail::new("malformed body"),
                partial: None,
            },
        })
    }

    pub fn step(self) -> Step {
        match (self, self.error()) {
            (Fault::Hang, _) => Step::Hang,
            (_, Some(error)) => Step::Fail(error),
            (_, None) => Step::Answer(format!("text from a {self:?} provider")),
        }
    }

    pub fn script(self) -> Script {
        always(self.step())
    }
}

/// One scripted vendor endpoint: its script and the calls it received.
pub struct Backend {
    script: Mutex<Script>,
    calls: Mutex<Vec<Call>>,
}

impl Backend {
    fn new(script: Script) -> Self {
        Backend {
            script: Mutex::new(script),
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn set_script(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    pub fn set_fault(&self, fault: Fault) {
        self.set_script(fault.script());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Generation and stream calls (probes excluded).
    pub fn requests(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.kind != CallKind::Probe)
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.requests().len()
    }

    pub fn probe_count(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.kind == CallKind::Probe)
            .count()
    }

    fn record(&self, call: Call) -> Step {
        let script = self.script.lock().unwrap().clone();
        let mut calls = self.calls.lock().unwrap();
        let index = calls.len();
        calls.push(call.clone());
        drop(calls);
        script(&call, index)
    }
}

#[derive(Debug)]
pub struct ScriptedProvider {
    backend: Arc<Backend>,
    config: ProviderConfig,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl ScriptedProvider {
    fn call(&self, kind: CallKind, request: Option<&CompletionRequest>) -> Step {
        self.backend.record(Call {
            kind,
            at: Instant::now(),
            model: self.config.model.clone(),
            key: self.config.api_key.as_ref().map(|k| k.expose().to_string()),
            label: request
                .and_then(|r| r.messages.first())
                .map(|m| m.content.clone())
                .unwrap_or_default(),
        })
    }

    /// Plays a step to its end: delays, then the outcome (a hang never ends).
    async fn play(step: Step) -> Step {
        let mut step = step;
        loop {
            match step {
                Step::After(delay, next) => {
                    tokio::time::sleep(delay).await;
                    step = *next;
                }
                // Deliberately deaf to the cancellation token: the router itself must drop a
                // call that does not answer.
                Step::Hang => std::future::pending::<()>().await,
                other => return other,
            }
        }
    }

    fn completion(&self, text: String, hint: Option<RateLimitHint>) -> Completion {
        Completion {
            text,
            finish: FinishReason::Stop,
            usage: None,
            model: self.config.model.clone(),
            rate_limit: hint,
        }
    }
}

#[async_trait]
impl AiProvider for ScriptedProvider {
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

    async fn generate(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let step = self.call(CallKind::Generate, Some(request));
        match Self::play(step).await {
            Step::Answer(text) => Ok(self.completion(text, None)),
            Step::AnswerWithHint(text, hint) => Ok(self.completion(text, Some(hint))),
            Step::Fail(e) | Step::FailFirstEvent(e) | Step::BreakAfterDelta(_, e) => Err(e),
            Step::Hang | Step::After(..) => Err(ProviderError::Cancelled),
        }
    }

    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        let step = self.call(CallKind::Stream, Some(request));
        let events: Vec<Result<StreamEvent, ProviderError>> = match Self::play(step).await {
            Step::Answer(text) | Step::AnswerWithHint(text, _) => text
                .split_inclusive(' ')
                .map(|w| Ok(StreamEvent::Delta(w.to_string())))
                .chain([Ok(StreamEvent::Done {
                    finish: FinishReason::Stop,
                    usage: None,
                })])
                .collect(),
            Step::Fail(e) => return Err(e),
            Step::FailFirstEvent(e) => vec![Err(e)],
            Step::BreakAfterDelta(text, e) => vec![Ok(StreamEvent::Delta(text)), Err(e)],
            Step::Hang | Step::After(..) => return Err(ProviderError::Cancelled),
        };
        Ok(StreamResponse {
            model: self.config.model.clone(),
            rate_limit: None,
            events: Box::pin(futures::stream::iter(events)),
        })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![self.model_info()])
    }

    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError> {
        let step = self.call(CallKind::Probe, None);
        match Self::play(step).await {
            Step::Answer(_) | Step::AnswerWithHint(..) => Ok(ConnectionReport {
                model: self.config.model.clone(),
                latency_ms: 0,
            }),
            Step::Fail(e) | Step::FailFirstEvent(e) | Step::BreakAfterDelta(_, e) => Err(e),
            Step::Hang | Step::After(..) => Err(ProviderError::Cancelled),
        }
    }
}

/// Builds scripted providers; providers built for the same endpoint share one [`Backend`], so a
/// rebuilt provider (default model, system key) continues the same script and call log.
#[derive(Default)]
pub struct ScriptedFactory {
    backends: Mutex<HashMap<String, Arc<Backend>>>,
    builds: Mutex<Vec<(String, String, Option<String>)>>,
}

impl ScriptedFactory {
    pub fn add(&self, endpoint: &str, script: Script) -> Arc<Backend> {
        let backend = Arc::new(Backend::new(script));
        self.backends
            .lock()
            .unwrap()
            .insert(endpoint.to_string(), Arc::clone(&backend));
        backend
    }

    pub fn build(&self, config: &ProviderConfig) -> Result<Arc<dyn AiProvider>, ProviderError> {
        self.builds.lock().unwrap().push((
            config.endpoint.clone(),
            config.model.clone(),
            config.api_key.as_ref().map(|k| k.expose().to_string()),
        ));
        let backend = self
            .backends
            .lock()
            .unwrap()
            .get(&config.endpoint)
            .cloned()
            .ok_or_else(|| ProviderError::BadRequest(Detail::new("no scripted backend")))?;
        Ok(Arc::new(ScriptedProvider {
            backend,
            config: config.clone(),
        }))
    }

    /// (endpoint, model, key) of every provider built so far.
    pub fn builds(&self) -> Vec<(String, String, Option<String>)> {
        self.builds.lock().unwrap().clone()
    }
}

pub fn endpoint(id: i64) -> String {
    format!("scripted://provider-{id}")
}

pub fn user_key(id: i64) -> String {
    format!("user-key-{id}-0000")
}

pub fn system_key(id: i64) -> String {
    format!("system-key-{id}-0000")
}

/// A provider row: id 1 is the primary, the others follow by id.
pub fn entry(id: i64, kind: ProviderKind) -> RouteEntry {
    let mut config = ProviderConfig::with_defaults(kind, Some(ApiKey::new(user_key(id))));
    config.endpoint = endpoint(id);
    if config.model.is_empty() {
        config.model = "local-model".into();
    }
    RouteEntry {
        provider: ProviderRef {
            id,
            kind,
            display_name: format!("{} #{id}", kind.display_name()),
        },
        is_primary: id == 1,
        position: u32::try_from(id).unwrap_or(u32::MAX),
        is_active: true,
        eu_resident: kind.entry().capabilities.eu_resident,
        config,
        system_key: None,
    }
}

/// The first `n` kinds that give distinct, recognisable entries.
pub const KINDS: [ProviderKind; 3] = [
    ProviderKind::OpenAi,
    ProviderKind::Claude,
    ProviderKind::Gemini,
];

pub struct Harness {
    pub router: Router,
    pub factory: Arc<ScriptedFactory>,
    pub backends: Vec<Arc<Backend>>,
    events: broadcast::Receiver<RouterEvent>,
}

impl Harness {
    /// Providers 1..=n with the given scripts (provider 1 primary), default options.
    pub fn new(scripts: Vec<Script>) -> Self {
        Self::with_options(scripts, RouterOptions::default(), |_| {})
    }

    pub fn with_faults(faults: &[Fault]) -> Self {
        Self::new(faults.iter().map(|f| f.script()).collect())
    }

    /// Like [`Harness::new`], with router options and a hook to adjust the entries.
    pub fn with_options(
        scripts: Vec<Script>,
        mut options: RouterOptions,
        adjust: impl FnOnce(&mut Vec<RouteEntry>),
    ) -> Self {
        options.jitter_seed.get_or_insert(7);
        let factory = Arc::new(ScriptedFactory::default());
        let mut entries = Vec::new();
        let mut backends = Vec::new();
        for (i, script) in scripts.into_iter().enumerate() {
            let id = i as i64 + 1;
            backends.push(factory.add(&endpoint(id), script));
            entries.push(entry(id, KINDS[i % KINDS.len()]));
        }
        adjust(&mut entries);
        let build_factory = Arc::clone(&factory);
        let router = Router::new(
            Arc::new(move |config: &ProviderConfig| build_factory.build(config)),
            options,
        );
        let events = router.subscribe();
        router.set_providers(entries);
        Harness {
            router,
            factory,
            backends,
            events,
        }
    }

    pub fn backend(&self, id: i64) -> &Arc<Backend> {
        &self.backends[(id - 1) as usize]
    }

    /// Events sent since the last call.
    pub fn events(&mut self) -> Vec<RouterEvent> {
        let mut out = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            out.push(event);
        }
        out
    }

    /// Request counts per provider, in id order.
    pub fn request_counts(&self) -> Vec<usize> {
        self.backends.iter().map(|b| b.request_count()).collect()
    }
}

pub fn request(label: &str) -> CompletionRequest {
    CompletionRequest::new(vec![Message::user(label)])
}

/// The event's variant name, for compact assertions.
pub fn event_name(event: &RouterEvent) -> &'static str {
    match event {
        RouterEvent::RateLimitWait { .. } => "RateLimitWait",
        RouterEvent::FailedOver { .. } => "FailedOver",
        RouterEvent::Recovered { .. } => "Recovered",
        RouterEvent::AllFailed => "AllFailed",
        RouterEvent::Offline => "Offline",
        RouterEvent::Online => "Online",
        RouterEvent::KeyInvalid { .. } => "KeyInvalid",
        RouterEvent::KeyRevoked { .. } => "KeyRevoked",
        RouterEvent::QuotaExhausted { .. } => "QuotaExhausted",
        RouterEvent::ModelFallback { .. } => "ModelFallback",
        RouterEvent::TryingBackup { .. } => "TryingBackup",
        RouterEvent::InsecureHttpAllowed { .. } => "InsecureHttpAllowed",
        RouterEvent::InsecureHttpRefused { .. } => "InsecureHttpRefused",
    }
}

pub fn event_names(events: &[RouterEvent]) -> Vec<&'static str> {
    events.iter().map(event_name).collect()
}
