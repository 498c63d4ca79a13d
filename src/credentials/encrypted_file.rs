//! The fallback credential store: every key in one AES-256-GCM file, `{dataDir}/credentials.enc`,
//! used when no OS keychain is usable or `credentialStore` is `"file"` (DESIGN.md §6).
//!
//! This module owns the file format, its key derivation, atomic replacement and locking. It must
//! never write a key in clear, never reset or overwrite a file it cannot read, never widen the
//! file's permissions, and never do its (blocking) work on the async runtime's workers.
//!
//! # Format (version 1)
//!
//! ```text
//! magic "STLSPCRD" (8) | version = 1 (1) | key origin (1) | salt (32) | nonce (12)
//!   | ciphertext length, u32 BE (4) | ciphertext with the 16-byte GCM tag
//! ```
//!
//! The whole 58-byte header is the AEAD's associated data, so changing any byte of the file makes
//! it unreadable rather than silently different. The plaintext is a sequence of records
//! `account length (u16 BE) | account (UTF-8) | key length (u32 BE) | key (UTF-8)`, sorted.
//!
//! # Key
//!
//! HKDF-SHA256 over a secret input keying material with the file's salt. The input is
//! `STORYTELLER_CREDENTIALS_KEY` when set, else the machine id; the header records which ("key
//! origin") so that a file is read with the material it was written with, and the next write
//! moves it to the current preference. Salt and nonce are fresh random values on every write,
//! so no (key, nonce) pair is ever reused.
//!
//! Machine id: `/etc/machine-id`, else `/var/lib/dbus/machine-id` (Linux and other Unix; FreeBSD
//! also `/var/db/dbus/machine-id` and `/etc/hostid`); on macOS the `IOPlatformUUID` from `ioreg`;
//! on Windows `MachineGuid` from the registry (`reg query`). The machine id is readable by every
//! local user, which is why the file is weaker than a keychain and why its mode matters.
//!
//! # Writing and locking
//!
//! A write takes an exclusive advisory lock (`flock`) on `credentials.enc.lock`, re-reads the
//! file, applies the change, writes a temporary file in the same directory (created with mode
//! 0600, fsynced), renames it over `credentials.enc` and fsyncs the directory. The lock makes
//! read-modify-write cycles of several processes (server, CLI) serial, so no update is lost; it
//! lives in its own file because the rename replaces the data file's inode. Readers take no lock:
//! the rename is atomic, so they see the old or the new file, never a mix. A crash leaves at
//! worst a stray temporary file, which the next writer removes.
//!
//! # Permissions
//!
//! A `credentials.enc` readable by group or others is refused (not repaired): with the
//! world-readable machine id, such a file is as good as plaintext to every local user, so the
//! author must learn of it (and may want to rotate the keys) rather than have it fixed quietly.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::env::{self, CREDENTIALS_KEY_VAR, Environment};
use super::{Account, ApiKey, CredentialError, CredentialStore, StoreKind};

/// The file name inside the data directory.
pub const FILE_NAME: &str = "credentials.enc";

const LOCK_FILE_NAME: &str = "credentials.enc.lock";
const TEMP_PREFIX: &str = ".credentials.enc.";
const TEMP_SUFFIX: &str = ".tmp";

const MAGIC: [u8; 8] = *b"STLSPCRD";
const VERSION: u8 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + 1 + 1 + SALT_LEN + NONCE_LEN + 4;
const HKDF_INFO: &[u8] = b"storyteller-lsp credentials.enc v1";

/// How long a writer waits for another process's lock before giving up with `Busy`.
const LOCK_WAIT: Duration = Duration::from_secs(5);
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The secret a file's key was derived from, as recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    MachineId,
    CredentialsKey,
}

impl KeyOrigin {
    fn byte(self) -> u8 {
        match self {
            KeyOrigin::MachineId => 1,
            KeyOrigin::CredentialsKey => 2,
        }
    }

    fn from_byte(b: u8) -> Option<KeyOrigin> {
        match b {
            1 => Some(KeyOrigin::MachineId),
            2 => Some(KeyOrigin::CredentialsKey),
            _ => None,
        }
    }
}

/// Why a credentials file cannot be read. Each text says what probably happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptReason {
    /// The first bytes are not those of a credentials file.
    NotCredentialsFile,
    /// Shorter than its header says (an interrupted copy, a full disk).
    Truncated { len: u64 },
    /// Longer than its header says.
    TrailingData,
    /// A format version this build does not know.
    UnknownVersion(u8),
    /// The header is damaged (an unknown key origin).
    DamagedHeader,
    /// Authentication failed: modified, or encrypted with another key.
    Undecryptable { origin: KeyOrigin },
    /// Encrypted with a secret that is not available here.
    KeyUnavailable { origin: KeyOrigin },
    /// Decrypted, but the contents do not parse.
    Malformed,
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::NotCredentialsFile => {
                f.write_str("it is not a StoryTeller credentials file (unknown header)")
            }
            CorruptReason::Truncated { len: 0 } => f.write_str("it is empty"),
            CorruptReason::Truncated { len } => write!(
                f,
                "it is truncated ({len} bytes; an interrupted copy or a full disk?)"
            ),
            CorruptReason::TrailingData => {
                f.write_str("it has bytes appended after its end; it was modified")
            }
            CorruptReason::UnknownVersion(v) => write!(
                f,
                "it uses format version {v}, which this version of storyteller-lsp does not know \
                 (written by a newer version?)"
            ),
            CorruptReason::DamagedHeader => f.write_str("its header is damaged"),
            CorruptReason::Undecryptable {
                origin: KeyOrigin::MachineId,
            } => f.write_str(
                "it does not decrypt: it was modified, or it comes from another machine \
                 (its key is derived from the machine id)",
            ),
            CorruptReason::Undecryptable {
                origin: KeyOrigin::CredentialsKey,
            } => write!(
                f,
                "it does not decrypt: it was modified, or it was written with a different \
                 {CREDENTIALS_KEY_VAR}"
            ),
            CorruptReason::KeyUnavailable {
                origin: KeyOrigin::MachineId,
            } => f.write_str(
                "it was encrypted with a machine id, and this machine has no readable machine id",
            ),
            CorruptReason::KeyUnavailable {
                origin: KeyOrigin::CredentialsKey,
            } => write!(
                f,
                "it was encrypted with {CREDENTIALS_KEY_VAR}, which is not set here"
            ),
            CorruptReason::Malformed => f.write_str("its decrypted contents are malformed"),
        }
    }
}

/// The secrets the file key can be derived from. `Debug` says only which are present.
#[derive(Default)]
pub struct KeyMaterial {
    machine_id: Option<Zeroizing<Vec<u8>>>,
    credentials_key: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("machine_id", &self.machine_id.is_some())
            .field("credentials_key", &self.credentials_key.is_some())
            .finish()
    }
}

impl KeyMaterial {
    /// This machine's id and `STORYTELLER_CREDENTIALS_KEY` from `env`. Blocking (reads files, may
    /// run a command on macOS and Windows).
    pub fn from_system(env: &dyn Environment) -> KeyMaterial {
        KeyMaterial {
            machine_id: read_machine_id(),
            credentials_key: env::non_empty(env, CREDENTIALS_KEY_VAR)
                .map(|v| Zeroizing::new(v.as_bytes().to_vec())),
        }
    }

    /// Material with the given machine id only (tests; machines whose id comes from elsewhere).
    pub fn machine_id(id: impl AsRef<[u8]>) -> KeyMaterial {
        KeyMaterial {
            machine_id: Some(Zeroizing::new(id.as_ref().to_vec())),
            credentials_key: None,
        }
    }

    /// Adds a `STORYTELLER_CREDENTIALS_KEY` value, which then takes precedence for writing.
    pub fn with_credentials_key(mut self, secret: impl AsRef<[u8]>) -> KeyMaterial {
        self.credentials_key = Some(Zeroizing::new(secret.as_ref().to_vec()));
        self
    }

    fn for_writing(&self) -> Option<(KeyOrigin, &[u8])> {
        if let Some(secret) = &self.credentials_key {
            return Some((KeyOrigin::CredentialsKey, secret));
        }
        self.machine_id
            .as_ref()
            .map(|id| (KeyOrigin::MachineId, id.as_slice()))
    }

    fn for_origin(&self, origin: KeyOrigin) -> Option<&[u8]> {
        match origin {
            KeyOrigin::MachineId => self.machine_id.as_deref().map(Vec::as_slice),
            KeyOrigin::CredentialsKey => self.credentials_key.as_deref().map(Vec::as_slice),
        }
    }
}

/// The fallback store. Cheap to clone; every operation re-reads the file, so changes made by
/// another process (the CLI) are seen at once.
#[derive(Debug, Clone)]
pub struct EncryptedFileStore {
    path: PathBuf,
    material: Arc<KeyMaterial>,
}

type Secrets = BTreeMap<String, ApiKey>;

impl EncryptedFileStore {
    /// The store of `{data_dir}/credentials.enc`. Does no I/O.
    pub fn new(data_dir: &Path, material: KeyMaterial) -> EncryptedFileStore {
        EncryptedFileStore {
            path: data_dir.join(FILE_NAME),
            material: Arc::new(material),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accounts that have a key in the file (names only), for `doctor` and for repairing
    /// keys whose provider row is gone.
    pub async fn accounts(&self) -> Result<Vec<String>, CredentialError> {
        let this = self.clone();
        self.off_runtime(move || Ok(this.load()?.into_keys().collect()))
            .await
    }

    /// [`CredentialStore::store`], blocking: for the CLI and other synchronous callers.
    pub fn store_blocking(&self, account: &Account, key: &ApiKey) -> Result<(), CredentialError> {
        if key.is_empty() {
            return Err(CredentialError::EmptyKey);
        }
        self.update(|secrets| {
            secrets.insert(account.as_str().to_string(), key.clone());
            Ok(())
        })
    }

    /// [`CredentialStore::retrieve`], blocking.
    pub fn retrieve_blocking(&self, account: &Account) -> Result<ApiKey, CredentialError> {
        self.load()?
            .remove(account.as_str())
            .ok_or_else(|| CredentialError::NotFound {
                account: account.clone(),
            })
    }

    /// [`CredentialStore::delete`], blocking.
    pub fn delete_blocking(&self, account: &Account) -> Result<(), CredentialError> {
        self.update(|secrets| match secrets.remove(account.as_str()) {
            Some(_) => Ok(()),
            None => Err(CredentialError::NotFound {
                account: account.clone(),
            }),
        })
    }

    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
    ) -> Result<T, CredentialError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| CredentialError::Io {
                action: "access",
                path: self.path.clone(),
                source: io::Error::other(format!("the file task stopped: {e}")),
            })?
    }

    /// The secrets in the file; none when the file does not exist.
    fn load(&self) -> Result<Secrets, CredentialError> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Secrets::new()),
            Err(source) => return Err(self.io("open", source)),
        };
        check_private(&file, &self.path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| self.io("read", source))?;
        decode(&bytes, &self.material).map_err(|reason| CredentialError::Corrupt {
            path: self.path.clone(),
            reason,
        })
    }

    /// Read-modify-write under the lock. `change` returning an error leaves the file as it was.
    fn update(
        &self,
        change: impl FnOnce(&mut Secrets) -> Result<(), CredentialError>,
    ) -> Result<(), CredentialError> {
        let dir = self.dir();
        create_data_dir(dir)?;
        let _lock = self.lock()?;
        remove_stale_temp_files(dir);
        // A file we cannot read fails here, before anything is written: never reset.
        let mut secrets = self.load()?;
        change(&mut secrets)?;
        let (origin, ikm) =
            self.material
                .for_writing()
                .ok_or_else(|| CredentialError::NoFileKey {
                    path: self.path.clone(),
                })?;
        let bytes = encode(&secrets, origin, ikm)
            .map_err(|_| self.io("encrypt", io::Error::other("AES-256-GCM encryption failed")))?;
        replace_atomically(&self.path, |f| f.write_all(&bytes))
    }

    fn lock(&self) -> Result<File, CredentialError> {
        let path = self.dir().join(LOCK_FILE_NAME);
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| CredentialError::Io {
                action: "open the lock file",
                path: path.clone(),
                source,
            })?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_POLL)
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(CredentialError::Busy {
                        path: self.path.clone(),
                    });
                }
                Err(fs::TryLockError::Error(source)) => {
                    return Err(CredentialError::Io {
                        action: "lock",
                        path,
                        source,
                    });
                }
            }
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn io(&self, action: &'static str, source: io::Error) -> CredentialError {
        CredentialError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

#[async_trait]
impl CredentialStore for EncryptedFileStore {
    async fn store(&self, account: &Account, key: &ApiKey) -> Result<(), CredentialError> {
        let (this, account, key) = (self.clone(), account.clone(), key.clone());
        self.off_runtime(move || this.store_blocking(&account, &key))
            .await
    }

    async fn retrieve(&self, account: &Account) -> Result<ApiKey, CredentialError> {
        let (this, account) = (self.clone(), account.clone());
        self.off_runtime(move || this.retrieve_blocking(&account))
            .await
    }

    async fn delete(&self, account: &Account) -> Result<(), CredentialError> {
        let (this, account) = (self.clone(), account.clone());
        self.off_runtime(move || this.delete_blocking(&account))
            .await
    }

    fn kind(&self) -> StoreKind {
        StoreKind::File
    }
}

/// Creates the data directory (and parents) if missing, private to the user on Unix. Existing
/// directories are left as they are.
pub(crate) fn create_data_dir(dir: &Path) -> Result<(), CredentialError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| CredentialError::Io {
        action: "create the directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Options that create files readable and writable by the owner only.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(unix)]
fn check_private(file: &File, path: &Path) -> Result<(), CredentialError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|source| CredentialError::Io {
            action: "inspect",
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &File, _path: &Path) -> Result<(), CredentialError> {
    // Windows: the file inherits the ACL of the user's profile directory.
    Ok(())
}

/// Replaces `path` with what `write` puts into a fresh temporary file in the same directory, so
/// that readers and a crash see the old file or the new one, never a partial one.
fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), CredentialError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}.{:016x}{TEMP_SUFFIX}",
        std::process::id(),
        rand::rng().next_u64()
    ));
    let io_error = |action, source| CredentialError::Io {
        action,
        path: temp.clone(),
        source,
    };
    let mut file = private_options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io_error("create", e))?;
    // Out of space shows up at the write or at the sync (delayed allocation): either way the
    // author is told so, naming the real file rather than our temporary one.
    let no_space = |e: io::Error, action| {
        if is_out_of_space(&e) {
            CredentialError::NoSpace {
                path: path.to_path_buf(),
            }
        } else {
            io_error(action, e)
        }
    };
    let written = write(&mut file)
        .map_err(|e| no_space(e, "write"))
        .and_then(|()| file.sync_all().map_err(|e| no_space(e, "sync")));
    drop(file);
    if let Err(e) = written.and_then(|()| {
        fs::rename(&temp, path).map_err(|source| CredentialError::Io {
            action: "replace",
            path: path.to_path_buf(),
            source,
        })
    }) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // The new file is in place and visible to every process; a failed directory sync only
    // weakens durability across a power loss, so it is reported in the log, not as a failure.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!("could not sync the directory {}: {e}", dir.display());
    }
    Ok(())
}

/// A full disk (ENOSPC), a full quota (EDQUOT) or a file-size limit (EFBIG).
fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Temporary files left by a writer that crashed. Called under the lock, when no other writer
/// can be between creating and renaming one.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn derive_key(ikm: &[u8], salt: &[u8], origin: KeyOrigin) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut info = Vec::with_capacity(HKDF_INFO.len() + 1);
    info.extend_from_slice(HKDF_INFO);
    info.push(origin.byte());
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(&info, key.as_mut());
    key
}

fn encode(secrets: &Secrets, origin: KeyOrigin, ikm: &[u8]) -> Result<Vec<u8>, aes_gcm::Error> {
    let size = secrets
        .iter()
        .map(|(account, key)| 2 + account.len() + 4 + key.expose().len())
        .sum();
    // Exactly sized, so the buffer holding keys in clear is never reallocated (and copied).
    let mut plain = Zeroizing::new(Vec::with_capacity(size));
    for (account, key) in secrets {
        let account = &account.as_bytes()[..account.len().min(u16::MAX as usize)];
        plain.extend_from_slice(&(account.len() as u16).to_be_bytes());
        plain.extend_from_slice(account);
        let key = key.expose().as_bytes();
        plain.extend_from_slice(&(key.len() as u32).to_be_bytes());
        plain.extend_from_slice(key);
    }

    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut salt);
    rand::rng().fill_bytes(&mut nonce);

    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(origin.byte());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&((plain.len() + TAG_LEN) as u32).to_be_bytes());

    let key = derive_key(ikm, &salt, origin);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_ref()));
    let sealed = cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: &plain,
            aad: &out,
        },
    )?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decode(bytes: &[u8], material: &KeyMaterial) -> Result<Secrets, CorruptReason> {
    let len = bytes.len() as u64;
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            CorruptReason::Truncated { len }
        } else {
            CorruptReason::NotCredentialsFile
        });
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(CorruptReason::NotCredentialsFile);
    }
    let Some(&version) = bytes.get(MAGIC.len()) else {
        return Err(CorruptReason::Truncated { len });
    };
    if version != VERSION {
        return Err(CorruptReason::UnknownVersion(version));
    }
    if bytes.len() < HEADER_LEN {
        return Err(CorruptReason::Truncated { len });
    }
    let (header, sealed) = bytes.split_at(HEADER_LEN);
    let origin = KeyOrigin::from_byte(header[9]).ok_or(CorruptReason::DamagedHeader)?;
    let salt = &header[10..10 + SALT_LEN];
    let nonce = &header[10 + SALT_LEN..10 + SALT_LEN + NONCE_LEN];
    let mut declared = [0u8; 4];
    declared.copy_from_slice(&header[HEADER_LEN - 4..]);
    let declared = u32::from_be_bytes(declared) as usize;
    if sealed.len() < declared || sealed.len() < TAG_LEN {
        return Err(CorruptReason::Truncated { len });
    }
    if sealed.len() > declared {
        return Err(CorruptReason::TrailingData);
    }

    let ikm = material
        .for_origin(origin)
        .ok_or(CorruptReason::KeyUnavailable { origin })?;
    let key = derive_key(ikm, salt, origin);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_ref()));
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: header,
                },
            )
            .map_err(|_| CorruptReason::Undecryptable { origin })?,
    );
    parse_records(&plain).ok_or(CorruptReason::Malformed)
}

fn parse_records(mut plain: &[u8]) -> Option<Secrets> {
    let mut secrets = Secrets::new();
    while !plain.is_empty() {
        let account_len = u16::from_be_bytes(take(&mut plain, 2)?.try_into().ok()?) as usize;
        let account = std::str::from_utf8(take(&mut plain, account_len)?).ok()?;
        let key_len = u32::from_be_bytes(take(&mut plain, 4)?.try_into().ok()?) as usize;
        let key = std::str::from_utf8(take(&mut plain, key_len)?).ok()?;
        secrets.insert(account.to_string(), ApiKey::new(key));
    }
    Some(secrets)
}

fn take<'a>(plain: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if plain.len() < n {
        return None;
    }
    let (head, rest) = plain.split_at(n);
    *plain = rest;
    Some(head)
}

/// This machine's id, trimmed; `None` when there is none (or it is the systemd placeholder).
pub fn read_machine_id() -> Option<Zeroizing<Vec<u8>>> {
    platform_machine_id().and_then(|raw| clean_machine_id(&raw))
}

/// The id in what the platform gave: trimmed, and `None` when blank or the placeholder systemd
/// writes before first boot completes.
fn clean_machine_id(raw: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() || trimmed == b"uninitialized" {
        None
    } else {
        Some(Zeroizing::new(trimmed.to_vec()))
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn platform_machine_id() -> Option<Zeroizing<Vec<u8>>> {
    #[cfg(target_os = "linux")]
    const PATHS: &[&str] = &["/etc/machine-id", "/var/lib/dbus/machine-id"];
    // A Linux /etc/hostid is 4 binary bytes, too little to derive a key from; on the BSDs it is
    // a UUID.
    #[cfg(not(target_os = "linux"))]
    const PATHS: &[&str] = &[
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/var/db/dbus/machine-id",
        "/etc/hostid",
    ];
    // The first file holding a real id: a blank /etc/machine-id falls through to the next.
    PATHS.iter().find_map(|p| {
        let raw = Zeroizing::new(fs::read(p).ok()?);
        clean_machine_id(&raw)
    })
}

#[cfg(target_os = "macos")]
fn platform_machine_id() -> Option<Zeroizing<Vec<u8>>> {
    // `"IOPlatformUUID" = "XXXXXXXX-…"` in the IOPlatformExpertDevice entry.
    let out = std::process::Command::new("/usr/sbin/ioreg")
        .args(["-rd1", "-c", "IOPlatformExpertDevice"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("\"IOPlatformUUID\""))?;
    let uuid = line.rsplit('"').nth(1)?;
    Some(Zeroizing::new(uuid.as_bytes().to_vec()))
}

#[cfg(windows)]
fn platform_machine_id() -> Option<Zeroizing<Vec<u8>>> {
    // `    MachineGuid    REG_SZ    xxxxxxxx-…`
    let out = std::process::Command::new("reg")
        .args([
            "query",
            r"HKLM\SOFTWARE\Microsoft\Cryptography",
            "/v",
            "MachineGuid",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("MachineGuid"))?;
    let guid = line.split_whitespace().last()?;
    Some(Zeroizing::new(guid.as_bytes().to_vec()))
}

#[cfg(not(any(unix, windows)))]
fn platform_machine_id() -> Option<Zeroizing<Vec<u8>>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        pairs
            .iter()
            .map(|(a, k)| (a.to_string(), ApiKey::new(*k)))
            .collect()
    }

    fn material() -> KeyMaterial {
        KeyMaterial::machine_id("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn encoding_round_trips_and_hides_the_keys() {
        let original = secrets(&[
            ("project_1_openai", "sk-unit-SENTINEL-aaaa"),
            ("session_claude_api_key_work", "sk-ant-unit-bbbb"),
        ]);
        let bytes = encode(
            &original,
            KeyOrigin::MachineId,
            b"0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert!(!bytes.windows(8).any(|w| w == b"SENTINEL"));
        let decoded = decode(&bytes, &material()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded["project_1_openai"].expose(),
            "sk-unit-SENTINEL-aaaa"
        );
    }

    #[test]
    fn every_write_uses_a_fresh_salt_and_nonce() {
        let s = secrets(&[("project_1_openai", "sk-same-key-1234")]);
        let a = encode(&s, KeyOrigin::MachineId, b"id").unwrap();
        let b = encode(&s, KeyOrigin::MachineId, b"id").unwrap();
        assert_ne!(a[10..HEADER_LEN - 4], b[10..HEADER_LEN - 4]);
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }

    #[test]
    fn the_credentials_key_takes_precedence_for_writing_and_the_header_says_so() {
        let m = material().with_credentials_key("container-secret");
        assert_eq!(
            m.for_writing().map(|w| w.0),
            Some(KeyOrigin::CredentialsKey)
        );
        let bytes = encode(
            &secrets(&[]),
            KeyOrigin::CredentialsKey,
            b"container-secret",
        )
        .unwrap();
        assert_eq!(bytes[9], KeyOrigin::CredentialsKey.byte());
        // Read back with the machine id alone: the needed secret is missing, and the text says
        // which one.
        let err = decode(&bytes, &material()).unwrap_err();
        assert_eq!(
            err,
            CorruptReason::KeyUnavailable {
                origin: KeyOrigin::CredentialsKey
            }
        );
        assert!(err.to_string().contains(CREDENTIALS_KEY_VAR));
        assert!(decode(&bytes, &m).is_ok());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, b"old contents").unwrap();
        let err = replace_atomically(&path, |f| {
            f.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CredentialError::Io {
                action: "write",
                ..
            }
        ));
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn running_out_of_space_is_named_as_such_and_leaves_the_old_file() {
        for kind in [
            io::ErrorKind::StorageFull,
            io::ErrorKind::QuotaExceeded,
            io::ErrorKind::FileTooLarge,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(FILE_NAME);
            fs::write(&path, b"old contents").unwrap();
            let err = replace_atomically(&path, |f| {
                f.write_all(b"half")?;
                Err(io::Error::from(kind))
            })
            .unwrap_err();
            assert!(
                matches!(&err, CredentialError::NoSpace { path: p } if p == &path),
                "{kind:?}: {err:?}"
            );
            assert!(err.to_string().contains("not enough space"), "{err}");
            assert_eq!(fs::read(&path).unwrap(), b"old contents");
            assert_eq!(
                fs::read_dir(dir.path()).unwrap().count(),
                1,
                "no temporary file"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_temporary_file_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut seen = None;
        replace_atomically(&path, |f| {
            seen = Some(f.metadata()?.permissions().mode() & 0o777);
            f.write_all(b"x")
        })
        .unwrap();
        assert_eq!(seen, Some(0o600));
    }

    #[test]
    fn machine_ids_are_trimmed_and_placeholders_are_not_ids() {
        let cases: [(&[u8], Option<&[u8]>); 5] = [
            (
                b"3d1219c7c4c5404aaa1f6d2a48adfda4\n",
                Some(b"3d1219c7c4c5404aaa1f6d2a48adfda4"),
            ),
            (b"  id-with-spaces  ", Some(b"id-with-spaces")),
            (b"", None),
            (b" \n", None),
            (b"uninitialized\n", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                clean_machine_id(raw).as_deref().map(Vec::as_slice),
                expected,
                "{raw:?}"
            );
        }
    }
}
