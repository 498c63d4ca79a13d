//! What to ask the model, and what to do with the answer: the writing features without the
//! protocol.
//!
//! - [`context`]: the text around a cursor or selection within a token budget, the chapter
//!   heading, the names near the cursor.
//! - [`notes`]: the story-notes index (`contextFiles`), refreshed on open/save/file-watch.
//! - [`actions`]: the catalogue of code actions and their ids and tones.
//! - [`inline`]: per-document debounce, supersede and prefix cache of inline completion.
//! - [`shape`]: trimming and joining generated text.
//! - [`story`]: the story's voice (`STORY.md`) and the language every prompt asks for.
//! - [`chapters`]: the ending of the previous chapter file, near a chapter's start.
//! - [`recent`]: values reused for a while (a document's language, its previous chapter).
//! - [`anchor`]: re-anchoring an edit after the author kept typing.
//! - [`ledger`]: which prompt version made which suggestion (acceptance statistics).
//! - [`acceptance`]: whether the author kept an action's or a suggestion's text, judged later.
//!
//! [`Assistant`] ties them to the application services ([`App`]: router, prompt registry) for one
//! session. This module knows no LSP: positions are char offsets into [`DocumentSnapshot`]s,
//! failures are [`AssistError`]s; the `lsp` layer turns them into messages.
//!
//! Must never: log manuscript, prompt or generated text; call a provider while listing actions;
//! block the async runtime (SQLite and file reads go to the blocking pool).

pub mod acceptance;
pub mod actions;
pub mod anchor;
pub mod chapters;
pub mod context;
pub mod failure;
pub mod inline;
pub mod ledger;
pub mod notes;
pub mod recent;
pub mod run;
pub mod shape;
pub mod story;
pub mod templates;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::app::ProjectContext;
use crate::config::Settings;
use crate::documents::{CharOffset, DocumentSnapshot};
use crate::prompts::{PromptError, Registry, Vars};
use crate::providers::{CompletionRequest, FinishReason, Message, ProviderError, StreamEvent};
use crate::routing::{Budget, ProviderRef, RouteError, Router};
use crate::store::StoreError;

use acceptance::AcceptanceTracker;
use actions::{Action, ActionId, Placement};
use anchor::Anchor;
use context::{ContextBudget, Surroundings};
use inline::{InlineEngine, Trigger};
use ledger::{SuggestionLedger, TemplateRef};
use notes::NotesIndex;

/// The template of inline completion (A/B versions are chosen by weight).
pub use crate::prompts::INLINE_TEMPLATE;

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
    /// The document's file (`None` for an unsaved buffer): finds the previous chapter.
    pub document_path: Option<PathBuf>,
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
    /// The document's file (`None` for an unsaved buffer): finds the previous chapter.
    pub document_path: Option<PathBuf>,
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
    /// `STORY.md` of each root, parsed once per change.
    stories: story::StoryCache,
    /// The language of each document, detected once in a while.
    languages: story::LanguageCache,
    /// The chapter before each document, read once in a while (`None`: there is none).
    previous_chapters: PreviousChapters,
    /// Applied actions and shown suggestions waiting to be judged.
    pub acceptance: AcceptanceTracker,
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

    /// Ghost-text continuations at the cursor, best first: up to `request.alternatives` distinct
    /// ones (the provider calls run concurrently, each through the router; one that fails does
    /// not lose the others), empty when there is nothing to offer. Superseded and cancelled
    /// requests end with [`AssistError::Cancelled`] and their provider calls are dropped.
    /// `resolve` gives the document's [`ProjectContext`] ([`crate::app::App::document_context`]);
    /// it is called only once the request survived its debounce (or hit the prefix cache), so a
    /// burst of keystrokes keeps the order it was typed in.
    pub async fn continue_inline<F, Fut>(
        &self,
        resolve: F,
        request: InlineRequest,
    ) -> Result<Vec<InlineSuggestion>, AssistError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<ProjectContext, crate::app::AppError>>,
    {
        let uri = request.document.uri().to_string();
        let text = request.document.text();
        let cursor = request.cursor.0.min(text.len_chars());
        let ticket = self.inline.begin(&uri, request.cancel.clone());
        let result = async {
            let typed_nothing_ok = request.trigger == Trigger::Automatic;
            if let Some(hit) = self.inline.cached(&uri, text, cursor, typed_nothing_ok) {
                if let Some(template) = self.ledger.get(&hit.id) {
                    let context = resolve().await?;
                    self.ghost_shown(
                        &context.registry,
                        &uri,
                        &hit.id,
                        template,
                        &hit.text,
                        cursor,
                        text,
                    );
                }
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
            let context = resolve().await?;
            let router = &context.router;

            // The heading is looked for from where the last request for this document left.
            let mut heading_memo = self.inline.take_heading_memo(&uri);
            let surroundings = context::surroundings_remembering(
                text,
                cursor,
                cursor,
                ContextBudget::INLINE,
                &mut heading_memo,
                Some(request.document.trail()),
            );
            self.inline.keep_heading_memo(&uri, heading_memo);
            let notes = self.notes_for(
                context.root.as_deref(),
                &surroundings,
                ContextBudget::INLINE,
            );
            let voice = self
                .voice(
                    &uri,
                    context.root.as_deref(),
                    request.document_path.as_deref(),
                    cursor,
                    &surroundings,
                    ContextBudget::INLINE,
                )
                .await;
            let template = context.registry.select(INLINE_TEMPLATE)?;
            let heading = surroundings.heading.clone().unwrap_or_default();
            let vars = voice
                .vars()
                .with("before", &surroundings.before)
                .with("after", &surroundings.after)
                .with("heading", &heading)
                .with("notes", &notes);
            let prompt = context.registry.render(&template, &vars)?;
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
            let answers = crate::usage_log::with_action(
                "inline",
                futures::future::join_all(asks.iter().map(|ask| {
                    tracing::Instrument::instrument(
                        router.generate(ask, Budget::inline(settings)),
                        span.clone(),
                    )
                })),
            )
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
                let seam =
                    shape::ReplyContext::inline(&surroundings.before, &surroundings.after, cut_off);
                let cleaned = shape::inline(&routed.value.text, &seam);
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
            // It is also the one followed for partial accepts (word or line accept, or typing
            // it); alternatives the author cycles to are counted by their feedback command.
            if let Some(first) = suggestions.first() {
                self.inline
                    .remember(&uri, text, cursor, &first.id, &first.text);
                self.ghost_shown(
                    &context.registry,
                    &uri,
                    &first.id,
                    template.clone(),
                    &first.text,
                    cursor,
                    text,
                );
            }
            // Counting each shown suggestion is a SQLite write: never on the path of the answer.
            let registry = context.registry.clone();
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

    /// Story notes chosen by the names around the cursor (and the `always` ones), within the
    /// budget.
    fn notes_for(
        &self,
        root: Option<&Path>,
        around: &Surroundings,
        budget: ContextBudget,
    ) -> String {
        let Some(root) = root else {
            return String::new();
        };
        self.notes
            .relevant(root, &around.before, &around.after, budget.notes_chars())
    }

    /// The story's voice, the language and the previous chapter's ending for a prompt at
    /// `start` (a char offset) of a document. Reads the previous chapter off the runtime.
    async fn voice(
        &self,
        uri: &str,
        root: Option<&Path>,
        document_path: Option<&Path>,
        start: usize,
        around: &Surroundings,
        budget: ContextBudget,
    ) -> Voice {
        let story = root
            .and_then(|root| Some((root, self.notes.story_source(root)?)))
            .map(|(root, source)| self.stories.get(root, &source));
        let language = self.languages.language(
            uri,
            story.as_ref().and_then(|s| s.language.as_deref()),
            &around.before,
            &around.after,
        );
        let story_block = match &story {
            Some(story) => story.for_prompt(&language, budget.story_chars()),
            None => String::new(),
        };
        // Near a chapter's start (the text before the cursor does not fill its budget), the
        // room left is given to the end of the previous chapter.
        let room = budget
            .before_chars()
            .saturating_sub(start)
            .min(budget.previous_chars());
        let previous = match document_path {
            Some(path) if room > 0 => self
                .previous_chapter(path)
                .await
                .and_then(|chapter| chapter.ending(room))
                .unwrap_or_default(),
            _ => String::new(),
        };
        Voice {
            story: story_block,
            language,
            previous,
        }
    }

    /// The chapter before the document at `path`, read off the runtime at most once per
    /// [`PREVIOUS_CHAPTER_TTL`] (ghost text near a chapter's start asks on every pause).
    async fn previous_chapter(&self, path: &Path) -> Option<Arc<chapters::PreviousChapter>> {
        let key = path.to_string_lossy();
        if let Some(known) = self.previous_chapters.0.get(&key) {
            return known;
        }
        let owned = path.to_path_buf();
        let read = tokio::task::spawn_blocking(move || chapters::previous_blocking(&owned))
            .await
            .ok()
            .flatten()
            .map(Arc::new);
        self.previous_chapters.0.put(&key, read.clone());
        read
    }

    /// Builds the prompt of an action (no provider call). `cancel` stops its generation.
    pub async fn prepare_action(
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
        // A custom action's template is its own (a workspace prompt with `action:`).
        let template = registry.select(request.action.template())?;
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
        let voice = self
            .voice(
                request.document.uri(),
                request.project_root.as_deref(),
                request.document_path.as_deref(),
                span.start,
                &surroundings,
                ContextBudget::ACTION,
            )
            .await;
        let vars = voice
            .vars()
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
        let routed = crate::usage_log::with_action(prepared.action.id().as_str(), {
            let _entered = span.enter();
            router.stream(&prepared.request, budget)
        })
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
        let seam = shape::ReplyContext {
            before: &around.before,
            selection: prepared.anchor.selected(),
            after: &around.after,
            placement: prepared.action.placement(),
            cut_off: false,
            dialogue: prepared.action.id() == ActionId::SuggestDialogue,
        };
        let text = shape::action(&raw, &seam).ok_or(AssistError::Empty)?.text;
        Ok(GeneratedText {
            text,
            provider,
            failed_over: routed.failed_over,
        })
    }

    /// Follows a shown suggestion for partial accepts; the one it replaces is counted.
    #[allow(clippy::too_many_arguments)]
    fn ghost_shown(
        &self,
        registry: &Registry,
        uri: &str,
        id: &str,
        template: TemplateRef,
        suggestion: &str,
        cursor: usize,
        text: &ropey::Rope,
    ) {
        if let Some(over) = self
            .acceptance
            .ghost_shown(uri, id, template, suggestion, cursor, text)
        {
            let due = acceptance::Due {
                actions: Vec::new(),
                ghosts: vec![over],
            };
            self.count_acceptance(registry, due, text.clone());
        }
    }

    /// Counts what `due` says the author kept: an action whose text is still (mostly) in `text`
    /// is a success of its template; a ghost suggestion taken in part a partial success with its
    /// share, unless `storyteller.feedback` counted it already. Judged and written on a task:
    /// never on the keystroke that made it due.
    pub fn count_acceptance(&self, registry: &Registry, due: acceptance::Due, text: ropey::Rope) {
        if due.is_empty() {
            return;
        }
        let partials: Vec<(TemplateRef, f64)> = due
            .ghosts
            .iter()
            .filter_map(|g| {
                let share = g.partial_share()?;
                // Forgotten from the ledger: a later full accept of the same id is not counted
                // twice, and one counted already by feedback is not counted here.
                self.ledger.take(&g.id)?;
                Some((g.template.clone(), share))
            })
            .collect();
        if partials.is_empty() && due.actions.is_empty() {
            return;
        }
        let registry = registry.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for (template, share) in partials {
                if let Err(e) = registry
                    .record_partial(&template.name, template.version, share)
                    .await
                {
                    tracing::warn!("partial acceptance not counted: {e}");
                }
            }
            let actions = due.actions;
            if actions.is_empty() {
                return;
            }
            let judged = tokio::task::spawn_blocking(move || {
                actions
                    .into_iter()
                    .map(|a| {
                        let share = a.judge(&text);
                        (a.template, acceptance::is_kept(share))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (template, kept) in judged {
                tracing::debug!(template = %template.name, kept, "action judged");
                if kept
                    && let Err(e) = registry
                        .record_success(&template.name, template.version)
                        .await
                {
                    tracing::warn!("prompt success not counted: {e}");
                }
            }
        });
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

/// How long the chapter before a document is reused: it is the chapter the author is not editing.
const PREVIOUS_CHAPTER_TTL: Duration = Duration::from_secs(10);

/// The chapter before each document, by path, reused for [`PREVIOUS_CHAPTER_TTL`].
struct PreviousChapters(recent::Recent<Option<Arc<chapters::PreviousChapter>>>);

impl Default for PreviousChapters {
    fn default() -> Self {
        PreviousChapters(recent::Recent::new(PREVIOUS_CHAPTER_TTL, 256))
    }
}

/// What every prompt carries about the story as a whole: `STORY.md`'s voice block, the language
/// to write in, and the end of the previous chapter (each empty when there is none).
#[derive(Default)]
struct Voice {
    story: String,
    language: String,
    previous: String,
}

impl Voice {
    /// The template variables `story`, `language` and `previous`.
    fn vars(&self) -> Vars<'_> {
        Vars::new()
            .with("story", &self.story)
            .with("language", &self.language)
            .with("previous", &self.previous)
    }
}

/// Where `generated` goes in `document` now: the anchor found again (the author may have typed
/// elsewhere meanwhile), then the placement of the action. An insertion after the selection goes
/// to the end of the selection's sentence ([`shape::insertion_shift`], the same rule that shaped
/// the text); the text skipped to get there must be unchanged too. `Err` when the anchored text
/// changed.
pub fn place(
    prepared: &PreparedAction,
    document: &DocumentSnapshot,
    generated: &str,
) -> Result<PlacedEdit, anchor::Conflict> {
    if !document.is_in_sync() {
        return Err(anchor::Conflict);
    }
    let text = document.text();
    let span = prepared.anchor.locate(text, document.version())?;
    let replace = match prepared.action.placement() {
        Placement::ReplaceSelection => span,
        Placement::AtCursor => span.end..span.end,
        Placement::AfterSelection => {
            let after = &prepared.surroundings.after;
            let shift = shape::insertion_shift(
                &prepared.surroundings.before,
                prepared.anchor.selected(),
                after,
            );
            let at = span.end + shift;
            let unchanged = at <= text.len_chars()
                && text
                    .slice(span.end..at)
                    .chars()
                    .eq(after.chars().take(shift));
            if !unchanged {
                return Err(anchor::Conflict);
            }
            at..at
        }
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
impl From<crate::app::AppError> for AssistError {
    fn from(e: crate::app::AppError) -> AssistError {
        match e {
            crate::app::AppError::Store(e) => AssistError::Store(e),
            other => AssistError::Services(other.to_string()),
        }
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

/// A small deterministic sequence for the table-driven tests that mix pieces of text: each call
/// gives a number below its argument (xorshift; the same `seed` gives the same sequence).
#[cfg(test)]
pub(crate) fn test_sequence(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
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
