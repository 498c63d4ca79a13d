//! `storyteller.providers.*` and `storyteller.sessions.*` (DESIGN.md §3): decode the argument
//! object ([`admin::decode`]), run the [`admin`] operation on the command's project (the first
//! workspace folder's, else `default`), encode the result.
//!
//! Only what needs the editor lives here: the removal confirmation and the choice of the next
//! primary, asked with `window/showMessageRequest` (clients without message actions get the
//! CLI way instead), and the once-per-process warning that keys went to the encrypted file.
//! Everything else — validation, testing, key-before-row, rotation — is the domain's.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};
use tower_lsp::lsp_types::request::ShowMessageRequest;
use tower_lsp::lsp_types::{MessageActionItem, MessageType, ShowMessageRequestParams};

use super::commands::{CommandContext, CommandError, StorytellerCommand};
use crate::admin::{self, AdminError, KeyChoice, decode};
use crate::app::App;
use crate::app::ProjectId;
use crate::messages;

/// How long a confirmation waits for the author before it counts as "Cancel".
const ANSWER_PATIENCE: Duration = Duration::from_secs(300);

impl From<AdminError> for CommandError {
    fn from(e: AdminError) -> CommandError {
        match e {
            AdminError::Invalid { field, reason } | AdminError::NotFound { field, reason } => {
                CommandError::InvalidArgument { field, reason }
            }
            other => {
                let kind = other.kind();
                // The message is the author-facing text; it never holds a key (see AdminError).
                tracing::info!(kind, "provider command failed: {other}");
                CommandError::Failed {
                    message: other.to_string(),
                    kind: Some(kind.to_string()),
                }
            }
        }
    }
}

pub(crate) async fn run(
    cx: CommandContext,
    command: StorytellerCommand,
    args: Map<String, Value>,
) -> Result<Value, CommandError> {
    use StorytellerCommand::*;
    let app = cx
        .state
        .app()
        .await
        .map_err(|reason| CommandError::Failed {
            message: reason,
            kind: Some("notStarted".into()),
        })?;
    let project = admin::current_project(&app).await?;
    match command {
        ProvidersList => {
            decode::nothing(args)?;
            encode(admin::list(&app, project).await?)
        }
        ProvidersCatalog => {
            decode::nothing(args)?;
            encode(admin::catalog(&app))
        }
        ProvidersTest => {
            let (request, kind) = decode::test(args)?;
            encode(admin::test(&app, project, request, kind).await?)
        }
        ProvidersAdd => {
            let request = decode::add(args)?;
            let stores_key = matches!(request.key, KeyChoice::Own(_));
            let row = admin::add(&app, project, request).await?;
            if stores_key {
                warn_about_fallback_once(&cx, &app).await;
            }
            Ok(json!({ "id": row.id.0, "model": row.model }))
        }
        ProvidersUpdate => {
            let request = decode::update(args)?;
            let updated = admin::update(&app, project, request).await?;
            if updated.key_rotated {
                warn_about_fallback_once(&cx, &app).await;
            }
            Ok(json!({
                "id": updated.row.id.0,
                "tested": updated.tested,
                "keyRotated": updated.key_rotated,
            }))
        }
        ProvidersRemove => remove(&cx, &app, project, args).await,
        ProvidersSetPrimary => {
            let id = decode::id(args)?;
            let row = admin::set_primary(&app, project, id).await?;
            Ok(json!({ "id": row.id.0, "isPrimary": true }))
        }
        ProvidersModels => {
            let request = decode::models(args)?;
            encode(admin::models(&app, project, request).await?)
        }
        SessionsList => {
            let kind = decode::sessions_list(args)?;
            encode(admin::list_sessions(&app, kind).await?)
        }
        SessionsAdd => {
            let request = decode::sessions_add(args)?;
            let row = admin::add_session(&app, request).await?;
            warn_about_fallback_once(&cx, &app).await;
            Ok(json!({
                "id": row.id.0,
                "provider": row.kind,
                "authType": row.auth_type,
                "name": row.name.as_str(),
            }))
        }
        SessionsRemove => {
            let id = decode::session_id(args)?;
            let removed = admin::remove_session(&app, id).await?;
            let detached: Vec<i64> = removed.detached.iter().map(|p| p.0).collect();
            Ok(json!({ "removed": true, "detached": detached }))
        }
        Status | Generate | PromptsList | PromptsSetActive | Feedback | NotesList
        | ProvidersSignIn | ProvidersSignInCode => Err(CommandError::NotAvailable(command)),
    }
}

/// `{id, confirmed?}`: confirm (unless `confirmed`), remove, then settle the primary.
async fn remove(
    cx: &CommandContext,
    app: &App,
    project: ProjectId,
    args: Map<String, Value>,
) -> Result<Value, CommandError> {
    let (id, confirmed) = decode::remove(args)?;
    let row = admin::provider(app, project, id).await?;
    let can_ask = cx.state.client().message_actions;
    if !confirmed {
        if !can_ask {
            return Err(CommandError::Failed {
                message: messages::admin::confirmation_required(&row.display_name, id.0),
                kind: Some("confirmationRequired".into()),
            });
        }
        let question = messages::confirm_remove(&row.display_name);
        let buttons = [messages::actions::REMOVE, messages::actions::CANCEL];
        let answer = ask(cx, MessageType::WARNING, question, &buttons).await;
        if answer.as_deref() != Some(messages::actions::REMOVE) {
            return Ok(json!({ "removed": false }));
        }
    }
    let removed = admin::remove(app, project, id).await?;
    let mut primary = None;
    if removed.needs_new_primary() {
        let chosen = if can_ask {
            let question = messages::admin::choose_primary(&removed.removed.display_name);
            let names: Vec<&str> = removed
                .remaining
                .iter()
                .map(|r| r.display_name.as_str())
                .collect();
            let answer = ask(cx, MessageType::INFO, question, &names).await;
            answer.and_then(|title| {
                removed
                    .remaining
                    .iter()
                    .find(|r| r.display_name == title)
                    .cloned()
            })
        } else {
            None
        };
        let told = chosen.is_some();
        // `remaining` is in routing order: with no primary left, the next by position first.
        let next = match chosen.or_else(|| removed.remaining.first().cloned()) {
            Some(next) => next,
            None => return Ok(json!({ "removed": true, "primary": null })),
        };
        admin::set_primary(app, project, next.id).await?;
        if !told {
            cx.client
                .show_message(
                    MessageType::INFO,
                    messages::admin::primary_chosen(&next.display_name),
                )
                .await;
        }
        primary = Some(next.id.0);
    }
    Ok(json!({ "removed": true, "primary": primary }))
}

/// Asks with buttons; the title chosen, or `None` when dismissed, unanswered or refused.
async fn ask(
    cx: &CommandContext,
    typ: MessageType,
    message: String,
    buttons: &[&str],
) -> Option<String> {
    let actions = buttons
        .iter()
        .map(|title| MessageActionItem {
            title: (*title).to_string(),
            properties: Default::default(),
        })
        .collect();
    let params = ShowMessageRequestParams {
        typ,
        message,
        actions: Some(actions),
    };
    match super::notify::request_editor::<ShowMessageRequest>(&cx.client, params, ANSWER_PATIENCE)
        .await
    {
        Some(Ok(Some(item))) => Some(item.title),
        Some(Ok(None)) | None => None,
        Some(Err(e)) => {
            tracing::info!("the editor did not answer a question: {e}");
            None
        }
    }
}

/// Once per process, when a key was just stored in the encrypted file: the §7 "fallback store"
/// warning (the author should know before trusting it with more keys), or the information that
/// the setting chose the file when it did (told at start already).
async fn warn_about_fallback_once(cx: &CommandContext, app: &App) {
    if let Ok((_, Some(notice))) = app.credentials().await {
        super::notify::tell_credential_store(&cx.client, &notice).await;
    }
}

fn encode<T: Serialize>(value: T) -> Result<Value, CommandError> {
    serde_json::to_value(value).map_err(|e| CommandError::Failed {
        message: format!("could not encode the result: {e}"),
        kind: Some("internal".into()),
    })
}
