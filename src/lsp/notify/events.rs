//! The session task: application events turned into what the author is told, by the policy
//! ([`super::policy::react`]) — status on every change, router events, problems held back
//! until the next explicit request — and the failures of inline requests.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{broadcast, mpsc};
use tower_lsp::Client;
use tower_lsp::lsp_types::MessageType;

use super::buttons::ask_eu_consent;
use super::lock;
use super::policy::{Button, Control, Reaction, problem, react};
use super::send::{Audience, ask, send_status, tell};
use crate::app::ProjectId;
use crate::app::{App, AppEvent};
use crate::assist::AssistError;
use crate::assist::inline::Trigger;
use crate::lsp::session::ServerState;
use crate::messages;
use crate::routing::{RouteError, RouterEvent};

/// Starts the session task: status at start-up and on every change, router events turned into
/// messages. Called once the application services are open.
pub(crate) fn start(client: &Client, state: &Arc<ServerState>, app: &App) {
    let Some(control) = lock(&state.notifier.control_rx).take() else {
        return;
    };
    // Subscribe before the task runs, so no event of the first requests is missed.
    let events = app.subscribe();
    tokio::spawn(follow(
        client.clone(),
        state.clone(),
        app.clone(),
        events,
        control,
    ));
}

async fn follow(
    client: Client,
    state: Arc<ServerState>,
    app: App,
    mut events: broadcast::Receiver<AppEvent>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    if let Ok(project) = app.project_for(None).await {
        send_status(&client, &app, project).await;
    }
    let exited = state.exited();
    tokio::pin!(exited);
    loop {
        tokio::select! {
            biased;
            _ = &mut exited => break,
            event = events.recv() => match event {
                Ok(AppEvent::Router { project, event }) => {
                    let audience = Audience {
                        client: client.clone(),
                        state: state.clone(),
                        app: app.clone(),
                        project: Some(project),
                    };
                    on_router_event(&audience, project, event).await;
                }
                Ok(AppEvent::ProvidersChanged { project } | AppEvent::StatusChanged { project }) => {
                    send_status(&client, &app, project).await;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "status events dropped; the next change resends it");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            message = control.recv() => match message {
                Some(Control::ForegroundStarted(project)) => {
                    let held: Vec<RouterEvent> = {
                        let mut held = lock(&state.notifier.held);
                        let (mine, others): (Vec<_>, Vec<_>) =
                            held.drain(..).partition(|(p, _)| *p == project);
                        *held = others;
                        mine.into_iter().map(|(_, e)| e).collect()
                    };
                    let audience = Audience {
                        client: client.clone(),
                        state: state.clone(),
                        app: app.clone(),
                        project: Some(project),
                    };
                    for event in held {
                        tell_problem(&audience, event);
                    }
                }
                Some(Control::ForegroundEnded) => {
                    state.notifier.foreground.fetch_sub(1, Ordering::SeqCst);
                }
                None => break,
            },
        }
    }
}

async fn on_router_event(audience: &Audience, project: ProjectId, event: RouterEvent) {
    send_status(&audience.client, &audience.app, project).await;
    let notifier = &audience.state.notifier;
    match react(&event, notifier.in_foreground()) {
        Reaction::Tell { kind, text } => tell(&audience.client, kind, text).await,
        Reaction::Ask {
            kind,
            text,
            buttons,
        } => ask(audience.clone(), kind, text, buttons, None),
        Reaction::Hold => {
            let mut held = lock(&notifier.held);
            if !held.iter().any(|(p, e)| *p == project && *e == event) {
                held.push((project, event));
            }
        }
        Reaction::ResetOffline => notifier.offline_shown.store(false, Ordering::SeqCst),
        Reaction::Nothing => {}
    }
}

/// A problem with one provider's key or quota, with its button.
fn tell_problem(audience: &Audience, event: RouterEvent) {
    if let Some((text, button)) = problem(&event) {
        ask(
            audience.clone(),
            MessageType::ERROR,
            text,
            vec![button],
            None,
        );
    }
}

/// The not-configured prompt, once per session. Returns whether it was shown now.
pub(crate) fn offer_not_configured(state: &Arc<ServerState>) -> bool {
    let (Some(client), Some(app)) = (state.peer(), state.app_now()) else {
        return false;
    };
    if !state.notifier.first_not_configured() {
        return false;
    }
    ask(
        Audience {
            client,
            state: state.clone(),
            app,
            project: None,
        },
        MessageType::INFO,
        messages::NOT_CONFIGURED.to_string(),
        vec![Button::ConfigureAiProvider, Button::MaybeLater],
        None,
    );
    true
}

/// An inline request failed: nothing pops up (the status notification already tells the state),
/// except the not-configured prompt when the author asked for the suggestion.
pub(crate) fn inline_failed(
    state: &Arc<ServerState>,
    error: &AssistError,
    trigger: Trigger,
    project: Option<ProjectId>,
) {
    match error {
        e if e.is_cancelled() => {}
        AssistError::Route(RouteError::NotConfigured) => {
            if trigger == Trigger::Invoked {
                offer_not_configured(state);
            }
        }
        // Ghost text returned nothing; the question is asked from here at most once a session
        // (a code action asks again if it was dismissed).
        AssistError::Route(RouteError::ConsentNeeded { provider, .. }) => {
            let (Some(client), Some(app)) = (state.peer(), state.app_now()) else {
                return;
            };
            let Some(project) = project else {
                return;
            };
            if !lock(&state.notifier.consent_asked_inline).insert(project) {
                return;
            }
            ask_eu_consent(
                Audience {
                    client,
                    state: state.clone(),
                    app,
                    project: Some(project),
                },
                provider.clone(),
                None,
            );
        }
        other => tracing::debug!("inline completion failed: {other}"),
    }
}
