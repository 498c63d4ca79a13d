//! Where API keys live: the OS keychain, an encrypted file as announced fallback, and system keys
//! from the environment (DESIGN.md §5, §6).
//!
//! This module owns the naming of credentials ([`Account`]), the [`CredentialStore`] trait and its
//! two backends ([`KeychainStore`], [`EncryptedFileStore`]), the choice between them ([`open`]),
//! system keys ([`env`]) and the key resolution order ([`resolve`]).
//!
//! Invariants: a key leaves this module only as an [`ApiKey`], whose formatting is masked; no error
//! text, log line or file written here contains a key in clear; keychain and file work never runs
//! on the async runtime's worker threads. It knows nothing of LSP or SQLite.

pub mod encrypted_file;
pub mod env;
pub mod keychain;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde::Serialize;

use crate::config::CredentialStoreChoice;
use crate::providers::{AuthType, ProviderKind};

pub use crate::secret::{ApiKey, mask};
pub use encrypted_file::{CorruptReason, EncryptedFileStore, KeyMaterial};
pub use env::{Environment, ProcessEnv, VarMap};
pub use keychain::KeychainStore;

/// The keychain service every StoryTeller credential is filed under.
pub const SERVICE: &str = "storyteller.ai_provider";

/// The name of one credential: `project_{id}_{provider}` for a project's provider key,
/// `session_{provider}_{auth_type}_{name}` for a named auth session (DESIGN.md §6).
///
/// Account names are not secret; they appear in errors and logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account(String);

impl Account {
    /// The key of one provider of one project.
    pub fn project(project_id: i64, kind: ProviderKind) -> Account {
        Account(format!("project_{project_id}_{}", kind.as_str()))
    }

    /// The key of a named auth session. `name` must be 3–50 characters of `[A-Za-z0-9_-]`, the
    /// rule of `saved_authentications.name`.
    pub fn session(
        kind: ProviderKind,
        auth_type: AuthType,
        name: &str,
    ) -> Result<Account, InvalidSessionName> {
        validate_session_name(name)?;
        Ok(Account(format!(
            "session_{}_{}_{name}",
            kind.as_str(),
            auth_type.as_str()
        )))
    }

    /// The session every existing key is backfilled into: `default_{provider}_{auth_type}`.
    pub fn default_session(kind: ProviderKind, auth_type: AuthType) -> Account {
        let name = format!("default_{}_{}", kind.as_str(), auth_type.as_str());
        Account(format!(
            "session_{}_{}_{name}",
            kind.as_str(),
            auth_type.as_str()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Account({})", self.0)
    }
}

/// A session name outside 3–50 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session name {0:?}: use 3 to 50 characters, only letters, digits, `_` and `-`")]
pub struct InvalidSessionName(pub String);

fn validate_session_name(name: &str) -> Result<(), InvalidSessionName> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid_chars && (3..=50).contains(&name.len()) {
        Ok(())
    } else {
        Err(InvalidSessionName(name.to_string()))
    }
}

/// Which backend a [`CredentialStore`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Keychain,
    File,
}

/// Where a key in use came from: the `keySource` of `storyteller.providers.list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    Keychain,
    File,
    Env,
    None,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Keychain => "keychain",
            KeySource::File => "file",
            KeySource::Env => "env",
            KeySource::None => "none",
        }
    }
}

impl From<StoreKind> for KeySource {
    fn from(kind: StoreKind) -> Self {
        match kind {
            StoreKind::Keychain => KeySource::Keychain,
            StoreKind::File => KeySource::File,
        }
    }
}

/// Everything that can go wrong with a credential. No variant ever holds a key.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no API key is stored for {account}")]
    NotFound { account: Account },

    /// No keychain, a locked one, or one that did not answer in time.
    #[error("the OS keychain is not usable: {reason}")]
    Unavailable { reason: String },

    /// The keychain answered, but with something we cannot use (duplicate entries, a value that is
    /// not text, a name it refuses).
    #[error("the OS keychain refused the request for {account}: {reason}")]
    Keychain { account: Account, reason: String },

    /// The credentials file exists but cannot be read: tampered, truncated, from another machine,
    /// or of an unknown version. It is left untouched.
    #[error(
        "the credentials file {} cannot be read: {reason}. It was left untouched; \
         to start afresh, move it away and enter the API keys again",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        reason: CorruptReason,
    },

    /// The credentials file can be read by other users of this machine, who could decrypt it.
    #[error(
        "the credentials file {} can be read by other users (mode {mode:03o}); \
         run `chmod 600 {}` and consider replacing the API keys in it",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },

    /// Neither a machine id nor `STORYTELLER_CREDENTIALS_KEY` to derive the file key from.
    #[error(
        "cannot encrypt the credentials file {}: this machine has no readable machine id \
         (/etc/machine-id); set STORYTELLER_CREDENTIALS_KEY to a long random secret",
        path.display()
    )]
    NoFileKey { path: PathBuf },

    /// Another process held the credentials file's lock for too long.
    #[error(
        "the credentials file {} is being written by another StoryTeller process; try again",
        path.display()
    )]
    Busy { path: PathBuf },

    #[error("an empty API key cannot be stored")]
    EmptyKey,

    /// The new credentials file could not be written for lack of space (a full disk, a quota, a
    /// file-size limit). The old file is untouched.
    #[error("{}", crate::messages::credentials::no_space(path))]
    NoSpace { path: PathBuf },

    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CredentialError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, CredentialError::NotFound { .. })
    }
}

/// A place keys are kept: the OS keychain or the encrypted file.
///
/// Every method is safe to call from the async runtime: implementations do their blocking work
/// elsewhere and bound it in time.
#[async_trait]
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// Stores `key` under `account`, replacing any previous key. An empty key is refused.
    async fn store(&self, account: &Account, key: &ApiKey) -> Result<(), CredentialError>;

    /// The key stored under `account`; [`CredentialError::NotFound`] when there is none.
    async fn retrieve(&self, account: &Account) -> Result<ApiKey, CredentialError>;

    /// Removes the key stored under `account`; [`CredentialError::NotFound`] when there was none.
    async fn delete(&self, account: &Account) -> Result<(), CredentialError>;

    fn kind(&self) -> StoreKind;
}

/// A key ready for use, and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub key: ApiKey,
    pub source: KeySource,
}

/// The key to use for `kind` in project `project_id`, in the order of DESIGN.md §5: the project's
/// own key in `store`, then the named `session` (an [`Account::session`]) when the provider row
/// points at one, then the system key from `env`. `Ok(None)` when no level has a key.
///
/// Only "no key here" ([`CredentialError::NotFound`], or an empty stored value) falls through to
/// the next level. A keychain that is locked or absent, or a corrupt file, is returned as an
/// error: quietly using the environment's key instead would bill another account (often an
/// employer's) and hide a store the author needs to repair.
pub async fn resolve(
    store: &dyn CredentialStore,
    project_id: i64,
    kind: ProviderKind,
    session: Option<&Account>,
    env: &dyn Environment,
) -> Result<Option<ResolvedKey>, CredentialError> {
    let project = Account::project(project_id, kind);
    for account in std::iter::once(&project).chain(session) {
        match store.retrieve(account).await {
            Ok(key) if !key.is_empty() => {
                return Ok(Some(ResolvedKey {
                    key,
                    source: store.kind().into(),
                }));
            }
            Ok(_) | Err(CredentialError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(env::system_key(kind, env).map(|key| ResolvedKey {
        key,
        source: KeySource::Env,
    }))
}

/// The store [`open`] chose, and the warning to show when it is the file.
#[derive(Debug, Clone)]
pub struct OpenedStore {
    pub store: Arc<dyn CredentialStore>,
    pub fallback: Option<FallbackNotice>,
}

/// Keys go to the encrypted file: the author must be told once that it is weaker than a keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackNotice {
    pub path: PathBuf,
    /// Why the keychain is not used, e.g. "no Secret Service reachable on the D-Bus session bus (…)".
    pub reason: String,
    /// True for the first notice of this process: show it then, not on every settings change.
    pub first_in_process: bool,
    /// The `credentialStore` setting is "file": the author chose it, nothing fell back. Told as
    /// information with its own text ([`FallbackNotice::message`]), not as the warning.
    pub chosen: bool,
}

impl FallbackNotice {
    /// The text of DESIGN.md §7 "fallback store", or, when the setting chose the file, the text
    /// that says so.
    pub fn message(&self) -> String {
        if self.chosen {
            crate::messages::file_store_chosen(&self.path)
        } else {
            crate::messages::fallback_store_warning(&self.path, &self.reason)
        }
    }
}

/// Opens the credential store the `credentialStore` setting asks for, with the keys in
/// `{data_dir}/credentials.enc` when it is the file. Reads `STORYTELLER_CREDENTIALS_KEY` from the
/// process environment.
///
/// - `Auto`: the keychain when [`KeychainStore::probe`] says it is usable now, else the file with a
///   [`FallbackNotice`] (logged once per process).
/// - `Keychain`: the keychain, or [`CredentialError::Unavailable`] with the reason.
/// - `File`: the file, with the notice.
pub async fn open(
    choice: CredentialStoreChoice,
    data_dir: &Path,
) -> Result<OpenedStore, CredentialError> {
    open_with_env(choice, data_dir, Arc::new(ProcessEnv)).await
}

/// [`open`] with an explicit environment (tests, embedding).
pub async fn open_with_env(
    choice: CredentialStoreChoice,
    data_dir: &Path,
    env: Arc<dyn Environment>,
) -> Result<OpenedStore, CredentialError> {
    let fallback_reason = match choice {
        CredentialStoreChoice::File => "the credentialStore setting is \"file\"".to_string(),
        CredentialStoreChoice::Keychain | CredentialStoreChoice::Auto => {
            let keychain = KeychainStore::new();
            match keychain.probe().await {
                Ok(()) => {
                    return Ok(OpenedStore {
                        store: Arc::new(keychain),
                        fallback: None,
                    });
                }
                Err(e) if choice == CredentialStoreChoice::Keychain => return Err(e),
                Err(CredentialError::Unavailable { reason }) => reason,
                Err(other) => other.to_string(),
            }
        }
    };
    let data_dir = data_dir.to_path_buf();
    let file = tokio::task::spawn_blocking(move || {
        encrypted_file::create_data_dir(&data_dir)?;
        Ok::<_, CredentialError>(EncryptedFileStore::new(
            &data_dir,
            KeyMaterial::from_system(env.as_ref()),
        ))
    })
    .await
    .map_err(|e| CredentialError::Io {
        action: "prepare",
        path: PathBuf::from(encrypted_file::FILE_NAME),
        source: io::Error::other(e.to_string()),
    })??;
    let notice = announce_fallback(
        file.path(),
        fallback_reason,
        choice == CredentialStoreChoice::File,
    );
    Ok(OpenedStore {
        store: Arc::new(file),
        fallback: Some(notice),
    })
}

fn announce_fallback(path: &Path, reason: String, chosen: bool) -> FallbackNotice {
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    let first_in_process = !ANNOUNCED.swap(true, Ordering::SeqCst);
    let notice = FallbackNotice {
        path: path.to_path_buf(),
        reason,
        first_in_process,
        chosen,
    };
    if first_in_process && chosen {
        tracing::info!("{}", notice.message());
    } else if first_in_process {
        tracing::warn!("{}", notice.message());
    }
    notice
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_follow_the_design_names() {
        let cases = [
            (
                Account::project(1, ProviderKind::OpenAi),
                "project_1_openai",
            ),
            (
                Account::project(42, ProviderKind::Claude),
                "project_42_claude",
            ),
            (
                Account::session(ProviderKind::Gemini, AuthType::ApiKey, "work").unwrap(),
                "session_gemini_api_key_work",
            ),
            (
                Account::session(ProviderKind::Scaleway, AuthType::Oauth, "a-b_C9").unwrap(),
                "session_scaleway_oauth_a-b_C9",
            ),
            (
                Account::default_session(ProviderKind::DeepSeek, AuthType::ApiKey),
                "session_deepseek_api_key_default_deepseek_api_key",
            ),
        ];
        for (account, expected) in cases {
            assert_eq!(account.as_str(), expected);
        }
    }

    #[test]
    fn session_names_outside_the_rule_are_refused() {
        let long = "x".repeat(51);
        for bad in ["", "ab", "has space", "dot.ted", "ünï", long.as_str()] {
            assert!(
                Account::session(ProviderKind::OpenAi, AuthType::ApiKey, bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        let longest = "x".repeat(50);
        for good in ["abc", "default_openai_api_key", longest.as_str()] {
            assert!(Account::session(ProviderKind::OpenAi, AuthType::ApiKey, good).is_ok());
        }
    }

    #[test]
    fn error_texts_name_the_file_and_never_need_the_key() {
        let path = PathBuf::from("/data/credentials.enc");
        let texts = [
            CredentialError::Corrupt {
                path: path.clone(),
                reason: CorruptReason::Truncated { len: 3 },
            }
            .to_string(),
            CredentialError::InsecurePermissions {
                path: path.clone(),
                mode: 0o644,
            }
            .to_string(),
            CredentialError::NoFileKey { path: path.clone() }.to_string(),
            CredentialError::Busy { path: path.clone() }.to_string(),
        ];
        for text in texts {
            assert!(text.contains("/data/credentials.enc"), "{text}");
        }
        assert!(
            CredentialError::InsecurePermissions { path, mode: 0o644 }
                .to_string()
                .contains("mode 644")
        );
    }
}
