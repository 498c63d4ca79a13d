//! `storyteller/documentState {uri}` → sizes and SHA-256 of the server's copy of a document, to
//! diagnose sync problems without ever sending the text.

use serde::{Deserialize, Serialize};
use tower_lsp::jsonrpc::{self, Error};
use tower_lsp::lsp_types::Url;

use crate::lsp::session::ServerState;

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

pub(crate) async fn handle(
    state: &ServerState,
    params: DocumentStateParams,
) -> jsonrpc::Result<DocumentState> {
    let snapshot = state
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
