//! SQLite state: opening the database safely, applying the embedded migrations (`migrations/`),
//! and one repository module per table group (projects, providers, sessions, prompt statistics,
//! request log).
//!
//! The [`Store`] owns one connection behind a `std::sync::Mutex`. Async callers use
//! [`Store::call`], which runs the closure on tokio's blocking pool (`spawn_blocking`); the CLI uses
//! [`Store::blocking`] on its own thread. We chose this over a dedicated database thread with a
//! channel because the same closures then serve both worlds unchanged, the blocking pool is
//! elastic (a slow statement never starves the runtime's workers), and there is no thread or
//! shutdown protocol to own. SQLite statements here take microseconds to milliseconds; the mutex
//! is held only inside the blocking task, never across an `.await`.
//!
//! Repositories are plain functions over `&Connection` so that a caller can compose several in
//! one transaction (`conn.transaction()`), as provider add/remove must.
//!
//! Opening never loses data: a file that is not an SQLite database is rejected before SQLite
//! touches it; a damaged or foreign database, or one written by a newer version, is refused
//! before any migration or journal-mode change writes to it; a lock held by another process is
//! reported after a bounded busy timeout instead of hanging.
//!
//! This module must never store a key or manuscript text, and must never run SQLite on an async
//! worker thread.

mod error;
pub mod projects;
pub mod prompts;
pub mod providers;
pub mod residency;
pub mod sessions;
pub mod usage;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use error::{StoreError, StoreResult};
pub use projects::{ProjectId, ProjectRow};
pub use providers::{NewProvider, ProviderId, ProviderRow, ProviderUpdate};
pub use sessions::{InvalidSessionName, SessionId, SessionName, SessionRow};

/// The database file name inside the data directory.
pub const DB_FILE_NAME: &str = "storyteller.db";

/// How long a statement waits for another process's lock before reporting
/// [`StoreError::Locked`]. Long enough to ride out a CLI command's write, short enough that an
/// author is told within seconds.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a best-effort write ([`Store::call_briefly`]) waits for another process's lock.
pub const BRIEF_BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// When a timestamp was written: UTC, millisecond precision (stored as ISO-8601 text).
pub type Timestamp = DateTime<Utc>;

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The size of the SQLite database header.
const SQLITE_HEADER_LEN: usize = 100;
/// refinery's bookkeeping table.
const HISTORY_TABLE: &str = "refinery_schema_history";

mod embedded {
    // Adding a migration file does not retrigger this macro on its own: touch this file (or run
    // `cargo clean -p storyteller-lsp`) after adding one.
    refinery::embed_migrations!("migrations");
}

/// How to open a database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// See [`DEFAULT_BUSY_TIMEOUT`].
    pub busy_timeout: Duration,
    /// Migrate only up to this schema version (tests of a later migration's backfill build an
    /// older database this way). `None`: the newest this binary knows.
    pub migrate_up_to: Option<u32>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            migrate_up_to: None,
        }
    }
}

/// A cheap-to-clone handle on the StoryTeller database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` once [`Store::close`] has run: every later call fails with [`StoreError::Closed`].
    conn: Mutex<Option<Connection>>,
    /// The connection's configured busy timeout, restored after a brief call.
    busy_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The newest schema version this binary's migrations produce.
pub fn latest_schema_version() -> u32 {
    static LATEST: OnceLock<u32> = OnceLock::new();
    *LATEST.get_or_init(|| {
        embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| u32::try_from(m.version()).unwrap_or(0))
            .max()
            .unwrap_or(0)
    })
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the database at `path`, with
    /// the default options. Blocking: from async code use [`Store::open_async`].
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> StoreResult<Store> {
        let path = path.as_ref();
        open_file(path, &options).map_err(|e| e.at(path))
    }

    /// [`Store::open_with`] on the blocking pool.
    pub async fn open_async(path: PathBuf, options: StoreOptions) -> StoreResult<Store> {
        tokio::task::spawn_blocking(move || Store::open_with(path, options))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// A private in-memory database with every migration applied, for tests of other layers.
    pub fn open_in_memory() -> StoreResult<Store> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn, DEFAULT_BUSY_TIMEOUT)?;
        migrate(&mut conn, None)?;
        Ok(Store::from_connection(
            PathBuf::from(":memory:"),
            conn,
            DEFAULT_BUSY_TIMEOUT,
        ))
    }

    fn from_connection(path: PathBuf, conn: Connection, busy_timeout: Duration) -> Store {
        Store {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(Some(conn)),
                busy_timeout,
            }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the connection on the calling thread. For the CLI and tests only: never call
    /// it from async code (use [`Store::call`]).
    pub fn blocking<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.inner.with_connection(f)
    }

    /// Runs `f` with the connection on tokio's blocking pool. If the returned future is dropped,
    /// `f` still runs to completion (SQLite work is short and must not be torn mid-transaction).
    pub async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_connection(f))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// [`Store::call`] for best-effort writes (prompt statistics): `f` waits at most
    /// [`BRIEF_BUSY_TIMEOUT`] for another process's lock, then fails with
    /// [`StoreError::Locked`]. The one connection is shared, so a write that waited the full busy
    /// timeout would hold up every call queued behind it — under a long lock, every suggestion's
    /// usage count would add seconds to the author's next command.
    pub async fn call_briefly<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let normal = self.inner.busy_timeout;
        self.call(move |conn| {
            conn.busy_timeout(BRIEF_BUSY_TIMEOUT)?;
            let result = f(conn);
            conn.busy_timeout(normal)?;
            result
        })
        .await
    }

    /// Checkpoints the write-ahead log into the database file (`TRUNCATE`: the `-wal` is emptied)
    /// and closes the connection, so that the `.db` file alone holds every row — an author who
    /// backs up `storyteller.db` gets the data, not a stale page set with the rest in `-wal`.
    /// Every clone shares the connection: later calls fail with [`StoreError::Closed`]. Closing
    /// twice is harmless. Blocking: from async code use [`Store::close_async`].
    pub fn close(&self) -> StoreResult<()> {
        let mut guard = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(conn) = guard.take() else {
            return Ok(());
        };
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // (busy, log pages, checkpointed pages); busy = 1 when another process holds a reader.
        let checkpoint = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(StoreError::from);
        // The last connection to close also removes the `-wal` and `-shm` files.
        let closed = conn
            .close()
            .map_err(|(_, e)| StoreError::from(e).at(&self.inner.path));
        match checkpoint {
            Ok(0) => closed,
            Ok(_) => closed.and(Err(StoreError::Locked {
                path: self.inner.path.clone(),
            })),
            Err(e) => closed.and(Err(e.at(&self.inner.path))),
        }
    }

    /// [`Store::close`] on the blocking pool.
    pub async fn close_async(&self) -> StoreResult<()> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// The schema version applied to this database (for `doctor`). Blocking.
    pub fn schema_version(&self) -> StoreResult<u32> {
        self.blocking(|conn| Ok(applied_version(conn)?.unwrap_or(0)))
    }
}

impl Inner {
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut guard = match self.conn.lock() {
            Ok(conn) => conn,
            Err(poisoned) => {
                // A closure panicked while holding the connection. rusqlite rolls a dropped
                // `Transaction` back, but a hand-written BEGIN would stay open: end it here so
                // the next caller does not write inside someone else's half transaction.
                let conn = poisoned.into_inner();
                if let Some(c) = conn.as_ref()
                    && !c.is_autocommit()
                {
                    let _ = c.execute_batch("ROLLBACK");
                }
                conn
            }
        };
        let conn = guard.as_mut().ok_or(StoreError::Closed)?;
        f(conn).map_err(|e| e.at(&self.path))
    }
}

/// Per-connection settings. Foreign keys are off by default in SQLite and must be set on every
/// connection.
fn configure(conn: &Connection, busy_timeout: Duration) -> StoreResult<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn open_file(path: &Path, options: &StoreOptions) -> StoreResult<Store> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    check_header(path)?;

    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    configure(&conn, options.busy_timeout)?;

    // Everything up to here only read the file. Refuse what we must not write to.
    inspect(&conn, path)?;

    // WAL lets the server read while a CLI command writes; NORMAL sync is safe with WAL (a crash
    // loses at most the last commits, never consistency) and avoids an fsync per request log row.
    conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;

    migrate(&mut conn, options.migrate_up_to)?;
    Ok(Store::from_connection(
        path.to_path_buf(),
        conn,
        options.busy_timeout,
    ))
}

/// Rejects a file that is not an SQLite database before SQLite opens it, so that neither the
/// file nor its directory (journal, WAL) is touched. A missing or empty file is a new database.
fn check_header(path: &Path) -> StoreResult<()> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER_LEN);
    file.by_ref()
        .take(SQLITE_HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(|source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if header.is_empty() {
        return Ok(());
    }
    if header.len() < SQLITE_HEADER_LEN || !header.starts_with(SQLITE_MAGIC) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "it is not an SQLite database".into(),
        });
    }
    Ok(())
}

/// Read-only checks of an opened database: readable and intact, ours, and not newer than us.
fn inspect(conn: &Connection, path: &Path) -> StoreResult<()> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let check: String = conn.query_row("PRAGMA quick_check(1)", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(corrupt(format!("SQLite integrity check: {check}")));
    }

    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let tables = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if tables.is_empty() {
        return Ok(());
    }
    if !tables.iter().any(|t| t == HISTORY_TABLE) {
        return Err(corrupt("it holds another application's tables".into()));
    }

    let supported = latest_schema_version();
    match applied_version(conn)? {
        Some(found) if found > supported => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported,
        }),
        _ => Ok(()),
    }
}

/// The highest applied migration version, `None` for a database without migrations.
fn applied_version(conn: &Connection) -> StoreResult<Option<u32>> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [HISTORY_TABLE],
        |row| row.get(0),
    )?;
    if !has_history {
        return Ok(None);
    }
    let version: Option<i64> = conn
        .query_row(
            &format!("SELECT max(version) FROM {HISTORY_TABLE}"),
            [],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    match version {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| StoreError::InvalidData {
                table: HISTORY_TABLE,
                column: "version",
                detail: format!("negative version {v}"),
            }),
    }
}

/// Applies the pending migrations, all in one transaction (refinery's grouped mode).
fn migrate(conn: &mut Connection, up_to: Option<u32>) -> StoreResult<()> {
    let mut runner = embedded::migrations::runner()
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    if let Some(version) = up_to {
        let version = i32::try_from(version).map_err(|_| StoreError::InvalidValue {
            field: "migrate_up_to",
            detail: format!("{version} is not a schema version"),
        })?;
        runner = runner.set_target(refinery::Target::Version(version));
    }
    let watched = watch_migration(conn);
    // Table rebuilds (V10) drop and recreate parent tables: with foreign keys on, the DROP would
    // run the children's ON DELETE actions. SQLite ignores this pragma inside a transaction, so it
    // is set around the runner's; a rebuilding migration checks its keys before it commits.
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = runner.run(conn).map_err(migration_error);
    conn.pragma_update(None, "foreign_keys", true)?;
    if watched {
        let _ = conn.trace_v2(
            rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
            None::<fn(rusqlite::trace::TraceEvent<'_>)>,
        );
    }
    result?;
    Ok(())
}

/// With `STORYTELLER_FAILPOINT=migrate:…` (debug builds), stops the process inside the migration
/// transaction, so the crash tests can prove that a kill there leaves the schema as it was:
/// `migrate:after_first_migration` once the first pending migration has run, `migrate:before_commit`
/// when every one has and only the COMMIT is left. SQLite's statement trace is the only hook
/// inside refinery's transaction. Returns whether it is watching.
fn watch_migration(conn: &mut Connection) -> bool {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    if !crate::failpoint::armed("migrate:") {
        return false;
    }
    let history_insert = format!("INSERT INTO {HISTORY_TABLE}");
    let mut applied = 0u32;
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT,
        Some(move |event: TraceEvent<'_>| {
            if let TraceEvent::Stmt(_, sql) = event {
                let sql = sql.trim_start();
                if sql.starts_with(&history_insert) {
                    applied += 1;
                    if applied == 1 {
                        crate::failpoint::reached("migrate:after_first_migration");
                    }
                } else if applied > 0 && sql.starts_with("COMMIT") {
                    crate::failpoint::reached("migrate:before_commit");
                }
            }
        }),
    )
    .is_ok()
}

fn migration_error(err: refinery::Error) -> StoreError {
    use refinery::error::Kind;
    match err.kind() {
        Kind::DivergentVersion(applied, ours) => StoreError::Corrupt {
            path: PathBuf::new(),
            detail: format!(
                "its migration history does not match this version (applied {applied}, expected {ours})"
            ),
        },
        Kind::Connection(_, source) => match source.downcast_ref::<rusqlite::Error>() {
            Some(sqlite) => match StoreError::from(clone_sqlite_error(sqlite)) {
                StoreError::Sqlite(_) | StoreError::Constraint(_) => {
                    StoreError::Migration(err.to_string())
                }
                classified => classified,
            },
            None => StoreError::Migration(err.to_string()),
        },
        _ => StoreError::Migration(err.to_string()),
    }
}

/// refinery hands out its source error by reference; classification needs only its codes.
fn clone_sqlite_error(err: &rusqlite::Error) -> rusqlite::Error {
    match err.sqlite_error() {
        Some(e) => rusqlite::Error::SqliteFailure(*e, Some(err.to_string())),
        None => rusqlite::Error::InvalidQuery,
    }
}

/// Parses a timestamp column written by SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')`.
pub(crate) fn parse_timestamp(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> StoreResult<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::InvalidData {
            table,
            column,
            detail: format!("{text:?}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_version_is_the_highest_migration_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let highest = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix('V')?
                    .split("__")
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .unwrap();
        assert_eq!(latest_schema_version(), highest);
    }

    #[test]
    fn in_memory_store_is_fully_migrated() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap(), latest_schema_version());
    }

    #[test]
    fn timestamps_written_by_sqlite_parse() {
        let conn = Connection::open_in_memory().unwrap();
        let text: String = conn
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                r.get(0)
            })
            .unwrap();
        let parsed = parse_timestamp("t", "c", &text).unwrap();
        assert!((Utc::now() - parsed).num_seconds().abs() < 60);
        assert!(parse_timestamp("t", "c", "yesterday").is_err());
    }

    #[test]
    fn header_check_accepts_missing_and_empty_files_and_rejects_others() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.db");
        assert!(check_header(&missing).is_ok());
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert!(check_header(&empty).is_ok());
        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"Chapter one. It was a dark and stormy night.").unwrap();
        assert!(matches!(
            check_header(&text),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
