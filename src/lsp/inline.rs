//! Ghost-text suggestions at the cursor: the seam the assist layer fills ([`InlineSource`]) and
//! the handlers that serve it as LSP 3.18 inline completion (wire types in `inline_protocol`) or,
//! for clients without it (Helix), as one `textDocument/completion` item.
//!
//! The handlers resolve the document and cursor, check settings and readiness, and ask the
//! source; they never call a provider themselves. A request dropped by `$/cancelRequest` (or
//! superseded) cancels the query's token, so the source's HTTP call stops with it.

use std::ops::Range as OffsetRange;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc::{self, Error};
use tower_lsp::lsp_types::{
    self, Command, CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse,
    CompletionTextEdit, TextEdit, Url,
};

use super::commands::StorytellerCommand;
use super::notify;
use super::positions::{to_document_position, to_lsp_position};
use super::session::ServerState;
use crate::assist::InlineRequest;
use crate::assist::inline::Trigger;
use crate::documents::CharOffset;

/// A suggested continuation.
#[derive(Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// Identifies the suggestion in `storyteller.feedback` (acceptance statistics).
    pub id: String,
    pub text: String,
    /// Text the suggestion replaces; `None` inserts at the cursor.
    pub replaces: Option<OffsetRange<CharOffset>>,
}

/// Generated text is manuscript text: `{:?}` shows its length only.
impl std::fmt::Debug for Suggestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suggestion")
            .field("id", &self.id)
            .field("text_chars", &self.text.chars().count())
            .field("replaces", &self.replaces)
            .finish()
    }
}

/// Where suggestions come from: [`AssistInline`] (the assist layer) in the server; tests inject
/// their own.
#[async_trait]
pub trait InlineSource: Send + Sync {
    /// Suggestions for `request`, best first; empty when there is nothing to offer or the request
    /// was cancelled. Failures are reported to the author by the source (through `session`), not
    /// through this result.
    async fn suggest(&self, session: &Arc<ServerState>, request: InlineRequest) -> Vec<Suggestion>;
}

/// The server's inline source: the assist layer's continuation engine
/// ([`crate::assist::Assistant::continue_inline`]). Its failures never pop up a dialog: the status
/// notification tells them (see `notify`), except the once-per-session not-configured prompt
/// for a request the author invoked.
#[derive(Default)]
pub struct AssistInline;

#[async_trait]
impl InlineSource for AssistInline {
    async fn suggest(&self, state: &Arc<ServerState>, request: InlineRequest) -> Vec<Suggestion> {
        let Some(app) = state.app_now() else {
            return Vec::new();
        };
        let trigger = request.trigger;
        let file = request.document_path.clone();
        let (app_ref, file_ref) = (&app, file.as_deref());
        let context = move || app_ref.document_context(file_ref);
        match state.assistant.continue_inline(context, request).await {
            Ok(suggestions) => suggestions
                .into_iter()
                .map(|suggestion| Suggestion {
                    id: suggestion.id,
                    text: suggestion.text,
                    replaces: None,
                })
                .collect(),
            Err(error) => {
                // Only the EU question needs to know whose project it is.
                let project = match &error {
                    crate::assist::AssistError::Route(
                        crate::routing::RouteError::ConsentNeeded { .. },
                    ) => app
                        .document_context(file.as_deref())
                        .await
                        .ok()
                        .map(|c| c.project),
                    _ => None,
                };
                notify::inline_failed(state, &error, trigger, project);
                Vec::new()
            }
        }
    }
}

/// The source used until the assist layer is wired in: it never suggests anything.
pub struct NoSuggestions;

#[async_trait]
impl InlineSource for NoSuggestions {
    async fn suggest(&self, _: &Arc<ServerState>, _: InlineRequest) -> Vec<Suggestion> {
        Vec::new()
    }
}

/// A suggestion placed in the document, in the session's encoding.
pub(crate) struct PlacedSuggestion {
    pub suggestion: Suggestion,
    pub range: lsp_types::Range,
}

/// The command an accepted suggestion runs, so the prompt's success rate counts it.
pub(crate) fn feedback_command(suggestion_id: &str) -> Command {
    Command {
        title: "Accept suggestion".to_string(),
        command: StorytellerCommand::Feedback.name().to_string(),
        arguments: Some(vec![serde_json::json!({
            "suggestionId": suggestion_id,
            "accepted": true,
        })]),
    }
}

/// Resolves the document and cursor, then asks the source for up to `alternatives` suggestions.
/// Requests for documents that are not open or positions that do not exist are `InvalidParams`;
/// everything that merely means "no suggestion now" (disabled, other language, not ready in time,
/// out of sync) is an empty list.
pub(crate) async fn suggestions_at(
    state: &Arc<ServerState>,
    uri: &Url,
    position: lsp_types::Position,
    trigger: Trigger,
    alternatives: usize,
) -> jsonrpc::Result<Vec<PlacedSuggestion>> {
    let settings = state.settings.current();
    let document = state
        .documents
        .snapshot(uri.as_str())
        .map_err(|e| Error::invalid_params(format!("textDocument: {e}")))?;
    let encoding = state.encoding();
    let cursor = document
        .offset_of(to_document_position(position), encoding)
        .map_err(|e| Error::invalid_params(format!("position: {e}")))?;
    let serves_language = settings
        .languages
        .iter()
        .any(|l| l == document.language_id());
    if !settings.inline.enabled || !serves_language || !document.is_in_sync() {
        return Ok(Vec::new());
    }
    // Start-up (database, prompts) may still be running; a suggestion that arrives after its
    // timeout is useless, so wait no longer than that.
    if tokio::time::timeout(settings.inline_timeout(), state.ready.wait())
        .await
        .is_err()
    {
        return Ok(Vec::new());
    }

    let cancel = CancellationToken::new();
    // tower-lsp drops this future on `$/cancelRequest`; the guard turns that into cancellation
    // of the source's work.
    let _cancel_on_drop = cancel.clone().drop_guard();
    let request = InlineRequest {
        document_path: uri.to_file_path().ok(),
        document: document.clone(),
        cursor,
        trigger,
        alternatives,
        settings,
        cancel,
    };
    let suggestions = state.features.inline.suggest(state, request).await;

    let at_cursor = document
        .position_of(cursor, encoding)
        .map(to_lsp_position)
        .unwrap_or(position);
    Ok(suggestions
        .into_iter()
        .filter_map(|suggestion| {
            let range = match &suggestion.replaces {
                None => lsp_types::Range::new(at_cursor, at_cursor),
                Some(span) => lsp_types::Range::new(
                    to_lsp_position(document.position_of(span.start, encoding).ok()?),
                    to_lsp_position(document.position_of(span.end, encoding).ok()?),
                ),
            };
            Some(PlacedSuggestion { suggestion, range })
        })
        .collect())
}

/// `textDocument/completion`: the fallback for clients without inline completion. Clients that
/// have it get nothing here, so the author never sees the same suggestion twice.
///
/// One item, one provider call: Helix sends the same `Invoked` completion request when it pops
/// its menu by itself after a pause in typing as when the author asks, so alternatives here
/// would triple the provider calls of ordinary typing.
pub(crate) async fn completion(
    state: &Arc<ServerState>,
    params: CompletionParams,
) -> jsonrpc::Result<Option<CompletionResponse>> {
    if state.client_has_inline_completion() {
        return Ok(None);
    }
    let at = params.text_document_position;
    let placed = suggestions_at(
        state,
        &at.text_document.uri,
        at.position,
        Trigger::Invoked,
        1,
    )
    .await?;
    if placed.is_empty() {
        return Ok(None);
    }
    let items = placed
        .into_iter()
        .map(|PlacedSuggestion { suggestion, range }| CompletionItem {
            label: label_for(&suggestion.text),
            kind: Some(CompletionItemKind::TEXT),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(
                range,
                suggestion.text.clone(),
            ))),
            command: Some(feedback_command(&suggestion.id)),
            ..CompletionItem::default()
        })
        .collect();
    Ok(Some(CompletionResponse::Array(items)))
}

/// A completion menu shows one line: the start of the continuation.
fn label_for(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    let line = text.trim_start().lines().next().unwrap_or_default();
    if line.chars().count() > MAX_CHARS {
        let short: String = line.chars().take(MAX_CHARS).collect();
        format!("{short}…")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_labels_show_the_first_line_shortened() {
        assert_eq!(label_for("  and then\nmore"), "and then");
        let long = "x".repeat(80);
        assert_eq!(label_for(&long).chars().count(), 61);
        assert_eq!(label_for(""), "");
    }
}
