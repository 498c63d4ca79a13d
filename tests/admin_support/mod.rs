//! Shared set-up of the provider-management tests: a real data directory (SQLite + the encrypted
//! credentials file), the application services opened on it, the in-process simulator over
//! loopback, and checks that look at the database and the credentials file from outside.
//!
//! Also the driver of the real binary for the CLI and crash tests (`storyteller-lsp provider …`
//! with `--key-stdin`, the file credential store and a fixed `STORYTELLER_CREDENTIALS_KEY`).

#![allow(dead_code)] // Each test crate uses a different part of it.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use storyteller_lsp::app::App;
use storyteller_lsp::config::{CredentialStoreChoice, Settings};
use storyteller_lsp::credentials::{
    Account, ApiKey, CredentialStore, EncryptedFileStore, KeyMaterial, VarMap,
};
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::{ProjectId, ProviderRow, SessionRow, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The secret the credentials file key is derived from in every test (never a machine id, so the
/// tests run on machines without one).
pub const CREDENTIALS_KEY: &str = "admin-tests-credentials-key-4f1c9a";

/// How long any child process or wait may take before the test fails (generous; no timing
/// assertions).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Variables that would let a developer's real keys into a test.
pub const KEY_VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "YANDEX_API_KEY",
    "YANDEX_FOLDER_ID",
    "SCW_SECRET_KEY",
    "OPENROUTER_API_KEY",
    "STORYTELLER_OPENROUTER_AUTH_URL",
    "STORYTELLER_OPENROUTER_API_URL",
    "STORYTELLER_FAILPOINT",
    "STORYTELLER_CREDENTIAL_STORE",
];

/// The file store of `dir`, readable from outside the application.
pub fn file_store(dir: &Path) -> EncryptedFileStore {
    EncryptedFileStore::new(
        dir,
        KeyMaterial::machine_id("unused-machine-id").with_credentials_key(CREDENTIALS_KEY),
    )
}

/// Accounts with a key in `dir`'s credentials file (none when there is no file).
pub async fn accounts(dir: &Path) -> Vec<String> {
    file_store(dir)
        .accounts()
        .await
        .expect("credentials file readable")
}

/// The key stored under `account` in `dir`'s credentials file.
pub async fn stored_key(dir: &Path, account: &Account) -> Option<String> {
    file_store(dir)
        .retrieve(account)
        .await
        .ok()
        .map(|k| k.expose().to_string())
}

/// Every value stored in `dir`'s credentials file.
pub async fn stored_values(dir: &Path) -> Vec<String> {
    let store = file_store(dir);
    let mut values = Vec::new();
    for account in store.accounts().await.expect("readable") {
        let account = parse_account(&account);
        if let Ok(key) = store.retrieve(&account).await {
            values.push(key.expose().to_string());
        }
    }
    values
}

/// Rebuilds an [`Account`] from its name (project or session).
pub fn parse_account(name: &str) -> Account {
    if let Some(rest) = name.strip_prefix("project_") {
        let (id, kind) = rest.split_once('_').expect("project_{id}_{kind}");
        return Account::project(id.parse().expect("id"), kind.parse().expect("kind"));
    }
    let rest = name.strip_prefix("session_").expect("session account");
    for kind in ProviderKind::ALL {
        for auth in ["api_key", "oauth"] {
            let prefix = format!("{}_{auth}_", kind.as_str());
            if let Some(session) = rest.strip_prefix(&prefix) {
                return Account::session(kind, auth.parse().expect("auth"), session)
                    .expect("valid session name");
            }
        }
    }
    panic!("not an account name: {name}")
}

/// The database of `dir`, opened from outside (migrated like the application does).
pub fn database(dir: &Path) -> Store {
    Store::open(dir.join("storyteller.db")).expect("database opens")
}

/// Every provider row of every project, and every session.
pub fn rows(dir: &Path) -> (Vec<ProviderRow>, Vec<SessionRow>) {
    let store = database(dir);
    store
        .blocking(|conn| {
            let mut providers = Vec::new();
            for project in storyteller_lsp::store::projects::list(conn)? {
                providers.extend(storyteller_lsp::store::providers::list(conn, project.id)?);
            }
            let sessions = storyteller_lsp::store::sessions::list(conn, None)?;
            Ok((providers, sessions))
        })
        .expect("rows readable")
}

/// Journal records waiting for repair.
pub fn journal_records(dir: &Path) -> u64 {
    database(dir)
        .blocking(|conn| storyteller_lsp::admin::journal::pending_count(conn))
        .expect("journal readable")
}

/// The crash-safety invariant: every stored key belongs to a row (no orphan), and every row that
/// uses its own key has one (no keyless row), and nothing waits in the journal.
pub async fn assert_consistent(dir: &Path) {
    let (providers, sessions) = rows(dir);
    let accounts = accounts(dir).await;
    for account in &accounts {
        let owned = providers
            .iter()
            .any(|p| Account::project(p.project_id.0, p.kind).as_str() == account)
            || sessions.iter().any(|s| {
                Account::session(s.kind, s.auth_type, s.name.as_str())
                    .is_ok_and(|a| a.as_str() == account)
            });
        assert!(owned, "orphan key under {account}; rows: {providers:?}");
    }
    for p in &providers {
        if p.session_id.is_none() && p.kind.entry().capabilities.key_required {
            let account = Account::project(p.project_id.0, p.kind);
            assert!(
                accounts.iter().any(|a| a == account.as_str()),
                "provider {} has no key",
                p.id
            );
        }
    }
    assert_eq!(journal_records(dir), 0, "journal records left");
}

/// The application services on a fresh data directory with the file credential store, plus a
/// simulator.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub project: ProjectId,
    pub sim: SimulatorHandle,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_env(VarMap::default()).await
    }

    /// With extra environment variables (system keys) besides the credentials key.
    pub async fn with_env(mut env: VarMap) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        env.set("STORYTELLER_CREDENTIALS_KEY", CREDENTIALS_KEY);
        let app = open_app(dir.path(), env).await;
        let project = app.project_for(None).await.expect("default project");
        let sim = SimulatorHandle::start().await.expect("simulator starts");
        Fixture {
            dir,
            app,
            project,
            sim,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn endpoint(&self, kind: ProviderKind) -> String {
        self.sim.endpoint(kind)
    }

    pub async fn accounts(&self) -> Vec<String> {
        accounts(self.path()).await
    }

    pub async fn key_of(&self, kind: ProviderKind) -> Option<String> {
        stored_key(self.path(), &Account::project(self.project.0, kind)).await
    }
}

pub async fn open_app(dir: &Path, env: VarMap) -> App {
    let settings = Settings {
        data_dir: Some(dir.to_path_buf()),
        credential_store: CredentialStoreChoice::File,
        ..Settings::default()
    };
    storyteller_lsp::admin::open(settings, Vec::new(), Arc::new(env))
        .await
        .expect("application opens")
        .0
}

pub fn key(text: &str) -> ApiKey {
    ApiKey::new(text)
}

/// The built binary, run as a terminal user would, on `data` with the file credential store.
pub struct Binary {
    pub data: PathBuf,
}

impl Binary {
    pub fn new(data: &Path) -> Binary {
        Binary {
            data: data.to_path_buf(),
        }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_storyteller-lsp"));
        command
            .args(args)
            .env("STORYTELLER_DATA_DIR", &self.data)
            .env("STORYTELLER_CREDENTIALS_KEY", CREDENTIALS_KEY)
            .env("STORYTELLER_CREDENTIAL_STORE", "file")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in KEY_VARIABLES {
            if *name != "STORYTELLER_CREDENTIAL_STORE" {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs `args` with `stdin` (e.g. the key for `--key-stdin`) and waits for the end.
    pub async fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_command(self.command(args), stdin).await
    }

    pub async fn run_command(&self, mut command: tokio::process::Command, stdin: &str) -> Output {
        let mut child = command.spawn().expect("binary starts");
        if let Some(mut input) = child.stdin.take() {
            // A command that refuses its arguments exits without reading its input: the pipe
            // is then closed, which is not the test's concern (its exit code and output are).
            match input.write_all(stdin.as_bytes()).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => panic!("stdin: {e}"),
            }
            drop(input);
        }
        tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("the command ended in time")
            .expect("command output")
    }

    /// Starts `args` with `STORYTELLER_FAILPOINT=failpoint`, waits until the process reports
    /// that it reached it, and kills it there with SIGKILL. Panics if it ends without reaching it.
    pub async fn kill_at(&self, failpoint: &str, args: &[&str], stdin: &str) {
        kill_command_at(self.command(args), failpoint, stdin).await;
    }
}

/// [`Binary::kill_at`] for a command the caller built (e.g. with another credential store).
pub async fn kill_command_at(mut command: tokio::process::Command, failpoint: &str, stdin: &str) {
    command.env("STORYTELLER_FAILPOINT", failpoint);
    let mut child = command.spawn().expect("binary starts");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await.expect("stdin");
        drop(input);
    }
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let marker = format!("{} {failpoint}", storyteller_lsp::admin::failpoint::REACHED);
    let mut seen = Vec::new();
    let reached = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == marker {
                return true;
            }
            seen.push(line);
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        reached,
        "{failpoint} was never reached; stderr: {}",
        seen.join("\n")
    );
    // tokio's kill is SIGKILL on Unix: no destructor, no flush, no cleanup runs.
    child.kill().await.expect("SIGKILL");
    let status = child.wait().await.expect("reaped");
    assert!(!status.success());
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
