//! `initialize`: answered at once — only cheap decoding here; heavy start-up waits for
//! `initialized` ([`super::initialized`]).

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{InitializeParams, InitializeResult};

use crate::lsp::capabilities;
use crate::lsp::session::{ClientFeatures, ServerState, WorkspaceRoot};

pub(crate) fn handle(
    state: &ServerState,
    params: InitializeParams,
) -> jsonrpc::Result<InitializeResult> {
    let encoding = capabilities::client_encoding(&params);
    let client = ClientFeatures::from_params(&params);
    tracing::info!(
        client = client.name.as_deref().unwrap_or("unknown"),
        %encoding,
        "initialize"
    );
    state.set_client(encoding, client);

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
    state.set_workspace_roots(roots);

    if let Some(options) = &params.initialization_options {
        state.settings.set_initialization_options(options);
    }

    Ok(InitializeResult {
        capabilities: capabilities::server_capabilities(encoding),
        server_info: Some(capabilities::server_info()),
    })
}
