//! Property tests of reading the encrypted credentials file (`credentials.enc`, issue 10 item
//! 3), through the store's public API on a real file:
//!
//! - arbitrary bytes are refused as `Corrupt`, never a panic, never a key, and a write refuses to
//!   replace the file (it is never silently reset);
//! - any change to a valid file — a flipped bit, a cut, bytes appended, a range overwritten — is
//!   `Corrupt` too, and no error text holds a stored key;
//! - a correctly encrypted file whose plaintext is arbitrary (well-formed records or not) gives
//!   every record or none: a malformed one is `Corrupt(Malformed)`, never a partial set of keys.
//!   This one writes the documented format (module doc of `credentials::encrypted_file`) itself,
//!   to reach the record parser behind the authentication tag.
//!
//! 10,000 cases per property (see `tests/prop_support`).

mod prop_support;

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use proptest::prelude::*;
use sha2::Sha256;
use storyteller_lsp::credentials::encrypted_file::{
    CorruptReason, EncryptedFileStore, FILE_NAME, KeyMaterial,
};
use storyteller_lsp::credentials::{Account, ApiKey, CredentialError};
use storyteller_lsp::providers::ProviderKind;

const MACHINE_ID: &str = "0f4e1c2ab9d84b7e9d6c5a4b3c2d1e0f";
const MAGIC: &[u8; 8] = b"STLSPCRD";
const HEADER_LEN: usize = 8 + 1 + 1 + 32 + 12 + 4;

thread_local! {
    /// One data directory per test thread, reused by its cases (each case rewrites the file).
    static SCRATCH: tempfile::TempDir = tempfile::tempdir().expect("a directory");
}

fn scratch() -> std::path::PathBuf {
    SCRATCH.with(|dir| dir.path().to_path_buf())
}

fn store(dir: &Path) -> EncryptedFileStore {
    EncryptedFileStore::new(dir, KeyMaterial::machine_id(MACHINE_ID))
}

fn account(n: i64) -> Account {
    Account::project(n, ProviderKind::OpenAi)
}

fn sentinel_key(n: i64) -> String {
    format!("sk-SENTINEL-{n:04}-7c1e9a")
}

/// Writes `bytes` as the credentials file, private to the owner (as the store requires).
fn write_file(dir: &Path, bytes: &[u8]) {
    let path = dir.join(FILE_NAME);
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).expect("the credentials file");
    file.write_all(bytes).expect("written");
}

fn read_file(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join(FILE_NAME)).expect("the credentials file")
}

/// A valid file holding three sentinel keys, written once by the store itself (each write
/// fsyncs: once per case would make the property slow for nothing).
fn valid_file() -> &'static [u8] {
    static VALID: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    VALID.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a directory");
        let store = store(dir.path());
        for n in 1..=3 {
            store
                .store_blocking(&account(n), &ApiKey::new(sentinel_key(n)))
                .expect("stored");
        }
        read_file(dir.path())
    })
}

/// The refusal: `Corrupt`, with no key in any of its texts.
fn assert_corrupt(result: Result<ApiKey, CredentialError>) -> Result<CorruptReason, TestCaseError> {
    match result {
        Err(CredentialError::Corrupt { reason, .. }) => {
            let error = CredentialError::Corrupt {
                path: FILE_NAME.into(),
                reason: reason.clone(),
            };
            let shown = format!("{error} {error:?}");
            prop_assert!(!shown.contains("SENTINEL"), "{shown}");
            Ok(reason)
        }
        Ok(_) => Err(TestCaseError::fail("a damaged file gave a key")),
        Err(other) => Err(TestCaseError::fail(format!(
            "a damaged file gave {other:?}, not Corrupt"
        ))),
    }
}

/// A write on top of an unreadable file is refused and leaves it byte for byte.
fn assert_not_reset(dir: &Path, before: &[u8]) -> Result<(), TestCaseError> {
    let written = store(dir).store_blocking(&account(9), &ApiKey::new("sk-SENTINEL-new-key-0009"));
    prop_assert!(
        matches!(written, Err(CredentialError::Corrupt { .. })),
        "{written:?}"
    );
    prop_assert_eq!(read_file(dir), before.to_vec(), "the file was changed");
    Ok(())
}

#[derive(Debug, Clone)]
enum Damage {
    FlipBit {
        at: prop::sample::Index,
        bit: u8,
    },
    Truncate {
        at: prop::sample::Index,
    },
    Append(Vec<u8>),
    Overwrite {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Damage::FlipBit { at, bit }),
        2 => any::<prop::sample::Index>().prop_map(|at| Damage::Truncate { at }),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Append),
        2 => (any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Damage::Overwrite { at, bytes }),
    ]
}

fn apply(damage: &Damage, file: &[u8]) -> Vec<u8> {
    let mut out = file.to_vec();
    if out.is_empty() {
        return match damage {
            Damage::Append(bytes) => bytes.clone(),
            _ => out,
        };
    }
    match damage {
        Damage::FlipBit { at, bit } => {
            let i = at.index(out.len());
            out[i] ^= 1 << bit;
        }
        Damage::Truncate { at } => out.truncate(at.index(out.len())),
        Damage::Append(bytes) => out.extend_from_slice(bytes),
        Damage::Overwrite { at, bytes } => {
            let i = at.index(out.len());
            for (j, b) in bytes.iter().enumerate() {
                if let Some(slot) = out.get_mut(i + j) {
                    *slot = *b;
                }
            }
        }
    }
    out
}

/// Bytes that are sometimes shaped like a credentials file (magic, version, origin, sizes).
fn arbitrary_file() -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        0u8..4,
        0u8..4,
        proptest::collection::vec(any::<u8>(), 44..140),
    )
        .prop_map(|(version, origin, rest)| {
            let mut out = MAGIC.to_vec();
            out.push(version);
            out.push(origin);
            out.extend_from_slice(&rest);
            out
        });
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| [&MAGIC[..], &b].concat()),
        3 => shaped,
    ]
}

/// One record of the plaintext: `u16 account length | account | u32 key length | key`.
#[derive(Debug, Clone)]
struct Record {
    account: i64,
    key: String,
}

fn record_bytes(records: &[Record]) -> Vec<u8> {
    let mut plain = Vec::new();
    for r in records {
        let account = account(r.account);
        let name = account.as_str().as_bytes();
        plain.extend_from_slice(&(name.len() as u16).to_be_bytes());
        plain.extend_from_slice(name);
        plain.extend_from_slice(&(r.key.len() as u32).to_be_bytes());
        plain.extend_from_slice(r.key.as_bytes());
    }
    plain
}

/// A file in the documented format around `plain`, encrypted with the machine-id key.
fn seal(plain: &[u8], salt: [u8; 32], nonce: [u8; 12]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(1); // version
    out.push(1); // key origin: machine id
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&((plain.len() + 16) as u32).to_be_bytes());
    assert_eq!(out.len(), HEADER_LEN);
    let mut key = [0u8; 32];
    let mut info = b"storyteller-lsp credentials.enc v1".to_vec();
    info.push(1);
    Hkdf::<Sha256>::new(Some(&salt), MACHINE_ID.as_bytes())
        .expand(&info, &mut key)
        .expect("32 bytes");
    let sealed = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &out,
            },
        )
        .expect("encrypted");
    out.extend_from_slice(&sealed);
    out
}

#[derive(Debug, Clone)]
enum PlainDamage {
    None,
    Truncate(prop::sample::Index),
    Append(Vec<u8>),
    /// Replaces one byte of a key with a byte that is not UTF-8 on its own.
    BreakUtf8(prop::sample::Index),
}

fn plain_damage() -> impl Strategy<Value = PlainDamage> {
    prop_oneof![
        3 => Just(PlainDamage::None),
        2 => any::<prop::sample::Index>().prop_map(PlainDamage::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(PlainDamage::Append),
        1 => any::<prop::sample::Index>().prop_map(PlainDamage::BreakUtf8),
    ]
}

proptest! {
    #![proptest_config(prop_support::config())]

    #[test]
    fn arbitrary_bytes_are_corrupt_never_a_key_and_never_reset(bytes in arbitrary_file()) {
        let dir = scratch();
        write_file(dir.as_path(), &bytes);
        assert_corrupt(store(dir.as_path()).retrieve_blocking(&account(1)))?;
        assert_not_reset(dir.as_path(), &bytes)?;
    }

    #[test]
    fn any_change_to_a_valid_file_is_corrupt_and_no_error_holds_a_key(damages in proptest::collection::vec(damage(), 1..3)) {
        let dir = scratch();
        let valid = valid_file();
        let damaged = damages.iter().fold(valid.to_vec(), |file, d| apply(d, &file));
        write_file(dir.as_path(), &damaged);
        let got = store(dir.as_path()).retrieve_blocking(&account(2));
        if damaged == valid {
            let key = got.expect("an intact file");
            prop_assert_eq!(key.expose(), sentinel_key(2));
        } else {
            assert_corrupt(got)?;
            assert_not_reset(dir.as_path(), &damaged)?;
        }
    }

    #[test]
    fn decrypted_records_come_whole_or_not_at_all(
        records in proptest::collection::vec(
            (1i64..6, "[ -~é]{0,24}").prop_map(|(account, key)| Record { account, key }),
            0..6,
        ),
        damage in plain_damage(),
        salt in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
    ) {
        let mut plain = record_bytes(&records);
        let well_formed = match &damage {
            PlainDamage::None => true,
            PlainDamage::Truncate(at) => {
                let cut = at.index(plain.len() + 1);
                // A cut at a record boundary leaves fewer, whole records.
                let mut boundary = 0;
                let mut whole = cut == 0;
                for r in &records {
                    boundary += record_bytes(std::slice::from_ref(r)).len();
                    whole |= boundary == cut;
                }
                plain.truncate(cut);
                whole
            }
            PlainDamage::Append(bytes) => {
                plain.extend_from_slice(bytes);
                false
            }
            PlainDamage::BreakUtf8(at) => {
                let keyed: Vec<usize> = {
                    // Offsets of key bytes (the last `key.len()` bytes of each record).
                    let mut offsets = Vec::new();
                    let mut end = 0;
                    for r in &records {
                        end += record_bytes(std::slice::from_ref(r)).len();
                        offsets.extend(end - r.key.len()..end);
                    }
                    offsets
                };
                if keyed.is_empty() {
                    true
                } else {
                    plain[keyed[at.index(keyed.len())]] = 0xff;
                    false
                }
            }
        };
        let dir = scratch();
        write_file(dir.as_path(), &seal(&plain, salt, nonce));
        let store = store(dir.as_path());
        if well_formed {
            // Every account of the surviving records has its (last) key.
            let kept = match &damage {
                PlainDamage::Truncate(at) => {
                    let cut = at.index(record_bytes(&records).len() + 1);
                    let mut end = 0;
                    records.iter().take_while(|r| { end += record_bytes(std::slice::from_ref(r)).len(); end <= cut }).cloned().collect::<Vec<_>>()
                }
                _ => records.clone(),
            };
            for n in 1..6 {
                let want = kept.iter().rev().find(|r| r.account == n).map(|r| r.key.clone());
                match (store.retrieve_blocking(&account(n)), want) {
                    (Ok(key), Some(want)) => prop_assert_eq!(key.expose(), want.as_str()),
                    (Err(CredentialError::NotFound { .. }), None) => {}
                    (got, want) => return Err(TestCaseError::fail(format!("account {n}: got {got:?}, want {want:?}"))),
                }
            }
        } else {
            for n in 1..6 {
                let reason = assert_corrupt(store.retrieve_blocking(&account(n)))?;
                prop_assert_eq!(reason, CorruptReason::Malformed);
            }
        }
    }
}
