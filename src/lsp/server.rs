//! The dispatcher: [`Backend`], tower-lsp's `LanguageServer`, forwards each request and
//! notification to its handler. The session state lives in `session`; handlers know the session,
//! never this module.
//!
//! `didOpen`/`didChange`/`didClose` are not handled here but in `text_sync`, before tower-lsp's
//! concurrent handler pipeline, so that edits apply in arrival order even while every handler slot
//! waits on the network.
//!
//! Handlers here decode, call the domain and encode; they never hold a lock across `.await`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tower_lsp::jsonrpc::{self, Error};
use tower_lsp::lsp_types::{
    CodeActionParams, CodeActionResponse, CompletionParams, CompletionResponse,
    DidChangeConfigurationParams, DidChangeWatchedFilesParams, DidChangeWorkspaceFoldersParams,
    DidSaveTextDocumentParams, ExecuteCommandParams, InitializeParams, InitializeResult,
    InitializedParams, MessageType, Url, WorkDoneProgressCancelParams,
};
use tower_lsp::{Client, LanguageServer};

use super::inline_protocol::{self, InlineCompletionList, InlineCompletionParams};
use super::session::{ClientFeatures, ServerState, WorkspaceRoot};
use super::{actions, capabilities, commands, inline, notify, settings, story_notes};
use crate::app::App;

/// The tower-lsp backend: a client handle and the shared state.
pub struct Backend {
    pub(crate) client: Client,
    pub(crate) state: Arc<ServerState>,
}

impl Backend {
    pub fn new(client: Client, state: Arc<ServerState>) -> Self {
        Backend { client, state }
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// `textDocument/inlineCompletion` (LSP 3.18, a custom method on lsp-types 0.94).
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> jsonrpc::Result<InlineCompletionList> {
        inline_protocol::inline_completion(&self.state, params).await
    }

    /// `window/workDoneProgress/cancel`.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        notify::on_progress_cancel(&self.state, params).await
    }

    /// `storyteller/documentState`: sizes and a digest of the server's copy of a document, to
    /// diagnose sync problems without ever sending the text.
    pub async fn document_state(
        &self,
        params: DocumentStateParams,
    ) -> jsonrpc::Result<DocumentState> {
        let snapshot = self
            .state
            .documents
            .snapshot(params.uri.as_str())
            .map_err(|e| Error::invalid_params(format!("uri: {e}")))?;
        // Hashing a 10 MB manuscript takes milliseconds: keep it off the runtime's workers.
        let (version, in_sync) = (snapshot.version(), snapshot.is_in_sync());
        let fingerprint = tokio::task::spawn_blocking(move || snapshot.fingerprint())
            .await
            .map_err(|_| Error::internal_error())?;
        Ok(DocumentState {
            version,
            line_count: fingerprint.line_count,
            utf16_length: fingerprint.utf16_len,
            char_length: fingerprint.char_len,
            byte_length: fingerprint.byte_len,
            sha256: fingerprint.sha256,
            in_sync,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct DocumentStateParams {
    pub uri: Url,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentState {
    pub version: i32,
    pub line_count: usize,
    pub utf16_length: usize,
    pub char_length: usize,
    pub byte_length: usize,
    pub sha256: String,
    pub in_sync: bool,
}

#[tower_lsp::async_trait]
impl LanguageServer for Backend {
    /// Answered at once: only cheap decoding here; heavy start-up waits for `initialized`.
    async fn initialize(&self, params: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        let encoding = capabilities::client_encoding(&params);
        let client = ClientFeatures::from_params(&params);
        tracing::info!(
            client = client.name.as_deref().unwrap_or("unknown"),
            %encoding,
            "initialize"
        );
        self.state.set_client(encoding, client);

        #[allow(deprecated)] // rootUri is how single-folder clients name their workspace.
        let roots = match (params.workspace_folders, params.root_uri) {
            (Some(folders), _) => folders
                .into_iter()
                .map(WorkspaceRoot::from_folder)
                .collect(),
            (None, Some(uri)) => vec![WorkspaceRoot {
                name: uri
                    .path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_string))
                    .unwrap_or_default(),
                uri,
            }],
            (None, None) => Vec::new(),
        };
        self.state.set_workspace_roots(roots);

        if let Some(options) = &params.initialization_options {
            self.state.settings.set_initialization_options(options);
        }

        Ok(InitializeResult {
            capabilities: capabilities::server_capabilities(encoding),
            server_info: Some(capabilities::server_info()),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        tokio::spawn(start_background(self.client.clone(), self.state.clone()));
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        tracing::info!("shutdown requested");
        // The request log's queue is written and the WAL checkpointed into storyteller.db before
        // the editor is told we are done: it may kill the process right after `exit`.
        if let Some(app) = self.state.app_now() {
            app.close().await;
        }
        Ok(())
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        tracing::debug!(uri = %params.text_document.uri, "saved");
        story_notes::on_saved(&self.state, &params.text_document.uri);
        // Saved: the actions and suggestions pending in the document are judged now.
        super::text_sync::follow_acceptance(&self.state, params.text_document.uri.as_str(), true);
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        story_notes::on_files_changed(&self.state, params.changes);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        settings::on_did_change_configuration(&self.client, &self.state, params.settings).await;
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let added = params
            .event
            .added
            .into_iter()
            .map(WorkspaceRoot::from_folder)
            .collect();
        let removed: Vec<_> = params
            .event
            .removed
            .into_iter()
            .map(WorkspaceRoot::from_folder)
            .collect();
        self.state.change_workspace_roots(added, &removed);
        if let Some(app) = self.state.app_now() {
            app.set_roots(self.state.root_paths());
        }
        story_notes::on_roots_changed(&self.state, &removed);
        tracing::info!(
            roots = self.state.workspace_roots().len(),
            "workspace folders changed"
        );
    }

    async fn completion(
        &self,
        params: CompletionParams,
    ) -> jsonrpc::Result<Option<CompletionResponse>> {
        inline::completion(&self.state, params).await
    }

    async fn code_action(
        &self,
        params: CodeActionParams,
    ) -> jsonrpc::Result<Option<CodeActionResponse>> {
        actions::list(&self.state, params).await
    }

    async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> jsonrpc::Result<Option<serde_json::Value>> {
        commands::execute(&self.client, &self.state, params)
            .await
            .map(Some)
    }
}

/// Start-up work that must not delay the `initialize` answer. Later issues add their steps here
/// (open the database and migrate, load prompts, probe the keychain — each off the runtime) before
/// the gate opens.
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
