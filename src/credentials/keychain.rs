//! The OS keychain backend, through the `keyring` crate (4.x, feature `v1`): the Secret Service
//! over D-Bus (zbus, pure Rust) on Linux and the BSDs, Keychain Services on macOS, Credential
//! Manager on Windows. `keyring` picks that platform store itself, once per process, on the first
//! `Entry::new` (`Entry::store_status` reports the outcome; without a session bus it is
//! `NoDefaultStore` for the rest of the process).
//!
//! Items are filed under service [`SERVICE`](super::SERVICE) and the [`Account`] name (the
//! `username` attribute of the Secret Service item). On the Secret Service each item also gets an
//! `account` attribute with the same name, so that
//! `secret-tool lookup service storyteller.ai_provider account project_1_openai` finds it.
//!
//! This module must never block the async runtime or hang the server: every keychain call runs on
//! the blocking pool and is abandoned after a timeout (a locked keychain may wait forever on an
//! unlock prompt). While an abandoned call is still stuck, later calls fail at once instead of
//! piling up threads behind it. It never formats a `keyring` error with `Debug` (some variants
//! carry the secret's bytes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Account, ApiKey, CredentialError, CredentialStore, SERVICE, StoreKind};
use crate::telemetry::redact;

/// How long one keychain call may take before the server stops waiting for it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Looked up (never written) by [`KeychainStore::probe`].
const PROBE_ACCOUNT: &str = "storyteller_probe";

/// The OS keychain as a [`CredentialStore`].
///
/// A call that times out reports [`CredentialError::Unavailable`], but the keychain may still
/// complete it later (for instance once the author answers an unlock prompt): after a timed-out
/// `store`, a caller that must not leave a key behind deletes the account again later.
#[derive(Debug, Clone)]
pub struct KeychainStore {
    calls: BoundedCalls,
}

impl Default for KeychainStore {
    fn default() -> Self {
        KeychainStore::new()
    }
}

impl KeychainStore {
    pub fn new() -> KeychainStore {
        KeychainStore::with_timeout(DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(timeout: Duration) -> KeychainStore {
        KeychainStore {
            calls: BoundedCalls::new(timeout),
        }
    }

    /// Whether the keychain is usable now: the platform store opens (a session bus with a Secret
    /// Service on Linux), it has a default collection to keep keys in, and it answers a lookup
    /// within the timeout. Writes nothing and never prompts: it looks up an account that is never
    /// stored, so no locked item has to be unlocked.
    ///
    /// A default collection that exists but is locked counts as usable: on a desktop the first
    /// use asks the author to unlock it, as every application does; falling back to the file
    /// instead would split keys between two stores from one session to the next.
    pub async fn probe(&self) -> Result<(), CredentialError> {
        self.calls
            .run(|| {
                if let Err(e) = keyring::Entry::store_status() {
                    return Err(CredentialError::Unavailable {
                        reason: store_failure(e),
                    });
                }
                check_default_collection()?;
                let probe = Account(PROBE_ACCOUNT.to_string());
                match entry(&probe)?.get_secret() {
                    Ok(bytes) => {
                        drop(Zeroizing::new(bytes));
                        Ok(())
                    }
                    Err(e) => match map_error(e, &probe) {
                        e @ CredentialError::Unavailable { .. } => Err(e),
                        _ => Ok(()),
                    },
                }
            })
            .await
    }
}

/// A Secret Service without a default collection (a keyring that was never created, e.g. over
/// SSH or in a container where gnome-keyring is merely activatable) accepts lookups but can
/// never store a key.
#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn check_default_collection() -> Result<(), CredentialError> {
    use secret_service::blocking::SecretService;
    use secret_service::{EncryptionType, Error};
    let unavailable = |reason: String| CredentialError::Unavailable {
        reason: redact(&reason).into_owned(),
    };
    let service = SecretService::connect(EncryptionType::Plain)
        .map_err(|e| unavailable(format!("cannot reach the Secret Service ({e})")))?;
    match service.get_default_collection() {
        Ok(_) => Ok(()),
        Err(Error::NoResult) => Err(unavailable(
            "the Secret Service has no default keyring to store keys in \
             (create or unlock one, e.g. with Seahorse or `gnome-keyring-daemon --unlock`)"
                .into(),
        )),
        Err(e) => Err(unavailable(format!(
            "the Secret Service did not name its default keyring ({e})"
        ))),
    }
}

#[cfg(not(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
)))]
fn check_default_collection() -> Result<(), CredentialError> {
    // macOS and Windows always have a default keychain / credential set for a logged-in user.
    Ok(())
}

#[async_trait]
impl CredentialStore for KeychainStore {
    async fn store(&self, account: &Account, key: &ApiKey) -> Result<(), CredentialError> {
        if key.is_empty() {
            return Err(CredentialError::EmptyKey);
        }
        let (account, key) = (account.clone(), key.clone());
        self.calls
            .run(move || {
                let entry = entry(&account)?;
                entry
                    .set_secret(key.expose().as_bytes())
                    .map_err(|e| map_error(e, &account))?;
                add_account_attribute(&entry, &account);
                Ok(())
            })
            .await
    }

    async fn retrieve(&self, account: &Account) -> Result<ApiKey, CredentialError> {
        let account = account.clone();
        self.calls
            .run(move || {
                let bytes = Zeroizing::new(
                    entry(&account)?
                        .get_secret()
                        .map_err(|e| map_error(e, &account))?,
                );
                match std::str::from_utf8(&bytes) {
                    Ok(text) => Ok(ApiKey::new(text)),
                    Err(_) => Err(CredentialError::Keychain {
                        account,
                        reason: "the stored value is not text".into(),
                    }),
                }
            })
            .await
    }

    async fn delete(&self, account: &Account) -> Result<(), CredentialError> {
        let account = account.clone();
        self.calls
            .run(move || {
                entry(&account)?
                    .delete_credential()
                    .map_err(|e| map_error(e, &account))
            })
            .await
    }

    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }
}

fn entry(account: &Account) -> Result<keyring::Entry, CredentialError> {
    keyring::Entry::new(SERVICE, account.as_str()).map_err(|e| map_error(e, account))
}

/// The `account` attribute for `secret-tool` and keychain browsers. Cosmetic: the item is found
/// by service and username, so a failure here is logged and the key stays stored.
#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn add_account_attribute(entry: &keyring::Entry, account: &Account) {
    let attributes = std::collections::HashMap::from([("account", account.as_str())]);
    if let Err(e) = entry.inner.update_attributes(&attributes) {
        tracing::warn!(
            "could not label the keychain item {account} with its account: {}",
            map_error(e, account)
        );
    }
}

#[cfg(not(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
)))]
fn add_account_attribute(_entry: &keyring::Entry, _account: &Account) {}

/// Why the platform store could not be opened, e.g. no D-Bus session bus.
fn store_failure(error: &keyring::Error) -> String {
    let detail = match error {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => e.to_string(),
        other => other.to_string(),
    };
    // On the Secret Service platforms opening the store means connecting to the session bus
    // and the Secret Service on it; that is what fails without a desktop session.
    let what = if cfg!(all(
        unix,
        not(any(
            target_os = "macos",
            target_os = "ios",
            target_os = "android"
        ))
    )) {
        "no Secret Service reachable on the D-Bus session bus"
    } else {
        "the platform keychain could not be opened"
    };
    redact(&format!("{what} ({detail})")).into_owned()
}

/// A `keyring` error as ours. Variants carrying secret bytes are zeroized and never shown;
/// platform texts go through the log redaction as a second line of defence.
fn map_error(error: keyring::Error, account: &Account) -> CredentialError {
    let keychain = |reason: String| CredentialError::Keychain {
        account: account.clone(),
        reason: redact(&reason).into_owned(),
    };
    match error {
        keyring::Error::NoEntry => CredentialError::NotFound {
            account: account.clone(),
        },
        keyring::Error::NoDefaultStore => CredentialError::Unavailable {
            reason: match keyring::Entry::store_status() {
                Err(e) => store_failure(e),
                Ok(()) => "no platform keychain is configured".into(),
            },
        },
        keyring::Error::NoStorageAccess(e) => CredentialError::Unavailable {
            reason: redact(&format!("it is locked or refused access ({e})")).into_owned(),
        },
        keyring::Error::PlatformFailure(e) => CredentialError::Unavailable {
            reason: redact(&format!("it failed ({e})")).into_owned(),
        },
        keyring::Error::BadEncoding(bytes) => {
            drop(Zeroizing::new(bytes));
            keychain("the stored value is not text".into())
        }
        keyring::Error::BadDataFormat(bytes, _) => {
            drop(Zeroizing::new(bytes));
            keychain("the stored value is malformed".into())
        }
        keyring::Error::Ambiguous(items) => keychain(format!(
            "{} keychain items match it; remove the duplicates with your keychain manager",
            items.len()
        )),
        keyring::Error::TooLong(name, limit) => keychain(format!(
            "its {name} is longer than the keychain allows ({limit})"
        )),
        keyring::Error::Invalid(name, reason) => keychain(format!("invalid {name}: {reason}")),
        keyring::Error::BadStoreFormat(reason) => {
            keychain(format!("the keychain's data is malformed: {reason}"))
        }
        keyring::Error::NotSupportedByStore(reason) => keychain(reason),
        other => keychain(other.to_string()),
    }
}

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

/// Runs blocking keychain calls on the blocking pool, each bounded by a timeout, and refuses new
/// calls while an abandoned one has not returned.
#[derive(Debug, Clone)]
struct BoundedCalls {
    timeout: Duration,
    /// Calls that timed out and are still running.
    stuck: Arc<AtomicUsize>,
}

impl BoundedCalls {
    fn new(timeout: Duration) -> BoundedCalls {
        BoundedCalls {
            timeout,
            stuck: Arc::new(AtomicUsize::new(0)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
    ) -> Result<T, CredentialError> {
        if self.stuck.load(Ordering::SeqCst) > 0 {
            return Err(CredentialError::Unavailable {
                reason: "it has not answered an earlier request yet".into(),
            });
        }
        let state = Arc::new(AtomicU8::new(RUNNING));
        let handle = {
            let (state, stuck) = (state.clone(), self.stuck.clone());
            tokio::task::spawn_blocking(move || {
                let result = work();
                if state
                    .compare_exchange(RUNNING, FINISHED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    // The caller gave up on this call and counted it as stuck.
                    stuck.fetch_sub(1, Ordering::SeqCst);
                }
                result
            })
        };
        match tokio::time::timeout(self.timeout, handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(CredentialError::Unavailable {
                reason: format!("the keychain call stopped unexpectedly ({join})"),
            }),
            Err(_elapsed) => {
                // Counted before the state changes, so the call's own decrement can never come
                // first and underflow.
                self.stuck.fetch_add(1, Ordering::SeqCst);
                if state
                    .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    self.stuck.fetch_sub(1, Ordering::SeqCst);
                }
                Err(CredentialError::Unavailable {
                    reason: format!(
                        "it did not answer within {} s (locked, or waiting for an unlock prompt?)",
                        self.timeout.as_secs_f32()
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn account() -> Account {
        Account::project(1, crate::providers::ProviderKind::OpenAi)
    }

    #[test]
    fn keyring_errors_map_to_ours_without_revealing_secret_bytes() {
        let sentinel = b"sk-keychain-SENTINEL-0001".to_vec();
        let cases: Vec<(keyring::Error, &str, &str)> = vec![
            (keyring::Error::NoEntry, "NotFound", "project_1_openai"),
            (
                keyring::Error::NoStorageAccess(Box::new(std::io::Error::other(
                    "collection is locked",
                ))),
                "Unavailable",
                "collection is locked",
            ),
            (
                keyring::Error::PlatformFailure(Box::new(std::io::Error::other("bus went away"))),
                "Unavailable",
                "bus went away",
            ),
            (
                keyring::Error::BadEncoding(sentinel.clone()),
                "Keychain",
                "not text",
            ),
            (
                keyring::Error::BadDataFormat(
                    sentinel.clone(),
                    Box::new(std::io::Error::other("x")),
                ),
                "Keychain",
                "malformed",
            ),
            (
                keyring::Error::Ambiguous(Vec::new()),
                "Keychain",
                "duplicates",
            ),
            (
                keyring::Error::TooLong("user".into(), 255),
                "Keychain",
                "255",
            ),
        ];
        for (error, variant, needle) in cases {
            let mapped = map_error(error, &account());
            let name = match &mapped {
                CredentialError::NotFound { .. } => "NotFound",
                CredentialError::Unavailable { .. } => "Unavailable",
                CredentialError::Keychain { .. } => "Keychain",
                _ => "other",
            };
            let text = mapped.to_string();
            assert_eq!(name, variant, "{text}");
            assert!(text.contains(needle), "{text:?} lacks {needle:?}");
            let debug = format!("{mapped:?}");
            assert!(
                !text.contains("SENTINEL") && !debug.contains("SENTINEL"),
                "{debug}"
            );
        }
    }

    #[tokio::test]
    async fn a_call_that_answers_in_time_passes_its_result_through() {
        let calls = BoundedCalls::new(Duration::from_secs(5));
        assert_eq!(calls.run(|| Ok(7)).await.unwrap(), 7);
        let err = calls
            .run(|| -> Result<(), _> { Err(CredentialError::EmptyKey) })
            .await
            .unwrap_err();
        assert!(matches!(err, CredentialError::EmptyKey));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_hangs_times_out_and_later_calls_fail_fast_until_it_returns() {
        let calls = BoundedCalls::new(Duration::from_secs(5));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let hanging = tokio::spawn({
            let calls = calls.clone();
            async move {
                calls
                    .run(move || {
                        let _ = wait.recv();
                        Ok(1)
                    })
                    .await
            }
        });
        // Let the call start and arm its timer, then let virtual time pass the timeout.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(6)).await;
        let err = hanging.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, CredentialError::Unavailable { reason } if reason.contains("within 5 s")),
            "{err}"
        );

        // While it is stuck, a new call is refused without running.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let refused = calls
            .run(move || {
                flag.store(true, Ordering::SeqCst);
                Ok(2)
            })
            .await
            .unwrap_err();
        assert!(matches!(refused, CredentialError::Unavailable { .. }));
        assert!(!ran.load(Ordering::SeqCst));

        // Once the stuck call returns, calls go through again.
        release.send(()).unwrap();
        while calls.stuck.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(calls.run(|| Ok(3)).await.unwrap(), 3);
    }
}
