//! `textDocument/didSave`: story notes are re-read, and pending suggestions judged.

use std::sync::Arc;

use tower_lsp::lsp_types::DidSaveTextDocumentParams;

use crate::lsp::session::ServerState;
use crate::lsp::{story_notes, text_sync};

pub(crate) fn handle(state: &Arc<ServerState>, params: DidSaveTextDocumentParams) {
    tracing::debug!(uri = %params.text_document.uri, "saved");
    story_notes::on_saved(state, &params.text_document.uri);
    // Saved: the actions and suggestions pending in the document are judged now.
    text_sync::follow_acceptance(state, params.text_document.uri.as_str(), true);
}
