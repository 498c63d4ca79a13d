//! `textDocument/codeAction`: the AI actions offered on a selection or at the cursor.
//!
//! Listing never calls a provider (DESIGN.md §3). The action catalogue arrives with the assist
//! layer (issue 8); until then the list is empty — the one allowed gap of the server skeleton.

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{CodeActionParams, CodeActionResponse};

use super::server::ServerState;

pub(crate) async fn list(
    state: &ServerState,
    params: CodeActionParams,
) -> jsonrpc::Result<Option<CodeActionResponse>> {
    // Asking for actions on a document we do not have is a client error worth seeing.
    state
        .documents
        .snapshot(params.text_document.uri.as_str())
        .map_err(|e| jsonrpc::Error::invalid_params(format!("textDocument: {e}")))?;
    Ok(Some(Vec::new()))
}
