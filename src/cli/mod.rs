//! The terminal commands: `provider …`, `doctor`, `prompts list`, `notes` (DESIGN.md §9). Argument parsing
//! is in `main.rs`; here each command opens the application services, calls the same domain
//! functions as the editor commands ([`crate::admin`]), and prints plain words (or `--json`).
//!
//! Exit codes scripts can rely on ([`Exit`]): 0 ok, 1 the operation failed (e.g. the connection
//! test), 2 usage or an invalid argument, 3 not found, 4 credential store unavailable.
//!
//! Keys are read from a hidden prompt or one line of stdin (`--key-stdin`), never from argv;
//! they are never printed. Output goes to stdout; errors and notices to stderr.

pub mod doctor;
pub mod notes;
pub mod prompts;
pub mod provider;
pub mod residency;
pub mod sign_in;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::admin::AdminError;
use crate::app::{App, AppError};
use crate::config::{CredentialStoreChoice, Settings};
use crate::credentials::ProcessEnv;
use crate::store::ProjectId;

/// The process exit status of a terminal command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The operation ran and failed (connection test, duplicate, database problem, busy).
    Failed = 1,
    /// Bad usage or an invalid argument.
    Usage = 2,
    /// The provider or session named does not exist (in this project).
    NotFound = 3,
    /// The keychain or the encrypted credentials file cannot be used.
    CredentialStore = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// A command's failure: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Failed,
            message: message.into(),
        }
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Failure {
        let exit = match &e {
            AdminError::Invalid { .. } => Exit::Usage,
            AdminError::NotFound { .. } => Exit::NotFound,
            e if e.is_credential_store() => Exit::CredentialStore,
            _ => Exit::Failed,
        };
        Failure {
            exit,
            message: e.to_string(),
        }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        AdminError::from(e).into()
    }
}

/// Where a terminal command acts: data directory, credential store, project.
#[derive(Debug, Clone, Default)]
pub struct Place {
    /// `--data-dir`; else `STORYTELLER_DATA_DIR`, else the platform's data directory.
    pub data_dir: Option<PathBuf>,
    /// `--credential-store`; the editor's setting of the same name must agree, or keys end up
    /// in two places.
    pub credential_store: Option<CredentialStoreChoice>,
    /// `--project <dir>`: the project of that workspace root. Absent: the `default` project,
    /// whose providers serve every workspace that has none of its own.
    pub project: Option<PathBuf>,
}

impl Place {
    pub fn settings(&self) -> Settings {
        Settings {
            data_dir: self.data_dir.clone(),
            credential_store: self.credential_store.unwrap_or(CredentialStoreChoice::Auto),
            ..Settings::default()
        }
    }

    /// The workspace roots: the `--project` directory, made absolute.
    pub fn roots(&self) -> Result<Vec<PathBuf>, Failure> {
        match &self.project {
            None => Ok(Vec::new()),
            Some(dir) => {
                let absolute = std::path::absolute(dir).map_err(|e| {
                    Failure::usage(format!("--project: cannot resolve {}: {e}", dir.display()))
                })?;
                if !absolute.is_dir() {
                    return Err(Failure::usage(format!(
                        "--project: {} is not a directory",
                        absolute.display()
                    )));
                }
                Ok(vec![absolute])
            }
        }
    }

    /// Opens the services (migrating the database, repairing interrupted changes; the notices are
    /// printed to stderr) and finds the project.
    pub async fn open(&self) -> Result<(App, ProjectId), Failure> {
        let roots = self.roots()?;
        let (app, report) =
            crate::admin::open(self.settings(), roots, Arc::new(ProcessEnv)).await?;
        close_at_exit(&app);
        for notice in &report.credential_notices {
            eprintln!("{notice}");
        }
        let project = app.project_for(None).await.map_err(AdminError::from)?;
        Ok((app, project))
    }
}

/// Runs a command future on a fresh runtime and turns its outcome into an exit code.
pub fn run<F>(work: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("storyteller-lsp: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let result = runtime.block_on(async {
        let result = work.await;
        close_opened().await;
        result
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            eprintln!("storyteller-lsp: {}", failure.message);
            failure.exit.into()
        }
    }
}

/// The services a command opened, closed by [`run`] once the command is done.
static OPENED: std::sync::Mutex<Vec<App>> = std::sync::Mutex::new(Vec::new());

/// Closes `app` (request log written, database checkpointed and closed) when the command ends:
/// the process exits right after, and its services live on in tasks and the routers (they hold
/// the app), so nothing would close the database otherwise and its rows would stay in `-wal`.
pub fn close_at_exit(app: &App) {
    OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(app.clone());
}

async fn close_opened() {
    let opened = std::mem::take(
        &mut *OPENED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for app in opened {
        app.close().await;
    }
}

/// How the key of a command arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInput {
    /// One line of standard input (`--key-stdin`).
    Stdin,
    /// A hidden prompt on the terminal.
    Prompt,
}

/// Reads a key: one line of stdin, or a hidden prompt when stdin is a terminal. `None` when
/// neither is possible (the caller decides whether that is an error).
pub fn read_key(
    input: Option<KeyInput>,
    prompt: &str,
) -> Result<Option<Zeroizing<String>>, Failure> {
    match input {
        Some(KeyInput::Stdin) => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::usage(format!("--key-stdin: cannot read stdin: {e}")))?;
            Ok(Some(line))
        }
        Some(KeyInput::Prompt) => {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::usage(
                    "no terminal to ask for the key on: pipe it with --key-stdin",
                ));
            }
            let key = rpassword::prompt_password(prompt)
                .map_err(|e| Failure::usage(format!("cannot read the key: {e}")))?;
            Ok(Some(Zeroizing::new(key)))
        }
        None => Ok(None),
    }
}

/// `--key-stdin`, else a prompt when stdin is a terminal, else nothing.
pub fn default_key_input(from_stdin: bool) -> Option<KeyInput> {
    if from_stdin {
        Some(KeyInput::Stdin)
    } else if std::io::stdin().is_terminal() {
        Some(KeyInput::Prompt)
    } else {
        None
    }
}

/// Asks a yes/no question on the terminal; `false` for anything but y/yes.
pub fn confirm(question: &str) -> Result<bool, Failure> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Lays out rows under a header with columns padded to their widest cell (in characters).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                let pad = widths[i] + 2 - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::failed(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The log directory for a terminal command (`{dataDir}/logs`).
pub fn log_dir(place: &Place) -> Option<PathBuf> {
    place.settings().data_dir().map(|d| d.join("logs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_by_characters_not_bytes() {
        let text = table(
            &["id", "key"],
            &[
                vec!["1".into(), "••••abcd".into()],
                vec!["22".into(), "none".into()],
            ],
        );
        assert_eq!(text, "id  key\n1   ••••abcd\n22  none\n");
    }
}
