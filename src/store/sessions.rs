//! Named auth sessions (`saved_authentications`, DESIGN.md §6): several named credentials per
//! (provider, auth type). This module owns the rows only; the secret of a session lives in the
//! keychain under an account the credentials layer derives from (provider, auth type, name).

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, StoreResult, Timestamp, parse_timestamp};
use crate::providers::{AuthType, ProviderKind};

/// The id of a row in `saved_authentications`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A session name: 3–50 characters, each of `A-Z a-z 0-9 _ -` (the same rule the table's CHECK
/// enforces, so a `SessionName` is always storable).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(String);

pub const SESSION_NAME_MIN: usize = 3;
pub const SESSION_NAME_MAX: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSessionName {
    #[error("a session name needs {SESSION_NAME_MIN} to {SESSION_NAME_MAX} characters, got {0}")]
    Length(usize),
    #[error("a session name may contain only letters A-Z a-z, digits, `_` and `-`; found {0:?}")]
    Character(char),
}

impl SessionName {
    pub fn new(name: impl Into<String>) -> Result<SessionName, InvalidSessionName> {
        let name = name.into();
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(InvalidSessionName::Character(bad));
        }
        // Only ASCII is left, so bytes are characters.
        if !(SESSION_NAME_MIN..=SESSION_NAME_MAX).contains(&name.len()) {
            return Err(InvalidSessionName::Length(name.len()));
        }
        Ok(SessionName(name))
    }

    /// `default_{provider}_{auth_type}`: the session every pre-existing key was backfilled into.
    pub fn default_for(kind: ProviderKind, auth_type: AuthType) -> SessionName {
        SessionName(format!("default_{}_{}", kind.as_str(), auth_type.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SessionName {
    type Err = InvalidSessionName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionName::new(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: SessionId,
    pub kind: ProviderKind,
    pub auth_type: AuthType,
    pub name: SessionName,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// When its key stops being used (V11); `None`: never.
    pub expires_at: Option<Timestamp>,
}

impl SessionRow {
    /// Whether the session has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

const COLUMNS: &str = "id, provider_name, auth_type, name, created_at, last_used_at, expires_at";

type RawSession = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawSession> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn into_session(raw: RawSession) -> StoreResult<SessionRow> {
    let (id, kind, auth_type, name, created_at, last_used_at, expires_at) = raw;
    let invalid = |column, detail: String| StoreError::InvalidData {
        table: "saved_authentications",
        column,
        detail,
    };
    Ok(SessionRow {
        id: SessionId(id),
        kind: kind
            .parse()
            .map_err(|e: crate::providers::catalog::UnknownKind| invalid("provider_name", e.0))?,
        auth_type: auth_type
            .parse()
            .map_err(|e: crate::providers::catalog::UnknownKind| invalid("auth_type", e.0))?,
        name: SessionName::new(name).map_err(|e| invalid("name", e.to_string()))?,
        created_at: parse_timestamp("saved_authentications", "created_at", &created_at)?,
        last_used_at: last_used_at
            .map(|t| parse_timestamp("saved_authentications", "last_used_at", &t))
            .transpose()?,
        expires_at: expires_at
            .map(|t| parse_timestamp("saved_authentications", "expires_at", &t))
            .transpose()?,
    })
}

/// Every session, or those of one provider kind, by provider, auth type and name.
pub fn list(conn: &Connection, kind: Option<ProviderKind>) -> StoreResult<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM saved_authentications
         WHERE ?1 IS NULL OR provider_name = ?1
         ORDER BY provider_name, auth_type, name"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt
        .query_map([kind.map(ProviderKind::as_str)], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(into_session).collect()
}

/// Adds a session; [`StoreError::DuplicateSession`] if the name is taken for this provider and
/// auth type.
pub fn add(
    conn: &Connection,
    kind: ProviderKind,
    auth_type: AuthType,
    name: &SessionName,
) -> StoreResult<SessionRow> {
    let inserted = conn.execute(
        "INSERT INTO saved_authentications (provider_name, auth_type, name) VALUES (?1, ?2, ?3)",
        params![kind.as_str(), auth_type.as_str(), name.as_str()],
    );
    match inserted {
        Ok(_) => get(conn, SessionId(conn.last_insert_rowid())),
        Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::DuplicateSession {
            kind,
            auth_type,
            name: name.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

pub fn get(conn: &Connection, id: SessionId) -> StoreResult<SessionRow> {
    let sql = format!("SELECT {COLUMNS} FROM saved_authentications WHERE id = ?1");
    match conn
        .prepare_cached(&sql)?
        .query_row([id.0], from_row)
        .optional()?
    {
        Some(raw) => into_session(raw),
        None => Err(StoreError::UnknownSession(id)),
    }
}

/// The session named `name` for (`kind`, `auth_type`), if any. Served by the table's UNIQUE
/// index; the statement is cached on the connection.
pub fn lookup(
    conn: &Connection,
    kind: ProviderKind,
    auth_type: AuthType,
    name: &SessionName,
) -> StoreResult<Option<SessionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM saved_authentications
         WHERE provider_name = ?1 AND auth_type = ?2 AND name = ?3"
    );
    conn.prepare_cached(&sql)?
        .query_row(
            params![kind.as_str(), auth_type.as_str(), name.as_str()],
            from_row,
        )
        .optional()?
        .map(into_session)
        .transpose()
}

/// Removes a session and returns it (the caller deletes its keychain entry). Providers that
/// pointed at it fall back to their own project key (`session_id` becomes NULL).
pub fn remove(conn: &Connection, id: SessionId) -> StoreResult<SessionRow> {
    let row = get(conn, id)?;
    conn.execute("DELETE FROM saved_authentications WHERE id = ?1", [id.0])?;
    Ok(row)
}

/// Sets (or clears) when a session expires.
pub fn set_expiry(
    conn: &Connection,
    id: SessionId,
    expires_at: Option<Timestamp>,
) -> StoreResult<SessionRow> {
    let text = expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let changed = conn.execute(
        "UPDATE saved_authentications SET expires_at = ?2 WHERE id = ?1",
        params![id.0, text],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownSession(id));
    }
    get(conn, id)
}

/// Records that a session's key was just used.
pub fn touch(conn: &Connection, id: SessionId) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE saved_authentications SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
        [id.0],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownSession(id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_follow_the_rule() {
        let cases: &[(&str, bool)] = &[
            ("abc", true),
            ("ab", false),
            ("work-laptop_2", true),
            (&"x".repeat(50), true),
            (&"x".repeat(51), false),
            ("has space", false),
            ("dot.ted", false),
            ("émile", false),
            ("", false),
            ("ABC-xyz_09", true),
        ];
        for (name, ok) in cases {
            assert_eq!(SessionName::new(*name).is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn default_names_are_valid_for_every_kind() {
        for kind in ProviderKind::ALL {
            for auth in [AuthType::ApiKey, AuthType::Oauth] {
                let name = SessionName::default_for(kind, auth);
                assert_eq!(SessionName::new(name.as_str()), Ok(name));
            }
        }
        assert_eq!(
            SessionName::default_for(ProviderKind::OpenAi, AuthType::ApiKey).as_str(),
            "default_openai_api_key"
        );
    }
}
