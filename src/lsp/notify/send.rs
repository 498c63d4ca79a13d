//! Sending: messages (`window/showMessage`, or `window/showMessageRequest` with buttons, on a
//! task of their own), requests to the editor that survive a late answer ([`request_editor`]),
//! `storyteller/status`, `storyteller/openSettings`, and the cancellable `$/progress` of running
//! actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_lsp::Client;
use tower_lsp::lsp_types::notification::{Notification, Progress as ProgressNotification};
use tower_lsp::lsp_types::request::{ShowMessageRequest, WorkDoneProgressCreate};
use tower_lsp::lsp_types::{
    MessageActionItem, MessageType, NumberOrString, ProgressParams, ProgressParamsValue,
    ShowMessageRequestParams, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressCancelParams, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};

use super::buttons::act;
use super::policy::Button;
use super::{OPEN_SETTINGS_METHOD, RetryAction, STATUS_METHOD};
use crate::app::App;
use crate::app::ProjectId;
use crate::config::CredentialStoreChoice;
use crate::credentials::FallbackNotice;
use crate::lsp::session::ServerState;
use crate::messages;

/// How long the editor may take to accept a progress token.
const PROGRESS_CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a request to the editor on a task of its own and waits for the answer at most `limit`.
///
/// Why a task: tower-lsp 0.20 panics (`Pending::insert`: "receiver already dropped"), ending the
/// session, when an answer arrives for a request whose future was dropped — which a timeout, or a
/// handler dropped by `$/cancelRequest`, would do. The task keeps the waiter alive until the
/// answer comes, whatever happens to the caller. `None`: no answer in time.
pub(crate) async fn request_editor<R>(
    client: &Client,
    params: R::Params,
    limit: Duration,
) -> Option<tower_lsp::jsonrpc::Result<R::Result>>
where
    R: tower_lsp::lsp_types::request::Request,
    R::Params: Send + 'static,
    R::Result: Send + 'static,
{
    let client = client.clone();
    let answer = tokio::spawn(async move { client.send_request::<R>(params).await });
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(result)) => Some(result),
        _ => None,
    }
}

enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = Value;
    const METHOD: &'static str = STATUS_METHOD;
}

enum OpenSettingsNotification {}

impl Notification for OpenSettingsNotification {
    type Params = Value;
    const METHOD: &'static str = OPEN_SETTINGS_METHOD;
}

/// Who to tell, and about which project.
#[derive(Clone)]
pub(crate) struct Audience {
    pub client: Client,
    pub state: Arc<ServerState>,
    pub app: App,
    pub project: Option<ProjectId>,
}

/// Sends `storyteller/status` for `project`.
pub(crate) async fn send_status(client: &Client, app: &App, project: ProjectId) {
    match app.router(project).await {
        Ok(router) => match serde_json::to_value(router.status()) {
            Ok(status) => {
                client.send_notification::<StatusNotification>(status).await;
            }
            Err(e) => tracing::warn!("status not encoded: {e}"),
        },
        Err(e) => tracing::warn!("no status for project {project}: {e}"),
    }
}

/// Where keys are kept, told once per process: information when the `credentialStore` setting
/// chose the encrypted file, the §7 "fallback store" warning when the keychain was not usable.
pub(crate) async fn tell_credential_store(client: &Client, notice: &FallbackNotice) {
    static TOLD: AtomicBool = AtomicBool::new(false);
    if TOLD.swap(true, Ordering::SeqCst) {
        return;
    }
    let kind = if notice.chosen {
        MessageType::INFO
    } else {
        MessageType::WARNING
    };
    tell(client, kind, notice.message()).await;
}

/// At start, when the `credentialStore` setting chose the file: say so once (opening the file
/// store is cheap; `auto` is not probed here, its warning comes when a key is stored).
pub(crate) fn announce_chosen_credential_store(client: &Client, app: &App) {
    if app.settings().credential_store != CredentialStoreChoice::File {
        return;
    }
    let (client, app) = (client.clone(), app.clone());
    tokio::spawn(async move {
        if let Ok((_, Some(notice))) = app.credentials().await {
            tell_credential_store(&client, &notice).await;
        }
    });
}

/// A plain message.
pub(crate) async fn tell(client: &Client, kind: MessageType, text: impl Into<String>) {
    client.show_message(kind, text.into()).await;
}

/// Shows `text` with `buttons` and acts on the author's choice, on a task of its own (a dialog
/// may stay open for minutes). Clients without message buttons get the text with the equivalent
/// terminal command.
pub(crate) fn ask(
    audience: Audience,
    kind: MessageType,
    text: String,
    buttons: Vec<Button>,
    retry: Option<RetryAction>,
) {
    tokio::spawn(async move {
        if !audience.state.client().message_actions {
            let hint = buttons
                .iter()
                .find_map(Button::cli_equivalent)
                .map(|command| messages::cli_hint(&command));
            let text = match hint {
                Some(hint) => format!("{text} {hint}"),
                None => text,
            };
            tell(&audience.client, kind, text).await;
            return;
        }
        let items = buttons
            .iter()
            .map(|b| MessageActionItem {
                title: b.label(),
                properties: HashMap::new(),
            })
            .collect();
        let params = ShowMessageRequestParams {
            typ: kind,
            message: text,
            actions: Some(items),
        };
        // A dialog may stay open as long as the author likes; the session's end stops waiting.
        let answer =
            request_editor::<ShowMessageRequest>(&audience.client, params, Duration::MAX).await;
        let chosen = match answer {
            Some(Ok(Some(item))) => buttons.into_iter().find(|b| b.label() == item.title),
            Some(Ok(None)) | None => None,
            Some(Err(e)) => {
                tracing::debug!("message request not answered: {e}");
                None
            }
        };
        if let Some(button) = chosen {
            act(audience, button, retry).await;
        }
    });
}

/// `storyteller/openSettings` for editors that handle it (`{reason, providerId?}`: with a
/// provider id the editor opens that provider's edit form), else the terminal command.
pub(super) async fn open_settings(client: &Client, state: &ServerState, button: &Button) {
    if state.client().open_settings {
        let mut params = json!({ "reason": button.settings_reason() });
        if let Some(id) = button.settings_provider() {
            params["providerId"] = json!(id);
        }
        client
            .send_notification::<OpenSettingsNotification>(params)
            .await;
    } else if let Some(command) = button.cli_equivalent() {
        tell(client, MessageType::INFO, messages::cli_hint(&command)).await;
    }
}

/// `window/workDoneProgress/cancel`: cancels the action behind the token.
pub(crate) async fn on_progress_cancel(state: &ServerState, params: WorkDoneProgressCancelParams) {
    let token = token_key(&params.token);
    if !state.notifier.cancel_progress(&token) {
        tracing::debug!(token, "cancel for a finished or unknown progress");
    }
}

fn token_key(token: &NumberOrString) -> String {
    match token {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    }
}

/// The `$/progress` of one running action; a no-op for clients without work-done progress.
pub(crate) struct Progress {
    client: Client,
    state: Arc<ServerState>,
    token: Option<NumberOrString>,
}

impl Progress {
    /// Creates a token with the editor and begins the progress; cancelling it fires `cancel`.
    pub async fn begin(
        client: &Client,
        state: &Arc<ServerState>,
        title: &str,
        cancel: CancellationToken,
    ) -> Progress {
        let mut progress = Progress {
            client: client.clone(),
            state: state.clone(),
            token: None,
        };
        if !state.client().work_done_progress {
            return progress;
        }
        let n = state.notifier.next_token.fetch_add(1, Ordering::Relaxed);
        let token = NumberOrString::String(format!("storyteller-{n}"));
        let created = request_editor::<WorkDoneProgressCreate>(
            client,
            WorkDoneProgressCreateParams {
                token: token.clone(),
            },
            PROGRESS_CREATE_TIMEOUT,
        )
        .await;
        if !matches!(created, Some(Ok(()))) {
            tracing::debug!("the editor did not accept a progress token; no progress shown");
            return progress;
        }
        state.notifier.register_progress(token_key(&token), cancel);
        progress.token = Some(token);
        progress
            .send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_string(),
                cancellable: Some(true),
                message: None,
                percentage: None,
            }))
            .await;
        progress
    }

    pub async fn report(&self, message: impl Into<String>) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message.into()),
            percentage: None,
        }))
        .await;
    }

    pub async fn end(mut self, message: &str) {
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(message.to_string()),
        }))
        .await;
        if let Some(token) = self.token.take() {
            self.state.notifier.unregister_progress(&token_key(&token));
        }
    }

    async fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client
                .send_notification::<ProgressNotification>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }
}

impl Drop for Progress {
    /// A progress dropped before its end (its request was cancelled with `$/cancelRequest`)
    /// still ends, so the editor does not show it running forever.
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        self.state.notifier.unregister_progress(&token_key(&token));
        let client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                client
                    .send_notification::<ProgressNotification>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(
                            WorkDoneProgressEnd {
                                message: Some(messages::progress::CANCELLED.to_string()),
                            },
                        )),
                    })
                    .await;
            });
        }
    }
}
