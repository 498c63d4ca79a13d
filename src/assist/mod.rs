//! What to ask the model, and what to do with the answer: the writing features without the
//! protocol.
//!
//! - [`context`]: the text around a cursor or selection within a token budget, the chapter
//!   heading, the names near the cursor.
//! - [`notes`]: the story-notes index (`contextFiles`), refreshed on open/save/file-watch.
//! - [`actions`]: the catalogue of code actions and their ids and tones.
//! - [`inline`]: per-document debounce, supersede and prefix cache of inline completion.
//! - [`shape`]: trimming and joining generated text.
//! - [`anchor`]: re-anchoring an edit after the author kept typing.
//! - [`ledger`]: which prompt version made which suggestion (acceptance statistics).
//!
//! [`Assistant`] ties them to the application services ([`App`]: router, prompt registry) for one
//! session. This module knows no LSP: positions are char offsets into [`DocumentSnapshot`]s,
//! failures are [`AssistError`]s; the `lsp` layer turns them into messages.
//!
//! Must never: log manuscript, prompt or generated text; call a provider while listing actions;
//! block the async runtime (SQLite and file reads go to the blocking pool).

pub mod actions;
pub mod anchor;
pub mod context;
pub mod inline;
pub mod ledger;
pub mod notes;
pub mod shape;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Settings;
use crate::documents::{CharOffset, DocumentSnapshot};
use crate::prompts::{PromptError, Registry, Vars};
use crate::providers::{CompletionRequest, FinishReason, Message, ProviderError, StreamEvent};
use crate::routing::{Budget, ProviderRef, RouteError, Router};
use crate::store::StoreError;
use crate::store::projects::{self, ProjectId};

use actions::{Action, ActionId, Placement};
use anchor::Anchor;
use context::{ContextBudget, Surroundings};
use inline::{InlineEngine, Trigger};
use ledger::{SuggestionLedger, TemplateRef};
use notes::NotesIndex;

/// The template of inline completion (A/B versions are chosen by weight).
pub const INLINE_TEMPLATE: &str = "inline_continuation";

/// Names near the cursor that pick story notes.
const MAX_NAMES: usize = 12;

/// Sampling temperature: a little invention, not much (the author's voice matters).
const INLINE_TEMPERATURE: f32 = 0.7;
const ACTION_TEMPERATURE: f32 = 0.8;

#[derive(Debug, thiserror::Error)]
pub enum AssistError {
    /// The router could not produce an answer (not configured, offline, all failed, …).
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The provider failed after the answer had started streaming.
    #[error("{provider}: the answer broke off: {error}", provider = provider.display_name)]
    Interrupted {
        provider: ProviderRef,
        error: Box<ProviderError>,
    },
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The application services could not be opened (the author-facing reason).
    #[error("{0}")]
    Services(String),
    /// The request was cancelled or superseded.
    #[error("cancelled")]
    Cancelled,
    /// The model answered, but nothing of it could go into the manuscript.
    #[error("the answer held no usable text")]
    Empty,
}

impl AssistError {
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            AssistError::Cancelled | AssistError::Route(RouteError::Cancelled)
        )
    }
}

/// One inline completion request, in domain terms.
#[derive(Debug, Clone)]
pub struct InlineRequest {
    pub document: DocumentSnapshot,
    pub cursor: CharOffset,
    pub trigger: Trigger,
    /// How many distinct suggestions the editor can show (1 to [`inline::MAX_ALTERNATIVES`]):
    /// more than one only when the author asked and the editor cycles through them.
    pub alternatives: usize,
    pub settings: Arc<Settings>,
    /// The workspace folder holding the document; `None` for the `default` project.
    pub project_root: Option<PathBuf>,
    /// Fires when the editor cancels or drops the request.
    pub cancel: CancellationToken,
}

/// A ghost-text suggestion.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineSuggestion {
    pub id: String,
    pub text: String,
    /// Served from the prefix cache, without a provider call.
    pub from_cache: bool,
}

impl std::fmt::Debug for InlineSuggestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineSuggestion")
            .field("id", &self.id)
            .field("chars", &self.text.chars().count())
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

/// One code action to run.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub action: Action,
    pub document: DocumentSnapshot,
    /// The selection (empty at a cursor), in chars.
    pub span: Range<CharOffset>,
    pub settings: Arc<Settings>,
    pub project_root: Option<PathBuf>,
    /// What the author wants to happen next (`storyteller.generate`'s `instruction`), already
    /// validated by [`actions::parse_instruction`]; `None` when the author gave none.
    pub instruction: Option<String>,
}

/// Everything an action needs once its prompt is built.
#[derive(Debug)]
pub struct PreparedAction {
    pub action: Action,
    pub template: TemplateRef,
    pub request: CompletionRequest,
    /// The selection (or cursor) and its surroundings, to find it again before editing.
    pub anchor: Anchor,
    surroundings: Surroundings,
}

/// An action's text, ready to go into the manuscript.
#[derive(Clone)]
pub struct GeneratedText {
    pub text: String,
    pub provider: ProviderRef,
    pub failed_over: bool,
}

impl std::fmt::Debug for GeneratedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedText")
            .field("chars", &self.text.chars().count())
            .field("provider", &self.provider.display_name)
            .field("failed_over", &self.failed_over)
            .finish()
    }
}

/// Where an action's text goes in the document now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedEdit {
    /// Chars of the current text replaced (empty for an insertion).
    pub replace: Range<usize>,
    pub text: String,
}

/// The writing features of one session: story notes, inline bookkeeping, suggestion ledger.
#[derive(Default)]
pub struct Assistant {
    pub notes: NotesIndex,
    pub inline: InlineEngine,
    pub ledger: SuggestionLedger,
    /// Project ids by workspace root (`None`: the default project); they never change.
    projects: Mutex<HashMap<Option<PathBuf>, ProjectId>>,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("notes", &self.notes)
            .finish_non_exhaustive()
    }
}

impl Assistant {
    pub fn new() -> Self {
        Assistant::default()
    }

    /// The project of a workspace root (`None`: the default project), cached for the session.
    pub async fn project(&self, app: &App, root: Option<&Path>) -> Result<ProjectId, AssistError> {
        let key = root.map(Path::to_path_buf);
        if let Some(id) = self.lock_projects().get(&key) {
            return Ok(*id);
        }
        let id = match &key {
            Some(root) => app.project_for(Some(root)).await?,
            None => {
                app.store()
                    .call(|conn| Ok(projects::default_project(conn)?.id))
                    .await?
            }
        };
        self.lock_projects().insert(key, id);
        Ok(id)
    }

    fn lock_projects(&self) -> std::sync::MutexGuard<'_, HashMap<Option<PathBuf>, ProjectId>> {
        self.projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ghost-text continuations at the cursor, best first: up to `request.alternatives` distinct
    /// ones (the provider calls run concurrently, each through the router; one that fails does
    /// not lose the others), empty when there is nothing to offer. Superseded and cancelled
    /// requests end with [`AssistError::Cancelled`] and their provider calls are dropped.
    pub async fn continue_inline(
        &self,
        app: &App,
        request: InlineRequest,
    ) -> Result<Vec<InlineSuggestion>, AssistError> {
        let uri = request.document.uri().to_string();
        let text = request.document.text();
        let cursor = request.cursor.0.min(text.len_chars());
        let ticket = self.inline.begin(&uri, request.cancel.clone());
        let result = async {
            let typed_nothing_ok = request.trigger == Trigger::Automatic;
            if let Some(hit) = self.inline.cached(&uri, text, cursor, typed_nothing_ok) {
                return Ok(vec![InlineSuggestion {
                    id: hit.id,
                    text: hit.text,
                    from_cache: true,
                }]);
            }
            let debounce = Duration::from_millis(request.settings.inline.debounce_ms);
            if !self.inline.debounce(&ticket, debounce).await {
                return Err(AssistError::Cancelled);
            }
            let project = self.project(app, request.project_root.as_deref()).await?;
            let router = app.router(project).await.map_err(app_error)?;

            let surroundings = context::surroundings(text, cursor, cursor, ContextBudget::INLINE);
            let notes = self.notes_for(
                request.project_root.as_deref(),
                &surroundings,
                ContextBudget::INLINE,
            );
            let template = app.registry().select(INLINE_TEMPLATE)?;
            let heading = surroundings.heading.clone().unwrap_or_default();
            let vars = Vars::new()
                .with("before", &surroundings.before)
                .with("after", &surroundings.after)
                .with("heading", &heading)
                .with("notes", &notes);
            let prompt = app.registry().render(&template, &vars)?;
            let settings = &request.settings;
            let completion = CompletionRequest {
                system: None,
                messages: vec![Message::user(prompt)],
                max_tokens: settings.inline.max_tokens,
                temperature: Some(INLINE_TEMPERATURE),
                stop: Vec::new(),
                cancel: ticket.cancel().clone(),
                timeout: settings.inline_timeout(),
                first_byte_timeout: settings.inline_timeout(),
                idle_timeout: settings.inline_timeout(),
            };
            let count = request.alternatives.clamp(1, inline::MAX_ALTERNATIVES);
            let asks: Vec<CompletionRequest> = (0..count)
                .map(|index| inline::alternative(&completion, index, count))
                .collect();
            let span = tracing::info_span!("assist", action = "inline", alternatives = count);
            let answers = futures::future::join_all(asks.iter().map(|ask| {
                tracing::Instrument::instrument(
                    router.generate(ask, Budget::inline(settings)),
                    span.clone(),
                )
            }))
            .await;
            if ticket.is_cancelled() {
                return Err(AssistError::Cancelled);
            }
            let mut texts: Vec<String> = Vec::new();
            let mut first_error = None;
            for answer in answers {
                let routed = match answer {
                    Ok(routed) => routed,
                    Err(error) => {
                        first_error.get_or_insert(error);
                        continue;
                    }
                };
                let cut_off = routed.value.finish == FinishReason::Length;
                let cleaned = shape::inline_continuation(
                    &routed.value.text,
                    &surroundings.before,
                    &surroundings.after,
                    cut_off,
                );
                if let Some(cleaned) = cleaned
                    && !texts.iter().any(|t| inline::same_suggestion(t, &cleaned))
                {
                    texts.push(cleaned);
                }
            }
            if texts.is_empty() {
                // Nothing to show: a failure, if one alternative had one, is the author's news.
                return match first_error {
                    Some(error) => Err(error.into()),
                    None => Ok(Vec::new()),
                };
            }
            let template = TemplateRef {
                name: template.name.clone(),
                version: template.version,
            };
            let suggestions: Vec<InlineSuggestion> = texts
                .into_iter()
                .map(|alternative| InlineSuggestion {
                    id: self.ledger.issue(template.clone()),
                    text: alternative,
                    from_cache: false,
                })
                .collect();
            // Typing on serves the first (the one an editor shows first) from memory.
            if let Some(first) = suggestions.first() {
                self.inline
                    .remember(&uri, text, cursor, &first.id, &first.text);
            }
            // Counting each shown suggestion is a SQLite write: never on the path of the answer.
            let registry = app.registry().clone();
            let shown = suggestions.len();
            tokio::spawn(async move {
                for _ in 0..shown {
                    if let Err(e) = registry
                        .record_usage(&template.name, template.version)
                        .await
                    {
                        tracing::warn!("prompt usage not counted: {e}");
                    }
                }
            });
            Ok(suggestions)
        }
        .await;
        self.inline.finish(&ticket);
        match result {
            Err(AssistError::Route(RouteError::Cancelled)) => Err(AssistError::Cancelled),
            other => other,
        }
    }

    /// Story notes relevant to the names around the cursor, within the budget.
    fn notes_for(
        &self,
        root: Option<&Path>,
        around: &Surroundings,
        budget: ContextBudget,
    ) -> String {
        let Some(root) = root else {
            return String::new();
        };
        let names = context::names_near(&around.before, &around.after, MAX_NAMES);
        self.notes.relevant(root, &names, budget.notes_chars())
    }

    /// Builds the prompt of an action (no provider call). `cancel` stops its generation.
    pub fn prepare_action(
        &self,
        registry: &Registry,
        request: &ActionRequest,
        cancel: CancellationToken,
    ) -> Result<PreparedAction, AssistError> {
        let text = request.document.text();
        let span = request.span.start.0..request.span.end.0;
        let anchor = Anchor::capture(text, request.document.version(), span.clone());
        let span = anchor.span();
        let surroundings = context::surroundings(text, span.start, span.end, ContextBudget::ACTION);
        let notes = self.notes_for(
            request.project_root.as_deref(),
            &surroundings,
            ContextBudget::ACTION,
        );
        let id = request.action.id();
        let template = registry.select(id.template())?;
        let selection = anchor.selected().to_string();
        let heading = surroundings.heading.clone().unwrap_or_default();
        let tone = request
            .action
            .tone()
            .map(actions::Tone::as_str)
            .unwrap_or_default();
        let character = if id == ActionId::DescribeCharacter {
            character_name(&selection)
        } else {
            String::new()
        };
        let vars = Vars::new()
            .with("before", &surroundings.before)
            .with("after", &surroundings.after)
            .with("heading", &heading)
            .with("notes", &notes)
            .with("selection", &selection)
            .with("tone", tone)
            .with("character", &character)
            .with(
                "instruction",
                request.instruction.as_deref().unwrap_or_default(),
            );
        let prompt = registry.render(&template, &vars)?;
        let timeout = request.settings.action_timeout();
        let completion = CompletionRequest {
            system: None,
            messages: vec![Message::user(prompt)],
            max_tokens: request.settings.actions.max_tokens,
            temperature: Some(ACTION_TEMPERATURE),
            stop: Vec::new(),
            cancel,
            timeout,
            first_byte_timeout: timeout.min(crate::providers::DEFAULT_FIRST_BYTE_TIMEOUT),
            idle_timeout: timeout.min(crate::providers::DEFAULT_IDLE_TIMEOUT),
        };
        Ok(PreparedAction {
            action: request.action.clone(),
            template: template_ref(&template),
            request: completion,
            anchor,
            surroundings,
        })
    }

    /// Streams an action's text from the router. `progress` sees the text received so far.
    pub async fn generate_action(
        &self,
        router: &Router,
        prepared: &PreparedAction,
        budget: Budget,
        mut progress: impl FnMut(&str),
    ) -> Result<GeneratedText, AssistError> {
        let span = tracing::info_span!("assist", action = prepared.action.id().as_str());
        let routed = {
            let _entered = span.enter();
            router.stream(&prepared.request, budget)
        }
        .await?;
        let provider = routed.provider.clone();
        let mut events = routed.value.events;
        let mut raw = String::new();
        let cancel = &prepared.request.cancel;
        loop {
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(AssistError::Cancelled),
                next = events.next() => next,
            };
            match next {
                Some(Ok(StreamEvent::Delta(delta))) => {
                    raw.push_str(&delta);
                    progress(&raw);
                }
                Some(Ok(StreamEvent::Done { .. })) | None => break,
                Some(Err(ProviderError::Cancelled)) => return Err(AssistError::Cancelled),
                Some(Err(error)) => {
                    return Err(AssistError::Interrupted {
                        provider,
                        error: Box::new(error),
                    });
                }
            }
        }
        let around = &prepared.surroundings;
        let text = shape::action_output(
            &raw,
            prepared.action.id().placement(),
            &around.before,
            prepared.anchor.selected(),
            &around.after,
        )
        .ok_or(AssistError::Empty)?;
        Ok(GeneratedText {
            text,
            provider,
            failed_over: routed.failed_over,
        })
    }

    /// Counts a shown inline suggestion as accepted (`storyteller.feedback`). Returns the template
    /// it was counted for; `None` when the id is unknown (or was already counted).
    pub async fn accept(
        &self,
        registry: &Registry,
        suggestion_id: &str,
        accepted: bool,
    ) -> Result<Option<TemplateRef>, AssistError> {
        let Some(template) = self.ledger.take(suggestion_id) else {
            return Ok(None);
        };
        if accepted {
            registry
                .record_success(&template.name, template.version)
                .await?;
        }
        Ok(Some(template))
    }
}

/// Where `generated` goes in `document` now: the anchor found again (the author may have typed
/// elsewhere meanwhile), then the placement of the action. `Err` when the anchored text changed.
pub fn place(
    prepared: &PreparedAction,
    document: &DocumentSnapshot,
    generated: &str,
) -> Result<PlacedEdit, anchor::Conflict> {
    if !document.is_in_sync() {
        return Err(anchor::Conflict);
    }
    let span = prepared
        .anchor
        .locate(document.text(), document.version())?;
    let replace = match prepared.action.id().placement() {
        Placement::ReplaceSelection => span,
        Placement::AtCursor | Placement::AfterSelection => span.end..span.end,
    };
    Ok(PlacedEdit {
        replace,
        text: generated.to_string(),
    })
}

fn template_ref(template: &crate::prompts::Template) -> TemplateRef {
    TemplateRef {
        name: template.name.clone(),
        version: template.version,
    }
}

/// Maps an application error (opening a router) to the assist error the author sees.
fn app_error(e: crate::app::AppError) -> AssistError {
    match e {
        crate::app::AppError::Store(e) => AssistError::Store(e),
        other => AssistError::Services(other.to_string()),
    }
}

/// The character a "Describe character" selection names: the selection itself when it reads as
/// a name (a few capitalised words), else empty (the template then infers it from the passage).
fn character_name(selection: &str) -> String {
    let words: Vec<&str> = selection.split_whitespace().collect();
    let reads_as_name = (1..=4).contains(&words.len())
        && words.iter().all(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            w.chars().next().is_some_and(char::is_uppercase)
        });
    if reads_as_name {
        words.join(" ")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_capitalised_selection_names_the_character() {
        let cases = [
            ("Mara", "Mara"),
            (" Mara Quill ", "Mara Quill"),
            ("Captain Ahab,", "Captain Ahab,"),
            ("the harbour master", ""),
            ("Mara climbed the stairs and looked out.", ""),
        ];
        for (selection, expected) in cases {
            assert_eq!(character_name(selection), expected, "{selection:?}");
        }
    }
}
