//! Prompt templates: the bundled markdown files (`prompts/*.md`), workspace overrides in
//! `<workspace>/.storyteller/prompts/`, their statistics in SQLite, rendering and A/B selection.
//!
//! A template is identified by (name, version). A workspace file with the same name and version
//! as a bundled one replaces it, and the bundle's other versions of that name leave the pool; a
//! new version of a bundled name (replacing none) adds an A/B variant. A workspace file with
//! `action: <title>` front matter is also a code action of its workspace
//! ([`Registry::custom_actions`]). Every declared variable must be one the template's user
//! supplies ([`INLINE_VARIABLES`], [`ACTION_VARIABLES`]), or the file is skipped with a warning. At load every template is
//! upserted into `prompt_templates`, so usage and success counts survive restarts (they are kept
//! per (name, version): bump the version to measure a changed prompt separately).
//!
//! Statistics are written best-effort: a count that meets another process's lock on the
//! database is kept in memory and written with the next one, never waited for (a suggestion's
//! count must not hold up the author's next command). A shown suggestion's use is only counted
//! in memory and written with the others at most [`COUNT_WRITE_DELAY`] later (one transaction
//! per burst of completions, not one per suggestion); a success, a listing and
//! [`Registry::write_counts`] (on close) write whatever waits first.
//!
//! This module decides what to ask, never how: it knows no provider and no LSP. It must never
//! log a rendered prompt (it holds manuscript text).

pub(crate) mod bundled;
pub mod stats;
mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;

use crate::store::prompts::{self as records, CountDelta, TemplateRecord, TemplateUpsert};
use crate::store::{Store, StoreError};

pub use template::{
    CustomAction, CustomPlacement, LoadWarning, RenderError, Template, TemplateSource, Vars, parse,
};

/// Longest a counted use waits in memory before it is written.
pub const COUNT_WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Where a workspace keeps its template overrides, relative to its root.
pub const WORKSPACE_DIR: &str = ".storyteller/prompts";

/// The ghost-text template (its A/B versions share the name).
pub const INLINE_TEMPLATE: &str = "inline_continuation";

/// What ghost text (`inline_continuation`) supplies to its template.
pub const INLINE_VARIABLES: &[&str] = &[
    "before", "after", "heading", "notes", "story", "language", "previous",
];

/// What every action, built-in or custom, supplies: the ghost-text variables and these.
pub const ACTION_VARIABLES: &[&str] = &[
    "before",
    "after",
    "heading",
    "notes",
    "story",
    "language",
    "previous",
    "selection",
    "tone",
    "character",
    "instruction",
];

/// The variables a template can be given: ghost text's for [`INLINE_TEMPLATE`], an action's for
/// any other.
pub fn supplied_variables(template_name: &str) -> &'static [&'static str] {
    if template_name == INLINE_TEMPLATE {
        INLINE_VARIABLES
    } else {
        ACTION_VARIABLES
    }
}

/// A warning for the first declared variable nobody supplies (the template would fail at use).
fn unsupplied_variable(t: &Template) -> Option<LoadWarning> {
    let supplied = supplied_variables(&t.name);
    let unknown = t
        .variables
        .iter()
        .find(|v| !supplied.contains(&v.as_str()))?;
    let who = if t.name == INLINE_TEMPLATE {
        "ghost text"
    } else {
        "an action"
    };
    Some(LoadWarning {
        file: t.source.to_string(),
        line: None,
        message: format!(
            "declares the variable `{unknown}`, which {who} does not supply (it supplies: {}); \
             this file is not used",
            supplied.join(", ")
        ),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("no prompt template named `{0}`")]
    UnknownTemplate(String),
    #[error("prompt template `{name}` has no version {version}")]
    UnknownVersion { name: String, version: u32 },
    #[error(
        "no version of prompt template `{0}` can be chosen: every version is inactive or has weight 0"
    )]
    NoActiveVersion(String),
    #[error("a weight must be a number of 0 or more, got {0}")]
    InvalidWeight(f64),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("loading prompt templates failed: {0}")]
    TaskFailed(String),
}

/// One template version as `storyteller.prompts.list` and `storyteller-lsp prompts list` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSummary {
    pub name: String,
    pub version: u32,
    pub description: String,
    pub variables: Vec<String>,
    pub active: bool,
    pub weight: f64,
    /// Suggestions shown, actions applied.
    pub usage_count: u64,
    /// Accepted whole (ghost text) or kept by the author (actions, judged later).
    pub success_count: u64,
    /// Ghost suggestions accepted in part (word or line accept).
    pub partial_count: u64,
    /// Accepted shares / uses (a partial accept counts with its share), 0 when never used.
    pub success_rate: f64,
    /// Whether the rate, or the difference between this template's A/B versions, means anything
    /// yet (see [`stats`]); the same for every version of a template.
    pub meaningful: bool,
    /// Why (or why not), in words.
    pub note: String,
    /// A custom action's title (front matter `action`), absent for other templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A custom action's placement: `cursor`, `replace` or `after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<&'static str>,
    /// "prompts/x.md (bundled)" or the workspace file's path.
    pub source: String,
}

/// A loaded template with the activation in force (the file's, or the author's choice).
#[derive(Debug, Clone)]
struct Variant {
    template: Arc<Template>,
    active: bool,
    weight: f64,
}

/// The loaded templates, their activation, and the statistics behind them. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// name → versions, ascending.
    variants: RwLock<BTreeMap<String, Vec<Variant>>>,
    rng: Mutex<Box<dyn RngCore + Send>>,
    /// Counts not written yet: uses waiting for their batch, or counts that met another
    /// process's lock.
    unsaved: Mutex<HashMap<(String, u32), CountDelta>>,
    /// Whether a delayed write of `unsaved` is already on its way.
    write_scheduled: AtomicBool,
}

fn merge(into: &mut CountDelta, add: &CountDelta) {
    into.uses += add.uses;
    into.successes += add.successes;
    into.partials += add.partials;
    into.weight += add.weight;
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.read().keys().cloned().collect();
        f.debug_struct("Registry")
            .field("templates", &names)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Loads the bundled templates and the overrides of each workspace root, records them in the
    /// store, and returns the registry with one warning per file that was skipped.
    pub async fn load(
        store: Store,
        workspace_roots: Vec<PathBuf>,
    ) -> Result<(Registry, Vec<LoadWarning>), PromptError> {
        tokio::task::spawn_blocking(move || Registry::load_blocking(store, &workspace_roots))
            .await
            .map_err(|e| PromptError::TaskFailed(e.to_string()))?
    }

    /// [`Registry::load`] on the calling thread, for the CLI.
    pub fn load_blocking(
        store: Store,
        workspace_roots: &[PathBuf],
    ) -> Result<(Registry, Vec<LoadWarning>), PromptError> {
        let (templates, warnings) = collect(workspace_roots);
        let records = store.blocking(|conn| {
            let tx = conn.transaction()?;
            let mut records = Vec::with_capacity(templates.len());
            for t in &templates {
                records.push(records::upsert(
                    &tx,
                    &TemplateUpsert {
                        name: &t.name,
                        version: t.version,
                        template: &t.body,
                        variables: &t.variables,
                        active: t.declared_active,
                        weight: t.declared_weight,
                    },
                )?);
            }
            crate::failpoint::reached("prompts:before_commit");
            tx.commit()?;
            Ok(records)
        })?;

        let mut variants: BTreeMap<String, Vec<Variant>> = BTreeMap::new();
        for (template, record) in templates.into_iter().zip(records) {
            variants
                .entry(template.name.clone())
                .or_default()
                .push(Variant {
                    template: Arc::new(template),
                    active: record.active,
                    weight: record.weight,
                });
        }
        for versions in variants.values_mut() {
            versions.sort_by_key(|v| v.template.version);
        }
        let registry = Registry {
            inner: Arc::new(Inner {
                store,
                variants: RwLock::new(variants),
                rng: Mutex::new(Box::new(StdRng::from_os_rng())),
                unsaved: Mutex::new(HashMap::new()),
                write_scheduled: AtomicBool::new(false),
            }),
        };
        Ok((registry, warnings))
    }

    /// Replaces the random source of A/B selection (tests pass a seeded one).
    pub fn set_rng(&self, rng: impl RngCore + Send + 'static) {
        *self.lock_rng() = Box::new(rng);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<Variant>>> {
        // A panic elsewhere cannot leave the map half-written (every write replaces whole
        // values), so a poisoned lock is still consistent.
        self.inner
            .variants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_rng(&self) -> std::sync::MutexGuard<'_, Box<dyn RngCore + Send>> {
        self.inner
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The template names loaded, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// One loaded version.
    pub fn template(&self, name: &str, version: u32) -> Option<Arc<Template>> {
        self.read()
            .get(name)?
            .iter()
            .find(|v| v.template.version == version)
            .map(|v| Arc::clone(&v.template))
    }

    /// The custom actions (front matter `action`) of the workspace at `root`, by title: each
    /// template name once, with its newest active version's title and placement.
    pub fn custom_actions(&self, root: &Path) -> Vec<(String, CustomAction)> {
        let dir = root.join(WORKSPACE_DIR);
        let map = self.read();
        let mut found: Vec<(String, CustomAction)> = map
            .iter()
            .filter_map(|(name, versions)| {
                let newest = versions.iter().rev().find(|v| {
                    v.active
                        && v.template.action.is_some()
                        && matches!(&v.template.source, TemplateSource::Workspace(p) if p.starts_with(&dir))
                })?;
                Some((name.clone(), newest.template.action.clone()?))
            })
            .collect();
        found.sort_by(|a, b| a.1.title.cmp(&b.1.title).then_with(|| a.0.cmp(&b.0)));
        found
    }

    /// The custom action `name` of the workspace at `root`, if it is one.
    pub fn custom_action(&self, root: &Path, name: &str) -> Option<CustomAction> {
        self.custom_actions(root)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, action)| action)
    }

    /// Chooses a version of `name` among its active ones, with probability proportional to
    /// weight. A version of weight 0 is never chosen.
    pub fn select(&self, name: &str) -> Result<Arc<Template>, PromptError> {
        let map = self.read();
        let versions = map
            .get(name)
            .ok_or_else(|| PromptError::UnknownTemplate(name.to_string()))?;
        let weights: Vec<f64> = versions
            .iter()
            .map(|v| if v.active { v.weight } else { 0.0 })
            .collect();
        let draw: f64 = self.lock_rng().random();
        let chosen = choose_weighted(&weights, draw)
            .ok_or_else(|| PromptError::NoActiveVersion(name.to_string()))?;
        Ok(Arc::clone(&versions[chosen].template))
    }

    /// Renders `template` with `vars` (see [`Template::render`]).
    pub fn render(&self, template: &Template, vars: &Vars<'_>) -> Result<String, PromptError> {
        Ok(template.render(vars)?)
    }

    /// Every loaded version with its activation and statistics, by name then version.
    pub async fn list(&self) -> Result<Vec<TemplateSummary>, PromptError> {
        if let Err(e) = self.write_counts().await {
            tracing::debug!("prompt counts not written before listing: {e}");
        }
        let records = self.inner.store.call(|conn| records::list(conn)).await?;
        Ok(self.summaries(records))
    }

    /// [`Registry::list`] on the calling thread, for the CLI.
    pub fn list_blocking(&self) -> Result<Vec<TemplateSummary>, PromptError> {
        let records = self.inner.store.blocking(|conn| records::list(conn))?;
        Ok(self.summaries(records))
    }

    fn summaries(&self, records: Vec<TemplateRecord>) -> Vec<TemplateSummary> {
        let by_key: BTreeMap<(String, u32), TemplateRecord> = records
            .into_iter()
            .map(|r| ((r.name.clone(), r.version), r))
            .collect();
        let map = self.read();
        let mut summaries = Vec::new();
        for versions in map.values() {
            let sample = |v: &Variant| {
                let record = by_key.get(&(v.template.name.clone(), v.template.version));
                stats::Sample {
                    uses: record.map_or(0, |r| r.usage_count),
                    accepted: record.map_or(0.0, |r| r.success_weight),
                }
            };
            // The A/B pool: what selection can choose; without one, every version.
            let pool: Vec<stats::Sample> = versions
                .iter()
                .filter(|v| v.active && v.weight > 0.0)
                .map(sample)
                .collect();
            let verdict = if pool.is_empty() {
                stats::judge(&versions.iter().map(sample).collect::<Vec<_>>())
            } else {
                stats::judge(&pool)
            };
            summaries.extend(versions.iter().map(|v| {
                let t = &v.template;
                let record = by_key.get(&(t.name.clone(), t.version));
                TemplateSummary {
                    name: t.name.clone(),
                    version: t.version,
                    description: t.description.clone(),
                    variables: t.variables.clone(),
                    active: v.active,
                    weight: v.weight,
                    usage_count: record.map_or(0, |r| r.usage_count),
                    success_count: record.map_or(0, |r| r.success_count),
                    partial_count: record.map_or(0, |r| r.partial_count),
                    success_rate: record.map_or(0.0, |r| r.success_rate),
                    meaningful: verdict.meaningful,
                    note: verdict.note.clone(),
                    action: t.action.as_ref().map(|a| a.title.clone()),
                    placement: t.action.as_ref().map(|a| a.placement.as_str()),
                    source: t.source.to_string(),
                }
            }));
        }
        summaries
    }

    /// `storyteller.prompts.setActive`. Without a weight, `version` becomes the only active
    /// version of `name` (the others are deactivated). With a weight, `version` joins the A/B
    /// pool with that weight and the other versions keep theirs. The choice is stored and
    /// outlives restarts.
    pub async fn set_active(
        &self,
        name: &str,
        version: u32,
        weight: Option<f64>,
    ) -> Result<(), PromptError> {
        if let Some(w) = weight
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(PromptError::InvalidWeight(w));
        }
        let plan = self.activation_plan(name, version, weight)?;
        let stored = plan.clone();
        let name_owned = name.to_string();
        self.inner
            .store
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (v, active, w) in &stored {
                    records::set_activation(&tx, &name_owned, *v, *active, *w)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;

        let mut map = self
            .inner
            .variants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(versions) = map.get_mut(name) {
            for variant in versions.iter_mut() {
                if let Some((_, active, w)) =
                    plan.iter().find(|(v, _, _)| *v == variant.template.version)
                {
                    variant.active = *active;
                    variant.weight = *w;
                }
            }
        }
        Ok(())
    }

    /// The (version, active, weight) rows `set_active` writes.
    fn activation_plan(
        &self,
        name: &str,
        version: u32,
        weight: Option<f64>,
    ) -> Result<Vec<(u32, bool, f64)>, PromptError> {
        let map = self.read();
        let versions = map
            .get(name)
            .ok_or_else(|| PromptError::UnknownTemplate(name.to_string()))?;
        let target = versions
            .iter()
            .find(|v| v.template.version == version)
            .ok_or_else(|| PromptError::UnknownVersion {
                name: name.to_string(),
                version,
            })?;
        Ok(match weight {
            Some(w) => vec![(version, true, w)],
            None => {
                // "Use this version": a weight of 0 would make it unselectable, so it gets 1.
                let w = if target.weight > 0.0 {
                    target.weight
                } else {
                    1.0
                };
                versions
                    .iter()
                    .map(|v| {
                        if v.template.version == version {
                            (version, true, w)
                        } else {
                            (v.template.version, false, v.weight)
                        }
                    })
                    .collect()
            }
        })
    }

    /// Counts one suggestion shown with this version: in memory now, written with the others
    /// within [`COUNT_WRITE_DELAY`] (kept for later if the database is locked).
    pub async fn record_usage(&self, name: &str, version: u32) -> Result<(), PromptError> {
        self.count_later(
            name,
            version,
            CountDelta {
                uses: 1,
                ..CountDelta::default()
            },
        )
    }

    /// Adds `counts` to what waits in memory and makes sure a write follows within
    /// [`COUNT_WRITE_DELAY`].
    fn count_later(&self, name: &str, version: u32, counts: CountDelta) -> Result<(), PromptError> {
        self.known(name, version)?;
        merge(
            self.lock_unsaved()
                .entry((name.to_string(), version))
                .or_default(),
            &counts,
        );
        if !self.inner.write_scheduled.swap(true, Ordering::AcqRel) {
            let registry = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(COUNT_WRITE_DELAY).await;
                registry
                    .inner
                    .write_scheduled
                    .store(false, Ordering::Release);
                if let Err(e) = registry.write_counts().await {
                    tracing::debug!("prompt usage counts not written: {e}");
                }
            });
        }
        Ok(())
    }

    /// Writes every count waiting in memory (before the store closes, and before a listing).
    /// Counts that meet another process's lock stay for the next write.
    pub async fn write_counts(&self) -> Result<(), PromptError> {
        self.write_unsaved().await.map(|_| ())
    }

    fn known(&self, name: &str, version: u32) -> Result<(), PromptError> {
        if self.template(name, version).is_some() {
            return Ok(());
        }
        Err(match self.read().contains_key(name) {
            true => PromptError::UnknownVersion {
                name: name.to_string(),
                version,
            },
            false => PromptError::UnknownTemplate(name.to_string()),
        })
    }

    /// Counts one accepted or applied suggestion; `false` if it was not counted because every
    /// counted use had already succeeded. Kept for later (and `true`) if the database is locked.
    pub async fn record_success(&self, name: &str, version: u32) -> Result<bool, PromptError> {
        self.count(
            name,
            version,
            CountDelta {
                successes: 1,
                weight: 1.0,
                ..CountDelta::default()
            },
        )
        .await
    }

    /// Counts one suggestion accepted in part, with the share taken (0–1, clamped): in memory
    /// now, written like a use.
    pub async fn record_partial(
        &self,
        name: &str,
        version: u32,
        share: f64,
    ) -> Result<(), PromptError> {
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.count_later(
            name,
            version,
            CountDelta {
                partials: 1,
                weight: share,
                ..CountDelta::default()
            },
        )
    }

    /// Adds `counts` to what waits to be written, then writes everything waiting, unless another
    /// process holds the database (then it waits for the next count). Returns whether this
    /// count's successes were counted (`true` when kept for later).
    async fn count(
        &self,
        name: &str,
        version: u32,
        counts: CountDelta,
    ) -> Result<bool, PromptError> {
        self.known(name, version)?;
        let key = (name.to_string(), version);
        merge(self.lock_unsaved().entry(key.clone()).or_default(), &counts);
        Ok(match self.write_unsaved().await? {
            Some(counted) => counts.successes == 0 || counted.get(&key).is_some_and(|n| *n > 0),
            // Kept for later: counted as far as the caller can tell.
            None => true,
        })
    }

    /// Writes everything in `unsaved`: the successes counted per (name, version), or `None`
    /// when another process holds the database (the counts stay for the next write).
    async fn write_unsaved(&self) -> Result<Option<HashMap<(String, u32), u64>>, PromptError> {
        let batch: Vec<((String, u32), CountDelta)> = self.lock_unsaved().drain().collect();
        if batch.is_empty() {
            return Ok(Some(HashMap::new()));
        }
        let attempt = batch.clone();
        let written = self
            .inner
            .store
            .call_briefly(move |conn| {
                // IMMEDIATE: take the write lock first, so a short wait for another writer goes
                // through the busy handler (a read upgraded to a write would fail at once).
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut counted = HashMap::new();
                for ((name, version), c) in &attempt {
                    match records::add_counts(&tx, name, *version, c) {
                        Ok(n) => {
                            counted.insert((name.clone(), *version), n);
                        }
                        // Removed by another process since it was loaded: nowhere to count.
                        Err(StoreError::UnknownTemplate { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                tx.commit()?;
                Ok(counted)
            })
            .await;
        match written {
            Ok(counted) => Ok(Some(counted)),
            Err(e) => {
                // Kept, whatever the failure: the counts are small and written with the next.
                let mut unsaved = self.lock_unsaved();
                for (key, c) in batch {
                    merge(unsaved.entry(key).or_default(), &c);
                }
                match e {
                    StoreError::Locked { .. } => {
                        tracing::debug!("the database is locked; prompt statistics kept for later");
                        Ok(None)
                    }
                    other => Err(other.into()),
                }
            }
        }
    }

    fn lock_unsaved(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), CountDelta>> {
        // Counts are whole after every write to the map: a poisoned lock is still consistent.
        self.inner
            .unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The index chosen by `draw` (uniform in [0, 1)) among `weights`, proportionally; `None` when no
/// weight is positive. Zero (and invalid) weights are never chosen.
pub fn choose_weighted(weights: &[f64], draw: f64) -> Option<usize> {
    let usable = |w: f64| w.is_finite() && w > 0.0;
    let total: f64 = weights.iter().copied().filter(|w| usable(*w)).sum();
    if total <= 0.0 {
        return None;
    }
    let target = draw.clamp(0.0, 1.0) * total;
    let mut cumulative = 0.0;
    let mut last = None;
    for (i, w) in weights.iter().copied().enumerate() {
        if !usable(w) {
            continue;
        }
        cumulative += w;
        last = Some(i);
        if target < cumulative {
            return Some(i);
        }
    }
    // Rounding can leave `target` a hair above the sum: the last usable index.
    last
}

/// Every valid template from the bundle and the workspaces, later sources replacing earlier
/// ones with the same (name, version), plus a warning per skipped file.
///
/// A workspace file that replaces a bundled (name, version) takes the name over: the bundle's
/// other versions of that name leave the A/B pool, so only the author's text is ever rendered. A
/// workspace file with a new version of a bundled name (and no replacement) joins the bundle's
/// pool as an A/B variant.
fn collect(workspace_roots: &[PathBuf]) -> (Vec<Template>, Vec<LoadWarning>) {
    let mut warnings = Vec::new();
    let mut chosen: BTreeMap<(String, u32), Template> = BTreeMap::new();

    for (file, text) in bundled::FILES {
        match parse(TemplateSource::Bundled(file), text) {
            Ok(t) => match unsupplied_variable(&t) {
                Some(w) => warnings.push(w),
                None => {
                    chosen.insert((t.name.clone(), t.version), t);
                }
            },
            Err(w) => warnings.push(w),
        }
    }
    let mut taken_over: BTreeSet<String> = BTreeSet::new();
    for root in workspace_roots {
        let mut seen_here: BTreeMap<(String, u32), PathBuf> = BTreeMap::new();
        for (path, text) in workspace_files(&root.join(WORKSPACE_DIR), &mut warnings) {
            let t = match parse(TemplateSource::Workspace(path.clone()), &text) {
                Ok(t) => t,
                Err(w) => {
                    warnings.push(w);
                    continue;
                }
            };
            if let Some(w) = unsupplied_variable(&t) {
                warnings.push(w);
                continue;
            }
            let key = (t.name.clone(), t.version);
            if let Some(first) = seen_here.get(&key) {
                warnings.push(LoadWarning {
                    file: path.display().to_string(),
                    line: None,
                    message: format!(
                        "`{}` version {} is already defined by {}; this file is ignored",
                        t.name,
                        t.version,
                        first.display()
                    ),
                });
                continue;
            }
            seen_here.insert(key.clone(), path);
            if chosen
                .get(&key)
                .is_some_and(|old| matches!(old.source, TemplateSource::Bundled(_)))
            {
                taken_over.insert(t.name.clone());
            }
            chosen.insert(key, t);
        }
    }
    chosen.retain(|(name, _), t| {
        !(taken_over.contains(name) && matches!(t.source, TemplateSource::Bundled(_)))
    });
    (chosen.into_values().collect(), warnings)
}

/// The `.md` files of a workspace prompt directory, by file name. A missing directory is normal
/// (no overrides); an unreadable one or file is a warning.
fn workspace_files(dir: &Path, warnings: &mut Vec<LoadWarning>) -> Vec<(PathBuf, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warnings.push(LoadWarning {
                file: dir.display().to_string(),
                line: None,
                message: format!("cannot read the prompt directory: {e}"),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Some((path, text)),
            Err(e) => {
                warnings.push(LoadWarning {
                    file: path.display().to_string(),
                    line: None,
                    message: format!("cannot read the file: {e}"),
                });
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_choice_follows_the_cumulative_weights() {
        let weights = [1.0, 0.0, 3.0];
        let cases = [
            (0.0, Some(0)),
            (0.24, Some(0)),
            (0.25, Some(2)),
            (0.999_999, Some(2)),
            (1.0, Some(2)),
        ];
        for (draw, expected) in cases {
            assert_eq!(choose_weighted(&weights, draw), expected, "draw {draw}");
        }
    }

    #[test]
    fn zero_negative_and_nan_weights_are_never_chosen() {
        assert_eq!(choose_weighted(&[0.0, 0.0], 0.5), None);
        assert_eq!(choose_weighted(&[], 0.5), None);
        for step in 0..=100 {
            let draw = f64::from(step) / 100.0;
            assert_eq!(
                choose_weighted(&[0.0, f64::NAN, -1.0, 2.0, 0.0], draw),
                Some(3)
            );
        }
    }

    #[test]
    fn every_bundled_template_parses_cleanly() {
        let (templates, warnings) = collect(&[]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(templates.len(), bundled::FILES.len());
        for t in &templates {
            assert!(!t.description.is_empty(), "{} has no description", t.name);
        }
    }

    #[test]
    fn the_bundle_lists_every_file_in_the_prompts_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".md"))
            .collect();
        on_disk.sort();
        let mut bundled: Vec<String> = bundled::FILES.iter().map(|(f, _)| f.to_string()).collect();
        bundled.sort();
        assert_eq!(on_disk, bundled);
    }
}
