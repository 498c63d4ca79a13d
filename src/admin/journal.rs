//! Crash safety for keys: the intent journal (`credential_journal`, migration V8), the
//! cross-process lock that serialises provider changes, and the repair run at start-up.
//!
//! # The problem
//! A key lives in the credential store, its provider row in SQLite: no transaction spans both,
//! and the keychain cannot list its entries. A process killed between the two writes would leave
//! an orphan key (never found again) or a row whose key is missing.
//!
//! # The protocol
//! Every operation that stores or deletes a key, while holding the [`ChangeLock`]:
//! 1. records an [`Intent`] (account, what owns it) — committed before the credential store is
//!    touched (for a removal: in the same transaction that deletes the row);
//! 2. stores or deletes the key;
//! 3. commits the row change and clears the record in one transaction (a removal clears it after
//!    deleting the key).
//!
//! A record that survives names an account whose key may disagree with the rows. [`repair`]
//! resolves it by looking at the rows as they are now, which makes it idempotent and correct
//! whatever happened since: a row that owns the account (the project's provider of that kind, or
//! the named session) keeps the key; with no owner, the key is deleted. The author is told what
//! was interrupted, once (the record is cleared afterwards).
//!
//! # The lock
//! [`ChangeLock`] is an exclusive advisory lock on `{dataDir}/provider-changes.lock`, held by an
//! operation from its duplicate check to its last write (never during the connection test) and
//! by the repair. So the repair never mistakes another process's operation in flight for a
//! crash, and two adds of the same kind cannot both store a key. The OS releases it when a
//! process dies, SIGKILL included. It is a file handle, not a mutex: holding it across `.await`
//! blocks no thread; acquiring it waits on the blocking pool.
//!
//! Never a key in the journal, the lock file, or any text produced here.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::AdminError;
use crate::app::App;
use crate::credentials::{Account, CredentialError};
use crate::messages;
use crate::providers::{AuthType, ProviderKind};
use crate::store::{self, ProjectId, SessionName, StoreError, StoreResult};

/// The lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "provider-changes.lock";

/// How long an operation waits for another process's provider change before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The exclusive right to change provider keys and rows, across processes.
#[derive(Debug)]
pub struct ChangeLock {
    _file: File,
}

impl ChangeLock {
    /// Waits (on the blocking pool, at most [`LOCK_WAIT`]) for the lock;
    /// [`AdminError::Busy`] when another process holds it that long.
    pub async fn acquire(data_dir: &Path) -> Result<ChangeLock, AdminError> {
        let path = data_dir.join(LOCK_FILE_NAME);
        tokio::task::spawn_blocking(move || {
            let file = open_lock_file(&path)?;
            let deadline = Instant::now() + LOCK_WAIT;
            loop {
                match file.try_lock() {
                    Ok(()) => return Ok(ChangeLock { _file: file }),
                    Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        std::thread::sleep(LOCK_POLL)
                    }
                    Err(fs::TryLockError::WouldBlock) => return Err(AdminError::Busy),
                    Err(fs::TryLockError::Error(e)) => return Err(lock_error(&path, e)),
                }
            }
        })
        .await
        .map_err(|e| AdminError::Store(StoreError::TaskFailed(e.to_string())))?
    }

    /// The lock if nobody holds it now; `None` when another operation is in flight.
    pub async fn try_acquire(data_dir: &Path) -> Result<Option<ChangeLock>, AdminError> {
        let path = data_dir.join(LOCK_FILE_NAME);
        tokio::task::spawn_blocking(move || {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) => Ok(Some(ChangeLock { _file: file })),
                Err(fs::TryLockError::WouldBlock) => Ok(None),
                Err(fs::TryLockError::Error(e)) => Err(lock_error(&path, e)),
            }
        })
        .await
        .map_err(|e| AdminError::Store(StoreError::TaskFailed(e.to_string())))?
    }
}

fn open_lock_file(path: &Path) -> Result<File, AdminError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| lock_error(path, e))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| lock_error(path, e))
}

fn lock_error(path: &Path, source: std::io::Error) -> AdminError {
    AdminError::Credentials(CredentialError::Io {
        action: "lock",
        path: PathBuf::from(path),
        source,
    })
}

/// What a journal record is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AddProvider,
    RotateKey,
    RemoveProvider,
    AddSession,
    RemoveSession,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::AddProvider => "add_provider",
            Operation::RotateKey => "rotate_key",
            Operation::RemoveProvider => "remove_provider",
            Operation::AddSession => "add_session",
            Operation::RemoveSession => "remove_session",
        }
    }

    fn parse(text: &str) -> Option<Operation> {
        [
            Operation::AddProvider,
            Operation::RotateKey,
            Operation::RemoveProvider,
            Operation::AddSession,
            Operation::RemoveSession,
        ]
        .into_iter()
        .find(|op| op.as_str() == text)
    }
}

/// Which row a credential account belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The provider of `kind` in `project`: account `project_{id}_{kind}`.
    Project {
        project: ProjectId,
        kind: ProviderKind,
    },
    /// A named session: account `session_{kind}_{auth_type}_{name}`.
    Session {
        kind: ProviderKind,
        auth_type: AuthType,
        name: SessionName,
    },
}

impl Owner {
    pub fn account(&self) -> Account {
        match self {
            Owner::Project { project, kind } => Account::project(project.0, *kind),
            Owner::Session {
                kind,
                auth_type,
                name,
            } => match Account::session(*kind, *auth_type, name.as_str()) {
                Ok(account) => account,
                // A SessionName always satisfies the account rule (same 3–50 [A-Za-z0-9_-]).
                Err(_) => Account::default_session(*kind, *auth_type),
            },
        }
    }

    /// Whether a row that wants this account's key exists now.
    pub fn is_owned(&self, conn: &Connection) -> StoreResult<bool> {
        match self {
            Owner::Project { project, kind } => {
                Ok(store::providers::find(conn, *project, *kind)?.is_some())
            }
            Owner::Session {
                kind,
                auth_type,
                name,
            } => Ok(store::sessions::lookup(conn, *kind, *auth_type, name)?.is_some()),
        }
    }
}

/// One record: an operation about to touch `owner`'s account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub operation: Operation,
    pub owner: Owner,
    /// What to call it in a message (the row may be gone by then).
    pub display_name: String,
}

/// The id of a journal record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalId(pub i64);

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: JournalId,
    pub intent: Intent,
    pub created_at: String,
}

/// Records an intent. Commit it (it is its own statement, or part of the caller's transaction)
/// before touching the credential store.
pub fn record(conn: &Connection, intent: &Intent) -> StoreResult<JournalId> {
    let (project, auth_type, session_name) = match &intent.owner {
        Owner::Project { project, .. } => (Some(project.0), None, None),
        Owner::Session {
            auth_type, name, ..
        } => (
            None,
            Some(auth_type.as_str()),
            Some(name.as_str().to_string()),
        ),
    };
    let kind = match &intent.owner {
        Owner::Project { kind, .. } | Owner::Session { kind, .. } => *kind,
    };
    conn.execute(
        "INSERT INTO credential_journal
             (operation, account, provider_name, project_id, auth_type, session_name, display_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            intent.operation.as_str(),
            intent.owner.account().as_str(),
            kind.as_str(),
            project,
            auth_type,
            session_name,
            intent.display_name,
        ],
    )?;
    Ok(JournalId(conn.last_insert_rowid()))
}

/// Clears a record once the rows and the credential store agree again.
pub fn clear(conn: &Connection, id: JournalId) -> StoreResult<()> {
    conn.execute("DELETE FROM credential_journal WHERE id = ?1", [id.0])?;
    Ok(())
}

/// How many records wait for repair (cheap: decides whether start-up opens the credential store).
pub fn pending_count(conn: &Connection) -> StoreResult<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM credential_journal", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Every record, oldest first.
pub fn pending(conn: &Connection) -> StoreResult<Vec<Entry>> {
    let mut stmt = conn.prepare(
        "SELECT id, operation, provider_name, project_id, auth_type, session_name, display_name,
                created_at
         FROM credential_journal ORDER BY id",
    )?;
    type Raw = (
        i64,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        String,
        String,
    );
    let raws = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<Result<Vec<Raw>, _>>()?;
    raws.into_iter()
        .map(
            |(id, op, kind, project, auth, name, display_name, created_at)| {
                let bad = |column: &'static str, detail: String| StoreError::InvalidData {
                    table: "credential_journal",
                    column,
                    detail,
                };
                let operation = Operation::parse(&op)
                    .ok_or_else(|| bad("operation", format!("unknown {op:?}")))?;
                let kind: ProviderKind = kind.parse().map_err(|_| bad("provider_name", kind))?;
                let owner = match (project, auth, name) {
                    (Some(project), None, None) => Owner::Project {
                        project: ProjectId(project),
                        kind,
                    },
                    (None, Some(auth), Some(name)) => Owner::Session {
                        kind,
                        auth_type: auth.parse().map_err(|_| bad("auth_type", auth))?,
                        name: SessionName::new(name)
                            .map_err(|e| bad("session_name", e.to_string()))?,
                    },
                    _ => return Err(bad("project_id", "neither a project nor a session".into())),
                };
                Ok(Entry {
                    id: JournalId(id),
                    intent: Intent {
                        operation,
                        owner,
                        display_name,
                    },
                    created_at,
                })
            },
        )
        .collect()
}

/// What a repair did: one author-facing text per interrupted operation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    pub notices: Vec<String>,
    /// Records resolved (and cleared).
    pub resolved: usize,
    /// Another process was changing providers: nothing was looked at; the next start repairs.
    pub skipped_busy: bool,
}

/// Resolves what crashed operations left behind (see the module docs). Opens the credential store
/// only when there is something to resolve, and does nothing while another process holds the
/// [`ChangeLock`]. A record whose key cannot be dealt with now (keychain unavailable) stays for
/// the next start.
pub async fn repair(app: &App) -> Result<RepairReport, AdminError> {
    let waiting = app.store().call(|c| pending_count(c)).await?;
    if waiting == 0 {
        return Ok(RepairReport::default());
    }
    let Some(_lock) = ChangeLock::try_acquire(app.data_dir()).await? else {
        tracing::info!(
            waiting,
            "provider changes in progress elsewhere; repair postponed"
        );
        return Ok(RepairReport {
            skipped_busy: true,
            ..RepairReport::default()
        });
    };
    repair_locked(app).await
}

/// [`repair`] for a caller that holds the lock.
pub(crate) async fn repair_locked(app: &App) -> Result<RepairReport, AdminError> {
    let entries = app.store().call(|c| pending(c)).await?;
    let mut report = RepairReport::default();
    if entries.is_empty() {
        return Ok(report);
    }
    let (credentials, _) = app.credentials().await?;
    for entry in entries {
        let owner = entry.intent.owner.clone();
        let account = owner.account();
        let owned = {
            let owner = owner.clone();
            app.store().call(move |c| owner.is_owned(c)).await?
        };
        let name = entry.intent.display_name.as_str();
        let op = entry.intent.operation;
        let notice = if owned {
            match credentials.retrieve(&account).await {
                Ok(_) if op == Operation::RotateKey => {
                    Some(messages::admin::interrupted_rotation(name))
                }
                Ok(_) => None,
                Err(e) if e.is_not_found() => match op {
                    // A row that was meant to get its own key has none: say so rather than let
                    // the first suggestion fail with an invalid-key message.
                    Operation::AddProvider | Operation::RotateKey | Operation::AddSession => {
                        Some(messages::admin::key_missing(name))
                    }
                    Operation::RemoveProvider | Operation::RemoveSession => None,
                },
                Err(e) => return Err(e.into()),
            }
        } else {
            match credentials.delete(&account).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            match op {
                Operation::AddProvider => Some(messages::admin::interrupted_add(name)),
                Operation::AddSession => Some(messages::admin::interrupted_session_add(name)),
                Operation::RemoveProvider | Operation::RemoveSession => {
                    Some(messages::admin::interrupted_remove(name))
                }
                // The row went away after the rotation began (removed since): nothing to say.
                Operation::RotateKey => None,
            }
        };
        let id = entry.id;
        app.store().call(move |c| clear(c, id)).await?;
        tracing::warn!(
            account = %account,
            operation = op.as_str(),
            kept = owned,
            "resolved an interrupted credential change"
        );
        if let Some(notice) = notice {
            report.notices.push(notice);
        }
        report.resolved += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn records_round_trip_and_clear() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                let project = store::projects::default_project(conn)?.id;
                let intents = [
                    Intent {
                        operation: Operation::AddProvider,
                        owner: Owner::Project {
                            project,
                            kind: ProviderKind::OpenAi,
                        },
                        display_name: "OpenAI".into(),
                    },
                    Intent {
                        operation: Operation::RemoveSession,
                        owner: Owner::Session {
                            kind: ProviderKind::Claude,
                            auth_type: AuthType::ApiKey,
                            name: SessionName::new("work").unwrap(),
                        },
                        display_name: "work".into(),
                    },
                ];
                let ids: Vec<JournalId> = intents
                    .iter()
                    .map(|i| record(conn, i))
                    .collect::<StoreResult<_>>()?;
                let read: Vec<Intent> = pending(conn)?.into_iter().map(|e| e.intent).collect();
                assert_eq!(read, intents);
                let account: String = conn.query_row(
                    "SELECT account FROM credential_journal WHERE id = ?1",
                    [ids[1].0],
                    |r| r.get(0),
                )?;
                assert_eq!(account, "session_claude_api_key_work");
                clear(conn, ids[0])?;
                assert_eq!(pending_count(conn)?, 1);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_schema_refuses_a_record_without_an_owner() {
        let store = Store::open_in_memory().unwrap();
        let refused = store.blocking(|conn| {
            Ok(conn.execute(
                "INSERT INTO credential_journal (operation, account, provider_name, display_name)
                 VALUES ('add_provider', 'project_1_openai', 'openai', 'OpenAI')",
                [],
            ))
        });
        assert!(matches!(refused, Ok(Err(_))), "{refused:?}");
    }

    #[tokio::test]
    async fn only_one_holder_of_the_change_lock_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = ChangeLock::acquire(dir.path()).await.unwrap();
        assert!(ChangeLock::try_acquire(dir.path()).await.unwrap().is_none());
        drop(first);
        assert!(ChangeLock::try_acquire(dir.path()).await.unwrap().is_some());
    }
}
