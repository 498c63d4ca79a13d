//! Keeping the story-notes index (`assist::notes`) in step with the workspace: every root indexed
//! at start-up and when folders or `contextFiles` change; a note re-read when it is opened or
//! saved, or when the editor reports it changed on disk (`workspace/didChangeWatchedFiles`, for
//! which a watcher of the `contextFiles` globs is registered when the client allows it).
//!
//! All file reading runs on the blocking pool; nothing here runs per keystroke.

use std::path::PathBuf;
use std::sync::Arc;

use tower_lsp::Client;
use tower_lsp::lsp_types::{
    DidChangeWatchedFilesRegistrationOptions, FileEvent, FileSystemWatcher, GlobPattern,
    MessageType, OneOf, Registration, RelativePattern, Unregistration, Url, WorkspaceFolder,
};

use super::session::{ServerState, WorkspaceRoot};
use crate::messages;

/// The id of the one watcher registration (replaced when `contextFiles` changes).
const WATCHER_ID: &str = "storyteller-story-notes";

/// Indexes every workspace root, registers the file watcher, and follows `contextFiles`.
pub(crate) fn start(client: &Client, state: &Arc<ServerState>) {
    let client = client.clone();
    let state = state.clone();
    tokio::spawn(async move {
        let patterns = state.settings.current().context_files.clone();
        index_roots(&client, &state, state.root_paths(), &patterns).await;
        register_watcher(&client, &state, &patterns, false).await;
        let mut settings = state.settings.subscribe();
        let mut current = patterns;
        while settings.changed().await.is_ok() {
            let next = settings.borrow_and_update().context_files.clone();
            if next != current {
                index_roots(&client, &state, state.root_paths(), &next).await;
                register_watcher(&client, &state, &next, true).await;
                current = next;
            }
        }
    });
}

async fn index_roots(
    client: &Client,
    state: &ServerState,
    roots: Vec<PathBuf>,
    patterns: &[String],
) {
    for root in roots {
        match state
            .assistant
            .notes
            .index_root(root.clone(), patterns.to_vec())
            .await
        {
            Ok(count) => tracing::info!(root = %root.display(), count, "story notes indexed"),
            Err(e) => {
                tracing::warn!("{e}");
                client
                    .show_message(
                        MessageType::WARNING,
                        messages::story_notes_unavailable(&e.to_string()),
                    )
                    .await;
                // One message for a bad glob, not one per root.
                return;
            }
        }
    }
}

/// Watches the `contextFiles` globs under every root, when the client lets servers register
/// watchers.
async fn register_watcher(
    client: &Client,
    state: &ServerState,
    patterns: &[String],
    replace: bool,
) {
    let features = state.client();
    if !features.watch_files {
        return;
    }
    if replace {
        let _ = client
            .unregister_capability(vec![Unregistration {
                id: WATCHER_ID.to_string(),
                method: "workspace/didChangeWatchedFiles".to_string(),
            }])
            .await;
    }
    let roots = state.workspace_roots();
    let mut watchers = Vec::new();
    for pattern in patterns {
        let pattern = pattern.trim_start_matches("./");
        if features.watch_relative_patterns {
            for root in &roots {
                watchers.push(FileSystemWatcher {
                    glob_pattern: GlobPattern::Relative(RelativePattern {
                        base_uri: OneOf::Left(WorkspaceFolder {
                            uri: root.uri.clone(),
                            name: root.name.clone(),
                        }),
                        pattern: pattern.to_string(),
                    }),
                    kind: None,
                });
            }
        } else {
            // Without relative patterns, match the glob anywhere; the index keeps only the
            // files under a root that match it there.
            watchers.push(FileSystemWatcher {
                glob_pattern: GlobPattern::String(format!("**/{pattern}")),
                kind: None,
            });
        }
    }
    if watchers.is_empty() {
        return;
    }
    let options = DidChangeWatchedFilesRegistrationOptions { watchers };
    let registration = Registration {
        id: WATCHER_ID.to_string(),
        method: "workspace/didChangeWatchedFiles".to_string(),
        register_options: serde_json::to_value(options).ok(),
    };
    if let Err(e) = client.register_capability(vec![registration]).await {
        tracing::debug!("file watcher not registered: {e}");
    }
}

/// A document was opened: if it is a note, its file is re-read.
pub(crate) fn on_opened(state: &ServerState, uri: &Url) {
    refresh(state, uri);
}

/// A document was saved.
pub(crate) fn on_saved(state: &ServerState, uri: &Url) {
    refresh(state, uri);
}

/// The editor reports files created, changed or deleted.
pub(crate) fn on_files_changed(state: &ServerState, changes: Vec<FileEvent>) {
    for change in changes {
        refresh(state, &change.uri);
    }
}

fn refresh(state: &ServerState, uri: &Url) {
    let Ok(path) = uri.to_file_path() else {
        return;
    };
    let notes = state.assistant.notes.clone();
    if !notes.is_note(&path) {
        return;
    }
    tokio::spawn(async move {
        notes.refresh_file(path).await;
    });
}

/// Workspace folders were added or removed: index the new roots, forget the removed ones.
pub(crate) fn on_roots_changed(state: &Arc<ServerState>, removed: &[WorkspaceRoot]) {
    for root in removed {
        if let Some(path) = root.path() {
            state.assistant.notes.remove_root(&path);
        }
    }
    let known: Vec<PathBuf> = state
        .assistant
        .notes
        .roots()
        .into_iter()
        .map(|(root, _)| root)
        .collect();
    let added: Vec<PathBuf> = state
        .root_paths()
        .into_iter()
        .filter(|root| !known.contains(root))
        .collect();
    if added.is_empty() {
        return;
    }
    let (Some(client), state) = (state.peer(), state.clone()) else {
        return;
    };
    tokio::spawn(async move {
        let patterns = state.settings.current().context_files.clone();
        index_roots(&client, &state, added, &patterns).await;
        register_watcher(&client, &state, &patterns, true).await;
    });
}
