//! `storyteller-lsp doctor`: what an author (or a support thread) needs to know about an
//! installation, in plain words — data directory, database and schema, prompts, credential store
//! and keychain, system keys (names only), configured providers and where their keys come from,
//! and with `--check-connections` a connection test of each. Healthy → exit 0, else 1.

use std::sync::Arc;
use std::time::Duration;

use super::{Exit, Failure, Place};
use crate::admin::{self, TestRequest};
use crate::app::App;
use crate::config::CredentialStoreChoice;
use crate::credentials::{KeychainStore, ProcessEnv, StoreKind, env};
use crate::store::{self as db, latest_schema_version};

/// The longest a connection test may take here (the provider bounds it too).
const CONNECTION_PATIENCE: Duration = Duration::from_secs(20);

/// Collects the report: lines to print and whether anything is wrong.
struct Report {
    problems: usize,
}

impl Report {
    fn line(&self, text: impl AsRef<str>) {
        println!("{}", text.as_ref());
    }

    fn problem(&mut self, text: impl AsRef<str>) {
        self.problems += 1;
        println!("  PROBLEM: {}", text.as_ref());
    }
}

pub async fn run(place: &Place, check_connections: bool) -> Result<Exit, Failure> {
    let mut report = Report { problems: 0 };
    report.line(format!(
        "StoryTeller LSP {} — doctor",
        env!("CARGO_PKG_VERSION")
    ));

    let settings = place.settings();
    match settings.data_dir() {
        Some(dir) => report.line(format!("Data directory: {}", dir.display())),
        None => {
            report.line("Data directory: none");
            report.problem("no data directory: set STORYTELLER_DATA_DIR or pass --data-dir");
            return Ok(Exit::Failed);
        }
    }

    let opened = crate::admin::open(settings.clone(), place.roots()?, Arc::new(ProcessEnv)).await;
    let (app, startup) = match opened {
        Ok(opened) => {
            super::close_at_exit(&opened.0);
            opened
        }
        Err(e) => {
            report.line("Database: cannot be opened");
            report.problem(e.to_string());
            keychain_and_keys(&mut report, settings.credential_store).await;
            summary(&report);
            return Ok(Exit::Failed);
        }
    };

    let store = app.store().clone();
    let path = store.path().to_path_buf();
    match tokio::task::spawn_blocking(move || store.schema_version()).await {
        Ok(Ok(version)) => report.line(format!(
            "Database: {} (schema V{version}; this version knows up to V{})",
            path.display(),
            latest_schema_version()
        )),
        Ok(Err(e)) => report.problem(format!("database {}: {e}", path.display())),
        Err(e) => report.problem(format!("database check failed: {e}")),
    }

    match app.registry().list().await {
        Ok(templates) => report.line(format!(
            "Prompts: {} template versions loaded, {} warnings",
            templates.len(),
            startup.prompt_warnings.len()
        )),
        Err(e) => report.problem(format!("prompt templates: {e}")),
    }
    for warning in &startup.prompt_warnings {
        report.line(format!("  warning: {warning}"));
    }
    for notice in &startup.credential_notices {
        report.line(format!("  repaired: {notice}"));
    }

    match app.credentials().await {
        Ok((store, notice)) => match (store.kind(), notice) {
            (StoreKind::Keychain, _) => report.line("Credential store: the OS keychain"),
            (StoreKind::File, Some(notice)) => report.line(format!(
                "Credential store: the encrypted file {} (weaker than a keychain; reason: {})",
                notice.path.display(),
                notice.reason
            )),
            (StoreKind::File, None) => report.line("Credential store: the encrypted file"),
        },
        Err(e) => report.problem(format!("credential store: {e}")),
    }
    keychain_and_keys(&mut report, settings.credential_store).await;

    let pending = app
        .store()
        .call(|c| admin::journal::pending_count(c))
        .await
        .unwrap_or(0);
    if pending > 0 {
        report.problem(format!(
            "{pending} interrupted provider change(s) wait for repair (another StoryTeller process is \
             changing providers, or the credential store could not be used)"
        ));
    }

    providers(&mut report, &app, check_connections).await;
    summary(&report);
    Ok(if report.problems == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

async fn keychain_and_keys(report: &mut Report, choice: CredentialStoreChoice) {
    match KeychainStore::new().probe().await {
        Ok(()) => report.line("Keychain: reachable"),
        Err(e) if choice == CredentialStoreChoice::Keychain => report.problem(format!(
            "keychain (required by --credential-store keychain): {e}"
        )),
        Err(e) => report.line(format!("Keychain: not reachable ({e})")),
    }
    let keys: Vec<&str> = env::present_system_keys(&ProcessEnv)
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    if keys.is_empty() {
        report.line("System keys in the environment: none");
    } else {
        report.line(format!(
            "System keys in the environment: {}",
            keys.join(", ")
        ));
    }
}

async fn providers(report: &mut Report, app: &App, check_connections: bool) {
    let projects = match app.store().call(|c| db::projects::list(c)).await {
        Ok(projects) => projects,
        Err(e) => {
            report.problem(format!("projects: {e}"));
            return;
        }
    };
    report.line("Providers:");
    let mut any = false;
    for project in projects {
        let list = match admin::list(app, project.id).await {
            Ok(list) => list,
            Err(e) => {
                report.problem(format!("providers of project {}: {e}", project.name));
                continue;
            }
        };
        if list.is_empty() {
            continue;
        }
        any = true;
        match &project.root {
            Some(root) => report.line(format!("  project {} ({})", project.name, root.display())),
            None => report.line("  default project"),
        }
        for p in list {
            let key = match &p.key_hint {
                Some(hint) => format!("{} {hint}", p.key_source.as_str()),
                None => p.key_source.as_str().to_string(),
            };
            report.line(format!(
                "    #{} {} — {}, {}{}, key: {key}",
                p.id,
                p.display_name,
                p.model,
                if p.is_primary { "primary" } else { "backup" },
                if p.is_active { "" } else { ", inactive" },
            ));
            let needs_key = p.provider.entry().capabilities.key_required;
            if needs_key && p.key_hint.is_none() && p.is_active {
                report.problem(format!("{} has no API key", p.display_name));
            }
            if check_connections && p.is_active {
                let request = TestRequest::Stored {
                    id: crate::store::ProviderId(p.id),
                    overrides: Default::default(),
                };
                let test = admin::test(app, project.id, request, None);
                match tokio::time::timeout(CONNECTION_PATIENCE, test).await {
                    Ok(Ok(ok)) => report.line(format!(
                        "      connection: ok ({}, {} ms)",
                        ok.model, ok.latency_ms
                    )),
                    Ok(Err(e)) => report.problem(format!("{}: {e}", p.display_name)),
                    Err(_) => report.problem(format!(
                        "{}: no answer within {} seconds",
                        p.display_name,
                        CONNECTION_PATIENCE.as_secs()
                    )),
                }
            }
        }
    }
    if !any {
        report.line("  none configured (add one with `storyteller-lsp provider add`)");
    }
}

fn summary(report: &Report) {
    if report.problems == 0 {
        println!("Everything looks healthy.");
    } else {
        println!("{} problem(s) found.", report.problems);
    }
}
