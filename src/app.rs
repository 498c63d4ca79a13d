//! The application's long-lived services, shared by the LSP server, the CLI and `demo`: the
//! SQLite store, the credential store, the one HTTP client, the prompt registry, and one router
//! per project.
//!
//! This module assembles; it decides nothing about protocols (no LSP here) and holds no domain
//! rules of its own beyond "which project does this path belong to" and "which providers does
//! this project route to". Opening the credential store (a keychain probe over D-Bus) happens on
//! first use, never at start-up, so `initialize` is never slowed by it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{OnceCell, broadcast};

use crate::config::Settings;
use crate::credentials::env::{Environment, ProcessEnv};
use crate::credentials::{
    self, Account, CredentialError, CredentialStore, FallbackNotice, KeySource,
};
use crate::prompts::{LoadWarning, PromptError, Registry};
use crate::providers::http::{ClientBuildError, HttpClient};
use crate::providers::{self, AiProvider, ProviderConfig, ProviderError};
use crate::routing::router::{RouteEntry, Router, RouterOptions};
use crate::routing::{EuConsent, ProviderRef, RouterEvent};
use crate::store::projects;
use crate::store::providers::ProviderRow;
use crate::store::{self as db, Store, StoreError, StoreOptions};
use crate::usage_log::UsageLog;

/// The ids the layers above name projects and providers by.
pub use crate::store::{ProjectId, ProviderId};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "storyteller.db";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no data directory: set STORYTELLER_DATA_DIR or the storyteller.dataDir setting")]
    NoDataDir,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Prompts(#[from] PromptError),
    #[error("cannot set up HTTPS: {0}")]
    Http(#[from] ClientBuildError),
}

/// Something that changes what the author should see (status bar, messages).
#[derive(Debug, Clone)]
pub enum AppEvent {
    /// A router event of `project`'s router.
    Router {
        project: ProjectId,
        event: RouterEvent,
    },
    /// The providers of `project` were added, edited, removed or reordered.
    ProvidersChanged { project: ProjectId },
    /// A settings change (`euOnly`, `failover`, `rateLimits`) changed the status of `project`'s
    /// router, e.g. which provider is active.
    StatusChanged { project: ProjectId },
}

/// The one rule of which workspace root a file belongs to: the innermost root that contains it
/// (a path-component prefix: `/novel` does not contain `/novel-notes/a.md`); `None` when no root
/// does (the `default` project).
pub fn innermost_root(roots: &[PathBuf], path: &Path) -> Option<PathBuf> {
    roots
        .iter()
        .filter(|root| path.starts_with(root))
        .max_by_key(|root| root.components().count())
        .cloned()
}

/// What a request needs of the project a document belongs to, resolved once by
/// [`App::context_for`]. Cheap to clone.
#[derive(Clone)]
pub struct ProjectContext {
    pub project: ProjectId,
    /// The workspace root (`None`: the `default` project): story notes, `STORY.md`, workspace
    /// prompts and custom actions are looked up under it.
    pub root: Option<PathBuf>,
    /// The project's router.
    pub router: Router,
    /// The prompt templates and their statistics.
    pub registry: Registry,
}

impl std::fmt::Debug for ProjectContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectContext")
            .field("project", &self.project)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// The services of one running process. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    store: Store,
    http: HttpClient,
    registry: Registry,
    env: Arc<dyn Environment>,
    settings: RwLock<Settings>,
    roots: RwLock<Vec<PathBuf>>,
    credentials: OnceCell<credentials::OpenedStore>,
    routers: Mutex<HashMap<ProjectId, Router>>,
    events: broadcast::Sender<AppEvent>,
    /// The request log's recorder, and the provider row id of each kind a project's router
    /// routes to (for the records of the providers its factory builds).
    usage: UsageLog,
    route_ids: Mutex<HashMap<ProjectId, HashMap<providers::ProviderKind, i64>>>,
    /// Per routed project and kind: the named session whose key the route uses, so its
    /// `last_used_at` is touched when a request succeeds with that key.
    session_keys: Mutex<HashMap<(ProjectId, providers::ProviderKind), SessionKey>>,
    /// Project ids by workspace root (`None`: the `default` project), until the roots change.
    projects: Mutex<HashMap<Option<PathBuf>, ProjectId>>,
}

type SessionKey = (db::SessionId, credentials::ApiKey);

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

/// What opening the application produced besides the app itself: texts to show the author once.
#[derive(Debug, Default)]
pub struct StartupReport {
    pub prompt_warnings: Vec<LoadWarning>,
    /// What the credential repair found after a crash (DESIGN.md §7 style texts, once each).
    pub credential_notices: Vec<String>,
}

impl App {
    /// Opens the store (migrating it), loads the prompt templates (bundled + each root's
    /// `.storyteller/prompts/`), and builds the HTTP client. Blocking work runs off the runtime.
    pub async fn open(
        settings: Settings,
        roots: Vec<PathBuf>,
    ) -> Result<(App, StartupReport), AppError> {
        App::open_with_env(settings, roots, Arc::new(ProcessEnv)).await
    }

    /// [`App::open`] with an explicit environment (tests, `demo`).
    pub async fn open_with_env(
        settings: Settings,
        roots: Vec<PathBuf>,
        env: Arc<dyn Environment>,
    ) -> Result<(App, StartupReport), AppError> {
        let data_dir = settings.data_dir().ok_or(AppError::NoDataDir)?;
        let store =
            Store::open_async(data_dir.join(DATABASE_FILE), StoreOptions::default()).await?;
        let (registry, prompt_warnings) = Registry::load(store.clone(), roots.clone()).await?;
        let http = HttpClient::new()?;
        let (events, _) = broadcast::channel(64);
        let usage = UsageLog::start(store.clone());
        let app = App {
            inner: Arc::new(Inner {
                data_dir,
                store,
                http,
                registry,
                env,
                settings: RwLock::new(settings),
                roots: RwLock::new(roots),
                credentials: OnceCell::new(),
                routers: Mutex::new(HashMap::new()),
                events,
                usage,
                route_ids: Mutex::new(HashMap::new()),
                session_keys: Mutex::new(HashMap::new()),
                projects: Mutex::new(HashMap::new()),
            }),
        };
        // What a crash left in the credential journal is admin's to repair
        // (`admin::open`), which fills `credential_notices`.
        Ok((
            app,
            StartupReport {
                prompt_warnings,
                credential_notices: Vec::new(),
            },
        ))
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn env(&self) -> &Arc<dyn Environment> {
        &self.inner.env
    }

    pub fn settings(&self) -> Settings {
        read(&self.inner.settings).clone()
    }

    /// Router events of every project's router, and provider changes.
    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.inner.events.subscribe()
    }

    /// The request log's recorder.
    pub fn usage_log(&self) -> &UsageLog {
        &self.inner.usage
    }

    /// Before the process exits: writes the prompt counts and the request log's queued records,
    /// then checkpoints the database into its file and closes it (DESIGN.md §4: a copy of
    /// `storyteller.db` alone holds the data). Store calls after this fail with `StoreError::Closed`.
    pub async fn close(&self) {
        if let Err(e) = self.registry().write_counts().await {
            tracing::warn!("prompt statistics not written before closing: {e}");
        }
        if !self.inner.usage.flush(Duration::from_secs(2)).await {
            tracing::warn!("request log not fully written before closing");
        }
        if let Err(e) = self.inner.store.close_async().await {
            tracing::warn!("database not checkpointed on close: {e}");
        }
    }

    /// Builds one concrete provider on the shared HTTP client.
    pub fn build_provider(&self, config: &ProviderConfig) -> Arc<dyn AiProvider> {
        providers::build(config, &self.inner.http)
    }

    /// The credential store chosen by the `credentialStore` setting, opened on first use. The
    /// fallback notice, when the file is used, comes back with it (`first_in_process` tells whether
    /// to show it). A later change of the setting takes effect at the next start.
    pub async fn credentials(
        &self,
    ) -> Result<(Arc<dyn CredentialStore>, Option<FallbackNotice>), CredentialError> {
        let choice = read(&self.inner.settings).credential_store;
        let opened = self
            .inner
            .credentials
            .get_or_try_init(|| {
                credentials::open_with_env(choice, &self.inner.data_dir, self.inner.env.clone())
            })
            .await?;
        Ok((opened.store.clone(), opened.fallback.clone()))
    }

    /// Applies new settings to every router, and announces each router whose status changed.
    pub fn apply_settings(&self, settings: &Settings) {
        *write(&self.inner.settings) = settings.clone();
        let routers: Vec<(ProjectId, Router)> = lock(&self.inner.routers)
            .iter()
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        for (project, router) in routers {
            let before = router.status();
            router.apply_settings(settings);
            if router.status() != before {
                let _ = self.inner.events.send(AppEvent::StatusChanged { project });
            }
        }
    }

    /// New workspace roots: the projects of documents are resolved again.
    pub fn set_roots(&self, roots: Vec<PathBuf>) {
        *write(&self.inner.roots) = roots;
        lock(&self.inner.projects).clear();
    }

    pub fn roots(&self) -> Vec<PathBuf> {
        read(&self.inner.roots).clone()
    }

    /// The workspace root a request is for: the innermost root containing `document`
    /// ([`innermost_root`]); without a document, the first root.
    fn root_for(&self, document: Option<&Path>) -> Option<PathBuf> {
        let roots = read(&self.inner.roots);
        match document {
            Some(path) => innermost_root(&roots, path),
            None => roots.first().cloned(),
        }
    }

    /// The project a file belongs to: the innermost workspace root that contains it, else the
    /// `default` project. `None` for commands without a document: the first root's project.
    pub async fn project_for(&self, path: Option<&Path>) -> Result<ProjectId, StoreError> {
        self.project_of_root(self.root_for(path)).await
    }

    /// The project of a workspace root (`None`: the `default` project), cached until the roots
    /// change.
    async fn project_of_root(&self, root: Option<PathBuf>) -> Result<ProjectId, StoreError> {
        if let Some(id) = lock(&self.inner.projects).get(&root) {
            return Ok(*id);
        }
        let key = root.clone();
        let id = self
            .inner
            .store
            .call(move |conn| match root {
                Some(root) => Ok(projects::get_or_create(conn, &root)?.id),
                None => Ok(projects::default_project(conn)?.id),
            })
            .await?;
        lock(&self.inner.projects).insert(key, id);
        Ok(id)
    }

    /// Everything a request about `document` needs of its project, resolved by the one rule
    /// ([`innermost_root`]); `None` for commands without a document (the first root's project).
    pub async fn context_for(&self, document: Option<&Path>) -> Result<ProjectContext, AppError> {
        self.context_of_root(self.root_for(document)).await
    }

    /// The context of a document: its file's project ([`App::context_for`]); an unsaved buffer
    /// (`None`) belongs to the `default` project.
    pub async fn document_context(&self, file: Option<&Path>) -> Result<ProjectContext, AppError> {
        match file {
            Some(path) => self.context_for(Some(path)).await,
            None => self.context_of_root(None).await,
        }
    }

    async fn context_of_root(&self, root: Option<PathBuf>) -> Result<ProjectContext, AppError> {
        let project = self.project_of_root(root.clone()).await?;
        let router = self.router(project).await?;
        Ok(ProjectContext {
            project,
            root,
            router,
            registry: self.inner.registry.clone(),
        })
    }

    /// The router of `project`, created (with its providers loaded) on first use.
    pub async fn router(&self, project: ProjectId) -> Result<Router, AppError> {
        if let Some(router) = lock(&self.inner.routers).get(&project) {
            return Ok(router.clone());
        }
        let entries = self.route_entries(project).await?;
        let consent = self.stored_eu_consent(project).await?;
        let router = {
            let mut routers = lock(&self.inner.routers);
            if let Some(router) = routers.get(&project) {
                // Another task created it while we were reading the store.
                return Ok(router.clone());
            }
            let app = self.clone();
            let factory =
                move |config: &ProviderConfig| -> Result<Arc<dyn AiProvider>, ProviderError> {
                    let id = lock(&app.inner.route_ids)
                        .get(&project)
                        .and_then(|ids| ids.get(&config.kind))
                        .map(|id| db::ProviderId(*id));
                    let provider =
                        app.touching_sessions(project, app.build_provider(config), config);
                    Ok(app.inner.usage.wrap(provider, id))
                };
            self.remember_ids(project, &entries);
            let router = Router::new(
                Arc::new(factory),
                RouterOptions::from_settings(&read(&self.inner.settings)),
            );
            router.set_providers(entries);
            router.set_eu_consent(consent);
            routers.insert(project, router.clone());
            router
        };
        self.forward_events(project, &router);
        Ok(router)
    }

    /// Re-reads the providers (after add, update, remove, setPrimary in `project`) into every
    /// router — a change to the `default` project also changes the projects that inherit it — and
    /// announces the change.
    pub async fn reload_routes(&self, project: ProjectId) -> Result<(), AppError> {
        let routers: Vec<(ProjectId, Router)> = lock(&self.inner.routers)
            .iter()
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        for (routed, router) in routers {
            let entries = self.route_entries(routed).await?;
            self.remember_ids(routed, &entries);
            router.set_providers(entries);
        }
        let _ = self
            .inner
            .events
            .send(AppEvent::ProvidersChanged { project });
        Ok(())
    }

    /// `project`'s stored answer to "Send to … (outside the EU)?".
    async fn stored_eu_consent(&self, project: ProjectId) -> Result<EuConsent, StoreError> {
        let stored = self
            .inner
            .store
            .call(move |conn| db::residency::get(conn, project))
            .await?;
        Ok(stored
            .as_deref()
            .and_then(EuConsent::parse)
            .unwrap_or_default())
    }

    /// `project`'s stored answer, read again (it may have been given from a terminal with
    /// `storyteller-lsp residency` while this process ran) and routed by from the next request.
    pub async fn refresh_eu_consent(&self, project: ProjectId) -> Result<EuConsent, AppError> {
        let consent = self.stored_eu_consent(project).await?;
        self.router(project).await?.set_eu_consent(consent);
        Ok(consent)
    }

    /// `project`'s answer as this process routes by it.
    pub async fn eu_consent(&self, project: ProjectId) -> Result<EuConsent, AppError> {
        Ok(self.stored_eu_consent(project).await?)
    }

    /// Records `project`'s answer (off the runtime) and routes by it from the next request;
    /// `Unanswered` forgets it, so the question is asked again.
    pub async fn set_eu_consent(
        &self,
        project: ProjectId,
        consent: EuConsent,
    ) -> Result<(), AppError> {
        let answer = consent.as_str();
        self.inner
            .store
            .call(move |conn| match consent {
                EuConsent::Unanswered => db::residency::clear(conn, project),
                _ => db::residency::set(conn, project, answer),
            })
            .await?;
        self.router(project).await?.set_eu_consent(consent);
        let _ = self.inner.events.send(AppEvent::StatusChanged { project });
        Ok(())
    }

    /// The author chose `project`'s primary: every router it serves (itself, and those that
    /// inherit its providers) routes to that primary from the next request (DESIGN.md §5).
    /// Call after [`App::reload_routes`].
    pub async fn primary_chosen(&self, project: ProjectId) {
        let routers: Vec<(ProjectId, Router)> = lock(&self.inner.routers)
            .iter()
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        for (routed, router) in routers {
            if self.providers_project(routed).await.ok() == Some(project) {
                router.primary_chosen();
            }
        }
        let _ = self
            .inner
            .events
            .send(AppEvent::ProvidersChanged { project });
    }

    /// The project whose providers serve `project`: itself when it has providers of its own, else
    /// the `default` project. Providers added outside any workspace (the CLI without `--project`,
    /// or an editor with no folder open) are thus the author's defaults for every workspace that
    /// has none of its own.
    pub async fn providers_project(&self, project: ProjectId) -> Result<ProjectId, StoreError> {
        self.inner
            .store
            .call(move |conn| {
                if db::providers::list(conn, project)?.is_empty() {
                    Ok(projects::default_project(conn)?.id)
                } else {
                    Ok(project)
                }
            })
            .await
    }

    /// The key a provider row would use now, and where it comes from.
    pub async fn resolve_key(
        &self,
        row: &ProviderRow,
    ) -> Result<Option<credentials::ResolvedKey>, AppError> {
        let (store, _) = self.credentials().await?;
        let session = match row.session_id {
            Some(id) => {
                let session = self
                    .inner
                    .store
                    .call(move |conn| db::sessions::get(conn, id))
                    .await?;
                if session.is_expired(chrono::Utc::now()) {
                    // An expired session's key is never sent (admin refuses it with a message).
                    tracing::info!(session = id.0, "the provider's session has expired");
                    None
                } else {
                    Account::session(session.kind, session.auth_type, session.name.as_str()).ok()
                }
            }
            None => None,
        };
        Ok(credentials::resolve(
            store.as_ref(),
            row.project_id.0,
            row.kind,
            session.as_ref(),
            self.inner.env.as_ref(),
        )
        .await?)
    }

    /// The ids the router factory of `project` gives its providers' request records.
    fn remember_ids(&self, project: ProjectId, entries: &[RouteEntry]) {
        let ids = entries
            .iter()
            .map(|e| (e.provider.kind, e.provider.id))
            .collect();
        lock(&self.inner.route_ids).insert(project, ids);
    }

    /// `provider` wrapped so that a request that succeeds with a named session's key touches the
    /// session (issue 15), when `config` carries the key of the session its row uses.
    fn touching_sessions(
        &self,
        project: ProjectId,
        provider: Arc<dyn AiProvider>,
        config: &ProviderConfig,
    ) -> Arc<dyn AiProvider> {
        let session = lock(&self.inner.session_keys)
            .get(&(project, config.kind))
            .filter(|(_, key)| config.api_key.as_ref() == Some(key))
            .map(|(id, _)| *id);
        match session {
            Some(id) => Arc::new(crate::usage_log::TouchOnUse::new(
                provider,
                id,
                self.inner.store.clone(),
            )),
            None => provider,
        }
    }

    async fn route_entries(&self, project: ProjectId) -> Result<Vec<RouteEntry>, AppError> {
        let source = self.providers_project(project).await?;
        let rows = self
            .inner
            .store
            .call(move |conn| db::providers::list(conn, source))
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let key = match self.resolve_key(&row).await {
                Ok(resolved) => resolved.map(|r| r.key),
                Err(e) => {
                    // The provider stays routable: it fails with InvalidKey at its first call and
                    // the router moves on, while the author is told why through the error.
                    tracing::warn!(provider = %row.kind, id = row.id.0, "no key available: {e}");
                    None
                }
            };
            {
                let mut session_keys = lock(&self.inner.session_keys);
                match (row.session_id, &key) {
                    (Some(session), Some(key)) => {
                        session_keys.insert((project, row.kind), (session, key.clone()));
                    }
                    _ => {
                        session_keys.remove(&(project, row.kind));
                    }
                }
            }
            let system_key = credentials::env::system_key(row.kind, self.inner.env.as_ref());
            entries.push(RouteEntry {
                provider: ProviderRef {
                    id: row.id.0,
                    kind: row.kind,
                    display_name: row.display_name.clone(),
                },
                is_primary: row.is_primary,
                position: u32::try_from(row.position.max(0)).unwrap_or(u32::MAX),
                is_active: row.is_active,
                eu_resident: crate::providers::catalog::eu_resident(
                    row.kind,
                    &row.endpoint(),
                    row.options.eu_resident,
                ),
                config: row.to_config(key),
                system_key,
            });
        }
        Ok(entries)
    }

    fn forward_events(&self, project: ProjectId, router: &Router) {
        let mut events = router.subscribe();
        let sender = self.inner.events.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let _ = sender.send(AppEvent::Router { project, event });
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "router events dropped: a subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
}

/// `KeySource` of a resolved key, `none` when there is no key at all.
pub fn key_source(resolved: Option<&credentials::ResolvedKey>) -> KeySource {
    resolved.map_or(KeySource::None, |r| r.source)
}

// Poisoning only follows a panic in another thread that held the lock; the data it guards here
// (settings, roots, the router map) stays consistent, so we keep serving rather than cascade.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::env::VarMap;
    use crate::providers::ProviderKind;
    use crate::store::providers::NewProvider;

    async fn app_in(dir: &Path, roots: Vec<PathBuf>) -> App {
        let settings = Settings {
            data_dir: Some(dir.to_path_buf()),
            credential_store: crate::config::CredentialStoreChoice::File,
            ..Settings::default()
        };
        let mut env = VarMap::default();
        env.set(
            "STORYTELLER_CREDENTIALS_KEY",
            "app-test-credentials-key-0001",
        );
        App::open_with_env(settings, roots, Arc::new(env))
            .await
            .unwrap()
            .0
    }

    #[test]
    fn a_path_belongs_to_the_innermost_root_that_holds_it() {
        let roots: Vec<PathBuf> = [
            "/books/novel",
            "/books/novel/part-two/",
            "/books/novel-notes",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        let cases = [
            ("/books/novel/ch1.md", Some("/books/novel")),
            (
                "/books/novel/part-two/ch9.md",
                Some("/books/novel/part-two"),
            ),
            ("/books/novel-notes/a.md", Some("/books/novel-notes")),
            ("/books/novella/a.md", None),
        ];
        for (path, expected) in cases {
            let got = innermost_root(&roots, Path::new(path));
            assert_eq!(got.as_deref(), expected.map(Path::new), "{path}");
        }
    }

    #[tokio::test]
    async fn files_belong_to_the_innermost_root_else_the_default_project() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join("novel");
        let inner = outer.join("book-two");
        let app = app_in(dir.path(), vec![outer.clone(), inner.clone()]).await;

        let in_inner = app.project_for(Some(&inner.join("ch1.md"))).await.unwrap();
        let in_outer = app
            .project_for(Some(&outer.join("notes.md")))
            .await
            .unwrap();
        let elsewhere = app.project_for(Some(Path::new("/tmp/x.md"))).await.unwrap();
        let no_document = app.project_for(None).await.unwrap();

        assert_ne!(in_inner, in_outer);
        assert_eq!(no_document, in_outer, "commands act on the first root");
        let default = app
            .store()
            .call(|c| Ok(projects::default_project(c)?.id))
            .await
            .unwrap();
        assert_eq!(elsewhere, default);
    }

    #[tokio::test]
    async fn a_workspace_without_providers_inherits_the_default_projects() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("novel");
        let app = app_in(dir.path(), vec![root.clone()]).await;
        let workspace = app.project_for(None).await.unwrap();
        let default = app
            .store()
            .call(|c| Ok(projects::default_project(c)?.id))
            .await
            .unwrap();
        assert_ne!(workspace, default);
        let router = app.router(workspace).await.unwrap();
        assert!(router.status().providers.is_empty());

        app.store()
            .call(move |c| {
                db::providers::insert(c, &NewProvider::new(default, ProviderKind::Gemini))
            })
            .await
            .unwrap();
        app.reload_routes(default).await.unwrap();
        assert_eq!(app.providers_project(workspace).await.unwrap(), default);
        let kinds: Vec<_> = router
            .status()
            .providers
            .iter()
            .map(|p| p.provider.kind)
            .collect();
        assert_eq!(
            kinds,
            [ProviderKind::Gemini],
            "inherited from the default project"
        );

        app.store()
            .call(move |c| {
                db::providers::insert(c, &NewProvider::new(workspace, ProviderKind::Claude))
            })
            .await
            .unwrap();
        app.reload_routes(workspace).await.unwrap();
        assert_eq!(app.providers_project(workspace).await.unwrap(), workspace);
        let kinds: Vec<_> = router
            .status()
            .providers
            .iter()
            .map(|p| p.provider.kind)
            .collect();
        assert_eq!(
            kinds,
            [ProviderKind::Claude],
            "its own providers replace the inherited ones"
        );
    }

    #[tokio::test]
    async fn a_router_sees_the_projects_providers_and_reloads_them() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path(), vec![]).await;
        let project = app.project_for(None).await.unwrap();
        let router = app.router(project).await.unwrap();
        assert!(router.status().providers.is_empty());

        app.store()
            .call(move |c| {
                db::providers::insert(c, &NewProvider::new(project, ProviderKind::Claude))
            })
            .await
            .unwrap();
        app.reload_routes(project).await.unwrap();
        let status = router.status();
        assert_eq!(status.providers.len(), 1);
        assert_eq!(status.providers[0].provider.kind, ProviderKind::Claude);
    }
}
