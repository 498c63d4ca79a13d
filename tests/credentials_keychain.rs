//! The keychain store against a REAL Secret Service (gnome-keyring), checked from outside with
//! `secret-tool`, plus store selection with and without a session bus.
//!
//! Run: `scripts/with-keychain env STORYTELLER_REQUIRE_KEYCHAIN=1 cargo test --test credentials_keychain`.
//! Without a reachable keychain the keychain tests print a skip notice and pass, unless
//! `STORYTELLER_REQUIRE_KEYCHAIN=1` (CI), where they fail. Every test uses its own accounts and
//! removes them; the literal `project_1_openai` is only touched when no such entry exists yet.
//!
//! Two tests run this binary again as a child process (`child_entry`, ignored when run normally):
//! one without a session bus, one inside a private throwaway keyring that it locks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use storyteller_lsp::config::CredentialStoreChoice;
use storyteller_lsp::credentials::{
    self, Account, ApiKey, CredentialError, CredentialStore, KeySource, KeychainStore, SERVICE,
    StoreKind, VarMap, encrypted_file::FILE_NAME,
};
use storyteller_lsp::providers::{AuthType, ProviderKind};

/// A notice the test harness does not capture (it only captures the `print!` macros), so that a
/// skipped test is visible in a normal run.
fn notice(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn keychain_required() -> bool {
    std::env::var("STORYTELLER_REQUIRE_KEYCHAIN").as_deref() == Ok("1")
}

/// The keychain when one is usable; else `None` after a skip notice (or a failure in CI).
async fn keychain(test: &str) -> Option<KeychainStore> {
    let store = KeychainStore::new();
    match store.probe().await {
        Ok(()) => {}
        Err(e) if keychain_required() => {
            panic!("STORYTELLER_REQUIRE_KEYCHAIN=1 but no keychain is usable: {e}")
        }
        Err(e) => {
            notice(&format!(
                "SKIPPED {test}: no usable keychain ({e}). Run under `scripts/with-keychain` \
                 to test against a real Secret Service."
            ));
            return None;
        }
    }
    if Command::new("secret-tool")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            !keychain_required(),
            "secret-tool (libsecret-tools) is needed to check the keychain from outside"
        );
        notice(&format!("SKIPPED {test}: secret-tool is not installed"));
        return None;
    }
    Some(store)
}

/// A project id no real project has, different for every call.
fn unique_project() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    900_000_000 + i64::from(std::process::id()) * 100 + NEXT.fetch_add(1, Ordering::SeqCst)
}

/// `secret-tool lookup service storyteller.ai_provider account {account}`: the stored value, or
/// `None` when secret-tool finds nothing.
fn secret_tool_lookup(account: &Account) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", SERVICE, "account", account.as_str()])
        .output()
        .expect("secret-tool runs");
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How many keychain items `secret-tool search` finds for the account.
fn secret_tool_items(account: &Account) -> usize {
    let out = Command::new("secret-tool")
        .args([
            "search",
            "--all",
            "service",
            SERVICE,
            "account",
            account.as_str(),
        ])
        .output()
        .expect("secret-tool runs");
    let listing =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    listing.lines().filter(|l| l.starts_with("[/")).count()
}

#[tokio::test]
async fn project_keys_live_in_the_keychain_until_deleted() {
    let Some(store) = keychain("project_keys_live_in_the_keychain_until_deleted").await else {
        return;
    };
    assert_eq!(store.kind(), StoreKind::Keychain);
    let account = Account::project(unique_project(), ProviderKind::OpenAi);
    let key = ApiKey::new("sk-keychain-test-key-0001");

    store.store(&account, &key).await.unwrap();
    assert_eq!(store.retrieve(&account).await.unwrap(), key);
    assert_eq!(secret_tool_lookup(&account).as_deref(), Some(key.expose()));

    store.delete(&account).await.unwrap();
    assert!(store.retrieve(&account).await.unwrap_err().is_not_found());
    assert_eq!(secret_tool_lookup(&account), None);
    assert!(store.delete(&account).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn the_design_account_project_1_openai_is_visible_to_secret_tool_and_gone_after_delete() {
    let test =
        "the_design_account_project_1_openai_is_visible_to_secret_tool_and_gone_after_delete";
    let Some(store) = keychain(test).await else {
        return;
    };
    let account = Account::project(1, ProviderKind::OpenAi);
    match store.retrieve(&account).await {
        Err(CredentialError::NotFound { .. }) => {}
        other => {
            // Someone's real key: never overwrite or delete it.
            notice(&format!(
                "SKIPPED {test}: {account} already exists in this keychain ({other:?})"
            ));
            return;
        }
    }
    let key = ApiKey::new("sk-storyteller-ci-evidence-0001");
    store.store(&account, &key).await.unwrap();
    let found = secret_tool_lookup(&account);
    notice(&format!(
        "evidence: secret-tool lookup service {SERVICE} account {account} -> {found:?}"
    ));
    assert_eq!(found.as_deref(), Some(key.expose()));

    store.delete(&account).await.unwrap();
    let after = secret_tool_lookup(&account);
    notice(&format!(
        "evidence: after delete, secret-tool lookup service {SERVICE} account {account} -> {after:?}"
    ));
    assert_eq!(after, None);
}

#[tokio::test]
async fn session_keys_live_under_their_session_account() {
    let Some(store) = keychain("session_keys_live_under_their_session_account").await else {
        return;
    };
    let name = format!("ci-{}", unique_project());
    let account = Account::session(ProviderKind::Claude, AuthType::ApiKey, &name).unwrap();
    assert_eq!(account.as_str(), format!("session_claude_api_key_{name}"));
    let key = ApiKey::new("sk-ant-session-key-0002");

    store.store(&account, &key).await.unwrap();
    assert_eq!(secret_tool_lookup(&account).as_deref(), Some(key.expose()));
    assert_eq!(store.retrieve(&account).await.unwrap(), key);
    // The project account of the same provider is another item.
    let project = Account::project(unique_project(), ProviderKind::Claude);
    assert!(store.retrieve(&project).await.unwrap_err().is_not_found());

    store.delete(&account).await.unwrap();
    assert_eq!(secret_tool_lookup(&account), None);
}

#[tokio::test]
async fn storing_again_replaces_the_key_in_the_same_item() {
    let Some(store) = keychain("storing_again_replaces_the_key_in_the_same_item").await else {
        return;
    };
    let account = Account::project(unique_project(), ProviderKind::Gemini);
    store
        .store(&account, &ApiKey::new("AIza-first-key-0001"))
        .await
        .unwrap();
    store
        .store(&account, &ApiKey::new("AIza-rotated-key-0002"))
        .await
        .unwrap();
    assert_eq!(
        store.retrieve(&account).await.unwrap().expose(),
        "AIza-rotated-key-0002"
    );
    assert_eq!(secret_tool_items(&account), 1);
    store.delete(&account).await.unwrap();
    assert_eq!(secret_tool_items(&account), 0);
}

#[tokio::test]
async fn an_empty_value_in_the_keychain_falls_through_to_the_system_key() {
    let test = "an_empty_value_in_the_keychain_falls_through_to_the_system_key";
    let Some(store) = keychain(test).await else {
        return;
    };
    let project = unique_project();
    let account = Account::project(project, ProviderKind::OpenAi);
    // Another tool left an empty item where our key would be.
    let mut child = Command::new("secret-tool")
        .args([
            "store",
            "--label=empty",
            "service",
            SERVICE,
            "username",
            account.as_str(),
            "account",
            account.as_str(),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    let env: VarMap = [("OPENAI_API_KEY", "sk-system-fallback-0003")]
        .into_iter()
        .collect();
    let resolved = credentials::resolve(&store, project, ProviderKind::OpenAi, None, &env)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.source, KeySource::Env);
    assert_eq!(resolved.key.expose(), "sk-system-fallback-0003");

    // Stored properly, the project key wins and its source is the keychain.
    store
        .store(&account, &ApiKey::new("sk-project-key-0004"))
        .await
        .unwrap();
    let resolved = credentials::resolve(&store, project, ProviderKind::OpenAi, None, &env)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.source, KeySource::Keychain);
    assert_eq!(resolved.key.expose(), "sk-project-key-0004");
    store.delete(&account).await.unwrap();
}

#[tokio::test]
async fn auto_and_keychain_choices_use_the_keychain_when_it_is_usable() {
    let test = "auto_and_keychain_choices_use_the_keychain_when_it_is_usable";
    if keychain(test).await.is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for choice in [CredentialStoreChoice::Auto, CredentialStoreChoice::Keychain] {
        let opened = credentials::open(choice, dir.path()).await.unwrap();
        assert_eq!(opened.store.kind(), StoreKind::Keychain, "{choice:?}");
        assert!(opened.fallback.is_none());
    }
    assert!(!dir.path().join(FILE_NAME).exists());
}

#[test]
fn without_a_session_bus_auto_falls_back_to_the_file_and_keychain_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child(
        Command::new(std::env::current_exe().unwrap()),
        "no-bus",
        dir.path(),
        |cmd| {
            cmd.env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/storyteller/bus",
            )
            .env_remove("XDG_RUNTIME_DIR");
        },
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
            .to_string()
    };
    let keychain = line("keychain choice: ");
    assert!(
        keychain.starts_with("the OS keychain is not usable:"),
        "{keychain}"
    );
    assert_eq!(line("auto store: "), "File");
    let notice = line("auto notice: ");
    assert!(
        notice.contains(FILE_NAME) && notice.contains("weaker"),
        "{notice}"
    );
    assert!(notice.contains("No usable OS keychain ("), "{notice}");
    assert_eq!(line("auto first: "), "true");
    assert_eq!(line("auto round trip: "), "ok");
}

/// Whether the tools for a private D-Bus session with gnome-keyring are installed; without them
/// the test is skipped (or fails in CI).
fn private_session_tools(test: &str) -> bool {
    let tools = ["dbus-run-session", "gnome-keyring-daemon", "dbus-send"];
    let missing = tools.iter().find(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
    });
    match missing {
        None => true,
        Some(tool) => {
            assert!(!keychain_required(), "{tool} is needed for {test}");
            notice(&format!("SKIPPED {test}: {tool} is not installed"));
            false
        }
    }
}

/// This test binary behind `scripts/with-keychain`: a private session with an unlocked keyring
/// of its own, so locking or freezing it disturbs no other test.
fn in_private_keychain() -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/with-keychain");
    let mut cmd = Command::new(script);
    cmd.arg(std::env::current_exe().unwrap());
    cmd
}

fn child_line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
}

#[test]
fn a_locked_keychain_answers_unavailable_instead_of_prompting_forever() {
    if !private_session_tools("a_locked_keychain_answers_unavailable_instead_of_prompting_forever")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_child(in_private_keychain(), "locked", dir.path(), |_| {});
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for prefix in ["locked retrieve: ", "locked store: "] {
        let line = child_line(&stdout, prefix);
        assert!(
            line.starts_with("Unavailable: the OS keychain is not usable"),
            "{line}"
        );
    }
}

#[test]
fn a_keychain_that_stops_answering_times_out_and_recovers_when_it_answers_again() {
    let test = "a_keychain_that_stops_answering_times_out_and_recovers_when_it_answers_again";
    if !private_session_tools(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_child(in_private_keychain(), "frozen", dir.path(), |_| {});
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = child_line(&stdout, "frozen first: ");
    assert!(first.contains("did not answer within 1 s"), "{first}");
    let second = child_line(&stdout, "frozen second: ");
    assert!(
        second.contains("has not answered an earlier request"),
        "{second}"
    );
    assert_eq!(child_line(&stdout, "thawed: "), "Ok: ••••0007");
}

#[test]
fn a_session_bus_without_a_default_keyring_makes_auto_fall_back_to_the_file() {
    let test = "a_session_bus_without_a_default_keyring_makes_auto_fall_back_to_the_file";
    if !private_session_tools(test) {
        return;
    }
    // A private bus on which gnome-keyring can be activated, but with an empty keyring directory
    // and nobody to unlock it: lookups work, storing never could.
    let dir = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("dbus-run-session");
    cmd.arg("--")
        .arg(std::env::current_exe().unwrap())
        .env("XDG_DATA_HOME", xdg.path())
        .env("XDG_RUNTIME_DIR", xdg.path());
    let out = run_child(cmd, "no-default-keyring", dir.path(), |_| {});
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(child_line(&stdout, "auto store: "), "File");
    let reason = child_line(&stdout, "auto reason: ");
    assert!(reason.contains("no default keyring"), "{reason}");
}

// --- child processes ---------------------------------------------------------------------------

/// Runs `cmd` (this binary, possibly behind a wrapper) as `child_entry` in `mode`, and waits for
/// it, at most a minute: a hang is a failure, not a stuck test run.
fn run_child(
    mut cmd: Command,
    mode: &str,
    dir: &Path,
    adjust: impl FnOnce(&mut Command),
) -> Output {
    cmd.args(["--ignored", "--exact", "child_entry", "--nocapture"])
        .env("STORYTELLER_TEST_KEYCHAIN_CHILD", mode)
        .env("STORYTELLER_TEST_KEYCHAIN_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the {mode} child process hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The body of the child processes above; does nothing unless started by them.
#[tokio::test]
#[ignore = "run as a child process by other tests"]
async fn child_entry() {
    let (Ok(mode), Ok(dir)) = (
        std::env::var("STORYTELLER_TEST_KEYCHAIN_CHILD"),
        std::env::var("STORYTELLER_TEST_KEYCHAIN_DIR"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    match mode.as_str() {
        "no-bus" => {
            match credentials::open(CredentialStoreChoice::Keychain, &dir).await {
                Ok(_) => println!("keychain choice: opened"),
                Err(e) => println!("keychain choice: {e}"),
            }
            let opened = credentials::open(CredentialStoreChoice::Auto, &dir)
                .await
                .unwrap();
            println!("auto store: {:?}", opened.store.kind());
            let notice = opened.fallback.expect("a fallback notice");
            println!("auto notice: {}", notice.message());
            println!("auto first: {}", notice.first_in_process);
            let account = Account::project(1, ProviderKind::OpenAi);
            let key = ApiKey::new("sk-no-bus-round-trip-01");
            let stored = opened.store.store(&account, &key).await;
            let back = opened.store.retrieve(&account).await;
            let ok = stored.is_ok() && back.map(|k| k == key).unwrap_or(false);
            println!("auto round trip: {}", if ok { "ok" } else { "failed" });
        }
        "locked" => {
            let store = KeychainStore::with_timeout(Duration::from_secs(3));
            store.probe().await.unwrap();
            let account = Account::project(5, ProviderKind::OpenAi);
            store
                .store(&account, &ApiKey::new("sk-before-lock-0005"))
                .await
                .unwrap();
            let lock = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.secrets",
                    "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service.Lock",
                    "array:objpath:/org/freedesktop/secrets/collection/login",
                ])
                .output()
                .unwrap();
            assert!(lock.status.success(), "{lock:?}");
            let show = |r: Result<String, CredentialError>| match r {
                Ok(v) => format!("Ok: {v}"),
                Err(e @ CredentialError::Unavailable { .. }) => format!("Unavailable: {e}"),
                Err(e) => format!("Other: {e}"),
            };
            println!(
                "locked retrieve: {}",
                show(store.retrieve(&account).await.map(|k| k.hint()))
            );
            println!(
                "locked store: {}",
                show(
                    store
                        .store(&account, &ApiKey::new("sk-after-lock-0006"))
                        .await
                        .map(|()| "stored".to_string())
                )
            );
        }
        "frozen" => {
            let store = KeychainStore::with_timeout(Duration::from_secs(1));
            let account = Account::project(7, ProviderKind::OpenAi);
            store
                .store(&account, &ApiKey::new("sk-before-freeze-0007"))
                .await
                .unwrap();
            // The keyring daemon of this private session, found through the bus.
            let pid = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.GetConnectionUnixProcessID",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            let pid = String::from_utf8_lossy(&pid.stdout)
                .split_whitespace()
                .last()
                .and_then(|p| p.parse::<u32>().ok())
                .expect("the keyring daemon's pid");
            let signal = |sig: &str| {
                let status = Command::new("kill")
                    .args([sig, &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(status.success(), "kill {sig} {pid}");
            };
            signal("-STOP");
            let first = store.retrieve(&account).await.map(|k| k.hint());
            let second = store.retrieve(&account).await.map(|k| k.hint());
            // Thaw before anything can fail, so the daemon is never left frozen.
            signal("-CONT");
            println!("frozen first: {first:?}");
            println!("frozen second: {second:?}");
            // Once the abandoned call has returned, calls go through again.
            let mut thawed = store.retrieve(&account).await;
            for _ in 0..500 {
                match &thawed {
                    Err(CredentialError::Unavailable { reason })
                        if reason.contains("earlier request") =>
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        thawed = store.retrieve(&account).await;
                    }
                    _ => break,
                }
            }
            match thawed {
                Ok(k) => println!("thawed: Ok: {}", k.hint()),
                Err(e) => println!("thawed: Err: {e}"),
            }
            store.delete(&account).await.unwrap();
        }
        "no-default-keyring" => {
            let opened = credentials::open(CredentialStoreChoice::Auto, &dir)
                .await
                .unwrap();
            println!("auto store: {:?}", opened.store.kind());
            if let Some(notice) = opened.fallback {
                println!("auto reason: {}", notice.reason);
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}
