//! Acting on the author's answers: the buttons of messages (make primary through `admin`,
//! switch provider, open the settings, retry) and the "outside the EU?" question.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tower_lsp::lsp_types::request::ShowMessageRequest;
use tower_lsp::lsp_types::{MessageActionItem, MessageType, ShowMessageRequestParams};

use super::policy::Button;
use super::send::{Audience, ask, open_settings, request_editor, tell};
use super::{RetryAction, lock};
use crate::app::ProjectId;
use crate::app::ProviderId;
use crate::lsp::session::ServerState;
use crate::messages;
use crate::routing::{EuConsent, ProviderRef};

/// Does what a button says.
pub(super) async fn act(audience: Audience, button: Button, retry: Option<RetryAction>) {
    match button {
        Button::MaybeLater => {}
        Button::Retry => {
            if let Some(retry) = retry {
                retry();
            }
        }
        Button::MakePrimary { id, name } | Button::Choose { id, name } => {
            make_primary(&audience, id, &name).await
        }
        Button::SwitchProvider { from } => switch_provider(audience, from).await,
        Button::AllowOutsideEu => answer_eu_consent(&audience, EuConsent::Allowed, retry).await,
        Button::KeepEuOnly => answer_eu_consent(&audience, EuConsent::KeepEuOnly, None).await,
        Button::ConfigureAiProvider
        | Button::ConfigureProviders
        | Button::OpenSettings { .. }
        | Button::UpdateKey { .. } => {
            open_settings(&audience.client, &audience.state, &button).await
        }
    }
}

/// Makes provider `id` the primary of the project whose providers serve this one (through
/// `admin::set_primary`, like the command and the CLI) and routes to it from the next request.
async fn make_primary(audience: &Audience, id: i64, name: &str) {
    let Some(project) = audience.project else {
        return;
    };
    let app = &audience.app;
    let result = match app.providers_project(project).await {
        Ok(owner) => crate::admin::set_primary(app, owner, ProviderId(id))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => {
            tell(
                &audience.client,
                MessageType::INFO,
                messages::now_primary(name),
            )
            .await
        }
        Err(reason) => {
            tracing::warn!(provider_id = id, "set primary failed: {reason}");
            tell(
                &audience.client,
                MessageType::ERROR,
                messages::provider_change_failed(&reason),
            )
            .await;
        }
    }
}

/// "Switch Provider": the other active providers to choose from.
async fn switch_provider(audience: Audience, from: i64) {
    let Some(project) = audience.project else {
        return;
    };
    let others: Vec<ProviderRef> = match audience.app.router(project).await {
        Ok(router) => router
            .status()
            .providers
            .into_iter()
            .filter(|p| p.is_active && p.provider.id != from)
            .map(|p| p.provider)
            .collect(),
        Err(_) => Vec::new(),
    };
    if others.is_empty() {
        open_settings(
            &audience.client,
            &audience.state,
            &Button::ConfigureProviders,
        )
        .await;
        return;
    }
    let buttons = others
        .into_iter()
        .map(|p| Button::Choose {
            id: p.id,
            name: p.display_name,
        })
        .collect();
    ask(
        audience,
        MessageType::INFO,
        messages::CHOOSE_PROVIDER.to_string(),
        buttons,
        None,
    );
}

/// "Send to {provider} (outside the EU)?" [Allow] [Keep EU only], for `audience.project`, unless
/// that question is on screen already. Allow stores the answer and runs `retry` (the action that
/// stopped at the EU border); Keep EU only stores it. Dismissed: nothing stored, asked again by
/// the next action that needs it.
pub(crate) fn ask_eu_consent(
    audience: Audience,
    provider: ProviderRef,
    retry: Option<RetryAction>,
) {
    let Some(project) = audience.project else {
        return;
    };
    if !lock(&audience.state.notifier.consent_open).insert(project) {
        return;
    }
    let state = audience.state.clone();
    let closer = ConsentOpen { state, project };
    tokio::spawn(async move {
        let _open = closer;
        // An answer given from a terminal (`storyteller-lsp residency`) since this process read
        // it: route by it, and run the stopped action again, instead of asking.
        if let Ok(consent @ (EuConsent::Allowed | EuConsent::KeepEuOnly)) =
            audience.app.refresh_eu_consent(project).await
        {
            tracing::info!(
                project = project.0,
                consent = consent.as_str(),
                "EU residency answered from the terminal"
            );
            if let Some(retry) = retry {
                retry();
            }
            return;
        }
        let buttons = vec![Button::AllowOutsideEu, Button::KeepEuOnly];
        if !audience.state.client().message_actions {
            tell(
                &audience.client,
                MessageType::WARNING,
                messages::residency::consent_question_without_buttons(&provider.display_name),
            )
            .await;
            return;
        }
        let params = ShowMessageRequestParams {
            typ: MessageType::WARNING,
            message: messages::residency::consent_question(&provider.display_name),
            actions: Some(
                buttons
                    .iter()
                    .map(|b| MessageActionItem {
                        title: b.label(),
                        properties: HashMap::new(),
                    })
                    .collect(),
            ),
        };
        let answer =
            request_editor::<ShowMessageRequest>(&audience.client, params, Duration::MAX).await;
        let chosen = match answer {
            Some(Ok(Some(item))) => buttons.into_iter().find(|b| b.label() == item.title),
            _ => None,
        };
        if let Some(button) = chosen {
            act(audience, button, retry).await;
        }
    });
}

/// Takes a project's question off the screen list when its task ends, however it ends.
struct ConsentOpen {
    state: Arc<ServerState>,
    project: ProjectId,
}

impl Drop for ConsentOpen {
    fn drop(&mut self) {
        lock(&self.state.notifier.consent_open).remove(&self.project);
    }
}

/// Stores the project's answer and routes by it; Allow runs the action again.
async fn answer_eu_consent(audience: &Audience, consent: EuConsent, retry: Option<RetryAction>) {
    let Some(project) = audience.project else {
        return;
    };
    match audience.app.set_eu_consent(project, consent).await {
        Ok(()) => {
            tracing::info!(
                project = project.0,
                consent = consent.as_str(),
                "EU residency answered"
            );
            if let Some(retry) = retry {
                retry();
            }
        }
        Err(e) => {
            tracing::warn!(project = project.0, "EU residency answer not stored: {e}");
            tell(
                &audience.client,
                MessageType::ERROR,
                messages::provider_change_failed(&e.to_string()),
            )
            .await;
        }
    }
}
