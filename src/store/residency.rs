//! `residency_consent` (V13): each project's answer to "Send to {provider} (outside the EU)?".
//! The answer is stored as its name (`allowed`, `keepEuOnly`); no row means not answered.

use rusqlite::{Connection, OptionalExtension};

use super::{ProjectId, StoreResult};

/// The stored answer of `project`, if any.
pub fn get(conn: &Connection, project: ProjectId) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT answer FROM residency_consent WHERE project_id = ?1")?
        .query_row([project.0], |row| row.get(0))
        .optional()?)
}

/// Forgets the answer of `project`: the question is asked again when it is next needed.
pub fn clear(conn: &Connection, project: ProjectId) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM residency_consent WHERE project_id = ?1",
        [project.0],
    )?;
    Ok(())
}

/// Records (or replaces) the answer of `project`.
pub fn set(conn: &Connection, project: ProjectId, answer: &str) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO residency_consent (project_id, answer) VALUES (?1, ?2)
         ON CONFLICT(project_id) DO UPDATE SET answer = excluded.answer,
             answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        rusqlite::params![project.0, answer],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn an_answer_is_kept_per_project_and_replaced() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                let default = crate::store::projects::default_project(conn)?.id;
                assert_eq!(get(conn, default)?, None);
                set(conn, default, "allowed")?;
                assert_eq!(get(conn, default)?.as_deref(), Some("allowed"));
                set(conn, default, "keepEuOnly")?;
                assert_eq!(get(conn, default)?.as_deref(), Some("keepEuOnly"));
                assert!(set(conn, default, "maybe").is_err());
                clear(conn, default)?;
                assert_eq!(get(conn, default)?, None);
                Ok(())
            })
            .unwrap();
    }
}
