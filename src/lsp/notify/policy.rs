//! The policy of telling: what the author is told about a router event and when ([`react`]),
//! the session's once-only and hold-back state ([`Notifier`]), and the buttons ([`Button`]:
//! label, terminal equivalent, settings reason). Plain values, testable without an editor;
//! `send`, `events` and `buttons` carry the decisions out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_lsp::lsp_types::MessageType;

use super::lock;
use crate::app::ProjectId;
use crate::messages::{self, actions as labels, cli};
use crate::routing::RouterEvent;

/// Messages sent to the session task in order with the application events.
pub(super) enum Control {
    /// An explicit AI request started for the project: tell what was held back.
    ForegroundStarted(ProjectId),
    /// One explicit request ended.
    ForegroundEnded,
}

/// The session's message state.
pub struct Notifier {
    pub(super) not_configured_shown: AtomicBool,
    pub(super) offline_shown: AtomicBool,
    /// Explicit (foreground) requests running now.
    pub(super) foreground: Arc<AtomicUsize>,
    pub(super) control: mpsc::UnboundedSender<Control>,
    pub(super) control_rx: Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
    /// Problems seen while no foreground request ran, by project.
    pub(super) held: Mutex<Vec<(ProjectId, RouterEvent)>>,
    /// Running progress tokens and the work each cancels.
    pub(super) progress: Mutex<HashMap<String, CancellationToken>>,
    pub(super) next_token: AtomicU64,
    /// Projects whose "outside the EU?" question is on screen now (asked once at a time).
    pub(super) consent_open: Mutex<HashSet<ProjectId>>,
    /// Projects whose question ghost text already asked this session (never again from there).
    pub(super) consent_asked_inline: Mutex<HashSet<ProjectId>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl Notifier {
    pub fn new() -> Self {
        let (control, control_rx) = mpsc::unbounded_channel();
        Notifier {
            not_configured_shown: AtomicBool::new(false),
            offline_shown: AtomicBool::new(false),
            foreground: Arc::new(AtomicUsize::new(0)),
            control,
            control_rx: Mutex::new(Some(control_rx)),
            held: Mutex::new(Vec::new()),
            progress: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            consent_open: Mutex::new(HashSet::new()),
            consent_asked_inline: Mutex::new(HashSet::new()),
        }
    }

    /// Marks an explicit request for `project` as running until the guard is dropped: problems
    /// are told at once meanwhile, and those held back are told now.
    pub(crate) fn foreground(&self, project: ProjectId) -> Foreground {
        self.foreground.fetch_add(1, Ordering::SeqCst);
        let _ = self.control.send(Control::ForegroundStarted(project));
        Foreground {
            control: self.control.clone(),
        }
    }

    pub(super) fn in_foreground(&self) -> bool {
        self.foreground.load(Ordering::SeqCst) > 0
    }

    /// True once per session: whether the not-configured prompt is still to be shown.
    pub(super) fn first_not_configured(&self) -> bool {
        !self.not_configured_shown.swap(true, Ordering::SeqCst)
    }

    /// True once per offline spell.
    pub(crate) fn first_offline_notice(&self) -> bool {
        !self.offline_shown.swap(true, Ordering::SeqCst)
    }

    pub(super) fn register_progress(&self, token: String, cancel: CancellationToken) {
        lock(&self.progress).insert(token, cancel);
    }

    pub(super) fn unregister_progress(&self, token: &str) {
        lock(&self.progress).remove(token);
    }

    /// Cancels the work behind a progress token; false when the token is unknown (finished).
    pub fn cancel_progress(&self, token: &str) -> bool {
        match lock(&self.progress).remove(token) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }
}

/// An explicit request in progress (see [`Notifier::foreground`]).
pub(crate) struct Foreground {
    control: mpsc::UnboundedSender<Control>,
}

impl Drop for Foreground {
    fn drop(&mut self) {
        // Counted down by the session task, after the events this request caused: those were
        // sent before this message, and the task reads events first.
        let _ = self.control.send(Control::ForegroundEnded);
    }
}

/// A button of a message request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Button {
    ConfigureAiProvider,
    MaybeLater,
    /// Opens the settings at the edit form of provider `provider` (its key is invalid).
    OpenSettings {
        provider: i64,
    },
    /// Opens the settings at the edit form of provider `provider` (its key was revoked).
    UpdateKey {
        provider: i64,
    },
    Retry,
    SwitchProvider {
        from: i64,
    },
    ConfigureProviders,
    MakePrimary {
        id: i64,
        name: String,
    },
    /// One provider offered by "Switch Provider": labelled with its name, makes it primary.
    Choose {
        id: i64,
        name: String,
    },
    /// "Send to … (outside the EU)?": Allow.
    AllowOutsideEu,
    /// "Send to … (outside the EU)?": Keep EU only.
    KeepEuOnly,
}

impl Button {
    pub(super) fn label(&self) -> String {
        match self {
            Button::ConfigureAiProvider => labels::CONFIGURE_AI_PROVIDER.into(),
            Button::MaybeLater => labels::MAYBE_LATER.into(),
            Button::OpenSettings { .. } => labels::OPEN_SETTINGS.into(),
            Button::UpdateKey { .. } => labels::UPDATE_KEY.into(),
            Button::Retry => labels::RETRY.into(),
            Button::SwitchProvider { .. } => labels::SWITCH_PROVIDER.into(),
            Button::ConfigureProviders => labels::CONFIGURE_PROVIDERS.into(),
            Button::MakePrimary { name, .. } => labels::make_primary(name),
            Button::Choose { name, .. } => name.clone(),
            Button::AllowOutsideEu => messages::residency::ALLOW.into(),
            Button::KeepEuOnly => messages::residency::KEEP_EU_ONLY.into(),
        }
    }

    /// The terminal command that does what the button would, for clients without buttons.
    pub(super) fn cli_equivalent(&self) -> Option<String> {
        match self {
            Button::ConfigureAiProvider | Button::ConfigureProviders => {
                Some(cli::ADD_PROVIDER.to_string())
            }
            Button::OpenSettings { .. } | Button::UpdateKey { .. } => {
                Some(cli::UPDATE_KEY.to_string())
            }
            Button::SwitchProvider { .. } => Some(cli::LIST_PROVIDERS.to_string()),
            Button::MakePrimary { id, .. } | Button::Choose { id, .. } => {
                Some(cli::set_primary(*id))
            }
            Button::Retry | Button::MaybeLater | Button::AllowOutsideEu | Button::KeepEuOnly => {
                None
            }
        }
    }

    /// Why the settings are opened (the `reason` of `storyteller/openSettings`).
    pub(super) fn settings_reason(&self) -> &'static str {
        match self {
            Button::ConfigureAiProvider => "notConfigured",
            Button::OpenSettings { .. } => "invalidKey",
            Button::UpdateKey { .. } => "keyRevoked",
            _ => "configure",
        }
    }

    /// The provider whose edit form the settings open at (`providerId` of
    /// `storyteller/openSettings`); none for the list.
    pub(super) fn settings_provider(&self) -> Option<i64> {
        match self {
            Button::OpenSettings { provider } | Button::UpdateKey { provider } => Some(*provider),
            _ => None,
        }
    }
}

/// What to do about one router event, besides the status notification (always sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reaction {
    /// Show a message.
    Tell {
        kind: MessageType,
        text: String,
    },
    /// Show a message with buttons.
    Ask {
        kind: MessageType,
        text: String,
        buttons: Vec<Button>,
    },
    /// A problem seen while no explicit request runs: held back until the author next uses an
    /// AI feature explicitly.
    Hold,
    /// Back online: the next offline spell is told again.
    ResetOffline,
    Nothing,
}

/// The policy of router events: state changes the author should know whatever request caused
/// them are told at once; key and quota problems at once while the author waits on an action,
/// else held back; rate-limit waits and "trying backup" only while the author waits; offline
/// and all-failed are told by the action that failed (it knows what to retry).
pub(super) fn react(event: &RouterEvent, in_foreground: bool) -> Reaction {
    match event {
        RouterEvent::FailedOver { to, .. } => Reaction::Ask {
            kind: MessageType::WARNING,
            text: messages::failed_over(&to.display_name),
            buttons: vec![Button::MakePrimary {
                id: to.id,
                name: to.display_name.clone(),
            }],
        },
        RouterEvent::Recovered { provider } => Reaction::Tell {
            kind: MessageType::INFO,
            text: messages::recovered(&provider.display_name),
        },
        RouterEvent::ModelFallback {
            provider,
            missing,
            default_model,
        } => Reaction::Tell {
            kind: MessageType::WARNING,
            text: messages::model_fallback(&provider.display_name, missing, default_model),
        },
        RouterEvent::RateLimitWait { provider, wait } if in_foreground => Reaction::Tell {
            kind: MessageType::INFO,
            text: messages::for_provider_error(
                crate::providers::ErrorKind::RateLimited,
                &provider.display_name,
                Some(*wait),
            ),
        },
        RouterEvent::RateLimitWait { .. } => Reaction::Nothing,
        RouterEvent::KeyInvalid { .. }
        | RouterEvent::KeyRevoked { .. }
        | RouterEvent::QuotaExhausted { .. } => match problem(event) {
            Some((text, button)) if in_foreground => Reaction::Ask {
                kind: MessageType::ERROR,
                text,
                buttons: vec![button],
            },
            _ => Reaction::Hold,
        },
        RouterEvent::Online => Reaction::ResetOffline,
        // While the author waits on an action; ghost text stays quiet. Once per failover
        // episode (the router sends it once until the provider answers again).
        RouterEvent::TryingBackup { provider } if in_foreground => Reaction::Tell {
            kind: MessageType::INFO,
            text: messages::unavailable(&provider.display_name),
        },
        RouterEvent::TryingBackup { .. } => Reaction::Nothing,
        RouterEvent::InsecureHttpAllowed { provider, host } => Reaction::Tell {
            kind: MessageType::WARNING,
            text: messages::residency::insecure_http_allowed(&provider.display_name, host),
        },
        RouterEvent::InsecureHttpRefused { provider, host } => Reaction::Tell {
            kind: MessageType::ERROR,
            text: messages::residency::insecure_http_refused(&provider.display_name, host),
        },
        // Told by the action that failed (it can offer Retry); inline requests stay silent.
        RouterEvent::AllFailed | RouterEvent::Offline => Reaction::Nothing,
    }
}

/// A problem with one provider's key or quota: its text and its button (`None` for other
/// events).
pub(super) fn problem(event: &RouterEvent) -> Option<(String, Button)> {
    Some(match event {
        RouterEvent::KeyInvalid { provider } => (
            messages::invalid_key(&provider.display_name),
            Button::OpenSettings {
                provider: provider.id,
            },
        ),
        RouterEvent::KeyRevoked { provider } => (
            messages::key_revoked(&provider.display_name),
            Button::UpdateKey {
                provider: provider.id,
            },
        ),
        RouterEvent::QuotaExhausted { provider } => (
            messages::quota_exhausted(&provider.display_name),
            Button::SwitchProvider { from: provider.id },
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ProviderKind;
    use crate::routing::ProviderRef;
    use std::time::Duration;

    fn provider(id: i64) -> ProviderRef {
        ProviderRef {
            id,
            kind: ProviderKind::OpenAi,
            display_name: "OpenAI".into(),
        }
    }

    #[test]
    fn key_problems_are_told_while_the_author_waits_and_held_back_otherwise() {
        let event = RouterEvent::KeyInvalid {
            provider: provider(3),
        };
        assert_eq!(
            react(&event, true),
            Reaction::Ask {
                kind: MessageType::ERROR,
                text: messages::invalid_key("OpenAI"),
                buttons: vec![Button::OpenSettings { provider: 3 }],
            }
        );
        assert_eq!(react(&event, false), Reaction::Hold);
    }

    #[test]
    fn waits_and_backups_are_told_only_in_the_foreground() {
        let wait = RouterEvent::RateLimitWait {
            provider: provider(1),
            wait: Duration::from_secs(2),
        };
        assert!(matches!(react(&wait, true), Reaction::Tell { .. }));
        assert_eq!(react(&wait, false), Reaction::Nothing);
        let backup = RouterEvent::TryingBackup {
            provider: provider(1),
        };
        assert_eq!(
            react(&backup, true),
            Reaction::Tell {
                kind: MessageType::INFO,
                text: messages::unavailable("OpenAI"),
            }
        );
        assert_eq!(react(&backup, false), Reaction::Nothing);
    }

    #[test]
    fn offline_and_all_failed_are_left_to_the_action() {
        assert_eq!(react(&RouterEvent::Offline, true), Reaction::Nothing);
        assert_eq!(react(&RouterEvent::AllFailed, true), Reaction::Nothing);
        assert_eq!(react(&RouterEvent::Online, false), Reaction::ResetOffline);
        assert_eq!(problem(&RouterEvent::Online), None);
    }

    #[test]
    fn buttons_name_a_terminal_command_and_a_settings_reason() {
        let primary = Button::MakePrimary {
            id: 4,
            name: "Claude".into(),
        };
        assert_eq!(primary.cli_equivalent(), Some(cli::set_primary(4)));
        assert_eq!(primary.label(), labels::make_primary("Claude"));
        assert_eq!(Button::Retry.cli_equivalent(), None);
        let update = Button::UpdateKey { provider: 2 };
        assert_eq!(update.settings_reason(), "keyRevoked");
        assert_eq!(update.settings_provider(), Some(2));
    }
}
