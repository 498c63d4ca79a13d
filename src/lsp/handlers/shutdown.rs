//! `shutdown`: the services are closed before the editor is told we are done.

use tower_lsp::jsonrpc;

use crate::lsp::session::ServerState;

pub(crate) async fn handle(state: &ServerState) -> jsonrpc::Result<()> {
    tracing::info!("shutdown requested");
    // The request log's queue is written and the WAL checkpointed into storyteller.db before
    // the editor is told we are done: it may kill the process right after `exit`.
    if let Some(app) = state.app_now() {
        app.close().await;
    }
    Ok(())
}
