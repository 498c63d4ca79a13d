//! The `storyteller` settings as the session sees them, and how they reach it: from
//! `initializationOptions`, from `workspace/didChangeConfiguration` pushes, and — when the client
//! supports it — pulled with `workspace/configuration` (section `storyteller`).
//!
//! Layering: defaults ← `initializationOptions` (the base) ← the latest configuration section.
//! Each configuration is taken as the whole section (a key the author removed returns to the
//! base), decoded leniently by [`Settings::merged`]: an invalid value keeps the base value and
//! yields a warning naming the key. Every distinct warning is logged and shown once
//! (`window/showMessage`, Warning). The rest of the server reads [`SettingsCell::current`] or
//! subscribes to changes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tower_lsp::Client;
use tower_lsp::lsp_types::{ConfigurationItem, MessageType};

use super::ServerState;
use crate::config::Settings;

/// The configuration section the server reads.
pub const SECTION: &str = "storyteller";

/// How long a `workspace/configuration` pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SettingsCell {
    /// Defaults with `initializationOptions` applied; each configuration is decoded over it.
    base: Mutex<Settings>,
    current: watch::Sender<Arc<Settings>>,
    /// Warnings already shown, so an author sees each once, not on every configuration change.
    shown: Mutex<HashSet<String>>,
    /// Warnings found before the client may receive messages (during `initialize`).
    pending: Mutex<Vec<String>>,
}

impl Default for SettingsCell {
    fn default() -> Self {
        SettingsCell {
            base: Mutex::new(Settings::default()),
            current: watch::Sender::new(Arc::new(Settings::default())),
            shown: Mutex::new(HashSet::new()),
            pending: Mutex::new(Vec::new()),
        }
    }
}

impl SettingsCell {
    /// The settings in force now (a cheap shared snapshot).
    pub fn current(&self) -> Arc<Settings> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every change (e.g. to re-apply `logLevel`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.current.subscribe()
    }

    /// Applies `initializationOptions`; its warnings wait until the client is initialized.
    pub fn set_initialization_options(&self, options: &Value) {
        let (base, warnings) = Settings::default().merged(options);
        *lock(&self.base) = base.clone();
        self.current.send_replace(Arc::new(base));
        lock(&self.pending).extend(warnings);
    }

    /// Applies one configuration section (or an object holding `storyteller`) over the base.
    /// `null` means the client has no such section: the base applies. Returns the warnings not
    /// shown before.
    pub fn apply_configuration(&self, section: &Value) -> Vec<String> {
        let (next, warnings) = lock(&self.base).merged(section);
        self.current.send_if_modified(|current| {
            let changed = **current != next;
            if changed {
                *current = Arc::new(next);
            }
            changed
        });
        self.unseen(warnings)
    }

    /// The warnings held back during `initialize`, minus any already shown.
    fn take_pending(&self) -> Vec<String> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        self.unseen(pending)
    }

    fn unseen(&self, warnings: Vec<String>) -> Vec<String> {
        let mut shown = lock(&self.shown);
        warnings
            .into_iter()
            .filter(|w| shown.insert(w.clone()))
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// After `initialized`: show the warnings of `initializationOptions`, then pull the section when
/// the client supports `workspace/configuration`.
pub async fn start(client: &Client, state: &ServerState) {
    let pending = state.settings.take_pending();
    show_warnings(client, pending).await;
    if state.client().configuration {
        pull(client, state).await;
    }
}

/// `workspace/didChangeConfiguration`: pull when the client supports it (the push payload of
/// such clients is often `null`), else decode the pushed settings.
pub async fn on_did_change_configuration(client: &Client, state: &ServerState, pushed: Value) {
    if state.client().configuration {
        pull(client, state).await;
    } else if !pushed.is_null() {
        let warnings = state.settings.apply_configuration(&pushed);
        show_warnings(client, warnings).await;
    }
}

async fn pull(client: &Client, state: &ServerState) {
    let item = ConfigurationItem {
        scope_uri: None,
        section: Some(SECTION.to_string()),
    };
    // A client that never answers must not hold back start-up (the ready gate waits on this).
    let answer = tokio::time::timeout(PULL_TIMEOUT, client.configuration(vec![item])).await;
    match answer {
        Err(_) => tracing::warn!(
            "workspace/configuration got no answer in {PULL_TIMEOUT:?}; keeping current settings"
        ),
        Ok(Ok(values)) => {
            let section = values.into_iter().next().unwrap_or(Value::Null);
            let warnings = state.settings.apply_configuration(&section);
            show_warnings(client, warnings).await;
        }
        // The client said it supports the request but failed it: keep what we have.
        Ok(Err(e)) => {
            tracing::warn!("workspace/configuration failed: {e}; keeping current settings")
        }
    }
}

async fn show_warnings(client: &Client, warnings: Vec<String>) {
    for warning in warnings {
        tracing::warn!("{warning}");
        client.show_message(MessageType::WARNING, warning).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configuration_layers_over_initialization_options() {
        let cell = SettingsCell::default();
        cell.set_initialization_options(&json!({"storyteller": {"euOnly": true}}));
        assert!(cell.current().eu_only);

        let warnings = cell.apply_configuration(&json!({"inline": {"debounceMs": 300}}));
        assert!(warnings.is_empty());
        let now = cell.current();
        assert!(now.eu_only, "the init option stays as the base");
        assert_eq!(now.inline.debounce_ms, 300);

        // A later section without the key returns it to the base, not to the last value.
        cell.apply_configuration(&json!({}));
        assert_eq!(cell.current().inline.debounce_ms, 120);
        assert!(cell.current().eu_only);
    }

    #[test]
    fn each_warning_is_returned_once() {
        let cell = SettingsCell::default();
        let bad = json!({"storyteller": {"inline": {"debounceMs": "soon"}}});
        let first = cell.apply_configuration(&bad);
        assert_eq!(first.len(), 1);
        assert!(
            first[0].contains("storyteller.inline.debounceMs"),
            "{first:?}"
        );
        assert!(cell.apply_configuration(&bad).is_empty());
        assert_eq!(cell.current().inline.debounce_ms, 120);
    }

    #[test]
    fn initialization_warnings_wait_for_the_client_and_are_not_repeated() {
        let cell = SettingsCell::default();
        cell.set_initialization_options(&json!({"logLevel": "loud"}));
        let pending = cell.take_pending();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].contains("storyteller.logLevel"));
        assert!(cell.take_pending().is_empty());
        assert!(
            cell.apply_configuration(&json!({"logLevel": "loud"}))
                .is_empty()
        );
    }

    #[test]
    fn subscribers_see_changes_only_when_settings_change() {
        let cell = SettingsCell::default();
        let mut rx = cell.subscribe();
        cell.apply_configuration(&json!({}));
        assert!(!rx.has_changed().unwrap());
        cell.apply_configuration(&json!({"logLevel": "debug"}));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().log_level, "debug");
    }
}
