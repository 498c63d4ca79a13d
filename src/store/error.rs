//! The store's error taxonomy: database states an author must act on (locked, damaged, newer),
//! domain conflicts mapped from SQLite constraints, and the rest.
//!
//! Texts an author reads come from [`crate::messages::database`]; the others are for the LSP
//! layer (which maps them to `InvalidParams` and the like) and for logs. No variant ever holds a
//! key or manuscript text: the store never sees either.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use super::projects::ProjectId;
use super::providers::ProviderId;
use super::sessions::{SessionId, SessionName};
use crate::messages;
use crate::providers::{AuthType, ProviderKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds a lock longer than the busy timeout.
    #[error("{}", messages::database::locked(path))]
    Locked { path: PathBuf },
    /// Not an SQLite file, a damaged one, or another application's database. Never modified.
    #[error("{}", messages::database::corrupt(path, detail))]
    Corrupt { path: PathBuf, detail: String },
    /// Written by a newer binary; refused before anything was applied.
    #[error("{}", messages::database::newer_schema(path, *found, *supported))]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("cannot create the data directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a {kind} provider is already configured for this project")]
    DuplicateProvider { kind: ProviderKind },
    #[error("a session named `{name}` already exists for {kind} ({})", auth_type.as_str())]
    DuplicateSession {
        kind: ProviderKind,
        auth_type: AuthType,
        name: SessionName,
    },
    #[error("no project with id {0}")]
    UnknownProject(ProjectId),
    #[error("no provider with id {0}")]
    UnknownProvider(ProviderId),
    #[error("no session with id {0}")]
    UnknownSession(SessionId),
    #[error("no prompt template `{name}` version {version}")]
    UnknownTemplate { name: String, version: u32 },
    #[error("project {0} still has AI providers; remove them (and their keys) before the project")]
    ProjectInUse(ProjectId),
    #[error("the default project cannot be removed")]
    DefaultProjectRequired,
    #[error("a project root must be an absolute UTF-8 path, got {0:?}")]
    InvalidRootPath(PathBuf),
    #[error("a custom provider needs an endpoint")]
    MissingEndpoint,
    #[error("a {0} provider needs a model name")]
    MissingModel(ProviderKind),
    #[error("invalid value for {field}: {detail}")]
    InvalidValue { field: &'static str, detail: String },
    /// A row that this version cannot read back (a value outside the schema's rules).
    #[error("unreadable {column} in {table}: {detail}")]
    InvalidData {
        table: &'static str,
        column: &'static str,
        detail: String,
    },
    /// A CHECK, NOT NULL or other constraint that no domain error covers.
    #[error("the database refused the change: {0}")]
    Constraint(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A database task panicked (a bug); the connection was restored.
    #[error("a database task failed: {0}")]
    TaskFailed(String),
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// The store was closed ([`super::Store::close`]): the process is shutting down.
    #[error("the database is closed (shutting down)")]
    Closed,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Names the database file in path-carrying variants created without one (repositories do
    /// not know where their connection points; the [`super::Store`] fills it in).
    pub(crate) fn at(self, db: &Path) -> StoreError {
        match self {
            StoreError::Locked { path } if path.as_os_str().is_empty() => StoreError::Locked {
                path: db.to_path_buf(),
            },
            StoreError::Corrupt { path, detail } if path.as_os_str().is_empty() => {
                StoreError::Corrupt {
                    path: db.to_path_buf(),
                    detail,
                }
            }
            other => other,
        }
    }

    /// The SQLite extended result code of a failed statement, if that is what this is.
    fn extended_code(err: &rusqlite::Error) -> Option<i32> {
        err.sqlite_error().map(|e| e.extended_code)
    }

    /// Whether `err` violated a UNIQUE (or PRIMARY KEY) constraint.
    pub(crate) fn is_unique_violation(err: &rusqlite::Error) -> bool {
        matches!(
            Self::extended_code(err),
            Some(
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        )
    }

    /// Whether `err` violated a FOREIGN KEY constraint. An `ON DELETE RESTRICT` violation comes
    /// back as SQLITE_CONSTRAINT_TRIGGER (SQLite implements it as an internal trigger), so the
    /// message tells it apart from a trigger's RAISE.
    pub(crate) fn is_foreign_key_violation(err: &rusqlite::Error) -> bool {
        match Self::extended_code(err) {
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => true,
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER) => {
                err.to_string().contains("FOREIGN KEY constraint failed")
            }
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: PathBuf::new(),
            },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path: PathBuf::new(),
                detail: err.to_string(),
            },
            Some(ErrorCode::ConstraintViolation) => StoreError::Constraint(err.to_string()),
            _ => StoreError::Sqlite(err),
        }
    }
}
