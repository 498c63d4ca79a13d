//! The configured AI providers of each project (`ai_providers`).
//!
//! Invariants kept by the schema, not by this code: one row per (project, kind), at most one
//! primary per project (the first row added becomes primary), a custom provider has an
//! endpoint. Keys are not here and never will be: the row says which key to look for (project
//! key or named session); the credentials layer holds it.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::projects::ProjectId;
use super::sessions::SessionId;
use super::{StoreError, StoreResult, Timestamp, parse_timestamp};
use crate::providers::{ProviderConfig, ProviderKind, ProviderOptions};
use crate::secret::ApiKey;

/// The id of a row in `ai_providers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(pub i64);

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRow {
    pub id: ProviderId,
    pub project_id: ProjectId,
    pub kind: ProviderKind,
    pub display_name: String,
    /// `None`: the catalogue's default endpoint (see [`ProviderRow::endpoint`]).
    pub api_endpoint: Option<String>,
    pub model: String,
    pub is_primary: bool,
    pub is_active: bool,
    /// Failover order after the primary (smaller first).
    pub position: i64,
    pub options: ProviderOptions,
    /// The named session whose key this provider uses, if any.
    pub session_id: Option<SessionId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl ProviderRow {
    /// The base URL to call: the stored override, else the catalogue's default.
    pub fn endpoint(&self) -> String {
        self.api_endpoint
            .clone()
            .unwrap_or_else(|| self.kind.entry().default_endpoint.to_string())
    }

    /// What a concrete provider is built from, with the key the credentials layer resolved.
    pub fn to_config(&self, api_key: Option<ApiKey>) -> ProviderConfig {
        ProviderConfig {
            kind: self.kind,
            endpoint: self.endpoint(),
            model: self.model.clone(),
            api_key,
            options: self.options.clone(),
        }
    }
}

/// A provider to add. Omitted values come from the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProvider {
    pub project_id: ProjectId,
    pub kind: ProviderKind,
    /// Default: the catalogue's display name.
    pub display_name: Option<String>,
    /// Default: the catalogue's endpoint (required for custom).
    pub endpoint: Option<String>,
    /// Default: the catalogue's default model (required for custom).
    pub model: Option<String>,
    /// Make it the project's primary (the first provider of a project is primary anyway).
    pub primary: bool,
    pub active: bool,
    pub options: ProviderOptions,
    pub session_id: Option<SessionId>,
    /// Default: after every existing provider of the project.
    pub position: Option<i64>,
}

impl NewProvider {
    /// An active, non-primary provider with catalogue defaults.
    pub fn new(project_id: ProjectId, kind: ProviderKind) -> NewProvider {
        NewProvider {
            project_id,
            kind,
            display_name: None,
            endpoint: None,
            model: None,
            primary: false,
            active: true,
            options: ProviderOptions::default(),
            session_id: None,
            position: None,
        }
    }
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderUpdate {
    pub display_name: Option<String>,
    /// `Some(None)` returns to the catalogue's default endpoint.
    pub endpoint: Option<Option<String>>,
    pub model: Option<String>,
    pub is_active: Option<bool>,
    pub options: Option<ProviderOptions>,
    /// `Some(None)` detaches the provider from its session.
    pub session_id: Option<Option<SessionId>>,
    pub position: Option<i64>,
}

const COLUMNS: &str = "id, project_id, provider_name, display_name, api_endpoint, model_name, \
     is_primary, is_active, position, options, session_id, created_at, updated_at, last_used_at";

/// Primary first, then failover order.
const ORDER: &str = "ORDER BY is_primary DESC, position, id";

struct RawProvider {
    id: i64,
    project_id: i64,
    kind: String,
    display_name: String,
    api_endpoint: Option<String>,
    model: String,
    is_primary: bool,
    is_active: bool,
    position: i64,
    options: String,
    session_id: Option<i64>,
    created_at: String,
    updated_at: String,
    last_used_at: Option<String>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawProvider> {
    Ok(RawProvider {
        id: row.get(0)?,
        project_id: row.get(1)?,
        kind: row.get(2)?,
        display_name: row.get(3)?,
        api_endpoint: row.get(4)?,
        model: row.get(5)?,
        is_primary: row.get(6)?,
        is_active: row.get(7)?,
        position: row.get(8)?,
        options: row.get(9)?,
        session_id: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        last_used_at: row.get(13)?,
    })
}

fn into_provider(raw: RawProvider) -> StoreResult<ProviderRow> {
    let invalid = |column, detail: String| StoreError::InvalidData {
        table: "ai_providers",
        column,
        detail,
    };
    let time = |column, text: &str| parse_timestamp("ai_providers", column, text);
    Ok(ProviderRow {
        id: ProviderId(raw.id),
        project_id: ProjectId(raw.project_id),
        kind: raw
            .kind
            .parse()
            .map_err(|e: crate::providers::catalog::UnknownKind| invalid("provider_name", e.0))?,
        display_name: raw.display_name,
        api_endpoint: raw.api_endpoint,
        model: raw.model,
        is_primary: raw.is_primary,
        is_active: raw.is_active,
        position: raw.position,
        options: serde_json::from_str(&raw.options)
            .map_err(|e| invalid("options", e.to_string()))?,
        session_id: raw.session_id.map(SessionId),
        created_at: time("created_at", &raw.created_at)?,
        updated_at: time("updated_at", &raw.updated_at)?,
        last_used_at: raw
            .last_used_at
            .map(|t| time("last_used_at", &t))
            .transpose()?,
    })
}

fn options_json(options: &ProviderOptions) -> StoreResult<String> {
    serde_json::to_string(options).map_err(|e| StoreError::InvalidValue {
        field: "options",
        detail: e.to_string(),
    })
}

fn non_empty(field: &'static str, value: Option<&str>) -> StoreResult<()> {
    match value {
        Some(v) if v.trim().is_empty() => Err(StoreError::InvalidValue {
            field,
            detail: "must not be empty".into(),
        }),
        _ => Ok(()),
    }
}

/// Adds a provider and returns its row. Errors: [`StoreError::DuplicateProvider`],
/// [`StoreError::UnknownProject`], [`StoreError::UnknownSession`], [`StoreError::MissingEndpoint`],
/// [`StoreError::MissingModel`].
pub fn insert(conn: &Connection, new: &NewProvider) -> StoreResult<ProviderRow> {
    let entry = new.kind.entry();
    non_empty("displayName", new.display_name.as_deref())?;
    non_empty("endpoint", new.endpoint.as_deref())?;
    non_empty("model", new.model.as_deref())?;
    if new.kind == ProviderKind::Custom && new.endpoint.is_none() {
        return Err(StoreError::MissingEndpoint);
    }
    let model = match new.model.as_deref() {
        Some(model) => model,
        None if !entry.default_model.is_empty() => entry.default_model,
        None => return Err(StoreError::MissingModel(new.kind)),
    };
    let display_name = new.display_name.as_deref().unwrap_or(entry.display_name);
    let position = match new.position {
        Some(p) => p,
        None => next_position(conn, new.project_id)?,
    };
    let inserted = conn.execute(
        "INSERT INTO ai_providers (project_id, provider_name, display_name, api_endpoint,
             model_name, is_primary, is_active, position, options, session_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            new.project_id.0,
            new.kind.as_str(),
            display_name,
            new.endpoint,
            model,
            new.primary,
            new.active,
            position,
            options_json(&new.options)?,
            new.session_id.map(|s| s.0),
        ],
    );
    match inserted {
        Ok(_) => get(conn, ProviderId(conn.last_insert_rowid())),
        Err(e) if StoreError::is_unique_violation(&e) => {
            Err(StoreError::DuplicateProvider { kind: new.kind })
        }
        Err(e) if StoreError::is_foreign_key_violation(&e) => {
            Err(missing_reference(conn, new.project_id, new.session_id)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Which of the referenced rows is missing, after a foreign key violation.
fn missing_reference(
    conn: &Connection,
    project: ProjectId,
    session: Option<SessionId>,
) -> StoreResult<StoreError> {
    let project_exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1)",
        [project.0],
        |r| r.get(0),
    )?;
    if !project_exists {
        return Ok(StoreError::UnknownProject(project));
    }
    match session {
        Some(id) => Ok(StoreError::UnknownSession(id)),
        None => Ok(StoreError::Constraint(
            "a referenced row does not exist".into(),
        )),
    }
}

pub fn get(conn: &Connection, id: ProviderId) -> StoreResult<ProviderRow> {
    let sql = format!("SELECT {COLUMNS} FROM ai_providers WHERE id = ?1");
    match conn
        .prepare_cached(&sql)?
        .query_row([id.0], from_row)
        .optional()?
    {
        Some(raw) => into_provider(raw),
        None => Err(StoreError::UnknownProvider(id)),
    }
}

/// The project's provider of `kind`, if one is configured.
pub fn find(
    conn: &Connection,
    project: ProjectId,
    kind: ProviderKind,
) -> StoreResult<Option<ProviderRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM ai_providers WHERE project_id = ?1 AND provider_name = ?2");
    conn.prepare_cached(&sql)?
        .query_row(params![project.0, kind.as_str()], from_row)
        .optional()?
        .map(into_provider)
        .transpose()
}

fn list_where(
    conn: &Connection,
    project: ProjectId,
    active_only: bool,
) -> StoreResult<Vec<ProviderRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ai_providers WHERE project_id = ?1 AND (?2 = 0 OR is_active = 1) {ORDER}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt
        .query_map(params![project.0, active_only], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(into_provider).collect()
}

/// Every provider of a project: the primary first, then by position, then by id.
pub fn list(conn: &Connection, project: ProjectId) -> StoreResult<Vec<ProviderRow>> {
    list_where(conn, project, false)
}

/// The active providers of a project in routing order (primary first, then failover order).
pub fn list_active(conn: &Connection, project: ProjectId) -> StoreResult<Vec<ProviderRow>> {
    list_where(conn, project, true)
}

/// Changes the given fields and returns the updated row.
pub fn update(
    conn: &Connection,
    id: ProviderId,
    change: &ProviderUpdate,
) -> StoreResult<ProviderRow> {
    let current = get(conn, id)?;
    non_empty("displayName", change.display_name.as_deref())?;
    non_empty("model", change.model.as_deref())?;
    if let Some(endpoint) = &change.endpoint {
        non_empty("endpoint", endpoint.as_deref())?;
        if current.kind == ProviderKind::Custom && endpoint.is_none() {
            return Err(StoreError::MissingEndpoint);
        }
    }
    let options = change.options.as_ref().map(options_json).transpose()?;
    let updated = conn.execute(
        "UPDATE ai_providers SET
             display_name = coalesce(?2, display_name),
             api_endpoint = CASE WHEN ?3 THEN ?4 ELSE api_endpoint END,
             model_name   = coalesce(?5, model_name),
             is_active    = coalesce(?6, is_active),
             options      = coalesce(?7, options),
             session_id   = CASE WHEN ?8 THEN ?9 ELSE session_id END,
             position     = coalesce(?10, position),
             updated_at   = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
        params![
            id.0,
            change.display_name,
            change.endpoint.is_some(),
            change.endpoint.clone().flatten(),
            change.model,
            change.is_active,
            options,
            change.session_id.is_some(),
            change.session_id.flatten().map(|s| s.0),
            change.position,
        ],
    );
    match updated {
        Ok(_) => get(conn, id),
        Err(e) if StoreError::is_foreign_key_violation(&e) => Err(match change.session_id {
            Some(Some(session)) => StoreError::UnknownSession(session),
            _ => StoreError::Constraint(e.to_string()),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a provider row and returns it, so the caller can delete its key and, if it was the
/// primary, ask which provider is primary now. The request log keeps its statistics.
pub fn delete(conn: &Connection, id: ProviderId) -> StoreResult<ProviderRow> {
    let row = get(conn, id)?;
    conn.execute("DELETE FROM ai_providers WHERE id = ?1", [id.0])?;
    Ok(row)
}

/// Makes `id` its project's primary; the schema's trigger un-primaries the previous one.
pub fn set_primary(conn: &Connection, id: ProviderId) -> StoreResult<ProviderRow> {
    let changed = conn.execute(
        "UPDATE ai_providers SET is_primary = 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
        [id.0],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownProvider(id));
    }
    get(conn, id)
}

pub fn set_active(conn: &Connection, id: ProviderId, active: bool) -> StoreResult<ProviderRow> {
    update(
        conn,
        id,
        &ProviderUpdate {
            is_active: Some(active),
            ..ProviderUpdate::default()
        },
    )
}

/// Records that a request just went to this provider.
pub fn touch_last_used(conn: &Connection, id: ProviderId) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE ai_providers SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1",
        )?
        .execute([id.0])?;
    if changed == 0 {
        return Err(StoreError::UnknownProvider(id));
    }
    Ok(())
}

/// The position after every provider of the project (0 for the first).
pub fn next_position(conn: &Connection, project: ProjectId) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT coalesce(max(position) + 1, 0) FROM ai_providers WHERE project_id = ?1",
        [project.0],
        |r| r.get(0),
    )?)
}
