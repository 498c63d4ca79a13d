//! `initialized`: the background start-up, which must not delay the `initialize` answer — open
//! the database and migrate, load prompts, probe the keychain (each off the runtime), then start
//! the notifier and the story notes and open the ready gate. Later issues add their steps here.

use std::sync::Arc;

use tower_lsp::Client;
use tower_lsp::lsp_types::MessageType;

use crate::app::App;
use crate::lsp::session::ServerState;
use crate::lsp::{notify, settings, story_notes};

pub(crate) fn handle(client: &Client, state: &Arc<ServerState>) {
    tokio::spawn(start_background(client.clone(), state.clone()));
}

async fn start_background(client: Client, state: Arc<ServerState>) {
    settings::start(&client, &state).await;
    let settings = (*state.settings.current()).clone();
    let environment = state.features.environment.clone();
    match crate::admin::open(settings, state.root_paths(), environment).await {
        Ok((app, report)) => {
            for warning in &report.prompt_warnings {
                tracing::warn!("{warning}");
                client
                    .show_message(MessageType::WARNING, warning.to_string())
                    .await;
            }
            for notice in &report.credential_notices {
                client.show_message(MessageType::WARNING, notice).await;
            }
            tokio::spawn(follow_settings(state.clone(), app.clone()));
            state.install_app(Ok(app.clone()));
            notify::start(&client, &state, &app);
            notify::announce_chosen_credential_store(&client, &app);
            story_notes::start(&client, &state);
        }
        Err(e) => {
            let message = crate::messages::services_unavailable(&e.to_string());
            tracing::error!("{message}");
            client.show_message(MessageType::ERROR, &message).await;
            state.install_app(Err(message));
        }
    }
    state.ready.open();
    tracing::info!("ready");
}

/// Keeps the services' settings in step with the editor's.
async fn follow_settings(state: Arc<ServerState>, app: App) {
    let mut settings = state.settings.subscribe();
    while settings.changed().await.is_ok() {
        let next = settings.borrow_and_update().clone();
        app.apply_settings(&next);
    }
}
