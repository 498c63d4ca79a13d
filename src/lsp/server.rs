//! The dispatcher: [`Backend`], tower-lsp's `LanguageServer`, forwards each request and
//! notification to its handler — `handlers/` (one file per request), or the module that owns the
//! concept (`actions`, `commands`, `inline`, `inline_protocol`, `settings`, `story_notes`,
//! `notify`). Handlers know the session (`session`), never this module.
//!
//! `didOpen`/`didChange`/`didClose` are not handled here but in `text_sync`, before tower-lsp's
//! concurrent handler pipeline, so that edits apply in arrival order even while every handler slot
//! waits on the network.

use std::sync::Arc;

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CodeActionParams, CodeActionResponse, CompletionParams, CompletionResponse,
    DidChangeConfigurationParams, DidChangeWatchedFilesParams, DidChangeWorkspaceFoldersParams,
    DidSaveTextDocumentParams, ExecuteCommandParams, InitializeParams, InitializeResult,
    InitializedParams, WorkDoneProgressCancelParams,
};
use tower_lsp::{Client, LanguageServer};

use super::handlers::document_state::{DocumentState, DocumentStateParams};
use super::handlers::{
    did_change_workspace_folders, did_save, document_state, initialize, initialized, shutdown,
};
use super::inline_protocol::{self, InlineCompletionList, InlineCompletionParams};
use super::session::ServerState;
use super::{actions, commands, inline, notify, settings, story_notes};

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

    /// `storyteller/documentState` (a custom method).
    pub async fn document_state(
        &self,
        params: DocumentStateParams,
    ) -> jsonrpc::Result<DocumentState> {
        document_state::handle(&self.state, params).await
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
}

#[tower_lsp::async_trait]
impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        initialize::handle(&self.state, params)
    }

    async fn initialized(&self, _: InitializedParams) {
        initialized::handle(&self.client, &self.state);
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        shutdown::handle(&self.state).await
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        did_save::handle(&self.state, params);
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        story_notes::on_files_changed(&self.state, params.changes);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        settings::on_did_change_configuration(&self.client, &self.state, params.settings).await;
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        did_change_workspace_folders::handle(&self.state, params);
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
