//! Projects: one per workspace root, plus the `default` project for documents outside every root.
//!
//! Roots are stored normalised (absolute, no `.` or trailing separators) so that the same folder
//! opened twice maps to one project. This module does not touch the file system: resolving
//! symlinks is the caller's choice.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, StoreResult, Timestamp, parse_timestamp};

/// The id of a row in `projects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(pub i64);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub id: ProjectId,
    pub name: String,
    /// `None` for the default project.
    pub root: Option<PathBuf>,
    pub created_at: Timestamp,
}

impl ProjectRow {
    pub fn is_default(&self) -> bool {
        self.root.is_none()
    }
}

const COLUMNS: &str = "id, name, root_path, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, String, Option<String>, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn into_project(raw: (i64, String, Option<String>, String)) -> StoreResult<ProjectRow> {
    let (id, name, root, created_at) = raw;
    Ok(ProjectRow {
        id: ProjectId(id),
        name,
        root: root.map(PathBuf::from),
        created_at: parse_timestamp("projects", "created_at", &created_at)?,
    })
}

/// The project for documents outside every workspace root (created if someone deleted it).
pub fn default_project(conn: &Connection) -> StoreResult<ProjectRow> {
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE root_path IS NULL");
    if let Some(raw) = conn.query_row(&sql, [], from_row).optional()? {
        return into_project(raw);
    }
    conn.execute(
        "INSERT INTO projects (name, root_path) VALUES ('default', NULL) ON CONFLICT DO NOTHING",
        [],
    )?;
    into_project(conn.query_row(&sql, [], from_row)?)
}

/// The project of workspace root `root`, created on first use with the folder's name.
pub fn get_or_create(conn: &Connection, root: &Path) -> StoreResult<ProjectRow> {
    let normalised = normalise_root(root)?;
    let text = normalised
        .to_str()
        .ok_or_else(|| StoreError::InvalidRootPath(root.to_path_buf()))?;
    let name = normalised
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(text);
    // DO NOTHING + SELECT rather than RETURNING: the row may already exist, possibly written by
    // another process a moment ago.
    conn.execute(
        "INSERT INTO projects (name, root_path) VALUES (?1, ?2) ON CONFLICT (root_path) DO NOTHING",
        params![name, text],
    )?;
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE root_path = ?1");
    into_project(conn.query_row(&sql, [text], from_row)?)
}

/// Every project, the default one first.
pub fn list(conn: &Connection) -> StoreResult<Vec<ProjectRow>> {
    let sql = format!("SELECT {COLUMNS} FROM projects ORDER BY root_path IS NOT NULL, id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(into_project).collect()
}

pub fn get(conn: &Connection, id: ProjectId) -> StoreResult<ProjectRow> {
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE id = ?1");
    match conn.query_row(&sql, [id.0], from_row).optional()? {
        Some(raw) => into_project(raw),
        None => Err(StoreError::UnknownProject(id)),
    }
}

/// Removes a project that has no providers left. Providers own keychain entries, so they are
/// never deleted by cascade: remove them (key first) beforehand.
pub fn delete(conn: &Connection, id: ProjectId) -> StoreResult<()> {
    if get(conn, id)?.is_default() {
        return Err(StoreError::DefaultProjectRequired);
    }
    match conn.execute("DELETE FROM projects WHERE id = ?1", [id.0]) {
        Ok(_) => Ok(()),
        Err(e) if StoreError::is_foreign_key_violation(&e) => Err(StoreError::ProjectInUse(id)),
        Err(e) => Err(e.into()),
    }
}

/// `root` made absolute-and-clean without touching the file system: `.` removed, `..` applied
/// lexically, trailing separators dropped.
fn normalise_root(root: &Path) -> StoreResult<PathBuf> {
    if !root.is_absolute() {
        return Err(StoreError::InvalidRootPath(root.to_path_buf()));
    }
    let mut out = PathBuf::new();
    for component in root.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn the_same_root_spelled_differently_is_one_project() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                let a = get_or_create(conn, Path::new("/home/ana/novel"))?;
                let b = get_or_create(conn, Path::new("/home/ana/./novel/"))?;
                let c = get_or_create(conn, Path::new("/home/ana/drafts/../novel"))?;
                assert_eq!(a.id, b.id);
                assert_eq!(a.id, c.id);
                assert_eq!(a.name, "novel");
                assert_eq!(a.root.as_deref(), Some(Path::new("/home/ana/novel")));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn relative_roots_are_refused() {
        let store = Store::open_in_memory().unwrap();
        let err = store
            .blocking(|conn| get_or_create(conn, Path::new("novel")))
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidRootPath(_)), "{err:?}");
    }

    #[test]
    fn the_default_project_exists_once_and_lists_first() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                get_or_create(conn, Path::new("/w/a"))?;
                let default = default_project(conn)?;
                assert!(default.is_default());
                assert_eq!(default.name, "default");
                assert_eq!(default_project(conn)?.id, default.id);
                let all = list(conn)?;
                assert_eq!(all.len(), 2);
                assert_eq!(all[0].id, default.id);
                // A second NULL root is refused by the partial unique index.
                let second = conn.execute(
                    "INSERT INTO projects (name, root_path) VALUES ('other', NULL)",
                    [],
                );
                assert!(second.is_err());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_default_project_cannot_be_deleted() {
        let store = Store::open_in_memory().unwrap();
        let err = store
            .blocking(|conn| {
                let id = default_project(conn)?.id;
                delete(conn, id)
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::DefaultProjectRequired));
    }
}
