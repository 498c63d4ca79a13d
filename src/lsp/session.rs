//! The session: the state every handler, background task and later feature reaches through one
//! `Arc<ServerState>` — documents, settings, the client's features, the workspace folders, the
//! lifecycle, the ready gate and the application services once started.
//!
//! Handlers (`handlers/`, `actions`, `commands`, `inline`, …) know this module only; the
//! dispatcher (`server::Backend`) knows the handlers. Later issues add their parts as fields,
//! start them in `handlers::initialized` and open [`ReadyGate`] when they are usable.
//!
//! Must never: hold a lock across `.await`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock};

use tokio::sync::watch;
use tower_lsp::Client;
use tower_lsp::lsp_types::{InitializeParams, Url, WorkspaceFolder};

use super::Features;
use super::notify::Notifier;
use super::settings;
use crate::app::App;
use crate::assist::Assistant;
use crate::documents::{DocumentStore, PositionEncoding};

/// Where the session is in the LSP lifecycle, as seen by the ordered edge of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// No successful `initialize` yet: notifications are dropped, requests refused (-32002).
    Uninitialized,
    /// `initialize` answered: documents are tracked.
    Running,
    /// `shutdown` received: requests are refused (InvalidRequest), nothing new is started.
    ShuttingDown,
    /// `exit` received; `clean` when a `shutdown` came first (process exit code 0, else 1).
    Exited { clean: bool },
}

/// A gate that later features await before using what the background start-up prepares
/// (database, prompts, keychain). `initialize` is answered before any of that work starts.
pub struct ReadyGate(watch::Sender<bool>);

impl Default for ReadyGate {
    fn default() -> Self {
        ReadyGate(watch::Sender::new(false))
    }
}

impl ReadyGate {
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the gate is open (at once if it already is).
    pub async fn wait(&self) {
        let mut open = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = open.wait_for(|is_open| *is_open).await;
    }
}

/// What the client said it can do, reduced to what the server adapts to (DESIGN.md §3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFeatures {
    /// `workspace/configuration`: settings are pulled rather than read from pushes.
    pub configuration: bool,
    /// `window/showMessageRequest` with action buttons; otherwise messages name a CLI command.
    pub message_actions: bool,
    /// `window/workDoneProgress/create` for cancellable progress.
    pub work_done_progress: bool,
    /// `workspace/applyEdit`.
    pub apply_edit: bool,
    /// Code actions with `disabled: {reason}`.
    pub code_action_disabled: bool,
    /// Versioned `documentChanges` in workspace edits (refused by the client if the document
    /// moved on), rather than plain `changes`.
    pub document_changes: bool,
    /// `workspace/didChangeWatchedFiles` watchers may be registered dynamically.
    pub watch_files: bool,
    /// Watchers may use relative patterns (a glob below a workspace folder).
    pub watch_relative_patterns: bool,
    /// `experimental.storyteller.openSettings`: the editor shows its provider settings when sent
    /// `storyteller/openSettings` (else messages name a CLI command).
    pub open_settings: bool,
    /// `experimental.storyteller.statusNotification`: the editor shows `storyteller/status`.
    pub status_notification: bool,
    /// `experimental.storyteller.askInstruction`: the editor handles the client-side command of
    /// "Continue scene with…" (asks the author what should happen, then runs
    /// `storyteller.generate` with the `instruction`); see `lsp::actions`.
    pub ask_instruction: bool,
    /// `window/showDocument` (LSP 3.16): "Sign in with OpenRouter" opens the browser through it.
    pub show_document: bool,
    pub name: Option<String>,
}

impl ClientFeatures {
    pub(crate) fn from_params(params: &InitializeParams) -> Self {
        let caps = &params.capabilities;
        let workspace = caps.workspace.as_ref();
        let window = caps.window.as_ref();
        ClientFeatures {
            configuration: workspace.and_then(|w| w.configuration).unwrap_or(false),
            message_actions: window
                .and_then(|w| w.show_message.as_ref())
                .and_then(|m| m.message_action_item.as_ref())
                .is_some(),
            work_done_progress: window.and_then(|w| w.work_done_progress).unwrap_or(false),
            show_document: window
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|d| d.support),
            apply_edit: workspace.and_then(|w| w.apply_edit).unwrap_or(false),
            code_action_disabled: caps
                .text_document
                .as_ref()
                .and_then(|t| t.code_action.as_ref())
                .and_then(|c| c.disabled_support)
                .unwrap_or(false),
            document_changes: workspace
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false),
            watch_files: workspace
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|w| w.dynamic_registration)
                .unwrap_or(false),
            watch_relative_patterns: workspace
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|w| w.relative_pattern_support)
                .unwrap_or(false),
            open_settings: experimental_flag(caps.experimental.as_ref(), "openSettings"),
            status_notification: experimental_flag(
                caps.experimental.as_ref(),
                "statusNotification",
            ),
            ask_instruction: experimental_flag(caps.experimental.as_ref(), "askInstruction"),
            name: params.client_info.as_ref().map(|info| match &info.version {
                Some(version) => format!("{} {version}", info.name),
                None => info.name.clone(),
            }),
        }
    }
}

/// `experimental.storyteller.{flag}` of the client capabilities (what the StoryTeller editor
/// integrations announce).
fn experimental_flag(experimental: Option<&serde_json::Value>, flag: &str) -> bool {
    experimental
        .and_then(|e| e.get("storyteller"))
        .and_then(|s| s.get(flag))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// A workspace folder: one project (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRoot {
    pub uri: Url,
    pub name: String,
}

impl WorkspaceRoot {
    pub(crate) fn from_folder(folder: WorkspaceFolder) -> Self {
        WorkspaceRoot {
            uri: folder.uri,
            name: folder.name,
        }
    }

    /// The folder on disk, for file-based lookups (story notes, prompt overrides).
    pub fn path(&self) -> Option<PathBuf> {
        self.uri.to_file_path().ok()
    }
}

/// Everything one session shares between handlers and background tasks.
pub struct ServerState {
    pub documents: DocumentStore,
    pub settings: settings::SettingsCell,
    pub ready: ReadyGate,
    pub features: Features,
    encoding: OnceLock<PositionEncoding>,
    client: OnceLock<ClientFeatures>,
    inline_completion_client: AtomicBool,
    workspace: RwLock<Vec<WorkspaceRoot>>,
    lifecycle: watch::Sender<Lifecycle>,
    /// Documents whose loss of sync was already shown to the author (once per document).
    out_of_sync_shown: Mutex<HashSet<String>>,
    /// The application services, opened by the background start-up.
    app: OnceLock<Result<App, String>>,
    /// The writing features' session state: story notes, inline bookkeeping, suggestion ledger.
    pub assistant: Assistant,
    /// Messages, progress and status notifications of this session.
    pub notifier: Notifier,
    /// The connection to the editor, for work that outlives a handler.
    peer: OnceLock<Client>,
}

impl ServerState {
    pub fn new(features: Features) -> Self {
        ServerState {
            documents: DocumentStore::new(),
            settings: settings::SettingsCell::default(),
            ready: ReadyGate::default(),
            features,
            encoding: OnceLock::new(),
            client: OnceLock::new(),
            inline_completion_client: AtomicBool::new(false),
            workspace: RwLock::new(Vec::new()),
            lifecycle: watch::Sender::new(Lifecycle::Uninitialized),
            out_of_sync_shown: Mutex::new(HashSet::new()),
            app: OnceLock::new(),
            assistant: Assistant::new(),
            notifier: Notifier::new(),
            peer: OnceLock::new(),
        }
    }

    /// The connection to the editor (set when the service is built).
    pub fn peer(&self) -> Option<Client> {
        self.peer.get().cloned()
    }

    pub(crate) fn set_peer(&self, client: Client) {
        let _ = self.peer.set(client);
    }

    /// The application services (store, credentials, routers, prompts), once the background
    /// start-up has opened them. Waits for the ready gate; the error is the author-facing reason
    /// the services could not be opened (e.g. a locked or newer database).
    pub async fn app(&self) -> Result<App, String> {
        self.ready.wait().await;
        match self.app.get() {
            Some(result) => result.clone(),
            None => Err(crate::messages::SERVICES_NOT_STARTED.to_string()),
        }
    }

    /// The application services if they are open now, without waiting.
    pub fn app_now(&self) -> Option<App> {
        self.app.get().and_then(|r| r.as_ref().ok()).cloned()
    }

    /// Installs the services (or the reason they could not be opened); the first call wins.
    pub fn install_app(&self, app: Result<App, String>) {
        let _ = self.app.set(app);
    }

    /// The workspace folders as paths on disk (projects, story notes, prompt overrides).
    pub fn root_paths(&self) -> Vec<PathBuf> {
        self.workspace_roots()
            .iter()
            .filter_map(WorkspaceRoot::path)
            .collect()
    }

    /// The position encoding negotiated at `initialize` (UTF-16 before that).
    pub fn encoding(&self) -> PositionEncoding {
        self.encoding.get().copied().unwrap_or_default()
    }

    pub fn client(&self) -> ClientFeatures {
        self.client.get().cloned().unwrap_or_default()
    }

    /// What `initialize` learnt: the negotiated position encoding and the client's features
    /// (set once; a second `initialize` is refused by tower-lsp before it gets here).
    pub(crate) fn set_client(&self, encoding: PositionEncoding, client: ClientFeatures) {
        let _ = self.encoding.set(encoding);
        let _ = self.client.set(client);
    }

    /// Whether the client announced LSP 3.18 inline completion (else completion is the fallback).
    pub fn client_has_inline_completion(&self) -> bool {
        self.inline_completion_client.load(Ordering::Relaxed)
    }

    pub(crate) fn set_client_has_inline_completion(&self, value: bool) {
        self.inline_completion_client
            .store(value, Ordering::Relaxed);
    }

    pub fn lifecycle(&self) -> Lifecycle {
        *self.lifecycle.borrow()
    }

    pub(crate) fn set_lifecycle(&self, next: Lifecycle) {
        self.lifecycle.send_replace(next);
    }

    /// Resolves when `exit` has been received; returns whether `shutdown` came first.
    pub async fn exited(&self) -> bool {
        let mut lifecycle = self.lifecycle.subscribe();
        match lifecycle
            .wait_for(|l| matches!(l, Lifecycle::Exited { .. }))
            .await
        {
            Ok(state) => matches!(*state, Lifecycle::Exited { clean: true }),
            Err(_) => false,
        }
    }

    pub fn workspace_roots(&self) -> Vec<WorkspaceRoot> {
        self.workspace
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The innermost workspace folder that holds `document`; `None` means the `default` project.
    pub fn project_root_for(&self, document: &str) -> Option<WorkspaceRoot> {
        let path = Url::parse(document).ok()?.to_file_path().ok()?;
        let roots = self.workspace_roots();
        let paths: Vec<PathBuf> = roots.iter().filter_map(WorkspaceRoot::path).collect();
        let innermost = crate::app::innermost_root(&paths, &path)?;
        roots
            .into_iter()
            .find(|root| root.path().as_deref() == Some(innermost.as_path()))
    }

    pub(crate) fn set_workspace_roots(&self, roots: Vec<WorkspaceRoot>) {
        *self
            .workspace
            .write()
            .unwrap_or_else(PoisonError::into_inner) = roots;
    }

    pub(crate) fn change_workspace_roots(
        &self,
        added: Vec<WorkspaceRoot>,
        removed: &[WorkspaceRoot],
    ) {
        let mut roots = self
            .workspace
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        roots.retain(|root| !removed.iter().any(|r| r.uri == root.uri));
        for root in added {
            if !roots.iter().any(|r| r.uri == root.uri) {
                roots.push(root);
            }
        }
    }

    /// True the first time a document is reported out of sync (until it is back in sync).
    pub(crate) fn first_out_of_sync_report(&self, uri: &str) -> bool {
        self.out_of_sync_shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(uri.to_string())
    }

    pub(crate) fn back_in_sync(&self, uri: &str) {
        self.out_of_sync_shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uri);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn root(uri: &str) -> WorkspaceRoot {
        WorkspaceRoot {
            uri: Url::parse(uri).unwrap(),
            name: "n".into(),
        }
    }

    #[test]
    fn a_document_belongs_to_the_innermost_folder_that_holds_it() {
        let state = ServerState::new(Features::default());
        state.set_workspace_roots(vec![
            root("file:///books/novel"),
            root("file:///books/novel/part-two/"),
            root("file:///books/novel-notes"),
        ]);
        let cases = [
            ("file:///books/novel/ch1.md", Some("file:///books/novel")),
            (
                "file:///books/novel/part-two/ch9.md",
                Some("file:///books/novel/part-two/"),
            ),
            (
                "file:///books/novel-notes/a.md",
                Some("file:///books/novel-notes"),
            ),
            ("file:///books/novella/a.md", None),
            ("untitled:Untitled-1", None),
        ];
        for (document, expected) in cases {
            let got = state.project_root_for(document).map(|r| r.uri.to_string());
            assert_eq!(got.as_deref(), expected, "{document}");
        }
    }

    #[test]
    fn folder_changes_add_and_remove_roots() {
        let state = ServerState::new(Features::default());
        state.set_workspace_roots(vec![root("file:///a"), root("file:///b")]);
        state.change_workspace_roots(
            vec![root("file:///c"), root("file:///a")],
            &[root("file:///b")],
        );
        let uris: Vec<_> = state
            .workspace_roots()
            .into_iter()
            .map(|r| r.uri.to_string())
            .collect();
        assert_eq!(uris, ["file:///a", "file:///c"]);
    }

    #[tokio::test]
    async fn the_ready_gate_releases_waiters_when_opened() {
        let gate = Arc::new(ReadyGate::default());
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(!gate.is_open());
        gate.open();
        waiter.await.unwrap();
        gate.wait().await;
    }
}
