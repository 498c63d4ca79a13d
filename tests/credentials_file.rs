//! The encrypted-file fallback store, against real files in a temporary data directory: round
//! trips, permissions, atomic replacement under crashes, tampering, truncation, keys from another
//! machine, unknown versions, concurrent writers in several processes, and the sentinel key never
//! appearing in clear.
//!
//! Some tests start this test binary again as a child process (`child_writer`, ignored when run
//! normally) to write from another process or to be killed in the middle of a write.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use storyteller_lsp::config::CredentialStoreChoice;
use storyteller_lsp::credentials::{
    Account, ApiKey, CorruptReason, CredentialError, CredentialStore, EncryptedFileStore,
    KeyMaterial, StoreKind, VarMap, encrypted_file::FILE_NAME,
};
use storyteller_lsp::providers::{AuthType, ProviderKind};

const MACHINE_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MACHINE_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SENTINEL: &str = "sk-SENTINEL-file-7f3a9c1e5b2d";

fn store_in(dir: &Path) -> EncryptedFileStore {
    EncryptedFileStore::new(dir, KeyMaterial::machine_id(MACHINE_A))
}

fn project(id: i64) -> Account {
    Account::project(id, ProviderKind::OpenAi)
}

fn file_of(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// A data directory whose file holds two keys, one of them the sentinel.
async fn populated() -> (tempfile::TempDir, EncryptedFileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .store(&project(1), &ApiKey::new(SENTINEL))
        .await
        .unwrap();
    let session = Account::session(ProviderKind::Claude, AuthType::ApiKey, "work").unwrap();
    store
        .store(&session, &ApiKey::new("sk-ant-second-key-0002"))
        .await
        .unwrap();
    (dir, store)
}

fn corrupt_reason(result: Result<ApiKey, CredentialError>, file: &Path) -> CorruptReason {
    match result {
        Err(CredentialError::Corrupt { path, reason }) => {
            assert_eq!(path, file);
            reason
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn keys_round_trip_through_the_file() {
    let (dir, store) = populated().await;
    assert_eq!(store.kind(), StoreKind::File);
    assert_eq!(
        store.retrieve(&project(1)).await.unwrap().expose(),
        SENTINEL
    );

    // Another store on the same file (another process, a restart) reads the same keys.
    let reopened = store_in(dir.path());
    assert_eq!(
        reopened.retrieve(&project(1)).await.unwrap().expose(),
        SENTINEL
    );
}

#[tokio::test]
async fn several_accounts_are_kept_apart_and_replacing_one_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let accounts = [
        project(1),
        Account::project(1, ProviderKind::Claude),
        Account::project(2, ProviderKind::OpenAi),
        Account::session(ProviderKind::OpenAi, AuthType::ApiKey, "personal").unwrap(),
        Account::default_session(ProviderKind::OpenAi, AuthType::ApiKey),
    ];
    for (i, account) in accounts.iter().enumerate() {
        store
            .store(account, &ApiKey::new(format!("sk-key-number-{i}")))
            .await
            .unwrap();
    }
    store
        .store(&accounts[2], &ApiKey::new("sk-rotated-key-2"))
        .await
        .unwrap();
    for (i, account) in accounts.iter().enumerate() {
        let expected = if i == 2 {
            "sk-rotated-key-2".to_string()
        } else {
            format!("sk-key-number-{i}")
        };
        assert_eq!(store.retrieve(account).await.unwrap().expose(), expected);
    }
    let mut listed = store.accounts().await.unwrap();
    listed.sort();
    let mut expected: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn a_missing_key_is_not_found_with_or_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir.path().join("not-created-yet"));
    let err = store.retrieve(&project(1)).await.unwrap_err();
    assert!(matches!(&err, CredentialError::NotFound { account } if *account == project(1)));
    assert!(err.to_string().contains("project_1_openai"));

    let (_dir, store) = populated().await;
    assert!(
        store
            .retrieve(&project(99))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn delete_removes_only_that_key_and_a_second_delete_is_not_found() {
    let (_dir, store) = populated().await;
    let session = Account::session(ProviderKind::Claude, AuthType::ApiKey, "work").unwrap();
    store.delete(&project(1)).await.unwrap();
    assert!(
        store
            .retrieve(&project(1))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        store.retrieve(&session).await.unwrap().expose(),
        "sk-ant-second-key-0002"
    );
    assert!(store.delete(&project(1)).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn an_empty_key_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    for blank in ["", "   "] {
        let err = store.store(&project(1), &ApiKey::new(blank)).await;
        assert!(matches!(err, Err(CredentialError::EmptyKey)));
    }
    assert!(!file_of(dir.path()).exists());
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_and_a_created_data_dir_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("storyteller");
    let store = store_in(&data_dir);
    for i in 0..3 {
        store
            .store(&project(i), &ApiKey::new(format!("sk-private-{i}")))
            .await
            .unwrap();
        let mode = fs::metadata(file_of(&data_dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "after write {i}");
    }
    let dir_mode = fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_readable_by_others_is_refused_until_its_mode_is_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = populated().await;
    let file = file_of(dir.path());
    let before = fs::read(&file).unwrap();
    for mode in [0o644, 0o640, 0o604] {
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        let err = store.retrieve(&project(1)).await.unwrap_err();
        assert!(
            matches!(&err, CredentialError::InsecurePermissions { path, mode: m } if *path == file && *m == mode),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // A write refuses too, rather than quietly narrowing the mode.
        let err = store.store(&project(3), &ApiKey::new("sk-new-key-3")).await;
        assert!(matches!(
            err,
            Err(CredentialError::InsecurePermissions { .. })
        ));
        assert_eq!(fs::read(&file).unwrap(), before);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            mode
        );
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        store.retrieve(&project(1)).await.unwrap().expose(),
        SENTINEL
    );
}

#[tokio::test]
async fn a_stray_temporary_file_from_a_crash_changes_nothing_and_the_next_write_removes_it() {
    let (dir, store) = populated().await;
    // What a writer killed between writing its temporary file and renaming it leaves behind.
    let stray = dir
        .path()
        .join(".credentials.enc.4242.00000000deadbeef.tmp");
    fs::write(&stray, b"half-written garbage").unwrap();

    assert_eq!(
        store.retrieve(&project(1)).await.unwrap().expose(),
        SENTINEL
    );
    store
        .store(&project(5), &ApiKey::new("sk-after-crash-5"))
        .await
        .unwrap();
    assert!(!stray.exists());
    assert_eq!(
        store.retrieve(&project(1)).await.unwrap().expose(),
        SENTINEL
    );
    assert_eq!(
        store.retrieve(&project(5)).await.unwrap().expose(),
        "sk-after-crash-5"
    );
}

#[tokio::test]
async fn readers_never_see_a_partial_file_and_a_killed_writer_leaves_a_readable_one() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    for round in 0..4u32 {
        // A reader in this process reads all the time the child writes.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = std::thread::spawn({
            let (store, stop) = (store.clone(), stop.clone());
            move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    match store.retrieve_blocking(&project(0)) {
                        Ok(_) => reads += 1,
                        Err(CredentialError::NotFound { .. }) => {}
                        Err(e) => return Err(format!("a reader saw: {e}")),
                    }
                }
                Ok(reads)
            }
        });
        let mut child = spawn_child_writer(dir.path(), "loop", round);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it complete enough writes to cover every slot, then kill it wherever it is in
        // the next one.
        let wanted = 5 + round * 3;
        let mut completed = 0;
        while completed < wanted {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("stored ") => completed += 1,
                Some(Ok(_)) => {}
                other => panic!("child writer stopped early: {other:?}"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap().unwrap();

        // Every slot holds a value the child wrote for it in this round (it may have run ahead
        // of the lines read here), never garbage.
        let prefix = format!("sk-kill-round-{round}-");
        for slot in 0..5 {
            let key = store.retrieve(&project(slot)).await.unwrap();
            let write: u32 = key
                .expose()
                .strip_prefix(&prefix)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("round {round}, slot {slot}: unexpected {key:?}"));
            assert_eq!(i64::from(write % 5), slot);
        }
        // And the next writer carries on.
        store
            .store(&project(100), &ApiKey::new(format!("sk-parent-{round}")))
            .await
            .unwrap();
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn tampering_with_any_byte_is_corrupt_and_the_file_is_left_untouched() {
    let (dir, store) = populated().await;
    let file = file_of(dir.path());
    let original = fs::read(&file).unwrap();
    for position in 0..original.len() {
        for mask in [0x01u8, 0x80] {
            let mut tampered = original.clone();
            tampered[position] ^= mask;
            fs::write(&file, &tampered).unwrap();

            corrupt_reason(store.retrieve(&project(1)).await, &file);
            let err = store
                .store(&project(9), &ApiKey::new("sk-must-not-land"))
                .await;
            assert!(
                matches!(err, Err(CredentialError::Corrupt { .. })),
                "store at byte {position}: {err:?}"
            );
            let err = store.delete(&project(1)).await;
            assert!(matches!(err, Err(CredentialError::Corrupt { .. })));
            assert_eq!(
                fs::read(&file).unwrap(),
                tampered,
                "byte {position} rewritten"
            );
        }
    }
}

#[tokio::test]
async fn a_truncated_file_is_reported_as_truncated_and_kept() {
    let (dir, store) = populated().await;
    let file = file_of(dir.path());
    let original = fs::read(&file).unwrap();
    for len in [0, 5, 8, 9, 40, 58, 74, original.len() - 1] {
        fs::write(&file, &original[..len]).unwrap();
        let reason = corrupt_reason(store.retrieve(&project(1)).await, &file);
        assert_eq!(
            reason,
            CorruptReason::Truncated { len: len as u64 },
            "cut at {len}"
        );
        assert!(
            store
                .store(&project(2), &ApiKey::new("sk-x-123456"))
                .await
                .is_err()
        );
        assert_eq!(fs::read(&file).unwrap(), &original[..len]);
    }
    let err = CredentialError::Corrupt {
        path: file.clone(),
        reason: CorruptReason::Truncated { len: 0 },
    };
    assert!(err.to_string().contains("it is empty"), "{err}");
}

#[tokio::test]
async fn a_file_from_another_machine_or_with_another_credentials_key_is_corrupt() {
    let (dir, _store) = populated().await;
    let file = file_of(dir.path());

    let other_machine = EncryptedFileStore::new(dir.path(), KeyMaterial::machine_id(MACHINE_B));
    let reason = corrupt_reason(other_machine.retrieve(&project(1)).await, &file);
    assert!(matches!(reason, CorruptReason::Undecryptable { .. }));
    let text = CredentialError::Corrupt {
        path: file.clone(),
        reason,
    }
    .to_string();
    assert!(
        text.contains("another machine") && text.contains(FILE_NAME),
        "{text}"
    );

    // Containers: the file is written with STORYTELLER_CREDENTIALS_KEY.
    let container = tempfile::tempdir().unwrap();
    let with_key = |secret: &str| {
        EncryptedFileStore::new(
            container.path(),
            KeyMaterial::machine_id(MACHINE_A).with_credentials_key(secret),
        )
    };
    with_key("first-secret-value")
        .store(&project(1), &ApiKey::new(SENTINEL))
        .await
        .unwrap();
    let file = file_of(container.path());
    let reason = corrupt_reason(
        with_key("second-secret-value").retrieve(&project(1)).await,
        &file,
    );
    assert!(
        reason
            .to_string()
            .contains("different STORYTELLER_CREDENTIALS_KEY")
    );
    // The same machine without the variable cannot read it either, and says what is missing.
    let reason = corrupt_reason(
        store_in(container.path()).retrieve(&project(1)).await,
        &file,
    );
    assert!(matches!(reason, CorruptReason::KeyUnavailable { .. }));
    assert!(
        reason
            .to_string()
            .contains("STORYTELLER_CREDENTIALS_KEY, which is not set")
    );
}

#[tokio::test]
async fn setting_a_credentials_key_re_encrypts_the_file_on_the_next_write() {
    let (dir, _store) = populated().await;
    let both = EncryptedFileStore::new(
        dir.path(),
        KeyMaterial::machine_id(MACHINE_A).with_credentials_key("container-secret"),
    );
    // Still readable: the header says the machine id was used.
    assert_eq!(both.retrieve(&project(1)).await.unwrap().expose(), SENTINEL);
    both.store(&project(2), &ApiKey::new("sk-second-22"))
        .await
        .unwrap();
    // Now only the credentials key opens it, on any machine.
    let elsewhere = EncryptedFileStore::new(
        dir.path(),
        KeyMaterial::machine_id(MACHINE_B).with_credentials_key("container-secret"),
    );
    assert_eq!(
        elsewhere.retrieve(&project(1)).await.unwrap().expose(),
        SENTINEL
    );
}

#[tokio::test]
async fn an_unknown_version_or_a_foreign_file_is_named_as_such() {
    let (dir, store) = populated().await;
    let file = file_of(dir.path());
    let mut bytes = fs::read(&file).unwrap();
    bytes[8] = 2;
    fs::write(&file, &bytes).unwrap();
    let reason = corrupt_reason(store.retrieve(&project(1)).await, &file);
    assert_eq!(reason, CorruptReason::UnknownVersion(2));
    assert!(reason.to_string().contains("format version 2"));

    fs::write(&file, b"{\"project_1_openai\": \"not our format\"}").unwrap();
    let reason = corrupt_reason(store.retrieve(&project(1)).await, &file);
    assert_eq!(reason, CorruptReason::NotCredentialsFile);
}

#[tokio::test]
async fn writers_in_one_process_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let writes = (0..24).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .store(&project(i), &ApiKey::new(format!("sk-concurrent-{i}")))
                .await
        })
    });
    for write in futures::future::join_all(writes).await {
        write.unwrap().unwrap();
    }
    assert_eq!(store.accounts().await.unwrap().len(), 24);
}

#[tokio::test]
async fn writers_in_two_processes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (1..=2)
        .map(|process| spawn_child_writer(dir.path(), "batch", process))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = store_in(dir.path());
    for process in 1..=2i64 {
        for i in 0..BATCH {
            let key = store.retrieve(&project(process * 1000 + i)).await.unwrap();
            assert_eq!(key.expose(), format!("sk-batch-{process}-{i}"));
        }
    }
    assert_eq!(store.accounts().await.unwrap().len(), 2 * BATCH as usize);
}

#[tokio::test]
async fn the_sentinel_key_never_appears_in_the_files_or_in_any_error() {
    let (dir, store) = populated().await;
    let file = file_of(dir.path());
    let hex: String = SENTINEL.bytes().map(|b| format!("{b:02x}")).collect();
    let assert_clean = |label: &str, text: &str| {
        assert!(
            !text.contains(SENTINEL) && !text.contains("SENTINEL") && !text.contains(&hex),
            "{label}: {text}"
        );
    };
    for entry in fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == b"SENTINEL"),
            "{} holds the key in clear",
            path.display()
        );
    }

    let original = fs::read(&file).unwrap();
    let mut errors: Vec<CredentialError> = Vec::new();
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    for bytes in [flipped, original[..original.len() - 3].to_vec()] {
        fs::write(&file, &bytes).unwrap();
        errors.push(store.retrieve(&project(1)).await.unwrap_err());
    }
    fs::write(&file, &original).unwrap();
    errors.push(
        EncryptedFileStore::new(dir.path(), KeyMaterial::machine_id(MACHINE_B))
            .retrieve(&project(1))
            .await
            .unwrap_err(),
    );
    errors.push(store.retrieve(&project(77)).await.unwrap_err());
    errors.push(
        EncryptedFileStore::new(dir.path(), KeyMaterial::default())
            .store(&project(1), &ApiKey::new(SENTINEL))
            .await
            .unwrap_err(),
    );
    for err in &errors {
        assert_clean("Display", &err.to_string());
        assert_clean("Debug", &format!("{err:?}"));
    }
    let retrieved = store.retrieve(&project(1)).await.unwrap();
    assert_clean("ApiKey Debug", &format!("{retrieved:?} {retrieved}"));
}

#[tokio::test]
async fn without_machine_id_or_credentials_key_a_write_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = EncryptedFileStore::new(dir.path(), KeyMaterial::default());
    let err = store
        .store(&project(1), &ApiKey::new("sk-nowhere-to-go"))
        .await
        .unwrap_err();
    assert!(matches!(err, CredentialError::NoFileKey { .. }));
    assert!(err.to_string().contains("STORYTELLER_CREDENTIALS_KEY"));
    assert!(!file_of(dir.path()).exists());
}

#[tokio::test]
async fn the_file_choice_opens_the_file_with_a_one_time_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let env: VarMap = [("STORYTELLER_CREDENTIALS_KEY", "open-test-secret")]
        .into_iter()
        .collect();
    let env = std::sync::Arc::new(env);
    let first = storyteller_lsp::credentials::open_with_env(
        CredentialStoreChoice::File,
        &data_dir,
        env.clone(),
    )
    .await
    .unwrap();
    assert_eq!(first.store.kind(), StoreKind::File);
    let notice = first
        .fallback
        .clone()
        .expect("the file comes with a warning");
    assert_eq!(notice.path, data_dir.join(FILE_NAME));
    assert!(notice.first_in_process);
    let text = notice.message();
    assert!(
        text.contains("credentials.enc") && text.contains("weaker"),
        "{text}"
    );

    let second =
        storyteller_lsp::credentials::open_with_env(CredentialStoreChoice::File, &data_dir, env)
            .await
            .unwrap();
    assert!(!second.fallback.unwrap().first_in_process);

    // The key from the (injected) environment is the one the file is encrypted with.
    first
        .store
        .store(&project(1), &ApiKey::new("sk-opened-file-1"))
        .await
        .unwrap();
    let elsewhere = EncryptedFileStore::new(
        &data_dir,
        KeyMaterial::machine_id(MACHINE_B).with_credentials_key("open-test-secret"),
    );
    assert_eq!(
        elsewhere.retrieve(&project(1)).await.unwrap().expose(),
        "sk-opened-file-1"
    );
}

// --- child processes ---------------------------------------------------------------------------

const BATCH: i64 = 20;

/// Starts this test binary again, running only `child_writer`.
fn spawn_child_writer(dir: &Path, mode: &str, number: u32) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_writer", "--nocapture"])
        .env("STORYTELLER_TEST_WRITER_DIR", dir)
        .env("STORYTELLER_TEST_WRITER_MODE", mode)
        .env("STORYTELLER_TEST_WRITER_NUMBER", number.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The body of the child processes above; does nothing unless started by them.
/// `loop`: rewrites five accounts until killed, printing `stored N` after each write.
/// `batch`: stores `BATCH` accounts of its own, then exits.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_writer() {
    let (Ok(dir), Ok(mode), Ok(number)) = (
        std::env::var("STORYTELLER_TEST_WRITER_DIR"),
        std::env::var("STORYTELLER_TEST_WRITER_MODE"),
        std::env::var("STORYTELLER_TEST_WRITER_NUMBER"),
    ) else {
        return;
    };
    let number: i64 = number.parse().unwrap();
    let store = store_in(Path::new(&dir));
    match mode.as_str() {
        "loop" => {
            for i in 0.. {
                let key = ApiKey::new(format!("sk-kill-round-{number}-{i}"));
                store.store_blocking(&project(i % 5), &key).unwrap();
                println!("stored {i}");
            }
        }
        "batch" => {
            for i in 0..BATCH {
                let key = ApiKey::new(format!("sk-batch-{number}-{i}"));
                store
                    .store_blocking(&project(number * 1000 + i), &key)
                    .unwrap();
            }
        }
        other => panic!("unknown mode {other}"),
    }
}
