//! Provider and session management: the operations behind `storyteller.providers.*`,
//! `storyteller.sessions.*` and `storyteller-lsp provider …` (DESIGN.md §3, §6; issue 7).
//!
//! This module owns the rules of those operations — validation ([`requests`], [`decode`]),
//! "test before storing", "key before row", rotation, one primary, and crash safety through the
//! intent [`journal`]. It is plain Rust over [`App`]: the LSP handlers and the CLI are thin
//! edges that decode arguments, call these functions and render the result, so both behave the
//! same.
//!
//! Must never: return, log or store a key (results carry `keyHint`/`keySource` only); leave an
//! orphan key or a keyless row when an operation fails or the process dies (see [`journal`]);
//! know LSP (no `tower_lsp` here); hold a lock across `.await` (the [`journal::ChangeLock`] is a
//! file lock, see there).

pub mod decode;
// The failpoints moved to the crate root (the store and the prompt loader use them too).
pub use crate::failpoint;
pub mod journal;
pub mod oauth;
pub mod providers;
pub mod requests;
pub mod sessions;

use crate::app::{App, AppError};
use crate::credentials::CredentialError;
use crate::messages;
use crate::providers::{ErrorKind, ProviderError, ProviderKind};
use crate::store::{SessionName, StoreError};

pub use journal::{RepairReport, repair};
pub use providers::{
    CatalogItem, ProviderSummary, ProviderUsage, Removed, TestReport, Updated, add, catalog, list,
    models, provider, remove, set_primary, stats, test, update,
};
pub use requests::{
    AddRequest, DisplayName, Endpoint, KeyChoice, ModelName, ModelsRequest, Overrides,
    ProviderSpec, SessionRequest, TestRequest, UpdateRequest,
};
pub use sessions::{SessionRemoved, SessionSummary, add_session, list_sessions, remove_session};

/// Why a provider or session operation did not happen. No variant holds a key, and no text
/// repeats an argument's value.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// An argument is malformed or not allowed here.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// An argument names a provider or session that does not exist (in this project).
    #[error("{field}: {reason}")]
    NotFound { field: String, reason: String },
    #[error("{}", messages::admin::duplicate_provider(display_name))]
    DuplicateProvider {
        kind: ProviderKind,
        display_name: String,
    },
    #[error("{}", messages::admin::duplicate_session(name.as_str(), kind.display_name()))]
    DuplicateSession {
        kind: ProviderKind,
        name: SessionName,
    },
    /// A named session past its `expiresAt`: its key is not used.
    #[error("{}", messages::admin::session_expired(name.as_str(), kind.display_name()))]
    SessionExpired {
        kind: ProviderKind,
        name: SessionName,
    },
    /// No key was given and none is available.
    #[error("{}", messages::admin::no_key(provider, kind.entry().key_env))]
    NoKey {
        kind: ProviderKind,
        provider: String,
    },
    /// The connection test (or model listing) failed; nothing was stored. `provider` is the
    /// display name the message uses.
    #[error("{}", messages::for_connection_test(error.kind(), provider, error.retry_after()))]
    Connection {
        provider: String,
        error: ProviderError,
    },
    /// The keychain or the encrypted file could not be used.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Store(StoreError),
    /// Another process holds the change lock.
    #[error("{}", messages::admin::BUSY)]
    Busy,
    #[error(transparent)]
    App(AppError),
    /// "Sign in with OpenRouter" did not produce a key; nothing was stored.
    #[error(transparent)]
    SignIn(#[from] crate::oauth::OAuthError),
}

impl From<crate::args::ArgsError> for AdminError {
    fn from(e: crate::args::ArgsError) -> Self {
        AdminError::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

impl From<AppError> for AdminError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(e) => AdminError::Store(e),
            AppError::Credentials(e) => AdminError::Credentials(e),
            other => AdminError::App(other),
        }
    }
}

impl AdminError {
    /// The stable name of the failure: the `kind` of the command error (`data.kind`), and what
    /// the CLI's exit code is chosen by.
    pub fn kind(&self) -> &'static str {
        match self {
            AdminError::Invalid { .. } => "invalidArgument",
            AdminError::NotFound { .. } => "notFound",
            AdminError::DuplicateProvider { .. } => "duplicateProvider",
            AdminError::DuplicateSession { .. } => "duplicateSession",
            AdminError::SessionExpired { .. } => "sessionExpired",
            AdminError::NoKey { .. } => ErrorKind::InvalidKey.as_str(),
            AdminError::Connection { error, .. } => error.kind().as_str(),
            AdminError::Credentials(e) => match e {
                CredentialError::Unavailable { .. } | CredentialError::Keychain { .. } => {
                    "keychainUnavailable"
                }
                CredentialError::Busy { .. } => "credentialsBusy",
                CredentialError::Corrupt { .. }
                | CredentialError::InsecurePermissions { .. }
                | CredentialError::NoFileKey { .. } => "credentialsUnreadable",
                CredentialError::NotFound { .. } => "keyNotFound",
                CredentialError::EmptyKey => "invalidArgument",
                CredentialError::Io { .. } => "credentialsIo",
                CredentialError::NoSpace { .. } => "credentialsNoSpace",
            },
            AdminError::Store(StoreError::Locked { .. }) => "storeLocked",
            AdminError::Store(_) => "storeError",
            AdminError::Busy => "busy",
            AdminError::App(_) => "internal",
            AdminError::SignIn(e) => e.kind(),
        }
    }

    /// Whether the credential store is what failed (CLI exit code 4).
    pub fn is_credential_store(&self) -> bool {
        matches!(self, AdminError::Credentials(e) if !matches!(e, CredentialError::NotFound { .. } | CredentialError::EmptyKey))
    }

    pub(crate) fn not_found(field: &str, reason: impl Into<String>) -> AdminError {
        AdminError::NotFound {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// The project an editor command acts on: the first workspace root's when it has providers of
/// its own, else `default` (DESIGN.md §4) — the one whose providers actually serve the workspace
/// (see [`App::providers_project`]), so the settings page shows what is used.
/// Opens the application services ([`App::open_with_env`]) and resolves what a crash left in the
/// credential journal ([`repair`]): the one way the server, the CLI and `doctor` start. Only after
/// a crash is there anything to repair; otherwise this is one SELECT and the credential store
/// stays closed until first use.
pub async fn open(
    settings: crate::config::Settings,
    roots: Vec<std::path::PathBuf>,
    env: std::sync::Arc<dyn crate::credentials::Environment>,
) -> Result<(App, crate::app::StartupReport), AppError> {
    let (app, mut report) = App::open_with_env(settings, roots, env).await?;
    report.credential_notices = match repair(&app).await {
        Ok(repaired) => repaired.notices,
        Err(e) => {
            tracing::warn!("interrupted provider changes not repaired yet: {e}");
            Vec::new()
        }
    };
    Ok((app, report))
}

pub async fn current_project(app: &App) -> Result<crate::store::ProjectId, AdminError> {
    let workspace = app.project_for(None).await?;
    Ok(app.providers_project(workspace).await?)
}
