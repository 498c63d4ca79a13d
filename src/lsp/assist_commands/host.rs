//! The editor's side of a running code action ([`ActionHost`]): `$/progress` for the progress
//! events, `workspace/applyEdit` for the placed text, and the messages (with Retry) that tell the
//! author why nothing was applied.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower_lsp::lsp_types::request::ApplyWorkspaceEdit;
use tower_lsp::lsp_types::{
    self, ApplyWorkspaceEditParams, DocumentChanges, MessageType, OneOf,
    OptionalVersionedTextDocumentIdentifier, TextDocumentEdit, TextEdit, Url, WorkspaceEdit,
};

use super::super::commands::CommandContext;
use super::super::notify::{self, Audience, Button, Progress};
use super::super::positions::to_lsp_position;
use super::{GenerateRequest, generate_boxed};
use crate::app::{App, ProjectContext};
use crate::assist::PlacedEdit;
use crate::assist::failure::{Advice, Offer, Severity};
use crate::assist::run::{ActionHost, NotApplied, ProgressEnd, ProgressEvent};
use crate::documents::{CharOffset, DocumentSnapshot};
use crate::messages;

/// How long the editor may take to apply an edit (it may ask the author to confirm).
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The editor's side of a running action: `$/progress`, `workspace/applyEdit`, messages.
pub(super) struct LspHost<'a> {
    pub cx: &'a CommandContext,
    pub app: &'a App,
    pub context: &'a ProjectContext,
    pub request: &'a GenerateRequest,
    pub cancel: CancellationToken,
    pub progress: Option<Progress>,
}

impl ActionHost for LspHost<'_> {
    type Range = lsp_types::Range;

    fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    async fn progress(&mut self, event: ProgressEvent) {
        use messages::progress;
        let text = match event {
            ProgressEvent::Begin => {
                let title = self.request.action.title();
                let cancel = self.cancel.clone();
                let begun = Progress::begin(&self.cx.client, &self.cx.state, &title, cancel);
                self.progress = Some(begun.await);
                return;
            }
            ProgressEvent::Asking(Some(name)) => progress::asking(&name),
            ProgressEvent::Asking(None) => progress::WAITING.to_string(),
            ProgressEvent::Words(words) => progress::words_written(words),
            ProgressEvent::RateLimitWait => messages::RATE_LIMIT_PROGRESS.to_string(),
            ProgressEvent::TryingBackup(name) => messages::unavailable(&name),
            ProgressEvent::Applying => progress::APPLYING.to_string(),
            ProgressEvent::End(end) => {
                let text = match end {
                    ProgressEnd::Done => progress::DONE,
                    ProgressEnd::Cancelled => progress::CANCELLED,
                    ProgressEnd::Failed => progress::FAILED,
                };
                if let Some(shown) = self.progress.take() {
                    shown.end(text).await;
                }
                return;
            }
        };
        if let Some(shown) = &self.progress {
            shown.report(text).await;
        }
    }

    fn document(&self) -> Option<DocumentSnapshot> {
        let uri = self.request.uri.as_str();
        self.cx.state.documents.snapshot(uri).ok()
    }

    fn can_apply(&self) -> bool {
        self.cx.state.client().apply_edit
    }

    async fn apply(
        &mut self,
        document: &DocumentSnapshot,
        edit: &PlacedEdit,
        label: &str,
    ) -> Result<Option<lsp_types::Range>, String> {
        apply_edit(self.cx, &self.request.uri, document, edit, label).await
    }

    async fn tell(&mut self, why: &NotApplied) {
        let client = &self.cx.client;
        match why {
            NotApplied::Conflict => {
                notify::tell(client, MessageType::WARNING, messages::EDIT_CONFLICT).await;
            }
            NotApplied::NoApplyEdit { .. } => {
                notify::tell(client, MessageType::WARNING, messages::CANNOT_APPLY_EDIT).await;
            }
            NotApplied::Failed(failure) => self.advise(failure.advice.clone()).await,
        }
    }
}

impl LspHost<'_> {
    /// Carries out the advice for a failed action (with Retry where it helps).
    async fn advise(&self, advice: Advice) {
        let cx = self.cx;
        let audience = Audience {
            client: cx.client.clone(),
            state: cx.state.clone(),
            app: self.app.clone(),
            project: Some(self.context.project),
        };
        let retry = || -> notify::RetryAction {
            let cx = cx.clone();
            let request = self.request.clone();
            Box::new(move || {
                tokio::spawn(async move {
                    if let Err(e) = generate_boxed(cx, request).await {
                        tracing::warn!("retried action failed: {e}");
                    }
                });
            })
        };
        match advice {
            Advice::Silent => {}
            Advice::NotConfigured => {
                if !notify::offer_not_configured(&cx.state) {
                    let text = messages::EMPTY_PROVIDER_LIST;
                    notify::tell(&cx.client, MessageType::WARNING, text).await;
                }
            }
            Advice::Tell { severity, text } => {
                notify::tell(&cx.client, message_type(severity), text).await;
            }
            Advice::Ask {
                severity,
                text,
                offers,
            } => {
                let buttons = offers
                    .into_iter()
                    .map(|offer| match offer {
                        Offer::Retry => Button::Retry,
                        Offer::ConfigureProviders => Button::ConfigureProviders,
                    })
                    .collect();
                let kind = message_type(severity);
                notify::ask(audience, kind, text, buttons, Some(retry()));
            }
            Advice::AskEuConsent { provider } => {
                notify::ask_eu_consent(audience, provider, Some(retry()));
            }
        }
    }
}

fn message_type(severity: Severity) -> MessageType {
    match severity {
        Severity::Warning => MessageType::WARNING,
        Severity::Error => MessageType::ERROR,
    }
}

/// One `workspace/applyEdit`; `Ok(None)` when the editor refused it.
async fn apply_edit(
    cx: &CommandContext,
    uri: &Url,
    document: &DocumentSnapshot,
    placed: &PlacedEdit,
    label: &str,
) -> Result<Option<lsp_types::Range>, String> {
    let encoding = cx.state.encoding();
    let position = |offset: usize| {
        document
            .position_of(CharOffset(offset), encoding)
            .map(to_lsp_position)
            .map_err(|e| e.to_string())
    };
    let range = lsp_types::Range::new(
        position(placed.replace.start)?,
        position(placed.replace.end)?,
    );
    let edit = TextEdit::new(range, placed.text.clone());
    let workspace_edit = if cx.state.client().document_changes {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: Some(document.version()),
                },
                edits: vec![OneOf::Left(edit)],
            }])),
            ..WorkspaceEdit::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
            ..WorkspaceEdit::default()
        }
    };
    let params = ApplyWorkspaceEditParams {
        label: Some(label.to_string()),
        edit: workspace_edit,
    };
    let answer =
        notify::request_editor::<ApplyWorkspaceEdit>(&cx.client, params, APPLY_TIMEOUT).await;
    match answer {
        Some(Ok(response)) if response.applied => Ok(Some(range)),
        Some(Ok(response)) => {
            tracing::info!(
                reason = response.failure_reason.as_deref().unwrap_or("none given"),
                "the editor refused the edit"
            );
            Ok(None)
        }
        Some(Err(e)) => Err(format!("workspace/applyEdit failed: {e}")),
        None => Err("the editor did not answer workspace/applyEdit".to_string()),
    }
}
