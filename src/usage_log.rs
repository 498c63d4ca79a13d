//! The request log's recorder: every provider request that routing makes (generation or stream)
//! becomes one `request_log` row — when, which provider and model, which action, how long, how
//! many tokens, how it ended — and moves the provider's `last_used_at`.
//!
//! It stays off the hot path: [`Recorded`] wraps each routed provider and hands a record to a
//! bounded channel with `try_send` (a full channel drops the record, counted, and never makes a
//! request wait); one writer task gathers the records for up to [`WRITE_EVERY`] (or [`BATCH`]
//! rows) and writes them in one transaction through the store's blocking pool — never one
//! transaction per request. The writer prunes the log by age and size at start and every [`PRUNE_EVERY`].
//!
//! It must never record text: the record has no field that could hold a prompt, a manuscript, a
//! vendor message or a key — an action name is a checked identifier, an outcome an error kind.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::providers::{
    AiProvider, Capabilities, Completion, CompletionRequest, ConnectionReport, ErrorKind,
    ModelInfo, ProviderError, ProviderKind, StreamEvent, StreamResponse, Usage,
};
use crate::store::usage::{self, ActionName, Outcome, RequestRecord};
use crate::store::{ProviderId, Store};

/// Records waiting for the writer; beyond this, new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 1024;
/// Most records written in one transaction.
const BATCH: usize = 256;
/// Longest a record waits in memory for others to share its transaction (a flush writes at once).
pub const WRITE_EVERY: Duration = Duration::from_millis(250);
/// Rows older than this are pruned.
pub const MAX_AGE: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// At most this many rows are kept (the newest).
pub const MAX_ROWS: u64 = 100_000;
/// How often the writer prunes while running.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// The action of a request made outside [`with_action`].
const UNNAMED_ACTION: &str = "request";

tokio::task_local! {
    static ACTION: ActionName;
}

/// Runs `work` with `action` as the action name of the provider requests it makes (the action
/// id `continue_scene`, `inline`, …). A name that is not an identifier is recorded as
/// `request`.
pub async fn with_action<F: Future>(action: &str, work: F) -> F::Output {
    let name = ActionName::new(action)
        .or_else(|_| ActionName::new(UNNAMED_ACTION))
        .expect("the fallback action name is valid");
    ACTION.scope(name, work).await
}

fn current_action() -> ActionName {
    ACTION
        .try_with(Clone::clone)
        .unwrap_or_else(|_| ActionName::new(UNNAMED_ACTION).expect("valid action name"))
}

enum Message {
    Record(RequestRecord),
    /// Answered once every record sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// The sending side of the request log. Cheap to clone.
#[derive(Clone)]
pub struct UsageLog {
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for UsageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageLog")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl UsageLog {
    /// Starts the writer task on the current runtime. It prunes first, then writes what arrives;
    /// it ends when every `UsageLog` clone is gone.
    pub fn start(store: Store) -> UsageLog {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(write_loop(store, rx));
        UsageLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues one record; never waits. When the writer is behind by [`CHANNEL_CAPACITY`]
    /// records, this one is dropped (and counted).
    pub fn record(&self, record: RequestRecord) {
        if self.tx.try_send(Message::Record(record)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (at most `patience`) until every record queued before this call is written. For
    /// shutdown, before the store closes.
    pub async fn flush(&self, patience: Duration) -> bool {
        let (done, written) = oneshot::channel();
        let sent = tokio::time::timeout(patience, async {
            self.tx.send(Message::Flush(done)).await.is_ok() && written.await.is_ok()
        })
        .await;
        matches!(sent, Ok(true))
    }

    /// `provider` wrapped so that its generations and streams are recorded.
    pub fn wrap(
        &self,
        provider: Arc<dyn AiProvider>,
        provider_id: Option<ProviderId>,
    ) -> Arc<dyn AiProvider> {
        Arc::new(Recorded {
            inner: provider,
            provider_id,
            log: self.clone(),
        })
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Message>) {
    prune(&store).await;
    let mut pruning = tokio::time::interval_at(Instant::now() + PRUNE_EVERY, PRUNE_EVERY);
    pruning.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open {
        let first = tokio::select! {
            message = rx.recv() => match message {
                Some(message) => message,
                None => break,
            },
            _ = pruning.tick() => {
                prune(&store).await;
                continue;
            }
        };
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        take(first, &mut batch, &mut flushes);
        // Gather for at most WRITE_EVERY, so a burst of completions costs one transaction; a
        // flush (shutdown) or a full batch writes at once.
        let gathering = tokio::time::sleep(WRITE_EVERY);
        tokio::pin!(gathering);
        loop {
            if batch.len() >= BATCH || !flushes.is_empty() {
                break;
            }
            tokio::select! {
                message = rx.recv() => match message {
                    Some(message) => take(message, &mut batch, &mut flushes),
                    None => {
                        open = false;
                        break;
                    }
                },
                _ = &mut gathering => break,
            }
        }
        // Whatever is already queued rides along.
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(message) => take(message, &mut batch, &mut flushes),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let count = batch.len();
            let written = store
                .call_briefly(move |conn| usage::record_batch(conn, &batch))
                .await;
            if let Err(e) = written {
                // Statistics are best effort: a locked or closed database loses this batch.
                tracing::debug!(count, "request log batch not written: {e}");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn take(message: Message, batch: &mut Vec<RequestRecord>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match message {
        Message::Record(record) => batch.push(record),
        Message::Flush(done) => flushes.push(done),
    }
}

async fn prune(store: &Store) {
    let now = chrono::Utc::now();
    match store
        .call_briefly(move |conn| usage::prune(conn, now, MAX_AGE, MAX_ROWS))
        .await
    {
        Ok(0) => {}
        Ok(pruned) => tracing::debug!(pruned, "request log pruned"),
        Err(e) => tracing::debug!("request log not pruned: {e}"),
    }
}

/// One request in flight: recorded when it ends, or when it is dropped unfinished — as cancelled
/// when its request was (a superseded ghost text, a cancelled action), else as a timeout (the
/// router drops a call that outlives the request's budget).
struct Pending {
    log: UsageLog,
    record: Option<RequestRecord>,
    started: Instant,
    cancel: CancellationToken,
}

impl Pending {
    fn start(
        log: &UsageLog,
        provider_id: Option<ProviderId>,
        kind: ProviderKind,
        model: String,
        cancel: &CancellationToken,
    ) -> Pending {
        Pending {
            log: log.clone(),
            record: Some(RequestRecord {
                provider_id,
                kind,
                model: Some(model),
                action: current_action(),
                outcome: Outcome::Failed(ErrorKind::Cancelled),
                input_tokens: None,
                output_tokens: None,
                latency: Duration::ZERO,
            }),
            started: Instant::now(),
            cancel: cancel.clone(),
        }
    }

    fn finish(&mut self, outcome: Outcome, usage: Option<&Usage>) {
        if let Some(mut record) = self.record.take() {
            record.outcome = outcome;
            record.input_tokens = usage.map(|u| u.input_tokens);
            record.output_tokens = usage.map(|u| u.output_tokens);
            record.latency = self.started.elapsed();
            self.log.record(record);
        }
    }

    fn fail(&mut self, error: &ProviderError) {
        self.finish(Outcome::Failed(error.kind()), None);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            if !self.cancel.is_cancelled() {
                record.outcome = Outcome::Failed(ErrorKind::Timeout);
            }
            record.latency = self.started.elapsed();
            self.log.record(record);
        }
    }
}

/// A provider whose generations and streams are recorded. Listings and connection tests are
/// not (they are not requests for text).
#[derive(Debug)]
struct Recorded {
    inner: Arc<dyn AiProvider>,
    provider_id: Option<ProviderId>,
    log: UsageLog,
}

impl Recorded {
    fn pending(&self, request: &CompletionRequest) -> Pending {
        Pending::start(
            &self.log,
            self.provider_id,
            self.inner.kind(),
            self.inner.model_info().id,
            &request.cancel,
        )
    }
}

#[async_trait]
impl AiProvider for Recorded {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn model_info(&self) -> ModelInfo {
        self.inner.model_info()
    }

    async fn generate(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let mut pending = self.pending(request);
        let result = self.inner.generate(request).await;
        match &result {
            Ok(completion) => pending.finish(Outcome::Ok, completion.usage.as_ref()),
            Err(error) => pending.fail(error),
        }
        result
    }

    async fn stream(&self, request: &CompletionRequest) -> Result<StreamResponse, ProviderError> {
        let mut pending = self.pending(request);
        let StreamResponse {
            model,
            rate_limit,
            events,
        } = match self.inner.stream(request).await {
            Ok(response) => response,
            Err(error) => {
                pending.fail(&error);
                return Err(error);
            }
        };
        // The request ends with the stream: `Done`, an error, or the reader dropping it.
        let events = events.map(move |item| {
            match &item {
                Ok(StreamEvent::Done { usage, .. }) => pending.finish(Outcome::Ok, usage.as_ref()),
                Ok(StreamEvent::Delta(_)) => {}
                Err(error) => pending.fail(error),
            }
            item
        });
        Ok(StreamResponse {
            model,
            rate_limit,
            events: Box::pin(events),
        })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.inner.list_models().await
    }

    async fn test_connection(&self) -> Result<ConnectionReport, ProviderError> {
        self.inner.test_connection().await
    }
}

/// A provider whose key is a named session's: a request that succeeds records the use
/// (`sessions::touch`) on a task of its own, at most once a minute, so the request never waits
/// on SQLite and a stream is counted once, not per token.
#[derive(Debug)]
pub struct TouchOnUse {
    inner: std::sync::Arc<dyn crate::providers::AiProvider>,
    session: crate::store::SessionId,
    store: crate::store::Store,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The shortest interval between two touches of one session by one provider.
const TOUCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl TouchOnUse {
    pub fn new(
        inner: std::sync::Arc<dyn crate::providers::AiProvider>,
        session: crate::store::SessionId,
        store: crate::store::Store,
    ) -> TouchOnUse {
        TouchOnUse {
            inner,
            session,
            store,
            last: std::sync::Mutex::new(None),
        }
    }

    fn used(&self) {
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < TOUCH_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let store = self.store.clone();
        let id = self.session;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store
                    .call(move |c| crate::store::sessions::touch(c, id))
                    .await
                {
                    tracing::debug!(session = id.0, "session use not recorded: {e}");
                }
            });
        }
    }
}

#[async_trait::async_trait]
impl crate::providers::AiProvider for TouchOnUse {
    fn kind(&self) -> crate::providers::ProviderKind {
        self.inner.kind()
    }
    fn capabilities(&self) -> crate::providers::Capabilities {
        self.inner.capabilities()
    }
    fn model_info(&self) -> crate::providers::ModelInfo {
        self.inner.model_info()
    }
    async fn generate(
        &self,
        request: &crate::providers::CompletionRequest,
    ) -> Result<crate::providers::Completion, crate::providers::ProviderError> {
        let result = self.inner.generate(request).await;
        if result.is_ok() {
            self.used();
        }
        result
    }
    async fn stream(
        &self,
        request: &crate::providers::CompletionRequest,
    ) -> Result<crate::providers::StreamResponse, crate::providers::ProviderError> {
        let result = self.inner.stream(request).await;
        if result.is_ok() {
            self.used();
        }
        result
    }
    async fn list_models(
        &self,
    ) -> Result<Vec<crate::providers::ModelInfo>, crate::providers::ProviderError> {
        self.inner.list_models().await
    }
    async fn test_connection(
        &self,
    ) -> Result<crate::providers::ConnectionReport, crate::providers::ProviderError> {
        self.inner.test_connection().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> RequestRecord {
        RequestRecord {
            provider_id: None,
            kind: ProviderKind::OpenAi,
            model: Some("gpt-4o".into()),
            action: ActionName::new("inline").unwrap(),
            outcome: Outcome::Ok,
            input_tokens: Some(1),
            output_tokens: Some(2),
            latency: Duration::from_millis(n),
        }
    }

    #[tokio::test]
    async fn records_are_written_in_batches_and_flush_waits_for_them() {
        let store = Store::open_in_memory().unwrap();
        let log = UsageLog::start(store.clone());
        for n in 0..300 {
            log.record(record(n));
        }
        assert!(log.flush(Duration::from_secs(5)).await);
        let logged = store.call(|c| usage::recent(c, 1000)).await.unwrap();
        assert_eq!(logged.len(), 300);
        assert_eq!(log.dropped(), 0);
    }

    #[tokio::test]
    async fn the_writer_prunes_old_rows_when_it_starts() {
        let store = Store::open_in_memory().unwrap();
        store
            .call(|conn| {
                usage::record_batch(conn, &[record(1), record(2)])?;
                conn.execute(
                    "UPDATE request_log SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = 1",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let log = UsageLog::start(store.clone());
        assert!(log.flush(Duration::from_secs(5)).await);
        let left = store.call(|c| usage::recent(c, 10)).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].record.latency, Duration::from_millis(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrapped_provider_records_answers_timeouts_and_cancellations() {
        use crate::providers::{Message, ProviderConfig, ProviderOptions};
        use crate::simulator::SimulatorHandle;

        let sim = SimulatorHandle::start().await.unwrap();
        let http = crate::providers::http::HttpClient::new().unwrap();
        let config = ProviderConfig {
            kind: ProviderKind::OpenAi,
            endpoint: sim.endpoint(ProviderKind::OpenAi),
            model: "gpt-4o".into(),
            api_key: Some(crate::credentials::ApiKey::new("sk-usage-log-test-0001")),
            options: ProviderOptions::default(),
        };
        let store = Store::open_in_memory().unwrap();
        let log = UsageLog::start(store.clone());
        let provider = log.wrap(crate::providers::build(&config, &http), None);
        let request = || CompletionRequest::new(vec![Message::user("The harbour at dusk")]);

        with_action("inline", provider.generate(&request()))
            .await
            .unwrap();
        let streamed = provider.stream(&request()).await.unwrap();
        let _: Vec<_> = streamed.events.collect().await;

        sim.set_latency(ProviderKind::OpenAi, Duration::from_millis(500));
        let slow = request();
        let dropped =
            tokio::time::timeout(Duration::from_millis(50), provider.generate(&slow)).await;
        assert!(dropped.is_err());
        let cancelled = request();
        cancelled.cancel.cancel();
        let _ =
            tokio::time::timeout(Duration::from_millis(50), provider.generate(&cancelled)).await;

        assert!(log.flush(Duration::from_secs(5)).await);
        let mut logged = store.call(|c| usage::recent(c, 10)).await.unwrap();
        logged.reverse();
        let seen: Vec<(&str, &str)> = logged
            .iter()
            .map(|l| (l.record.action.as_str(), l.record.outcome.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("inline", "ok"),
                ("request", "ok"),
                ("request", "timeout"),
                ("request", "cancelled")
            ]
        );
        assert!(logged[0].record.input_tokens.is_some_and(|t| t > 0));
        assert!(logged[1].record.output_tokens.is_some_and(|t| t > 0));
        assert!(
            logged
                .iter()
                .all(|l| l.record.model.as_deref() == Some("gpt-4o"))
        );
    }

    #[tokio::test]
    async fn a_full_channel_drops_records_instead_of_waiting() {
        let (tx, _rx) = mpsc::channel(2);
        let log = UsageLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        for n in 0..5 {
            log.record(record(n));
        }
        assert_eq!(log.dropped(), 3);
    }

    #[tokio::test]
    async fn the_action_comes_from_the_enclosing_scope() {
        assert_eq!(current_action().as_str(), "request");
        let inside = with_action("continue_scene", async { current_action() }).await;
        assert_eq!(inside.as_str(), "continue_scene");
        let prose = with_action("She opened the door", async { current_action() }).await;
        assert_eq!(prose.as_str(), "request");
    }
}
