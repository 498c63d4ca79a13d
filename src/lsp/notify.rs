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
//! Must never: block the message loop on a dialog (requests with buttons run on their own
//! task), show a key or manuscript text, hold a lock across `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tower_lsp::Client;
use tower_lsp::lsp_types::notification::{Notification, Progress as ProgressNotification};
use tower_lsp::lsp_types::request::{ShowMessageRequest, WorkDoneProgressCreate};
use tower_lsp::lsp_types::{
    MessageActionItem, MessageType, NumberOrString, ProgressParams, ProgressParamsValue,
    ShowMessageRequestParams, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressCancelParams, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};

use super::session::ServerState;
use crate::app::{App, AppEvent};
use crate::app::{ProjectId, ProviderId};
use crate::assist::AssistError;
use crate::assist::inline::Trigger;
use crate::config::CredentialStoreChoice;
use crate::credentials::FallbackNotice;
use crate::messages::{self, actions as labels, cli};
use crate::routing::{EuConsent, ProviderRef, RouteError, RouterEvent};

/// The status notification: the `storyteller.status` shape, sent on every state change.
pub const STATUS_METHOD: &str = "storyteller/status";
/// Asks the editor to show its provider settings (editors announce
/// `experimental.storyteller.openSettings`).
pub const OPEN_SETTINGS_METHOD: &str = "storyteller/openSettings";
/// The author cancelled a progress (LSP 3.15; not a `LanguageServer` method in tower-lsp 0.20).
pub const PROGRESS_CANCEL_METHOD: &str = "window/workDoneProgress/cancel";

/// How long the editor may take to accept a progress token.
const PROGRESS_CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a request to the editor on a task of its own and waits for the answer at most `limit`.
///
/// Why a task: tower-lsp 0.20 panics (`Pending::insert`: "receiver already dropped"), ending the
/// session, when an answer arrives for a request whose future was dropped — which a timeout, or a
/// handler dropped by `$/cancelRequest`, would do. The task keeps the waiter alive until the
/// answer comes, whatever happens to the caller. `None`: no answer in time.
pub(crate) async fn request_editor<R>(
    client: &Client,
    params: R::Params,
    limit: Duration,
) -> Option<tower_lsp::jsonrpc::Result<R::Result>>
where
    R: tower_lsp::lsp_types::request::Request,
    R::Params: Send + 'static,
    R::Result: Send + 'static,
{
    let client = client.clone();
    let answer = tokio::spawn(async move { client.send_request::<R>(params).await });
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(result)) => Some(result),
        _ => None,
    }
}

enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = Value;
    const METHOD: &'static str = STATUS_METHOD;
}

enum OpenSettingsNotification {}

impl Notification for OpenSettingsNotification {
    type Params = Value;
    const METHOD: &'static str = OPEN_SETTINGS_METHOD;
}

/// Messages sent to the session task in order with the application events.
enum Control {
    /// An explicit AI request started for the project: tell what was held back.
    ForegroundStarted(ProjectId),
    /// One explicit request ended.
    ForegroundEnded,
}

/// The session's message state.
pub struct Notifier {
    not_configured_shown: AtomicBool,
    offline_shown: AtomicBool,
    /// Explicit (foreground) requests running now.
    foreground: Arc<AtomicUsize>,
    control: mpsc::UnboundedSender<Control>,
    control_rx: Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
    /// Problems seen while no foreground request ran, by project.
    held: Mutex<Vec<(ProjectId, RouterEvent)>>,
    /// Running progress tokens and the work each cancels.
    progress: Mutex<HashMap<String, CancellationToken>>,
    next_token: AtomicU64,
    /// Projects whose "outside the EU?" question is on screen now (asked once at a time).
    consent_open: Mutex<HashSet<ProjectId>>,
    /// Projects whose question ghost text already asked this session (never again from there).
    consent_asked_inline: Mutex<HashSet<ProjectId>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn in_foreground(&self) -> bool {
        self.foreground.load(Ordering::SeqCst) > 0
    }

    /// True once per session: whether the not-configured prompt is still to be shown.
    fn first_not_configured(&self) -> bool {
        !self.not_configured_shown.swap(true, Ordering::SeqCst)
    }

    /// True once per offline spell.
    pub(crate) fn first_offline_notice(&self) -> bool {
        !self.offline_shown.swap(true, Ordering::SeqCst)
    }

    fn register_progress(&self, token: String, cancel: CancellationToken) {
        lock(&self.progress).insert(token, cancel);
    }

    fn unregister_progress(&self, token: &str) {
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

/// Who to tell, and about which project.
#[derive(Clone)]
pub(crate) struct Audience {
    pub client: Client,
    pub state: Arc<ServerState>,
    pub app: App,
    pub project: Option<ProjectId>,
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
    fn label(&self) -> String {
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
    fn cli_equivalent(&self) -> Option<String> {
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
    fn settings_reason(&self) -> &'static str {
        match self {
            Button::ConfigureAiProvider => "notConfigured",
            Button::OpenSettings { .. } => "invalidKey",
            Button::UpdateKey { .. } => "keyRevoked",
            _ => "configure",
        }
    }

    /// The provider whose edit form the settings open at (`providerId` of
    /// `storyteller/openSettings`); none for the list.
    fn settings_provider(&self) -> Option<i64> {
        match self {
            Button::OpenSettings { provider } | Button::UpdateKey { provider } => Some(*provider),
            _ => None,
        }
    }
}

/// Work a Retry button starts.
pub(crate) type RetryAction = Box<dyn FnOnce() + Send + 'static>;

/// Starts the session task: status at start-up and on every change, router events turned into
/// messages. Called once the application services are open.
pub(crate) fn start(client: &Client, state: &Arc<ServerState>, app: &App) {
    let Some(control) = lock(&state.notifier.control_rx).take() else {
        return;
    };
    // Subscribe before the task runs, so no event of the first requests is missed.
    let events = app.subscribe();
    tokio::spawn(follow(
        client.clone(),
        state.clone(),
        app.clone(),
        events,
        control,
    ));
}

async fn follow(
    client: Client,
    state: Arc<ServerState>,
    app: App,
    mut events: broadcast::Receiver<AppEvent>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    if let Ok(project) = app.project_for(None).await {
        send_status(&client, &app, project).await;
    }
    let exited = state.exited();
    tokio::pin!(exited);
    loop {
        tokio::select! {
            biased;
            _ = &mut exited => break,
            event = events.recv() => match event {
                Ok(AppEvent::Router { project, event }) => {
                    let audience = Audience {
                        client: client.clone(),
                        state: state.clone(),
                        app: app.clone(),
                        project: Some(project),
                    };
                    on_router_event(&audience, project, event).await;
                }
                Ok(AppEvent::ProvidersChanged { project } | AppEvent::StatusChanged { project }) => {
                    send_status(&client, &app, project).await;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "status events dropped; the next change resends it");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            message = control.recv() => match message {
                Some(Control::ForegroundStarted(project)) => {
                    let held: Vec<RouterEvent> = {
                        let mut held = lock(&state.notifier.held);
                        let (mine, others): (Vec<_>, Vec<_>) =
                            held.drain(..).partition(|(p, _)| *p == project);
                        *held = others;
                        mine.into_iter().map(|(_, e)| e).collect()
                    };
                    let audience = Audience {
                        client: client.clone(),
                        state: state.clone(),
                        app: app.clone(),
                        project: Some(project),
                    };
                    for event in held {
                        tell_problem(&audience, event);
                    }
                }
                Some(Control::ForegroundEnded) => {
                    state.notifier.foreground.fetch_sub(1, Ordering::SeqCst);
                }
                None => break,
            },
        }
    }
}

async fn on_router_event(audience: &Audience, project: ProjectId, event: RouterEvent) {
    send_status(&audience.client, &audience.app, project).await;
    let notifier = &audience.state.notifier;
    match event {
        RouterEvent::FailedOver { to, .. } => ask(
            audience.clone(),
            MessageType::WARNING,
            messages::failed_over(&to.display_name),
            vec![Button::MakePrimary {
                id: to.id,
                name: to.display_name.clone(),
            }],
            None,
        ),
        RouterEvent::Recovered { provider } => {
            tell(
                &audience.client,
                MessageType::INFO,
                messages::recovered(&provider.display_name),
            )
            .await;
        }
        RouterEvent::ModelFallback {
            provider,
            missing,
            default_model,
        } => {
            tell(
                &audience.client,
                MessageType::WARNING,
                messages::model_fallback(&provider.display_name, &missing, &default_model),
            )
            .await;
        }
        RouterEvent::RateLimitWait { provider, wait } => {
            if notifier.in_foreground() {
                let text = messages::for_provider_error(
                    crate::providers::ErrorKind::RateLimited,
                    &provider.display_name,
                    Some(wait),
                );
                tell(&audience.client, MessageType::INFO, text).await;
            }
        }
        event @ (RouterEvent::KeyInvalid { .. }
        | RouterEvent::KeyRevoked { .. }
        | RouterEvent::QuotaExhausted { .. }) => {
            if notifier.in_foreground() {
                tell_problem(audience, event);
            } else {
                let mut held = lock(&notifier.held);
                if !held.iter().any(|(p, e)| *p == project && *e == event) {
                    held.push((project, event));
                }
            }
        }
        RouterEvent::Online => {
            notifier.offline_shown.store(false, Ordering::SeqCst);
        }
        // While the author waits on an action; ghost text stays quiet. Once per failover
        // episode (the router sends it once until the provider answers again).
        RouterEvent::TryingBackup { provider } => {
            if notifier.in_foreground() {
                tell(
                    &audience.client,
                    MessageType::INFO,
                    messages::unavailable(&provider.display_name),
                )
                .await;
            }
        }
        RouterEvent::InsecureHttpAllowed { provider, host } => {
            tell(
                &audience.client,
                MessageType::WARNING,
                messages::residency::insecure_http_allowed(&provider.display_name, &host),
            )
            .await;
        }
        RouterEvent::InsecureHttpRefused { provider, host } => {
            tell(
                &audience.client,
                MessageType::ERROR,
                messages::residency::insecure_http_refused(&provider.display_name, &host),
            )
            .await;
        }
        // Told by the action that failed (it can offer Retry); inline requests stay silent.
        RouterEvent::AllFailed | RouterEvent::Offline => {}
    }
}

/// A problem with one provider's key or quota, with its button.
fn tell_problem(audience: &Audience, event: RouterEvent) {
    let (text, button) = match event {
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
        _ => return,
    };
    ask(
        audience.clone(),
        MessageType::ERROR,
        text,
        vec![button],
        None,
    );
}

/// Sends `storyteller/status` for `project`.
pub(crate) async fn send_status(client: &Client, app: &App, project: ProjectId) {
    match app.router(project).await {
        Ok(router) => match serde_json::to_value(router.status()) {
            Ok(status) => {
                client.send_notification::<StatusNotification>(status).await;
            }
            Err(e) => tracing::warn!("status not encoded: {e}"),
        },
        Err(e) => tracing::warn!("no status for project {project}: {e}"),
    }
}

/// Where keys are kept, told once per process: information when the `credentialStore` setting
/// chose the encrypted file, the §7 "fallback store" warning when the keychain was not usable.
pub(crate) async fn tell_credential_store(client: &Client, notice: &FallbackNotice) {
    static TOLD: AtomicBool = AtomicBool::new(false);
    if TOLD.swap(true, Ordering::SeqCst) {
        return;
    }
    let kind = if notice.chosen {
        MessageType::INFO
    } else {
        MessageType::WARNING
    };
    tell(client, kind, notice.message()).await;
}

/// At start, when the `credentialStore` setting chose the file: say so once (opening the file
/// store is cheap; `auto` is not probed here, its warning comes when a key is stored).
pub(crate) fn announce_chosen_credential_store(client: &Client, app: &App) {
    if app.settings().credential_store != CredentialStoreChoice::File {
        return;
    }
    let (client, app) = (client.clone(), app.clone());
    tokio::spawn(async move {
        if let Ok((_, Some(notice))) = app.credentials().await {
            tell_credential_store(&client, &notice).await;
        }
    });
}

/// A plain message.
pub(crate) async fn tell(client: &Client, kind: MessageType, text: impl Into<String>) {
    client.show_message(kind, text.into()).await;
}

/// Shows `text` with `buttons` and acts on the author's choice, on a task of its own (a dialog
/// may stay open for minutes). Clients without message buttons get the text with the equivalent
/// terminal command.
pub(crate) fn ask(
    audience: Audience,
    kind: MessageType,
    text: String,
    buttons: Vec<Button>,
    retry: Option<RetryAction>,
) {
    tokio::spawn(async move {
        if !audience.state.client().message_actions {
            let hint = buttons
                .iter()
                .find_map(Button::cli_equivalent)
                .map(|command| messages::cli_hint(&command));
            let text = match hint {
                Some(hint) => format!("{text} {hint}"),
                None => text,
            };
            tell(&audience.client, kind, text).await;
            return;
        }
        let items = buttons
            .iter()
            .map(|b| MessageActionItem {
                title: b.label(),
                properties: HashMap::new(),
            })
            .collect();
        let params = ShowMessageRequestParams {
            typ: kind,
            message: text,
            actions: Some(items),
        };
        // A dialog may stay open as long as the author likes; the session's end stops waiting.
        let answer =
            request_editor::<ShowMessageRequest>(&audience.client, params, Duration::MAX).await;
        let chosen = match answer {
            Some(Ok(Some(item))) => buttons.into_iter().find(|b| b.label() == item.title),
            Some(Ok(None)) | None => None,
            Some(Err(e)) => {
                tracing::debug!("message request not answered: {e}");
                None
            }
        };
        if let Some(button) = chosen {
            act(audience, button, retry).await;
        }
    });
}

/// Does what a button says.
async fn act(audience: Audience, button: Button, retry: Option<RetryAction>) {
    match button {
        Button::MaybeLater => {}
        Button::Retry => {
            if let Some(retry) = retry {
                retry();
            }
        }
        Button::MakePrimary { id, name } | Button::Choose { id, name } => {
            make_primary(&audience, id, &name).await
        }
        Button::SwitchProvider { from } => switch_provider(audience, from).await,
        Button::AllowOutsideEu => answer_eu_consent(&audience, EuConsent::Allowed, retry).await,
        Button::KeepEuOnly => answer_eu_consent(&audience, EuConsent::KeepEuOnly, None).await,
        Button::ConfigureAiProvider
        | Button::ConfigureProviders
        | Button::OpenSettings { .. }
        | Button::UpdateKey { .. } => {
            open_settings(&audience.client, &audience.state, &button).await
        }
    }
}

/// `storyteller/openSettings` for editors that handle it (`{reason, providerId?}`: with a
/// provider id the editor opens that provider's edit form), else the terminal command.
async fn open_settings(client: &Client, state: &ServerState, button: &Button) {
    if state.client().open_settings {
        let mut params = json!({ "reason": button.settings_reason() });
        if let Some(id) = button.settings_provider() {
            params["providerId"] = json!(id);
        }
        client
            .send_notification::<OpenSettingsNotification>(params)
            .await;
    } else if let Some(command) = button.cli_equivalent() {
        tell(client, MessageType::INFO, messages::cli_hint(&command)).await;
    }
}

/// Makes provider `id` the primary of the project whose providers serve this one (through
/// `admin::set_primary`, like the command and the CLI) and routes to it from the next request.
async fn make_primary(audience: &Audience, id: i64, name: &str) {
    let Some(project) = audience.project else {
        return;
    };
    let app = &audience.app;
    let result = match app.providers_project(project).await {
        Ok(owner) => crate::admin::set_primary(app, owner, ProviderId(id))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => {
            tell(
                &audience.client,
                MessageType::INFO,
                messages::now_primary(name),
            )
            .await
        }
        Err(reason) => {
            tracing::warn!(provider_id = id, "set primary failed: {reason}");
            tell(
                &audience.client,
                MessageType::ERROR,
                messages::provider_change_failed(&reason),
            )
            .await;
        }
    }
}

/// "Switch Provider": the other active providers to choose from.
async fn switch_provider(audience: Audience, from: i64) {
    let Some(project) = audience.project else {
        return;
    };
    let others: Vec<ProviderRef> = match audience.app.router(project).await {
        Ok(router) => router
            .status()
            .providers
            .into_iter()
            .filter(|p| p.is_active && p.provider.id != from)
            .map(|p| p.provider)
            .collect(),
        Err(_) => Vec::new(),
    };
    if others.is_empty() {
        open_settings(
            &audience.client,
            &audience.state,
            &Button::ConfigureProviders,
        )
        .await;
        return;
    }
    let buttons = others
        .into_iter()
        .map(|p| Button::Choose {
            id: p.id,
            name: p.display_name,
        })
        .collect();
    ask(
        audience,
        MessageType::INFO,
        messages::CHOOSE_PROVIDER.to_string(),
        buttons,
        None,
    );
}

/// "Send to {provider} (outside the EU)?" [Allow] [Keep EU only], for `audience.project`, unless
/// that question is on screen already. Allow stores the answer and runs `retry` (the action that
/// stopped at the EU border); Keep EU only stores it. Dismissed: nothing stored, asked again by
/// the next action that needs it.
pub(crate) fn ask_eu_consent(
    audience: Audience,
    provider: ProviderRef,
    retry: Option<RetryAction>,
) {
    let Some(project) = audience.project else {
        return;
    };
    if !lock(&audience.state.notifier.consent_open).insert(project) {
        return;
    }
    let state = audience.state.clone();
    let closer = ConsentOpen { state, project };
    tokio::spawn(async move {
        let _open = closer;
        // An answer given from a terminal (`storyteller-lsp residency`) since this process read
        // it: route by it, and run the stopped action again, instead of asking.
        if let Ok(consent @ (EuConsent::Allowed | EuConsent::KeepEuOnly)) =
            audience.app.refresh_eu_consent(project).await
        {
            tracing::info!(
                project = project.0,
                consent = consent.as_str(),
                "EU residency answered from the terminal"
            );
            if let Some(retry) = retry {
                retry();
            }
            return;
        }
        let buttons = vec![Button::AllowOutsideEu, Button::KeepEuOnly];
        if !audience.state.client().message_actions {
            tell(
                &audience.client,
                MessageType::WARNING,
                messages::residency::consent_question_without_buttons(&provider.display_name),
            )
            .await;
            return;
        }
        let params = ShowMessageRequestParams {
            typ: MessageType::WARNING,
            message: messages::residency::consent_question(&provider.display_name),
            actions: Some(
                buttons
                    .iter()
                    .map(|b| MessageActionItem {
                        title: b.label(),
                        properties: HashMap::new(),
                    })
                    .collect(),
            ),
        };
        let answer =
            request_editor::<ShowMessageRequest>(&audience.client, params, Duration::MAX).await;
        let chosen = match answer {
            Some(Ok(Some(item))) => buttons.into_iter().find(|b| b.label() == item.title),
            _ => None,
        };
        if let Some(button) = chosen {
            act(audience, button, retry).await;
        }
    });
}

/// Takes a project's question off the screen list when its task ends, however it ends.
struct ConsentOpen {
    state: Arc<ServerState>,
    project: ProjectId,
}

impl Drop for ConsentOpen {
    fn drop(&mut self) {
        lock(&self.state.notifier.consent_open).remove(&self.project);
    }
}

/// Stores the project's answer and routes by it; Allow runs the action again.
async fn answer_eu_consent(audience: &Audience, consent: EuConsent, retry: Option<RetryAction>) {
    let Some(project) = audience.project else {
        return;
    };
    match audience.app.set_eu_consent(project, consent).await {
        Ok(()) => {
            tracing::info!(
                project = project.0,
                consent = consent.as_str(),
                "EU residency answered"
            );
            if let Some(retry) = retry {
                retry();
            }
        }
        Err(e) => {
            tracing::warn!(project = project.0, "EU residency answer not stored: {e}");
            tell(
                &audience.client,
                MessageType::ERROR,
                messages::provider_change_failed(&e.to_string()),
            )
            .await;
        }
    }
}

/// The not-configured prompt, once per session. Returns whether it was shown now.
pub(crate) fn offer_not_configured(state: &Arc<ServerState>) -> bool {
    let (Some(client), Some(app)) = (state.peer(), state.app_now()) else {
        return false;
    };
    if !state.notifier.first_not_configured() {
        return false;
    }
    ask(
        Audience {
            client,
            state: state.clone(),
            app,
            project: None,
        },
        MessageType::INFO,
        messages::NOT_CONFIGURED.to_string(),
        vec![Button::ConfigureAiProvider, Button::MaybeLater],
        None,
    );
    true
}

/// An inline request failed: nothing pops up (the status notification already tells the state),
/// except the not-configured prompt when the author asked for the suggestion.
pub(crate) fn inline_failed(
    state: &Arc<ServerState>,
    error: &AssistError,
    trigger: Trigger,
    project: Option<ProjectId>,
) {
    match error {
        e if e.is_cancelled() => {}
        AssistError::Route(RouteError::NotConfigured) => {
            if trigger == Trigger::Invoked {
                offer_not_configured(state);
            }
        }
        // Ghost text returned nothing; the question is asked from here at most once a session
        // (a code action asks again if it was dismissed).
        AssistError::Route(RouteError::ConsentNeeded { provider, .. }) => {
            let (Some(client), Some(app)) = (state.peer(), state.app_now()) else {
                return;
            };
            let Some(project) = project else {
                return;
            };
            if !lock(&state.notifier.consent_asked_inline).insert(project) {
                return;
            }
            ask_eu_consent(
                Audience {
                    client,
                    state: state.clone(),
                    app,
                    project: Some(project),
                },
                provider.clone(),
                None,
            );
        }
        other => tracing::debug!("inline completion failed: {other}"),
    }
}

/// `window/workDoneProgress/cancel`: cancels the action behind the token.
pub(crate) async fn on_progress_cancel(state: &ServerState, params: WorkDoneProgressCancelParams) {
    let token = token_key(&params.token);
    if !state.notifier.cancel_progress(&token) {
        tracing::debug!(token, "cancel for a finished or unknown progress");
    }
}

fn token_key(token: &NumberOrString) -> String {
    match token {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    }
}

/// The `$/progress` of one running action; a no-op for clients without work-done progress.
pub(crate) struct Progress {
    client: Client,
    state: Arc<ServerState>,
    token: Option<NumberOrString>,
}

impl Progress {
    /// Creates a token with the editor and begins the progress; cancelling it fires `cancel`.
    pub async fn begin(
        client: &Client,
        state: &Arc<ServerState>,
        title: &str,
        cancel: CancellationToken,
    ) -> Progress {
        let mut progress = Progress {
            client: client.clone(),
            state: state.clone(),
            token: None,
        };
        if !state.client().work_done_progress {
            return progress;
        }
        let n = state.notifier.next_token.fetch_add(1, Ordering::Relaxed);
        let token = NumberOrString::String(format!("storyteller-{n}"));
        let created = request_editor::<WorkDoneProgressCreate>(
            client,
            WorkDoneProgressCreateParams {
                token: token.clone(),
            },
            PROGRESS_CREATE_TIMEOUT,
        )
        .await;
        if !matches!(created, Some(Ok(()))) {
            tracing::debug!("the editor did not accept a progress token; no progress shown");
            return progress;
        }
        state.notifier.register_progress(token_key(&token), cancel);
        progress.token = Some(token);
        progress
            .send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_string(),
                cancellable: Some(true),
                message: None,
                percentage: None,
            }))
            .await;
        progress
    }

    pub async fn report(&self, message: impl Into<String>) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message.into()),
            percentage: None,
        }))
        .await;
    }

    pub async fn end(mut self, message: &str) {
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(message.to_string()),
        }))
        .await;
        if let Some(token) = self.token.take() {
            self.state.notifier.unregister_progress(&token_key(&token));
        }
    }

    async fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client
                .send_notification::<ProgressNotification>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }
}

impl Drop for Progress {
    /// A progress dropped before its end (its request was cancelled with `$/cancelRequest`)
    /// still ends, so the editor does not show it running forever.
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        self.state.notifier.unregister_progress(&token_key(&token));
        let client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                client
                    .send_notification::<ProgressNotification>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(
                            WorkDoneProgressEnd {
                                message: Some(messages::progress::CANCELLED.to_string()),
                            },
                        )),
                    })
                    .await;
            });
        }
    }
}
