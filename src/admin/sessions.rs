//! Named auth sessions (DESIGN.md §6): list, add (key stored under
//! `session_{provider}_{auth_type}_{name}`), remove (key deleted; providers using it detach).
//!
//! Sessions are global, not per project. A session's key is tested before it is stored, like a
//! provider's: at the `endpoint` given, else with a configured provider of its kind, else at the
//! catalogue's endpoint. A session may expire (`expiresAt`): an expired session's key is no longer
//! used and it is listed with `expired: true`. A request that succeeds with a session's key
//! touches its `lastUsedAt` ([`crate::usage_log::TouchOnUse`]).
//!
//! The sessions that the V4 migration backfilled (`default_{provider}_api_key`) have no key:
//! nothing copies one there. Key resolution tries the project key first and falls through a
//! session without a key (NotFound) to the system key, so they are harmless; they are listed with
//! `keyHint: null` and can be removed or filled by adding a key under a new name.

use serde::Serialize;

use super::AdminError;
use super::failpoint;
use super::journal::{self, ChangeLock, Intent, Operation, Owner};
use super::providers::{connect, store_error, undo_key};
use super::requests::SessionRequest;
use crate::app::App;
use crate::credentials::Account;
use crate::providers::{AuthType, ProviderKind};
use crate::store::{
    ProjectId, ProviderId, SessionId, SessionRow, StoreError, projects, providers as provider_rows,
    sessions as rows,
};

/// One session as `storyteller.sessions.list` reports it. Never a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: i64,
    pub provider: ProviderKind,
    pub auth_type: AuthType,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// When its key stops being used; `null`: never.
    pub expires_at: Option<String>,
    /// Past `expiresAt`: its key is no longer used.
    pub expired: bool,
    /// `••••` + the last 4 characters of its key; `null` when no key is stored.
    pub key_hint: Option<String>,
    /// The providers (any project) that use it.
    pub used_by: Vec<i64>,
}

/// What removing a session did.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRemoved {
    pub removed: SessionRow,
    /// Providers that used it and now use their own key or the system key.
    pub detached: Vec<ProviderId>,
}

/// Every session, or those of one provider kind.
pub async fn list_sessions(
    app: &App,
    kind: Option<ProviderKind>,
) -> Result<Vec<SessionSummary>, AdminError> {
    let sessions = app.store().call(move |c| rows::list(c, kind)).await?;
    let users = app.store().call(session_users).await?;
    let (credentials, _) = app.credentials().await?;
    let mut out = Vec::with_capacity(sessions.len());
    for session in sessions {
        let hint = match Account::session(session.kind, session.auth_type, session.name.as_str()) {
            Ok(account) => match credentials.retrieve(&account).await {
                Ok(key) => Some(key.hint()),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        };
        out.push(SessionSummary {
            id: session.id.0,
            provider: session.kind,
            auth_type: session.auth_type,
            name: session.name.as_str().to_string(),
            created_at: session.created_at.to_rfc3339(),
            last_used_at: session.last_used_at.map(|t| t.to_rfc3339()),
            expires_at: session.expires_at.map(|t| t.to_rfc3339()),
            expired: session.is_expired(chrono::Utc::now()),
            key_hint: hint,
            used_by: users
                .iter()
                .filter(|(_, _, s)| *s == session.id)
                .map(|(id, _, _)| id.0)
                .collect(),
        });
    }
    Ok(out)
}

/// (provider, project, session) for every provider that uses a session.
fn session_users(
    conn: &mut rusqlite::Connection,
) -> Result<Vec<(ProviderId, ProjectId, SessionId)>, StoreError> {
    let mut out = Vec::new();
    for project in projects::list(conn)? {
        for row in provider_rows::list(conn, project.id)? {
            if let Some(session) = row.session_id {
                out.push((row.id, project.id, session));
            }
        }
    }
    Ok(out)
}

/// Adds a named session with its key: the key is tested first (like a provider's: nothing is
/// stored when the test fails), then stored, then the row is committed.
pub async fn add_session(app: &App, request: SessionRequest) -> Result<SessionRow, AdminError> {
    let SessionRequest {
        kind,
        auth_type,
        name,
        key,
        expires_at,
        endpoint,
    } = request;
    let lookup = name.clone();
    if app
        .store()
        .call(move |c| rows::lookup(c, kind, auth_type, &lookup))
        .await?
        .is_some()
    {
        return Err(AdminError::DuplicateSession { kind, name });
    }
    let config = test_config(app, kind, endpoint, &key).await?;
    connect(app, &config, kind.display_name()).await?;
    store_session(app, kind, auth_type, name, key, expires_at).await
}

/// What a new session's key is tested with: the given endpoint, else that of a provider of this
/// kind already configured (the first, by project), else the catalogue's.
async fn test_config(
    app: &App,
    kind: ProviderKind,
    endpoint: Option<super::requests::Endpoint>,
    key: &crate::credentials::ApiKey,
) -> Result<crate::providers::ProviderConfig, AdminError> {
    let existing = app
        .store()
        .call(move |conn| {
            for project in projects::list(conn)? {
                if let Some(row) = provider_rows::list(conn, project.id)?
                    .into_iter()
                    .find(|r| r.kind == kind)
                {
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })
        .await?;
    let (row_endpoint, model, options) = match existing {
        Some(row) => (row.endpoint(), row.model.clone(), row.options.clone()),
        None => (
            kind.entry().default_endpoint.to_string(),
            kind.default_model().to_string(),
            Default::default(),
        ),
    };
    let endpoint = endpoint.map_or(row_endpoint, |e| e.as_str().to_string());
    if endpoint.is_empty() {
        return Err(super::requests::invalid(
            "endpoint",
            "is required to test a custom session's key (no custom provider is configured)",
        ));
    }
    Ok(crate::providers::ProviderConfig {
        kind,
        endpoint,
        model,
        api_key: Some(key.clone()),
        options,
    })
}

/// Stores a session's key and then its row, under the change lock and the intent journal.
pub(crate) async fn store_session(
    app: &App,
    kind: ProviderKind,
    auth_type: AuthType,
    name: crate::store::SessionName,
    key: crate::credentials::ApiKey,
    expires_at: Option<crate::store::Timestamp>,
) -> Result<SessionRow, AdminError> {
    let refuse_duplicate = || {
        let name = name.clone();
        async move {
            let lookup = name.clone();
            match app
                .store()
                .call(move |c| rows::lookup(c, kind, auth_type, &lookup))
                .await?
            {
                Some(_) => Err(AdminError::DuplicateSession { kind, name }),
                None => Ok(()),
            }
        }
    };
    refuse_duplicate().await?;
    let (credentials, _) = app.credentials().await?;
    let _lock = ChangeLock::acquire(app.data_dir()).await?;
    refuse_duplicate().await?;
    let owner = Owner::Session {
        kind,
        auth_type,
        name: name.clone(),
    };
    let account = owner.account();
    let intent = Intent {
        operation: Operation::AddSession,
        owner,
        display_name: name.as_str().to_string(),
    };
    let journal = app
        .store()
        .call(move |c| journal::record(c, &intent))
        .await?;
    failpoint::reached("session_add:after_journal");
    if let Err(e) = credentials.store(&account, &key).await {
        undo_key(app, credentials.as_ref(), &account, None, journal).await;
        return Err(e.into());
    }
    failpoint::reached("session_add:after_key_stored");
    let inserted = app
        .store()
        .call(move |conn| {
            let tx = conn.transaction()?;
            let mut row = rows::add(&tx, kind, auth_type, &name)?;
            if expires_at.is_some() {
                row = rows::set_expiry(&tx, row.id, expires_at)?;
            }
            journal::clear(&tx, journal)?;
            tx.commit()?;
            Ok(row)
        })
        .await;
    match inserted {
        Ok(row) => {
            tracing::info!(provider = %kind, id = row.id.0, "session added");
            Ok(row)
        }
        Err(e) => {
            undo_key(app, credentials.as_ref(), &account, None, journal).await;
            Err(store_error(e))
        }
    }
}

/// Removes a session and its key; the providers that used it detach (the schema's
/// `ON DELETE SET NULL`) and their projects' routes are reloaded.
pub async fn remove_session(app: &App, id: SessionId) -> Result<SessionRemoved, AdminError> {
    app.store()
        .call(move |c| rows::get(c, id))
        .await
        .map_err(unknown_session)?;
    let (credentials, _) = app.credentials().await?;
    let lock = ChangeLock::acquire(app.data_dir()).await?;
    let (removed, users, journal) = app
        .store()
        .call(move |conn| {
            let users: Vec<(ProviderId, ProjectId)> = session_users(conn)?
                .into_iter()
                .filter(|(_, _, s)| *s == id)
                .map(|(p, project, _)| (p, project))
                .collect();
            let tx = conn.transaction()?;
            let removed = rows::remove(&tx, id)?;
            let journal = journal::record(
                &tx,
                &Intent {
                    operation: Operation::RemoveSession,
                    owner: Owner::Session {
                        kind: removed.kind,
                        auth_type: removed.auth_type,
                        name: removed.name.clone(),
                    },
                    display_name: removed.name.as_str().to_string(),
                },
            )?;
            tx.commit()?;
            Ok((removed, users, journal))
        })
        .await
        .map_err(unknown_session)?;
    failpoint::reached("session_remove:after_commit");
    let account = Owner::Session {
        kind: removed.kind,
        auth_type: removed.auth_type,
        name: removed.name.clone(),
    }
    .account();
    let deleted = match credentials.delete(&account).await {
        Ok(()) => true,
        Err(e) if e.is_not_found() => true,
        Err(e) => {
            // The journal keeps the record: the next start deletes the key.
            tracing::warn!(account = %account, "key not deleted yet: {e}");
            false
        }
    };
    if deleted {
        failpoint::reached("session_remove:after_key_deleted");
        app.store()
            .call(move |conn| journal::clear(conn, journal))
            .await?;
    }
    drop(lock);
    let mut projects: Vec<ProjectId> = users.iter().map(|(_, p)| *p).collect();
    projects.sort_by_key(|p| p.0);
    projects.dedup();
    for project in projects {
        if let Err(e) = app.reload_routes(project).await {
            tracing::warn!(project = project.0, "routes not reloaded: {e}");
        }
    }
    tracing::info!(id = id.0, detached = users.len(), "session removed");
    Ok(SessionRemoved {
        removed,
        detached: users.into_iter().map(|(p, _)| p).collect(),
    })
}

fn unknown_session(e: StoreError) -> AdminError {
    match e {
        StoreError::UnknownSession(id) => {
            AdminError::not_found("id", format!("no session with id {id}"))
        }
        other => store_error(other),
    }
}
