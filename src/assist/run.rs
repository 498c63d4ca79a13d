//! The "run a code action" use case, without the protocol: build the prompt, stream the text
//! through the project's router while reporting progress, count the prompt's use, place the text
//! where its anchor is now, and judge the failure when nothing came of it.
//!
//! The editor side is an [`ActionHost`]: it shows the progress events this module decides on,
//! applies a placed edit, and tells the author why nothing was applied. Everything else —
//! statistics, acceptance bookkeeping, the reason of a failure and the advice
//! ([`super::failure::advise`]) — is decided here.

use std::future::Future;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::failure::{self, FailureAdvice};
use super::{ActionRequest, AssistError, Assistant, GeneratedText, PlacedEdit, PreparedAction};
use crate::app::ProjectContext;
use crate::config::Settings;
use crate::documents::DocumentSnapshot;
use crate::routing::{Budget, ProviderRef, RouterEvent};

/// Progress reports while text streams in: one per this many new words.
pub const WORDS_PER_REPORT: usize = 5;

/// What the author is shown of a running action, in order: `Begin`, `Asking`, any of
/// `Words`/`RateLimitWait`/`TryingBackup`, then `Applying` (when there is text to apply) and
/// one `End`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The action started (a cancellable progress titled with the action).
    Begin,
    /// The provider asked first (its display name); `None` while none is available.
    Asking(Option<String>),
    /// How many words were written so far.
    Words(usize),
    /// The router waits on a rate limit of this project.
    RateLimitWait,
    /// The provider failed; the router tries the backup (the name of the one that failed).
    TryingBackup(String),
    /// The text is being put into the document.
    Applying,
    End(ProgressEnd),
}

/// How a running action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEnd {
    Done,
    Cancelled,
    Failed,
}

/// Why an action's text did not go into the manuscript.
#[derive(Clone, PartialEq)]
pub enum NotApplied {
    /// The text the action belongs to changed meanwhile.
    Conflict,
    /// The editor cannot apply edits; the text is handed back instead.
    NoApplyEdit { text: String },
    /// Nothing usable came back (or the author cancelled): the reason and what to tell.
    Failed(FailureAdvice),
}

impl NotApplied {
    /// The `reason` of the command's result.
    pub fn reason(&self) -> &'static str {
        match self {
            NotApplied::Conflict => "conflict",
            NotApplied::NoApplyEdit { .. } => "noApplyEdit",
            NotApplied::Failed(advice) => advice.reason,
        }
    }
}

// Never the text itself (manuscript text stays out of logs): its length.
impl std::fmt::Debug for NotApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotApplied::Conflict => f.write_str("Conflict"),
            NotApplied::NoApplyEdit { text } => f
                .debug_struct("NoApplyEdit")
                .field("chars", &text.chars().count())
                .finish(),
            NotApplied::Failed(advice) => f.debug_tuple("Failed").field(advice).finish(),
        }
    }
}

/// How an action ended.
#[derive(Clone, PartialEq)]
pub enum ActionOutcome<R> {
    /// The text went into the document at `range` (the host's terms).
    Applied {
        provider: ProviderRef,
        failed_over: bool,
        text: String,
        range: R,
    },
    /// Nothing was applied; the author was told why ([`ActionHost::tell`]).
    NotApplied(NotApplied),
}

impl<R: std::fmt::Debug> std::fmt::Debug for ActionOutcome<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionOutcome::Applied {
                provider,
                failed_over,
                text,
                range,
            } => f
                .debug_struct("Applied")
                .field("provider", &provider.display_name)
                .field("failed_over", failed_over)
                .field("chars", &text.chars().count())
                .field("range", range)
                .finish(),
            ActionOutcome::NotApplied(why) => f.debug_tuple("NotApplied").field(why).finish(),
        }
    }
}

/// The action could not run: its prompt could not be built (before any progress), or the editor
/// failed to answer an edit.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Prepare(AssistError),
    #[error("{0}")]
    Host(String),
}

/// What the editor does for a running action.
pub trait ActionHost: Send {
    /// Where an applied edit landed, in the editor's terms.
    type Range: Send;

    /// Fires when the author cancels the action.
    fn cancel_token(&self) -> CancellationToken;

    /// Shows one progress event.
    fn progress(&mut self, event: ProgressEvent) -> impl Future<Output = ()> + Send;

    /// The document as it is now; `None` once closed.
    fn document(&self) -> Option<DocumentSnapshot>;

    /// Whether the editor can apply edits at all.
    fn can_apply(&self) -> bool;

    /// Applies `edit` to `document` (at its version): `Ok(Some(range))` when applied, `Ok(None)`
    /// when the editor refused it, `Err` (a log text) when it failed to answer.
    fn apply(
        &mut self,
        document: &DocumentSnapshot,
        edit: &PlacedEdit,
        label: &str,
    ) -> impl Future<Output = Result<Option<Self::Range>, String>> + Send;

    /// Tells the author why nothing was applied (the advice of a failure, the conflict text, …).
    fn tell(&mut self, why: &NotApplied) -> impl Future<Output = ()> + Send;
}

impl Assistant {
    /// Runs one code action in `context`'s project through `host`.
    pub async fn run_action<H: ActionHost>(
        &self,
        context: &ProjectContext,
        request: ActionRequest,
        host: &mut H,
    ) -> Result<ActionOutcome<H::Range>, RunError> {
        let cancel = host.cancel_token();
        let prepared = self
            .prepare_action(&context.registry, &request, cancel)
            .await
            .map_err(RunError::Prepare)?;
        host.progress(ProgressEvent::Begin).await;
        let asking = context.router.status().active.map(|p| p.display_name);
        host.progress(ProgressEvent::Asking(asking)).await;

        let generated = match self
            .stream_action(context, &prepared, &request.settings, host)
            .await
        {
            Ok(generated) => generated,
            Err(error) => {
                let why = NotApplied::Failed(self.judge_failure(context, &error));
                host.tell(&why).await;
                let end = if error.is_cancelled() {
                    ProgressEnd::Cancelled
                } else {
                    ProgressEnd::Failed
                };
                host.progress(ProgressEvent::End(end)).await;
                return Ok(ActionOutcome::NotApplied(why));
            }
        };
        let template = prepared.template.clone();
        if let Err(e) = context
            .registry
            .record_usage(&template.name, template.version)
            .await
        {
            tracing::warn!("prompt usage not counted: {e}");
        }

        if !host.can_apply() {
            let why = NotApplied::NoApplyEdit {
                text: generated.text,
            };
            host.tell(&why).await;
            host.progress(ProgressEvent::End(ProgressEnd::Failed)).await;
            return Ok(ActionOutcome::NotApplied(why));
        }
        host.progress(ProgressEvent::Applying).await;
        let applied = match apply_anchored(&prepared, &generated.text, host).await {
            Ok(applied) => applied,
            Err(e) => {
                host.progress(ProgressEvent::End(ProgressEnd::Failed)).await;
                return Err(RunError::Host(e));
            }
        };
        let Some((range, placed)) = applied else {
            let why = NotApplied::Conflict;
            host.tell(&why).await;
            host.progress(ProgressEvent::End(ProgressEnd::Failed)).await;
            return Ok(ActionOutcome::NotApplied(why));
        };
        // Applied is not accepted: the text is judged on the next save, after further edits, or
        // at close (`assist::acceptance`).
        if let Some(now) = host.document() {
            let replaced = if placed.replace.is_empty() {
                ""
            } else {
                prepared.anchor.selected()
            };
            self.acceptance.action_applied(
                request.document.uri(),
                template,
                &generated.text,
                replaced,
                placed.replace.start,
                now.text(),
            );
        }
        host.progress(ProgressEvent::End(ProgressEnd::Done)).await;
        Ok(ActionOutcome::Applied {
            provider: generated.provider,
            failed_over: generated.failed_over,
            text: generated.text,
            range,
        })
    }

    /// Streams the action's text, reporting words so far and the router's waits and retries.
    async fn stream_action<H: ActionHost>(
        &self,
        context: &ProjectContext,
        prepared: &PreparedAction,
        settings: &Settings,
        host: &mut H,
    ) -> Result<GeneratedText, AssistError> {
        let mut events = context.router.subscribe();
        let (words_tx, mut words_rx) = tokio::sync::mpsc::unbounded_channel();
        let generation = self.generate_action(
            &context.router,
            prepared,
            Budget::action(settings),
            move |text: &str| {
                let _ = words_tx.send(text.split_whitespace().count());
            },
        );
        tokio::pin!(generation);
        let mut reported = 0;
        let mut events_open = true;
        loop {
            tokio::select! {
                biased;
                result = &mut generation => return result,
                Some(words) = words_rx.recv() => {
                    if words >= reported + WORDS_PER_REPORT || (reported == 0 && words > 0) {
                        reported = words;
                        host.progress(ProgressEvent::Words(words)).await;
                    }
                }
                event = events.recv(), if events_open => match event {
                    Ok(RouterEvent::RateLimitWait { .. }) => {
                        host.progress(ProgressEvent::RateLimitWait).await;
                    }
                    Ok(RouterEvent::TryingBackup { provider }) => {
                        host.progress(ProgressEvent::TryingBackup(provider.display_name)).await;
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => events_open = false,
                },
            }
        }
    }

    /// The reason and the advice for `error`, with what the router says of the project now.
    fn judge_failure(&self, context: &ProjectContext, error: &AssistError) -> FailureAdvice {
        let status = context.router.status();
        let active_name = status
            .active
            .as_ref()
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        let now = failure::RoutingNow {
            active_name: &active_name,
            active_count: status.providers.iter().filter(|p| p.is_active).count(),
        };
        if let AssistError::Prompt(_) | AssistError::Store(_) | AssistError::Services(_) = error {
            tracing::warn!("action failed: {error}");
        }
        failure::advise(error, now)
    }
}

/// Applies `text` where the action's anchor is now: `Ok(Some((range, placed)))` when the editor
/// applied it, `Ok(None)` when the anchored text changed (nothing applied).
async fn apply_anchored<H: ActionHost>(
    prepared: &PreparedAction,
    text: &str,
    host: &mut H,
) -> Result<Option<(H::Range, PlacedEdit)>, String> {
    // A second try covers the author typing between our snapshot and the editor's check of the
    // versioned edit.
    let label = prepared.action.title();
    for _ in 0..2 {
        let Some(document) = host.document() else {
            // Closed meanwhile: nothing to edit.
            return Ok(None);
        };
        let Ok(placed) = super::place(prepared, &document, text) else {
            return Ok(None);
        };
        if let Some(range) = host.apply(&document, &placed, &label).await? {
            return Ok(Some((range, placed)));
        }
    }
    Ok(None)
}
