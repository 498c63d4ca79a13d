//! `storyteller.providers.signIn {provider, sessionName?}` and
//! `storyteller.providers.signInCode {code}`: "Sign in with OpenRouter" (admin::oauth).
//!
//! Only the editor's part lives here: the authorization page is opened with
//! `window/showDocument {external: true}` (through `notify::request_editor`, so a late answer
//! never ends the session), and told as a message with the address when the editor cannot open
//! it; the wait shows a cancellable progress. `$/cancelRequest` drops the handler, which closes
//! the loopback listener.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tower_lsp::Client;
use tower_lsp::lsp_types::request::ShowDocument;
use tower_lsp::lsp_types::{MessageType, ShowDocumentParams, Url};

use super::commands::{CommandContext, CommandError, StorytellerCommand};
use super::notify::{self, Progress};
use super::session::ServerState;
use crate::admin::{self, oauth};
use crate::messages;

/// How long the editor may take to say whether it opened the browser.
const SHOW_DOCUMENT_PATIENCE: Duration = Duration::from_secs(10);

struct EditorOpener {
    client: Client,
    state: Arc<ServerState>,
}

impl oauth::Opener for EditorOpener {
    async fn open(&self, url: String) {
        let opened = match Url::parse(&url) {
            Ok(uri) if self.state.client().show_document => matches!(
                notify::request_editor::<ShowDocument>(
                    &self.client,
                    ShowDocumentParams {
                        uri,
                        external: Some(true),
                        take_focus: None,
                        selection: None,
                    },
                    SHOW_DOCUMENT_PATIENCE,
                )
                .await,
                Some(Ok(result)) if result.success
            ),
            _ => false,
        };
        if !opened {
            notify::tell(
                &self.client,
                MessageType::INFO,
                messages::oauth::open_manually(&url),
            )
            .await;
        }
    }
}

pub(crate) async fn run(
    cx: CommandContext,
    command: StorytellerCommand,
    args: Map<String, Value>,
) -> Result<Value, CommandError> {
    if command == StorytellerCommand::ProvidersSignInCode {
        let code = oauth::decode_sign_in_code(args)?;
        oauth::complete_with_code(&code)?;
        return Ok(json!({ "accepted": true }));
    }
    let request = oauth::decode_sign_in(args)?;
    let app = cx
        .state
        .app()
        .await
        .map_err(|reason| CommandError::Failed {
            message: reason,
            kind: Some("notStarted".into()),
        })?;
    let project = admin::current_project(&app).await?;
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let progress = Progress::begin(
        &cx.client,
        &cx.state,
        messages::oauth::PROGRESS_TITLE,
        cancel.clone(),
    )
    .await;
    progress.report(messages::oauth::PROGRESS_WAITING).await;
    let opener = EditorOpener {
        client: cx.client.clone(),
        state: cx.state.clone(),
    };
    let result = oauth::sign_in(&app, project, request, &opener, &cancel).await;
    match result {
        Ok(signed_in) => {
            let text = messages::oauth::signed_in(
                signed_in.session.name.as_str(),
                &signed_in.provider.display_name,
            );
            progress.end(&text).await;
            notify::tell(&cx.client, MessageType::INFO, text).await;
            Ok(json!({
                "sessionId": signed_in.session.id.0,
                "sessionName": signed_in.session.name.as_str(),
                "authType": signed_in.session.auth_type,
                "providerId": signed_in.provider.id.0,
                "providerAdded": signed_in.provider_added,
            }))
        }
        Err(e) => {
            progress.end(&e.to_string()).await;
            Err(e.into())
        }
    }
}
