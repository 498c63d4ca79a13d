//! The protocol edge: the only module that knows LSP and JSON-RPC. Handlers decode, call the
//! domain, encode.
//!
//! `transport` reads and writes the framed JSON-RPC messages; the service stack, outermost first:
//! 1. `text_sync::OrderedTextSync` — applies document changes synchronously in arrival order and
//!    tracks the lifecycle;
//! 2. `inline_protocol::InlineAdvertising` — LSP 3.18 inline completion on lsp-types 0.94;
//! 3. tower-lsp's `LspService<Backend>` — lifecycle rules, cancellation; `server::Backend`
//!    dispatches to `handlers/` (one file per request) and to `inline`, `actions`, `commands`.
//!
//! What later issues plug in: an [`InlineSource`] and a [`CommandRunner`] through [`Features`],
//! fields of [`ServerState`] (`session`), and steps of the background start-up
//! (`handlers::initialized`).
//! Must never: send document text or keys to the log, block the runtime, or hold a lock across
//! `.await`.

pub mod actions;
mod assist_commands;
pub mod capabilities;
pub mod commands;
mod handlers;
pub mod inline;
pub mod inline_protocol;
pub mod notify;
mod positions;
mod provider_commands;
pub mod server;
pub mod session;
pub mod settings;
mod sign_in;
mod stdio;
mod story_notes;
pub mod text_sync;
pub mod transport;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp::{ClientSocket, LspService};

pub use commands::{
    CommandContext, CommandError, CommandRunner, NoCommands, StorytellerCommand,
    StorytellerCommands,
};
pub use handlers::document_state::{DocumentState, DocumentStateParams};
pub use inline::{AssistInline, InlineSource, NoSuggestions, Suggestion};
pub use server::Backend;
pub use session::{ClientFeatures, Lifecycle, ReadyGate, ServerState, WorkspaceRoot};

use crate::credentials::env::{Environment, ProcessEnv};
use crate::telemetry::LogGuard;

/// `storyteller/documentState {uri}` → sizes and SHA-256 of the server's copy of a document.
pub const DOCUMENT_STATE_METHOD: &str = "storyteller/documentState";

/// Handlers tower-lsp runs at once. Text sync does not use these slots (see `text_sync`), but
/// `$/cancelRequest` does: enough slots that slow provider requests rarely make a cancellation
/// wait for one.
pub const MAX_CONCURRENT_HANDLERS: usize = 16;

/// The parts of the server that later issues provide. One value per session: the inline source
/// is attached to the session it serves when the service is built.
#[derive(Clone)]
pub struct Features {
    pub inline: Arc<dyn InlineSource>,
    pub commands: Arc<dyn CommandRunner>,
    /// Where system keys (`OPENAI_API_KEY`, …) and `STORYTELLER_CREDENTIALS_KEY` are read: the
    /// process environment, or a fixed set (`demo`, tests) that never reaches the user's keys.
    pub environment: Arc<dyn Environment>,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            inline: Arc::new(AssistInline),
            commands: Arc::new(StorytellerCommands),
            environment: Arc::new(ProcessEnv),
        }
    }
}

/// The complete service, as the transport drives it.
pub type StorytellerService =
    text_sync::OrderedTextSync<inline_protocol::InlineAdvertising<LspService<Backend>>>;

/// The `file:` URI of a file, as an editor names it (`None` for a relative path).
pub fn file_uri(path: &std::path::Path) -> Option<String> {
    tower_lsp::lsp_types::Url::from_file_path(path)
        .ok()
        .map(String::from)
}

/// The `file:` URI of a folder, with its trailing slash (`None` for a relative path).
pub fn folder_uri(path: &std::path::Path) -> Option<String> {
    tower_lsp::lsp_types::Url::from_directory_path(path)
        .ok()
        .map(String::from)
}

/// Builds the service, the socket for server-to-client messages, and a handle on the session
/// state (for tests and for tasks that outlive a handler).
pub fn build(features: Features) -> (StorytellerService, ClientSocket, Arc<ServerState>) {
    let state = Arc::new(ServerState::new(features));
    let builder = LspService::build({
        let state = state.clone();
        move |client| Backend::new(client, state)
    })
    .custom_method(DOCUMENT_STATE_METHOD, Backend::document_state)
    .custom_method(notify::PROGRESS_CANCEL_METHOD, Backend::progress_cancel)
    .custom_method(inline_protocol::METHOD, Backend::inline_completion);
    let (service, socket) = builder.finish();
    let client = service.inner().client.clone();
    state.set_peer(client.clone());
    let service = text_sync::OrderedTextSync::new(
        inline_protocol::InlineAdvertising::new(service, state.clone()),
        state.clone(),
        client,
    );
    (service, socket, state)
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `shutdown` then `exit` (or the input closed after `shutdown`): process exit code 0.
    Clean,
    /// `exit` without `shutdown`, or the input closed without either: exit code 1 (LSP rule).
    WithoutShutdown,
}

/// Serves one session over `input`/`output` until `exit` or the end of the input.
pub async fn run<I, O>(
    input: I,
    output: O,
    features: Features,
    log: Option<Arc<LogGuard>>,
) -> ExitStatus
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let (service, socket, state) = build(features);
    if let Some(log) = log {
        tokio::spawn(follow_log_level(state.clone(), log));
    }
    serve(input, output, service, socket, state).await
}

/// Serves a session made by [`build`] (tests keep its state to look inside).
pub async fn serve<I, O>(
    input: I,
    output: O,
    service: StorytellerService,
    socket: ClientSocket,
    state: Arc<ServerState>,
) -> ExitStatus
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let exited = {
        let state = state.clone();
        async move {
            state.exited().await;
        }
    };
    transport::serve(
        input,
        output,
        socket,
        service,
        MAX_CONCURRENT_HANDLERS,
        exited,
    )
    .await;
    // Without `shutdown` (the editor went away), the database is still closed before the exit.
    if let Some(app) = state.app_now() {
        app.close().await;
    }
    // `exit` after `shutdown`, or the input closed after `shutdown`.
    let clean = matches!(
        state.lifecycle(),
        Lifecycle::ShuttingDown | Lifecycle::Exited { clean: true }
    );
    if clean {
        ExitStatus::Clean
    } else {
        ExitStatus::WithoutShutdown
    }
}

/// The server on standard input and output (what editors start).
pub async fn serve_stdio(log: Option<Arc<LogGuard>>) -> ExitStatus {
    let (input, output) = stdio::streams();
    run(input, output, Features::default(), log).await
}

/// Applies the `logLevel` setting whenever it changes.
async fn follow_log_level(state: Arc<ServerState>, log: Arc<LogGuard>) {
    let mut settings = state.settings.subscribe();
    let mut level = settings.borrow_and_update().log_level.clone();
    log.set_level(&level);
    while settings.changed().await.is_ok() {
        let next = settings.borrow_and_update().log_level.clone();
        if next != level {
            log.set_level(&next);
            level = next;
        }
    }
}
