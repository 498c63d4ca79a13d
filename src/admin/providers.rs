//! The provider operations: list, catalogue, test, add, update (with key rotation), remove,
//! set primary, list models. Each takes the project it acts on; ids of another project's
//! providers are "not found" here.
//!
//! Order of effects, always: validate → test the connection (no lock, nothing stored) → take the
//! [`ChangeLock`] → journal → key → row (+ clear the journal) → reload the project's routes. A
//! failure before the row commits undoes the key; see [`super::journal`] for crashes.

use serde::Serialize;

use super::AdminError;
use super::failpoint;
use super::journal::{self, ChangeLock, Intent, JournalId, Operation, Owner};
use super::requests::{
    AddRequest, KeyChoice, ModelsRequest, Overrides, TestRequest, UpdateRequest, invalid,
    parse_options,
};
use crate::app::App;
use crate::credentials::{Account, ApiKey, CredentialStore, KeySource, env};
use crate::messages;
use crate::providers::endpoint::Transport;
use crate::providers::{
    AuthType, CatalogEntry, ModelInfo, ProviderConfig, ProviderKind, ProviderOptions,
    catalog as kinds,
};
use crate::routing::{Health, RateLimitStatus};
use crate::store::providers::{self as rows, NewProvider, ProviderUpdate};
use crate::store::{
    ProjectId, ProviderId, ProviderRow, StoreError, sessions as session_rows, usage,
};

/// One provider as `storyteller.providers.list` reports it (DESIGN.md §3), plus the session it
/// uses and its options. Never a key: `keyHint` is `••••` + the last 4 characters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSummary {
    pub id: i64,
    pub provider: ProviderKind,
    pub display_name: String,
    pub model: String,
    pub endpoint: String,
    pub is_primary: bool,
    pub is_active: bool,
    pub key_source: KeySource,
    pub key_hint: Option<String>,
    pub health: Health,
    pub last_used_at: Option<String>,
    pub rate_limit: RateLimitStatus,
    /// The named session whose key it uses, if any.
    pub session: Option<String>,
    pub options: ProviderOptions,
    /// Median latency of its successful requests over the last [`LIST_STATS_DAYS`] days, from
    /// the request log; `None` before the first.
    pub median_latency_ms: Option<u64>,
    /// Whether its endpoint keeps text in the EU (decided by the host; custom: `euResident`).
    pub eu_resident: bool,
}

/// The period of the median latency in `providers.list`.
pub const LIST_STATS_DAYS: u32 = 30;

/// One provider's line of `storyteller-lsp provider stats`: the request log's statistics with
/// the name the author gave it (the kind's name once it is removed) and when it was last used.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderUsage {
    pub display_name: String,
    pub last_used_at: Option<String>,
    #[serde(flatten)]
    pub stats: usage::LatencyStats,
}

fn since_days(days: u32) -> chrono::DateTime<chrono::Utc> {
    let days = i64::from(days.min(36_500));
    chrono::Utc::now() - chrono::Duration::days(days)
}

/// The request log's statistics per provider over the last `days` days (every project's, as
/// the log is one per data directory).
pub async fn stats(app: &App, days: u32) -> Result<Vec<ProviderUsage>, AdminError> {
    let since = since_days(days);
    let out = app
        .store()
        .call(move |conn| {
            let stats = usage::latency_stats(conn, since)?;
            let mut out = Vec::with_capacity(stats.len());
            for stats in stats {
                let row = match stats.provider_id {
                    Some(id) => match rows::get(conn, ProviderId(id)) {
                        Ok(row) => Some(row),
                        Err(StoreError::UnknownProvider(_)) => None,
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                out.push(ProviderUsage {
                    display_name: row.as_ref().map_or_else(
                        || stats.provider.display_name().to_string(),
                        |r| r.display_name.clone(),
                    ),
                    last_used_at: row.and_then(|r| r.last_used_at).map(|t| t.to_rfc3339()),
                    stats,
                });
            }
            Ok(out)
        })
        .await?;
    Ok(out)
}

/// One kind of the catalogue (`storyteller.providers.catalog`): the catalogue entry, its EU
/// residency at the top level, and whether its system key is set (the variable's name is in
/// `keyEnv`; the value is never read out).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub eu_resident: bool,
    pub system_key_present: bool,
    /// The text of the link to `keyHelpUrl` ("Get your OpenAI API key"); none for a kind whose
    /// key is optional (Custom: its URL is documentation, not a place to get a key).
    pub key_help_text: Option<String>,
}

/// `storyteller.providers.test`: `{ok: true, model, latencyMs}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub ok: bool,
    pub model: String,
    pub latency_ms: u64,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    pub row: ProviderRow,
    /// The new configuration was tested before it was saved.
    pub tested: bool,
    pub key_rotated: bool,
}

/// What a removal did: the row as it was, and the project's providers left (routing order).
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub removed: ProviderRow,
    pub remaining: Vec<ProviderRow>,
}

impl Removed {
    /// The primary was removed and others remain: someone must choose the next primary.
    pub fn needs_new_primary(&self) -> bool {
        self.removed.is_primary && !self.remaining.is_empty()
    }
}

/// The providers of `project`, primary first, with key source and hint, and health and rate
/// budget from the project's router.
pub async fn list(app: &App, project: ProjectId) -> Result<Vec<ProviderSummary>, AdminError> {
    let rows = app.store().call(move |c| rows::list(c, project)).await?;
    let status = app.router(project).await?.status();
    let sessions = app.store().call(|c| session_rows::list(c, None)).await?;
    let since = since_days(LIST_STATS_DAYS);
    let latencies = app
        .store()
        .call(move |c| usage::latency_stats(c, since))
        .await?;
    let settings = app.settings();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let resolved = app.resolve_key(&row).await?;
        let routed = status.providers.iter().find(|p| p.provider.id == row.id.0);
        let last_used = match (row.last_used_at, routed.and_then(|p| p.last_used_at)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let per_minute = settings.per_minute(row.kind);
        out.push(ProviderSummary {
            id: row.id.0,
            provider: row.kind,
            display_name: row.display_name.clone(),
            model: row.model.clone(),
            endpoint: row.endpoint(),
            is_primary: row.is_primary,
            is_active: row.is_active,
            key_source: crate::app::key_source(resolved.as_ref()),
            key_hint: resolved.as_ref().map(|r| r.key.hint()),
            health: routed.map_or(Health::Unknown, |p| p.health),
            last_used_at: last_used.map(|t| t.to_rfc3339()),
            rate_limit: routed.map_or(
                RateLimitStatus {
                    per_minute,
                    remaining: per_minute,
                },
                |p| p.rate_limit.clone(),
            ),
            session: row.session_id.and_then(|id| {
                sessions
                    .iter()
                    .find(|s| s.id == id)
                    .map(|s| s.name.as_str().to_string())
            }),
            options: row.options.clone(),
            median_latency_ms: latencies
                .iter()
                .find(|l| l.provider_id == Some(row.id.0))
                .and_then(|l| l.median_latency_ms),
            eu_resident: crate::providers::catalog::eu_resident(
                row.kind,
                &row.endpoint(),
                row.options.eu_resident,
            ),
        });
    }
    Ok(out)
}

/// Every provider kind with its defaults.
pub fn catalog(app: &App) -> Vec<CatalogItem> {
    kinds::catalog()
        .into_iter()
        .map(|entry| CatalogItem {
            key_help_text: entry
                .capabilities
                .key_required
                .then(|| crate::messages::key_help_link(entry.display_name)),
            eu_resident: entry.capabilities.eu_resident,
            system_key_present: env::system_key(entry.kind, app.env().as_ref()).is_some(),
            entry,
        })
        .collect()
}

/// Tests a configuration; stores nothing. `expected_kind` is the `provider` argument given along
/// with an `id`, which must match the stored provider.
pub async fn test(
    app: &App,
    project: ProjectId,
    request: TestRequest,
    expected_kind: Option<ProviderKind>,
) -> Result<TestReport, AdminError> {
    let (config, display_name) = match request {
        TestRequest::New { spec, key } => {
            check_yandex_folder(app, spec.kind, &spec.options)?;
            let key = key.or_else(|| env::system_key(spec.kind, app.env().as_ref()));
            let mut config = ProviderConfig {
                kind: spec.kind,
                endpoint: spec.endpoint(),
                model: spec.model(),
                api_key: key,
                options: spec.options.clone(),
            };
            let display_name = spec.kind.display_name().to_string();
            choose_model(app, &mut config, &display_name).await?;
            (config, display_name)
        }
        TestRequest::Stored { id, overrides } => {
            let row = row_in_project(app, project, id).await?;
            if let Some(kind) = expected_kind.filter(|k| *k != row.kind) {
                return Err(invalid(
                    "provider",
                    format!("is {kind}, but provider {id} is {}", row.kind),
                ));
            }
            let config = configured(app, &row, &overrides).await?;
            (config, row.display_name)
        }
    };
    let report = connect(app, &config, &display_name).await?;
    Ok(TestReport {
        ok: true,
        model: report.model,
        latency_ms: report.latency_ms,
    })
}

/// Adds a provider: tests it first (nothing is stored on failure), then stores the key, then
/// commits the row. `primary` makes it the project's primary (the first provider always is).
pub async fn add(
    app: &App,
    project: ProjectId,
    request: AddRequest,
) -> Result<ProviderRow, AdminError> {
    let AddRequest {
        spec,
        key,
        display_name,
        primary,
    } = request;
    let kind = spec.kind;
    let display_name = display_name.map_or_else(
        || kind.display_name().to_string(),
        |d| d.as_str().to_string(),
    );
    refuse_duplicate(app, project, kind).await?;
    check_yandex_folder(app, kind, &spec.options)?;

    let (test_key, session_id) = match &key {
        KeyChoice::Own(key) => (Some(key.clone()), None),
        KeyChoice::Session(name) => {
            let (key, session) = session_key(app, kind, name).await?;
            (Some(key), Some(session))
        }
        KeyChoice::None => (None, None),
        KeyChoice::Env => (Some(system_key(app, kind, &display_name)?), None),
    };
    let mut config = ProviderConfig {
        kind,
        endpoint: spec.endpoint(),
        model: spec.model(),
        api_key: test_key,
        options: spec.options.clone(),
    };
    let chose_model = choose_model(app, &mut config, &display_name).await?;
    connect(app, &config, &display_name).await?;

    let new = NewProvider {
        project_id: project,
        kind,
        display_name: Some(display_name.clone()),
        endpoint: spec.endpoint.as_ref().map(|e| e.as_str().to_string()),
        model: match (&spec.model, chose_model) {
            (Some(model), _) => Some(model.as_str().to_string()),
            (None, true) => Some(config.model.clone()),
            (None, false) => None,
        },
        primary,
        active: true,
        options: spec.options,
        session_id,
        position: None,
    };
    // Credentials first: a keychain that cannot be used fails the add before anything changes.
    let credentials = match &key {
        KeyChoice::Own(_) => Some(app.credentials().await?.0),
        _ => None,
    };
    let lock = ChangeLock::acquire(app.data_dir()).await?;
    refuse_duplicate(app, project, kind).await?;
    let row = match (key, credentials) {
        (KeyChoice::Own(key), Some(credentials)) => {
            let owner = Owner::Project { project, kind };
            let account = owner.account();
            let journal = record(
                app,
                Intent {
                    operation: Operation::AddProvider,
                    owner,
                    display_name,
                },
            )
            .await?;
            failpoint::reached("add:after_journal");
            if let Err(e) = credentials.store(&account, &key).await {
                undo_key(app, credentials.as_ref(), &account, None, journal).await;
                return Err(e.into());
            }
            failpoint::reached("add:after_key_stored");
            let inserted = app
                .store()
                .call(move |conn| {
                    let tx = conn.transaction()?;
                    let row = rows::insert(&tx, &new)?;
                    journal::clear(&tx, journal)?;
                    tx.commit()?;
                    Ok(row)
                })
                .await;
            match inserted {
                Ok(row) => row,
                Err(e) => {
                    undo_key(app, credentials.as_ref(), &account, None, journal).await;
                    return Err(store_error(e));
                }
            }
        }
        _ => app
            .store()
            .call(move |conn| rows::insert(conn, &new))
            .await
            .map_err(store_error)?,
    };
    failpoint::reached("add:after_commit");
    drop(lock);
    reload(app, project).await;
    record_tested(app, project, row.id).await;
    tracing::info!(provider = %row.kind, id = row.id.0, "provider added");
    Ok(row)
}

/// Changes a provider. A new key, model, endpoint or options are tested together before anything
/// is saved (a configuration that does not work would otherwise surface only mid-sentence, as a
/// failover); a new key then replaces the old one in the credential store (rotation) and the
/// provider stops using a named session. Display name and `isActive` alone are not tested.
pub async fn update(
    app: &App,
    project: ProjectId,
    request: UpdateRequest,
) -> Result<Updated, AdminError> {
    let UpdateRequest {
        id,
        changes,
        display_name,
        is_active,
    } = request;
    let row = row_in_project(app, project, id).await?;
    let options = changes
        .options
        .clone()
        .map(|o| parse_options("options", row.kind, o))
        .transpose()?;
    if let Some(options) = &options {
        check_yandex_folder(app, row.kind, options)?;
    }
    if changes.key.is_some() {
        refuse_rotating_system_key(app, &row).await?;
    }
    let tested = changes.touches_connection();
    if tested {
        let config = configured(app, &row, &changes).await?;
        let name = display_name
            .as_ref()
            .map_or(row.display_name.as_str(), |d| d.as_str());
        connect(app, &config, name).await?;
    }
    let change = ProviderUpdate {
        display_name: display_name.map(|d| d.as_str().to_string()),
        endpoint: changes
            .endpoint
            .clone()
            .map(|e| e.map(|e| e.as_str().to_string())),
        model: changes.model.as_ref().map(|m| m.as_str().to_string()),
        is_active,
        options,
        // Its own key from now on: resolution would prefer it anyway, and the row should say so.
        session_id: changes.key.as_ref().map(|_| None),
        position: None,
    };
    let credentials = match &changes.key {
        Some(_) => Some(app.credentials().await?.0),
        None => None,
    };
    let lock = ChangeLock::acquire(app.data_dir()).await?;
    let row = row_in_project(app, project, id).await?;
    let key_rotated = changes.key.is_some();
    let updated = match (changes.key, credentials) {
        (Some(key), Some(credentials)) => {
            let owner = Owner::Project {
                project,
                kind: row.kind,
            };
            let account = owner.account();
            let previous = match credentials.retrieve(&account).await {
                Ok(key) => Some(key),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            let journal = record(
                app,
                Intent {
                    operation: Operation::RotateKey,
                    owner,
                    display_name: row.display_name.clone(),
                },
            )
            .await?;
            failpoint::reached("update:after_journal");
            if let Err(e) = credentials.store(&account, &key).await {
                undo_key(app, credentials.as_ref(), &account, previous, journal).await;
                return Err(e.into());
            }
            failpoint::reached("update:after_key_stored");
            let result = app
                .store()
                .call(move |conn| {
                    let tx = conn.transaction()?;
                    let row = rows::update(&tx, id, &change)?;
                    journal::clear(&tx, journal)?;
                    tx.commit()?;
                    Ok(row)
                })
                .await;
            match result {
                Ok(row) => row,
                Err(e) => {
                    undo_key(app, credentials.as_ref(), &account, previous, journal).await;
                    return Err(store_error(e));
                }
            }
        }
        _ => app
            .store()
            .call(move |conn| rows::update(conn, id, &change))
            .await
            .map_err(store_error)?,
    };
    failpoint::reached("update:after_commit");
    drop(lock);
    reload(app, project).await;
    if tested {
        record_tested(app, project, id).await;
    }
    tracing::info!(provider = %updated.kind, id = id.0, key_rotated, tested, "provider updated");
    Ok(Updated {
        row: updated,
        tested,
        key_rotated,
    })
}

/// Removes a provider and its project key (a named session's key stays: other providers may use
/// it). The row goes first, with the journal record in the same transaction, so a crash can only
/// leave a key that the next start deletes.
pub async fn remove(app: &App, project: ProjectId, id: ProviderId) -> Result<Removed, AdminError> {
    row_in_project(app, project, id).await?;
    // A credential store that cannot be used fails the removal before the row is gone.
    let (credentials, _) = app.credentials().await?;
    let lock = ChangeLock::acquire(app.data_dir()).await?;
    let (removed, journal) = app
        .store()
        .call(move |conn| {
            let tx = conn.transaction()?;
            let row = rows::get(&tx, id)?;
            if row.project_id != project {
                return Err(StoreError::UnknownProvider(id));
            }
            rows::delete(&tx, id)?;
            let journal = journal::record(
                &tx,
                &Intent {
                    operation: Operation::RemoveProvider,
                    owner: Owner::Project {
                        project,
                        kind: row.kind,
                    },
                    display_name: row.display_name.clone(),
                },
            )?;
            tx.commit()?;
            Ok((row, journal))
        })
        .await
        .map_err(store_error)?;
    failpoint::reached("remove:after_commit");
    let account = Account::project(project.0, removed.kind);
    match credentials.delete(&account).await {
        Ok(()) => cleared_after_delete(app, journal).await?,
        Err(e) if e.is_not_found() => cleared_after_delete(app, journal).await?,
        // The journal keeps the record: the next start deletes the key.
        Err(e) => tracing::warn!(account = %account, "key not deleted yet: {e}"),
    }
    drop(lock);
    reload(app, project).await;
    tracing::info!(provider = %removed.kind, id = id.0, "provider removed");
    let remaining = app.store().call(move |c| rows::list(c, project)).await?;
    Ok(Removed { removed, remaining })
}

async fn cleared_after_delete(app: &App, journal: JournalId) -> Result<(), AdminError> {
    failpoint::reached("remove:after_key_deleted");
    app.store()
        .call(move |conn| journal::clear(conn, journal))
        .await?;
    Ok(())
}

/// Makes `id` the project's only primary; the next request goes to it (sticky failover cleared).
pub async fn set_primary(
    app: &App,
    project: ProjectId,
    id: ProviderId,
) -> Result<ProviderRow, AdminError> {
    row_in_project(app, project, id).await?;
    let row = app
        .store()
        .call(move |conn| rows::set_primary(conn, id))
        .await
        .map_err(store_error)?;
    reload(app, project).await;
    app.primary_chosen(project).await;
    tracing::info!(provider = %row.kind, id = id.0, "primary provider set");
    Ok(row)
}

/// The model ids the provider's listing endpoint offers.
pub async fn models(
    app: &App,
    project: ProjectId,
    request: ModelsRequest,
) -> Result<Vec<ModelInfo>, AdminError> {
    let (config, display_name) = match request {
        ModelsRequest::Stored(id) => {
            let row = row_in_project(app, project, id).await?;
            let config = configured(app, &row, &Overrides::default()).await?;
            (config, row.display_name)
        }
        ModelsRequest::New {
            kind,
            key,
            endpoint,
            options,
        } => {
            let key = key.or_else(|| env::system_key(kind, app.env().as_ref()));
            let config = ProviderConfig {
                kind,
                endpoint: endpoint.map_or_else(
                    || kind.entry().default_endpoint.to_string(),
                    |e| e.as_str().to_string(),
                ),
                model: kind.default_model().to_string(),
                api_key: key,
                options,
            };
            (config, kind.display_name().to_string())
        }
    };
    check_transport(&config, &display_name)?;
    require_key(&config, &display_name)?;
    app.build_provider(&config)
        .list_models()
        .await
        .map_err(|error| AdminError::Connection {
            provider: display_name,
            error,
        })
}

/// The provider `id` of `project` ("not found" for another project's).
pub async fn provider(
    app: &App,
    project: ProjectId,
    id: ProviderId,
) -> Result<ProviderRow, AdminError> {
    row_in_project(app, project, id).await
}

/// The row `id` if it belongs to `project`.
async fn row_in_project(
    app: &App,
    project: ProjectId,
    id: ProviderId,
) -> Result<ProviderRow, AdminError> {
    let row = app
        .store()
        .call(move |conn| rows::get(conn, id))
        .await
        .map_err(store_error)?;
    if row.project_id != project {
        return Err(unknown_provider(id));
    }
    Ok(row)
}

fn unknown_provider(id: ProviderId) -> AdminError {
    AdminError::not_found("id", format!("no provider with id {id} in this project"))
}

/// Store errors that answer an argument become argument errors.
pub(crate) fn store_error(e: StoreError) -> AdminError {
    match e {
        StoreError::UnknownProvider(id) => unknown_provider(id),
        StoreError::UnknownSession(id) => {
            AdminError::not_found("session", format!("no session with id {id}"))
        }
        StoreError::DuplicateProvider { kind } => AdminError::DuplicateProvider {
            kind,
            display_name: kind.display_name().to_string(),
        },
        StoreError::DuplicateSession { kind, name, .. } => {
            AdminError::DuplicateSession { kind, name }
        }
        StoreError::MissingEndpoint => invalid("endpoint", "is required for a custom provider"),
        StoreError::MissingModel(_) => invalid("model", "is required for a custom provider"),
        StoreError::InvalidValue { field, detail } => invalid(field, detail),
        other => AdminError::Store(other),
    }
}

async fn refuse_duplicate(
    app: &App,
    project: ProjectId,
    kind: ProviderKind,
) -> Result<(), AdminError> {
    match app
        .store()
        .call(move |c| rows::find(c, project, kind))
        .await?
    {
        Some(existing) => Err(AdminError::DuplicateProvider {
            kind,
            display_name: existing.display_name,
        }),
        None => Ok(()),
    }
}

/// Yandex needs a folder: from `options.folderId` or `YANDEX_FOLDER_ID`.
fn check_yandex_folder(
    app: &App,
    kind: ProviderKind,
    options: &ProviderOptions,
) -> Result<(), AdminError> {
    if kind == ProviderKind::Yandex
        && options.folder_id.is_none()
        && env::yandex_folder_id(app.env().as_ref()).is_none()
    {
        return Err(invalid(
            "options.folderId",
            "is required for yandex (or set YANDEX_FOLDER_ID)",
        ));
    }
    Ok(())
}

/// The system key of `kind` for an add with `keySource: env`, or why there is none.
fn system_key(app: &App, kind: ProviderKind, display_name: &str) -> Result<ApiKey, AdminError> {
    let Some(variable) = kind.entry().key_env else {
        return Err(invalid(
            "keySource",
            crate::messages::keys::no_system_key(display_name),
        ));
    };
    env::system_key(kind, app.env().as_ref()).ok_or_else(|| {
        invalid(
            "keySource",
            crate::messages::keys::system_key_not_set(display_name, variable),
        )
    })
}

/// A new key for a provider that runs on the system key would be stored beside it and win over
/// it silently; the author is told how to change the variable instead (or to re-add the
/// provider with a key of its own).
async fn refuse_rotating_system_key(app: &App, row: &ProviderRow) -> Result<(), AdminError> {
    let resolved = app.resolve_key(row).await?;
    match (resolved.map(|r| r.source), row.kind.entry().key_env) {
        (Some(KeySource::Env), Some(variable)) => Err(invalid(
            "apiKey",
            crate::messages::keys::rotate_system_key(&row.display_name, variable),
        )),
        _ => Ok(()),
    }
}

/// A provider without a model (custom, which has no catalogue default) takes the first model
/// its endpoint lists. Returns whether it chose one; a listing that fails is the connection
/// error, one that is empty a clear refusal.
async fn choose_model(
    app: &App,
    config: &mut ProviderConfig,
    display_name: &str,
) -> Result<bool, AdminError> {
    if !config.model.is_empty() {
        return Ok(false);
    }
    require_key(config, display_name)?;
    let listed = app
        .build_provider(config)
        .list_models()
        .await
        .map_err(|error| AdminError::Connection {
            provider: display_name.to_string(),
            error,
        })?;
    config.model = first_model(&listed, display_name)?;
    Ok(true)
}

/// The first usable model id of a listing.
fn first_model(listed: &[ModelInfo], display_name: &str) -> Result<String, AdminError> {
    listed
        .iter()
        .map(|m| m.id.trim())
        .find(|id| crate::admin::requests::ModelName::parse("model", id).is_ok())
        .map(str::to_string)
        .ok_or_else(|| {
            invalid(
                "model",
                crate::messages::keys::no_models_listed(display_name),
            )
        })
}

/// The key of the named session of `kind` (`api_key`, else `oauth`) and its id; an expired
/// session is refused.
async fn session_key(
    app: &App,
    kind: ProviderKind,
    name: &crate::store::SessionName,
) -> Result<(ApiKey, crate::store::SessionId), AdminError> {
    let lookup_name = name.clone();
    // An `api_key` session of that name, else an `oauth` one (Sign in with OpenRouter).
    let session = app
        .store()
        .call(
            move |c| match session_rows::lookup(c, kind, AuthType::ApiKey, &lookup_name)? {
                Some(row) => Ok(Some(row)),
                None => session_rows::lookup(c, kind, AuthType::Oauth, &lookup_name),
            },
        )
        .await?
        .ok_or_else(|| {
            AdminError::not_found(
                "session",
                format!("no api_key session named {name} for {kind}"),
            )
        })?;
    if session.is_expired(chrono::Utc::now()) {
        return Err(AdminError::SessionExpired {
            kind,
            name: name.clone(),
        });
    }
    let account = Account::session(kind, session.auth_type, name.as_str())
        .map_err(|e| invalid("session", e.to_string()))?;
    let (credentials, _) = app.credentials().await?;
    match credentials.retrieve(&account).await {
        Ok(key) if !key.is_empty() => Ok((key, session.id)),
        Ok(_) => Err(invalid(
            "session",
            format!("the session {name} has no stored key"),
        )),
        Err(e) if e.is_not_found() => Err(invalid(
            "session",
            format!("the session {name} has no stored key"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The configuration a stored provider would run with after `overrides`.
async fn configured(
    app: &App,
    row: &ProviderRow,
    overrides: &Overrides,
) -> Result<ProviderConfig, AdminError> {
    let options = match &overrides.options {
        Some(object) => parse_options("options", row.kind, object.clone())?,
        None => row.options.clone(),
    };
    let endpoint = match &overrides.endpoint {
        Some(Some(endpoint)) => endpoint.as_str().to_string(),
        Some(None) if row.kind == ProviderKind::Custom => {
            return Err(invalid("endpoint", "is required for a custom provider"));
        }
        Some(None) => row.kind.entry().default_endpoint.to_string(),
        None => row.endpoint(),
    };
    let key = match &overrides.key {
        Some(key) => Some(key.clone()),
        None => {
            if let Some(id) = row.session_id {
                let session = app.store().call(move |c| session_rows::get(c, id)).await?;
                if session.is_expired(chrono::Utc::now()) {
                    return Err(AdminError::SessionExpired {
                        kind: session.kind,
                        name: session.name,
                    });
                }
            }
            app.resolve_key(row).await?.map(|r| r.key)
        }
    };
    Ok(ProviderConfig {
        kind: row.kind,
        endpoint,
        model: overrides
            .model
            .as_ref()
            .map_or_else(|| row.model.clone(), |m| m.as_str().to_string()),
        api_key: key,
        options,
    })
}

fn require_key(config: &ProviderConfig, display_name: &str) -> Result<(), AdminError> {
    if config.api_key.is_none() && config.kind.entry().capabilities.key_required {
        return Err(AdminError::NoKey {
            kind: config.kind,
            provider: display_name.to_string(),
        });
    }
    Ok(())
}

/// The connection test: a model listing (no tokens spent), bounded by the provider's listing
/// timeout; dropping the future aborts it.
pub(crate) async fn connect(
    app: &App,
    config: &ProviderConfig,
    display_name: &str,
) -> Result<crate::providers::ConnectionReport, AdminError> {
    check_transport(config, display_name)?;
    require_key(config, display_name)?;
    app.build_provider(config)
        .test_connection()
        .await
        .map_err(|error| {
            tracing::info!(
                provider = %config.kind,
                kind = error.kind().as_str(),
                "connection test failed"
            );
            AdminError::Connection {
                provider: display_name.to_string(),
                error,
            }
        })
}

/// Plain HTTP only to this computer unless the provider's options allow it: refused before any
/// connection is made (a key would travel in clear); allowed ones are logged as a warning.
fn check_transport(config: &ProviderConfig, display_name: &str) -> Result<(), AdminError> {
    let host = crate::providers::endpoint::host_of(&config.endpoint);
    match Transport::of_config(config) {
        Transport::Refused => {
            tracing::info!(provider = %config.kind, host = %host, "plain http to a remote host refused");
            Err(invalid(
                "endpoint",
                messages::residency::insecure_http_refused(display_name, &host),
            ))
        }
        Transport::InsecureAllowed => {
            tracing::warn!(
                provider = %config.kind,
                host = %host,
                "plain http to a remote host, allowed by allowInsecureHttp: the key travels unencrypted"
            );
            Ok(())
        }
        Transport::NotPlainHttp | Transport::Loopback => Ok(()),
    }
}

async fn record(app: &App, intent: Intent) -> Result<JournalId, AdminError> {
    Ok(app
        .store()
        .call(move |conn| journal::record(conn, &intent))
        .await?)
}

/// After a failed store or row commit: puts the account back as it was (the previous key, or
/// none), then clears the journal record. If the credential store cannot do that now, the record
/// stays and the next start resolves it.
///
/// An account already as it was (a store that failed cleanly, e.g. on a full disk) is left
/// alone: writing the previous key back would fail for the same reason, keep the record, and
/// make the next start tell the author of an interrupted change they were already told had
/// failed.
pub(crate) async fn undo_key(
    app: &App,
    credentials: &dyn CredentialStore,
    account: &Account,
    previous: Option<ApiKey>,
    journal: JournalId,
) {
    let unchanged = match (credentials.retrieve(account).await, &previous) {
        (Ok(current), Some(previous)) => current.expose() == previous.expose(),
        (Err(e), None) => e.is_not_found(),
        _ => false,
    };
    let undone = match previous {
        _ if unchanged => Ok(()),
        Some(previous) => credentials.store(account, &previous).await,
        None => match credentials.delete(account).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        },
    };
    match undone {
        Ok(()) => {
            if let Err(e) = app
                .store()
                .call(move |conn| journal::clear(conn, journal))
                .await
            {
                tracing::warn!("journal record kept after an undone change: {e}");
            }
        }
        Err(e) => tracing::warn!(
            account = %account,
            "could not undo a key change now; the next start will: {e}"
        ),
    }
}

/// The connection test before storing passed: the list shows the provider as healthy, not
/// "not checked yet".
async fn record_tested(app: &App, project: ProjectId, id: ProviderId) {
    if let Ok(router) = app.router(project).await {
        router.record_tested(id.0);
    }
}

async fn reload(app: &App, project: ProjectId) {
    if let Err(e) = app.reload_routes(project).await {
        // The change is saved; routing picks it up at the next reload or start.
        tracing::warn!(project = project.0, "routes not reloaded: {e}");
    }
}
