//! `workspace/didChangeWorkspaceFolders`: the session's roots, the services' roots and the
//! story notes follow the editor's folders.

use std::sync::Arc;

use tower_lsp::lsp_types::DidChangeWorkspaceFoldersParams;

use crate::lsp::session::{ServerState, WorkspaceRoot};
use crate::lsp::story_notes;

pub(crate) fn handle(state: &Arc<ServerState>, params: DidChangeWorkspaceFoldersParams) {
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
    state.change_workspace_roots(added, &removed);
    if let Some(app) = state.app_now() {
        app.set_roots(state.root_paths());
    }
    story_notes::on_roots_changed(state, &removed);
    tracing::info!(
        roots = state.workspace_roots().len(),
        "workspace folders changed"
    );
}
