//! What the author is told, and how: router and application events turned into the texts of
//! DESIGN.md §7 (`window/showMessage`, or `window/showMessageRequest` with buttons), the buttons
//! acted on, `$/progress` of running actions (cancellable), and the `storyteller/status`
//! notification on every state change.
//!
//! One task per session ([`start`]) follows `App::subscribe()`:
//! - every router event, provider change and status-changing settings change sends
//!   `storyteller/status` for its project;
//! - failover, recovery and model fallback are told at once (state changes the author should know
//!   whatever request caused them);
//! - an invalid or revoked key and an exhausted quota are problems: told at once while the author
//!   waits on an action (a *foreground* request), otherwise held back and told when the author
//!   next uses an AI feature explicitly — inline requests never pop up a dialog;
//! - offline and all-failed are told by the action that failed (it knows what to retry), never
//!   for inline requests;
//! - "Trying backup provider..." while an action runs; plain-HTTP warnings once per provider;
//! - "Send to {provider} (outside the EU)?" ([`ask_eu_consent`]): one question on screen per
//!   project, from a code action (Allow reruns it) or at most once a session from ghost text.
//!
//! Deduplication: the router sends each event once per state change; this module shows the
//! not-configured prompt once per session and the offline notice once per offline spell.
//!
//! Layout: `policy` decides what to tell and when (plain values, tested without an editor);
//! `events` runs the session task; `send` talks to the editor (messages, requests, progress);
//! `buttons` acts on the author's answers.
//!
//! Must never: block the message loop on a dialog (requests with buttons run on their own
//! task), show a key or manuscript text, hold a lock across `.await`.

mod buttons;
mod events;
mod policy;
mod send;

use std::sync::{Mutex, PoisonError};

pub(crate) use buttons::ask_eu_consent;
pub(crate) use events::{inline_failed, offer_not_configured, start};
pub(crate) use policy::Button;
pub use policy::Notifier;
pub(crate) use send::{
    Audience, Progress, announce_chosen_credential_store, ask, on_progress_cancel, request_editor,
    tell, tell_credential_store,
};

/// The status notification: the `storyteller.status` shape, sent on every state change.
pub const STATUS_METHOD: &str = "storyteller/status";
/// Asks the editor to show its provider settings (editors announce
/// `experimental.storyteller.openSettings`).
pub const OPEN_SETTINGS_METHOD: &str = "storyteller/openSettings";
/// The author cancelled a progress (LSP 3.15; not a `LanguageServer` method in tower-lsp 0.20).
pub const PROGRESS_CANCEL_METHOD: &str = "window/workDoneProgress/cancel";

/// Work a Retry button starts.
pub(crate) type RetryAction = Box<dyn FnOnce() + Send + 'static>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
