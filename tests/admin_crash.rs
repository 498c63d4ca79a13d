//! Crash safety of provider changes (issue 7 item 9). The real binary (`provider add|update|remove`
//! with the file credential store) is killed with SIGKILL at each step of the operation — a
//! debug-build failpoint (`STORYTELLER_FAILPOINT`) holds it there — and the next start (any
//! command) must find a consistent state: no orphan key, no keyless row, nothing left in the
//! journal, and a message for the author where something was interrupted.
//!
//! Then the repair itself, in process, on crafted leftovers (sessions included), and the
//! keychain variant against a real Secret Service (skipped without one unless
//! `STORYTELLER_REQUIRE_KEYCHAIN=1`; run it with
//! `scripts/with-keychain env STORYTELLER_REQUIRE_KEYCHAIN=1 cargo test --test admin_crash`).

mod admin_support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use admin_support::{
    Binary, CREDENTIALS_KEY, accounts, assert_consistent, file_store, journal_records,
    kill_command_at, rows, stored_key, text,
};
use storyteller_lsp::admin::journal::{self, ChangeLock, Intent, Operation, Owner};
use storyteller_lsp::app::App;
use storyteller_lsp::config::{CredentialStoreChoice, Settings};
use storyteller_lsp::credentials::{Account, ApiKey, CredentialStore, KeychainStore, VarMap};
use storyteller_lsp::providers::{AuthType, ProviderKind};
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::{self, NewProvider, SessionName};

const OLD_KEY: &str = "sk-crash-old-key-0201";
const NEW_KEY: &str = "sk-crash-new-key-0202";

fn openai_account() -> Account {
    // A fresh data directory's default project is 1.
    Account::project(1, ProviderKind::OpenAi)
}

async fn add_openai(bin: &Binary, sim: &SimulatorHandle) {
    let endpoint = sim.endpoint(ProviderKind::OpenAi);
    let out = bin
        .run(
            &[
                "provider",
                "add",
                "openai",
                "--endpoint",
                &endpoint,
                "--key-stdin",
            ],
            &format!("{OLD_KEY}\n"),
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The next start: `provider list` opens the services, which repair; returns its stderr.
async fn next_start(bin: &Binary) -> String {
    let out = bin.run(&["provider", "list", "--json"], "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_killed_at_any_step_leaves_no_orphan_key_and_no_keyless_row() {
    let sim = SimulatorHandle::start().await.unwrap();
    // (failpoint, key left by the crash, journal records left, rows after repair, notice)
    let cases = [
        (
            "add:after_journal",
            false,
            1,
            0,
            Some("Adding OpenAI was interrupted"),
        ),
        (
            "add:after_key_stored",
            true,
            1,
            0,
            Some("Adding OpenAI was interrupted"),
        ),
        ("add:after_commit", true, 0, 1, None),
    ];
    for (failpoint, key_left, records, rows_after, notice) in cases {
        let dir = tempfile::tempdir().unwrap();
        let bin = Binary::new(dir.path());
        let endpoint = sim.endpoint(ProviderKind::OpenAi);
        bin.kill_at(
            failpoint,
            &[
                "provider",
                "add",
                "openai",
                "--endpoint",
                &endpoint,
                "--key-stdin",
            ],
            &format!("{OLD_KEY}\n"),
        )
        .await;

        // What the crash left, before anything repairs it.
        assert_eq!(
            stored_key(dir.path(), &openai_account()).await.is_some(),
            key_left,
            "{failpoint}: key after the crash"
        );
        assert_eq!(journal_records(dir.path()), records, "{failpoint}");

        let stderr = next_start(&bin).await;
        assert_consistent(dir.path()).await;
        assert_eq!(rows(dir.path()).0.len(), rows_after, "{failpoint}");
        match notice {
            Some(notice) => assert!(stderr.contains(notice), "{failpoint}: {stderr}"),
            None => assert!(!stderr.contains("interrupted"), "{failpoint}: {stderr}"),
        }
        // Told once: a second start has nothing to say.
        assert!(
            !next_start(&bin).await.contains("interrupted"),
            "{failpoint}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_killed_at_any_step_keeps_a_working_key() {
    let sim = SimulatorHandle::start().await.unwrap();
    // (failpoint, key after the crash, model after repair, notice)
    let cases = [
        ("update:after_journal", OLD_KEY, "gpt-4o", true),
        ("update:after_key_stored", NEW_KEY, "gpt-4o", true),
        ("update:after_commit", NEW_KEY, "gpt-4o-mini", false),
    ];
    for (failpoint, key_after, model_after, notice) in cases {
        let dir = tempfile::tempdir().unwrap();
        let bin = Binary::new(dir.path());
        add_openai(&bin, &sim).await;
        bin.kill_at(
            failpoint,
            &[
                "provider",
                "update",
                "1",
                "--key-stdin",
                "--model",
                "gpt-4o-mini",
            ],
            &format!("{NEW_KEY}\n"),
        )
        .await;
        assert_eq!(
            stored_key(dir.path(), &openai_account()).await.as_deref(),
            Some(key_after),
            "{failpoint}: a row always has a key, the old or the new one"
        );

        let stderr = next_start(&bin).await;
        assert_consistent(dir.path()).await;
        let (providers, _) = rows(dir.path());
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].model, model_after, "{failpoint}");
        assert_eq!(
            stderr.contains("Changing OpenAI was interrupted"),
            notice,
            "{failpoint}: {stderr}"
        );
        assert_eq!(
            stored_key(dir.path(), &openai_account()).await.as_deref(),
            Some(key_after),
            "{failpoint}: the repair keeps the key a row owns"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_killed_at_any_step_is_completed_at_the_next_start() {
    let sim = SimulatorHandle::start().await.unwrap();
    for (failpoint, key_left) in [
        ("remove:after_commit", true),
        ("remove:after_key_deleted", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let bin = Binary::new(dir.path());
        add_openai(&bin, &sim).await;
        bin.kill_at(failpoint, &["provider", "remove", "1", "--yes"], "")
            .await;
        assert!(
            rows(dir.path()).0.is_empty(),
            "{failpoint}: the row went first"
        );
        assert_eq!(
            stored_key(dir.path(), &openai_account()).await.is_some(),
            key_left,
            "{failpoint}"
        );
        let stderr = next_start(&bin).await;
        assert_consistent(dir.path()).await;
        assert!(accounts(dir.path()).await.is_empty(), "{failpoint}");
        assert!(
            stderr.contains("Removing OpenAI was interrupted; the removal has now been completed."),
            "{failpoint}: {stderr}"
        );
    }
}

async fn app_on(dir: &Path) -> (App, Vec<String>) {
    let settings = Settings {
        data_dir: Some(dir.to_path_buf()),
        credential_store: CredentialStoreChoice::File,
        ..Settings::default()
    };
    let mut env = VarMap::default();
    env.set("STORYTELLER_CREDENTIALS_KEY", CREDENTIALS_KEY);
    let (app, report) = storyteller_lsp::admin::open(settings, Vec::new(), Arc::new(env))
        .await
        .unwrap();
    (app, report.credential_notices)
}

fn intent(operation: Operation, owner: Owner, name: &str) -> Intent {
    Intent {
        operation,
        owner,
        display_name: name.into(),
    }
}

#[tokio::test]
async fn the_repair_keeps_owned_keys_deletes_orphans_and_says_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let (app, notices) = app_on(dir.path()).await;
    assert!(notices.is_empty());
    let project = app.project_for(None).await.unwrap();
    let files = file_store(dir.path());
    let session = SessionName::new("work").unwrap();

    // Leftovers of five interrupted operations:
    // 1. an add that stored its key but never its row (orphan),
    // 2. a rotation whose row exists with a key (kept),
    // 3. a session add that stored its key only (orphan),
    // 4. an add whose row exists but whose key vanished (told to re-enter it),
    // 5. a session removal whose row is gone but whose key is not (deleted).
    let claude = Account::project(project.0, ProviderKind::Claude);
    let gemini = Account::project(project.0, ProviderKind::Gemini);
    let session_account = Account::session(ProviderKind::OpenAi, AuthType::ApiKey, "work").unwrap();
    let old_session = Account::session(ProviderKind::Claude, AuthType::ApiKey, "gone").unwrap();
    files
        .store(&claude, &ApiKey::new("sk-orphan-claude-0301"))
        .await
        .unwrap();
    files
        .store(&gemini, &ApiKey::new("AIza-owned-gemini-0302"))
        .await
        .unwrap();
    files
        .store(&session_account, &ApiKey::new("sk-orphan-session-0303"))
        .await
        .unwrap();
    files
        .store(&old_session, &ApiKey::new("sk-orphan-old-session-0304"))
        .await
        .unwrap();
    let intents = vec![
        intent(
            Operation::AddProvider,
            Owner::Project {
                project,
                kind: ProviderKind::Claude,
            },
            "Anthropic Claude",
        ),
        intent(
            Operation::RotateKey,
            Owner::Project {
                project,
                kind: ProviderKind::Gemini,
            },
            "Google Gemini",
        ),
        intent(
            Operation::AddSession,
            Owner::Session {
                kind: ProviderKind::OpenAi,
                auth_type: AuthType::ApiKey,
                name: session.clone(),
            },
            "work",
        ),
        intent(
            Operation::AddProvider,
            Owner::Project {
                project,
                kind: ProviderKind::DeepSeek,
            },
            "DeepSeek",
        ),
        intent(
            Operation::RemoveSession,
            Owner::Session {
                kind: ProviderKind::Claude,
                auth_type: AuthType::ApiKey,
                name: SessionName::new("gone").unwrap(),
            },
            "gone",
        ),
    ];
    app.store()
        .call(move |conn| {
            for kind in [ProviderKind::Gemini, ProviderKind::DeepSeek] {
                store::providers::insert(conn, &NewProvider::new(project, kind))?;
            }
            for intent in &intents {
                journal::record(conn, intent)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    drop(app);

    let (_app, notices) = app_on(dir.path()).await;
    assert_eq!(
        notices,
        [
            "Adding Anthropic Claude was interrupted before it finished, so nothing was saved. Please add it again.",
            "Changing Google Gemini was interrupted: its API key may already be the new one, but its other changes were not saved. Please check its settings and test it.",
            "Adding the session work was interrupted before it finished, so nothing was saved. Please add it again.",
            "The API key for DeepSeek is missing from the credential store. Please enter it again.",
            "Removing gone was interrupted; the removal has now been completed.",
        ]
    );
    let left = accounts(dir.path()).await;
    assert_eq!(
        left,
        [gemini.as_str().to_string()],
        "only the owned key is kept"
    );
    assert_eq!(journal_records(dir.path()), 0);
}

#[tokio::test]
async fn the_repair_waits_while_another_process_changes_providers() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app_on(dir.path()).await;
    let project = app.project_for(None).await.unwrap();
    let orphan = Account::project(project.0, ProviderKind::Claude);
    file_store(dir.path())
        .store(&orphan, &ApiKey::new("sk-in-flight-0305"))
        .await
        .unwrap();
    let intent = intent(
        Operation::AddProvider,
        Owner::Project {
            project,
            kind: ProviderKind::Claude,
        },
        "Anthropic Claude",
    );
    app.store()
        .call(move |conn| journal::record(conn, &intent))
        .await
        .unwrap();

    // An operation in flight (here: this test holding the lock) is not a crash.
    let held = ChangeLock::acquire(dir.path()).await.unwrap();
    let report = storyteller_lsp::admin::repair(&app).await.unwrap();
    assert!(report.skipped_busy);
    assert_eq!(report.resolved, 0);
    assert!(
        stored_key(dir.path(), &orphan).await.is_some(),
        "left alone"
    );
    assert_eq!(journal_records(dir.path()), 1);

    drop(held);
    let report = storyteller_lsp::admin::repair(&app).await.unwrap();
    assert_eq!(report.resolved, 1);
    assert!(stored_key(dir.path(), &orphan).await.is_none());
}

fn keychain_required() -> bool {
    std::env::var("STORYTELLER_REQUIRE_KEYCHAIN").as_deref() == Ok("1")
}

fn secret_tool_lookup(account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "storyteller.ai_provider",
            "account",
            account,
        ])
        .output()
        .ok()?;
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_keychain_an_orphan_key_from_a_killed_add_is_deleted_at_the_next_start() {
    if let Err(e) = KeychainStore::new().probe().await {
        assert!(
            !keychain_required(),
            "STORYTELLER_REQUIRE_KEYCHAIN=1 but no keychain: {e}"
        );
        eprintln!("SKIPPED: no usable keychain ({e}); run under scripts/with-keychain");
        return;
    }
    if Command::new("secret-tool")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!keychain_required(), "secret-tool is needed");
        eprintln!("SKIPPED: secret-tool is not installed");
        return;
    }
    let sim = SimulatorHandle::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let novel = dir.path().join("novel");
    std::fs::create_dir(&novel).unwrap();
    // A project id no real keychain entry uses: the project of `novel` comes after this one.
    let pad = 800_000_000 + i64::from(std::process::id());
    admin_support::database(dir.path())
        .blocking(move |conn| {
            conn.execute(
                "INSERT INTO projects (id, name, root_path) VALUES (?1, 'pad', '/storyteller-test-pad')",
                [pad],
            )?;
            Ok(())
        })
        .unwrap();
    let account = Account::project(pad + 1, ProviderKind::OpenAi);
    assert_eq!(secret_tool_lookup(account.as_str()), None);

    let bin = Binary::new(dir.path());
    let with_keychain = |args: &[&str]| {
        let mut command = bin.command(args);
        command.env("STORYTELLER_CREDENTIAL_STORE", "keychain");
        command
    };
    let endpoint = sim.endpoint(ProviderKind::OpenAi);
    let project = novel.to_str().unwrap();
    let add = [
        "provider",
        "add",
        "openai",
        "--endpoint",
        &endpoint,
        "--key-stdin",
        "--project",
        project,
    ];
    kill_command_at(
        with_keychain(&add),
        "add:after_key_stored",
        &format!("{OLD_KEY}\n"),
    )
    .await;

    assert_eq!(
        secret_tool_lookup(account.as_str()).as_deref(),
        Some(OLD_KEY),
        "the crash left an orphan key in the keychain"
    );
    let out = bin
        .run_command(
            with_keychain(&["provider", "list", "--project", project]),
            "",
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Adding OpenAI was interrupted"));
    assert_eq!(
        secret_tool_lookup(account.as_str()),
        None,
        "the next start deleted the orphan"
    );
    assert_eq!(journal_records(dir.path()), 0);
}
