//! `textDocument/codeAction`: the writing actions offered on a selection or at the cursor
//! (catalogue in `assist::actions`). Each runs `storyteller.generate` with its id, the document,
//! the range, the version it was listed for and, for rewrites, the tone.
//!
//! "Continue scene with…" is the one action whose command the editor runs itself
//! ([`CONTINUE_WITH_COMMAND`]): it asks the author what should happen next (an input box), then
//! sends `storyteller.generate` with the command's arguments plus `instruction`; Escape or an
//! empty answer cancels. It is offered only to editors that announce
//! `experimental.storyteller.askInstruction` (the VS Code extension, the Neovim plugin), so a
//! client that cannot ask (Helix, a plain LSP client) never sees an action it cannot run.
//!
//! Listing never calls a provider (DESIGN.md §3): it reads the catalogue and the router's status.
//! While offline or not configured, clients with `codeActionDisabledSupport` see the actions
//! disabled with the reason; others get no AI actions and one message.

use std::sync::Arc;
use std::time::Duration;

use ropey::RopeSlice;
use serde_json::json;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CodeAction, CodeActionDisabled, CodeActionKind, CodeActionOrCommand, CodeActionParams,
    CodeActionResponse, Command, MessageType, Range,
};
use unicode_segmentation::UnicodeSegmentation;

use super::capabilities::{REWRITE_KIND, WRITE_KIND};
use super::commands::StorytellerCommand;
use super::notify;
use super::positions::to_document_range;
use super::session::ServerState;
use crate::assist::actions::{self, Action, ActionId, ActionKind};
use crate::messages;
use crate::routing::RouterState;

/// The client-side command of "Continue scene with…". Its one argument is the argument object of
/// `storyteller.generate` without `instruction`; it is not an `executeCommand` of the server.
pub const CONTINUE_WITH_COMMAND: &str = "storyteller.continueSceneWith";

/// How long listing waits for the background start-up before offering the actions anyway.
const STARTUP_PATIENCE: Duration = Duration::from_secs(2);

/// Whether AI actions can run now, as far as the router knows without asking anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Availability {
    Ready,
    NotConfigured,
    Offline,
}

pub(crate) async fn list(
    state: &Arc<ServerState>,
    params: CodeActionParams,
) -> jsonrpc::Result<Option<CodeActionResponse>> {
    let uri = params.text_document.uri;
    // Asking for actions on a document we do not have is a client error worth seeing.
    let document = state
        .documents
        .snapshot(uri.as_str())
        .map_err(|e| jsonrpc::Error::invalid_params(format!("textDocument: {e}")))?;
    let span = document
        .span_of(to_document_range(params.range), state.encoding())
        .map_err(|e| jsonrpc::Error::invalid_params(format!("range: {e}")))?;
    let settings = state.settings.current();
    if !settings
        .languages
        .iter()
        .any(|l| l == document.language_id())
    {
        return Ok(Some(Vec::new()));
    }
    let selected = document.text().slice(span.start.0..span.end.0);
    // A block cursor is a cursor: the actions go after the character under it.
    let range = if is_block_cursor(&selected) {
        Range::new(params.range.end, params.range.end)
    } else {
        params.range
    };
    let has_selection =
        range != Range::new(range.end, range.end) && selected.chars().any(|c| !c.is_whitespace());
    let only = params.context.only.unwrap_or_default();
    let offered: Vec<Action> = actions::catalogue(has_selection)
        .into_iter()
        .chain(custom_actions(state, uri.as_str(), has_selection).await)
        .filter(|action| wanted(&only, kind_name(action.kind())))
        .collect();
    if offered.is_empty() {
        return Ok(Some(Vec::new()));
    }

    let reason = match availability(state, uri.as_str()).await {
        Availability::Ready => None,
        Availability::NotConfigured => Some(messages::NOT_CONFIGURED),
        Availability::Offline => Some(messages::OFFLINE),
    };
    if let Some(reason) = reason
        && !state.client().code_action_disabled
    {
        tell_unavailable(state, reason).await;
        return Ok(Some(Vec::new()));
    }

    let version = document.version();
    let ask_instruction = state.client().ask_instruction;
    let mut listed = Vec::new();
    for action in offered {
        let mut arguments = json!({
            "action": action.id().as_str(),
            "uri": uri,
            "range": range,
            "version": version,
        });
        if let Some(tone) = action.tone() {
            arguments["tone"] = json!(tone.as_str());
        }
        if let Some(template) = action.custom_template() {
            arguments["template"] = json!(template);
        }
        let kind = kind_name(action.kind());
        let generate = StorytellerCommand::Generate.name();
        let asks_after = ask_instruction && action.id() == ActionId::ContinueScene;
        let with = asks_after.then(|| arguments.clone());
        listed.push(code_action(
            action.title(),
            kind,
            generate,
            arguments,
            reason,
        ));
        if let Some(arguments) = with {
            listed.push(code_action(
                messages::action_titles::CONTINUE_SCENE_WITH.to_string(),
                kind,
                CONTINUE_WITH_COMMAND,
                arguments,
                reason,
            ));
        }
    }
    Ok(Some(listed))
}

/// One listed action running `command` with `arguments`, disabled with `reason` when set.
fn code_action(
    title: String,
    kind: &'static str,
    command: &str,
    arguments: serde_json::Value,
    reason: Option<&str>,
) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.clone(),
        kind: Some(CodeActionKind::new(kind)),
        command: Some(Command {
            title,
            command: command.to_string(),
            arguments: Some(vec![arguments]),
        }),
        disabled: reason.map(|reason| CodeActionDisabled {
            reason: reason.to_string(),
        }),
        ..CodeAction::default()
    })
}

/// The custom actions (workspace prompts with `action:`) of the document's workspace that fit a
/// selection or a cursor. Read from the loaded prompts: no file, no provider.
async fn custom_actions(state: &Arc<ServerState>, uri: &str, has_selection: bool) -> Vec<Action> {
    let _ = tokio::time::timeout(STARTUP_PATIENCE, state.ready.wait()).await;
    let Some(app) = state.app_now() else {
        return Vec::new();
    };
    let Some(root) = state.project_root_for(uri).and_then(|r| r.path()) else {
        return Vec::new();
    };
    crate::assist::templates::custom_actions(&app, &root, has_selection)
}

/// Helix (like Kakoune) has no empty selection: its block cursor covers one character, and that
/// one-character range is what it sends for code actions. One grapheme is therefore read as a
/// cursor — "Continue scene" on the last full stop writes after it, as the next keystroke would —
/// rather than as a passage to rewrite. A deliberate one-character selection elsewhere has
/// nothing worth rewriting either.
fn is_block_cursor(selected: &RopeSlice<'_>) -> bool {
    // Longer than any one grapheme worth considering: not a cursor, and not worth copying.
    const LONGEST_GRAPHEME_CHARS: usize = 16;
    let chars = selected.len_chars();
    if chars == 0 || chars > LONGEST_GRAPHEME_CHARS {
        return false;
    }
    selected.to_string().graphemes(true).count() == 1
}

fn kind_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Rewrite => REWRITE_KIND,
        ActionKind::Source => WRITE_KIND,
    }
}

/// LSP `only`: a kind is wanted when some requested kind is it or a parent of it
/// (`refactor` wants `refactor.rewrite.storyteller`).
fn wanted(only: &[CodeActionKind], kind: &str) -> bool {
    only.is_empty()
        || only.iter().any(|requested| {
            let requested = requested.as_str();
            kind == requested
                || kind
                    .strip_prefix(requested)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// The router's view, without a provider call. Start-up (database, prompts) is local and short:
/// it is waited for, briefly; if it takes longer, the actions are offered (running one waits).
async fn availability(state: &Arc<ServerState>, uri: &str) -> Availability {
    let _ = tokio::time::timeout(STARTUP_PATIENCE, state.ready.wait()).await;
    let Some(app) = state.app_now() else {
        return Availability::Ready;
    };
    let file = super::positions::file_path(uri);
    let Ok(context) = app.document_context(file.as_deref()).await else {
        return Availability::Ready;
    };
    match context.router.status().state {
        RouterState::NotConfigured => Availability::NotConfigured,
        RouterState::Offline => Availability::Offline,
        RouterState::Ready | RouterState::Degraded => Availability::Ready,
    }
}

/// For clients that cannot show disabled actions: the one message that explains their absence.
async fn tell_unavailable(state: &Arc<ServerState>, reason: &str) {
    if reason == messages::NOT_CONFIGURED {
        notify::offer_not_configured(state);
    } else if state.notifier.first_offline_notice()
        && let Some(client) = state.peer()
    {
        notify::tell(&client, MessageType::WARNING, reason).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grapheme_is_a_block_cursor_and_anything_else_is_not() {
        let cases = [
            ("", false),
            (".", true),
            ("r", true),
            (" ", true),
            ("e\u{301}", true), // e + combining acute: two chars, one grapheme
            ("\u{1f469}\u{200d}\u{1f467}", true), // woman, joiner, girl: one grapheme
            ("r.", false),
            ("her", false),
            ("a passage of prose", false),
        ];
        for (text, expected) in cases {
            let rope = ropey::Rope::from_str(text);
            assert_eq!(is_block_cursor(&rope.slice(..)), expected, "{text:?}");
        }
    }

    #[test]
    fn only_filters_by_kind_and_parent_kind() {
        let kinds = |names: &[&'static str]| -> Vec<CodeActionKind> {
            names.iter().map(|n| CodeActionKind::new(n)).collect()
        };
        let cases: &[(&[&'static str], &str, bool)] = &[
            (&[], REWRITE_KIND, true),
            (&["refactor"], REWRITE_KIND, true),
            (&["refactor.rewrite"], REWRITE_KIND, true),
            (&["refactor.rewrite.storyteller"], REWRITE_KIND, true),
            (&["refactor.re"], REWRITE_KIND, false),
            (&["quickfix"], REWRITE_KIND, false),
            (&["refactor"], WRITE_KIND, true),
            (&["refactor.write"], WRITE_KIND, true),
            (&["refactor.rewrite"], WRITE_KIND, false),
            (&["source"], WRITE_KIND, false),
            (&["source"], REWRITE_KIND, false),
        ];
        for (only, kind, expected) in cases {
            assert_eq!(wanted(&kinds(only), kind), *expected, "{only:?} {kind}");
        }
    }
}
