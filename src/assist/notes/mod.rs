//! Story notes: the author's files about characters, places and facts (`contextFiles` globs under
//! each workspace root; by default `notes/`, `characters/`, `places/`, `locations/` and
//! `STORY.md`), indexed in memory so that each request picks the relevant ones without touching
//! the disk.
//!
//! The index is filled at start-up and refreshed file by file when a note is opened, saved or
//! changed on disk (file watching) — never re-read per keystroke. Reading files is blocking work:
//! callers run the `*_blocking` methods off the async runtime (see [`NotesIndex::index_root`]).
//! Choosing notes ([`NotesIndex::relevant`]) is in-memory and cheap: names are stemmed at index
//! time ([`matching`]).
//!
//! The author decides ([`front_matter`]): `include: never` keeps a note out of every prompt,
//! `include: always` puts it first in every prompt, and the rest (`mentioned`) go in only when
//! one of their names — title, aliases, file name — is near the cursor, closest and most
//! mentioned first. `STORY.md` at a root is the story bible: listed, never chosen here, its text
//! given whole by [`NotesIndex::story_source`].
//!
//! Must never: follow the walk outside a root, read huge files whole, log note text.

pub mod front_matter;
pub mod matching;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use globset::{GlobSet, GlobSetBuilder};
use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

pub use front_matter::Include;
use matching::{Matcher, Name, Side};

/// The most of one note that is kept (a note is a page, not a novel).
const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most notes indexed per root: a workspace that matches more is probably misconfigured.
const MAX_NOTES_PER_ROOT: usize = 2_000;
/// How deep the walk goes below a root.
const MAX_DEPTH: usize = 12;
/// An `always` note longer than this is sent as its summary, when it has one: it is in every
/// prompt and must not crowd out the notes the scene names.
const ALWAYS_LONG_CHARS: usize = 400;
/// The story bible's file name at a root.
pub const STORY_FILE: &str = "STORY.md";

#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("contextFiles: {pattern:?} is not a valid glob: {reason}")]
    InvalidGlob { pattern: String, reason: String },
    #[error("indexing story notes failed: {0}")]
    TaskFailed(String),
}

/// One indexed note.
#[derive(Clone)]
pub struct Note {
    /// Relative to its root, `/`-separated.
    pub path: String,
    pub title: String,
    /// Title, aliases and file name, each once.
    names: Vec<Name>,
    pub include: Include,
    pub summary: Option<String>,
    /// What was wrong with its front matter.
    pub problem: Option<String>,
    text: String,
    /// The whole file, for the story bible only.
    source: Option<String>,
}

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Note")
            .field("path", &self.path)
            .field("include", &self.include)
            .field("chars", &self.text.chars().count())
            .finish()
    }
}

impl Note {
    /// Builds a note from its relative path and text.
    pub fn new(path: &str, text: &str) -> Note {
        let text = truncate_at_char(text, MAX_NOTE_BYTES);
        let parsed = front_matter::parse(text);
        let stem = path
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".md")
            .trim_end_matches(".txt")
            .trim_end_matches(".markdown")
            .replace(['-', '_'], " ");
        let title = parsed
            .title
            .clone()
            .unwrap_or_else(|| stem.trim().to_string());
        let mut names: Vec<Name> = Vec::new();
        let candidates = std::iter::once(Name::parse_without_article(&title))
            .chain(parsed.aliases.iter().map(|a| Name::parse(a)))
            .chain(std::iter::once(Name::parse_without_article(&stem)));
        for name in candidates.flatten() {
            if !names.iter().any(|n| n.same_words(&name)) {
                names.push(name);
            }
        }
        let story_bible = is_story_bible(path);
        Note {
            path: path.to_string(),
            title,
            names,
            include: parsed.include,
            summary: parsed.summary,
            problem: parsed.problem,
            text: parsed.body,
            source: story_bible.then(|| text.to_string()),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Title and aliases (and the file name when it says something else), as written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| n.text.as_str())
    }

    pub fn is_story_bible(&self) -> bool {
        self.source.is_some()
    }

    /// Whether it can ever be chosen by [`NotesIndex::relevant`].
    fn matchable(&self) -> bool {
        self.include == Include::Mentioned && !self.is_story_bible()
    }
}

fn is_story_bible(path: &str) -> bool {
    path.eq_ignore_ascii_case(STORY_FILE)
}

/// Why a note would or would not be in a prompt at a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Inclusion {
    Always,
    Mentioned {
        /// The note's name that was found.
        name: String,
        /// The words as they stand in the text.
        matched: String,
        distance: usize,
        side: Side,
    },
    Never,
    NotMentioned,
    StoryBible,
}

impl Inclusion {
    /// Whether the note is chosen (the budget may still leave the last ones out).
    pub fn included(&self) -> bool {
        !matches!(self, Inclusion::Never | Inclusion::NotMentioned)
    }

    /// The reason in words, for the author.
    pub fn describe(&self) -> String {
        use crate::messages::notes;
        match self {
            Inclusion::Always => notes::ALWAYS.to_string(),
            Inclusion::Mentioned {
                matched,
                distance,
                side,
                ..
            } => notes::mentioned(matched, *distance, *side == Side::Before),
            Inclusion::Never => notes::NEVER.to_string(),
            Inclusion::NotMentioned => notes::NOT_MENTIONED.to_string(),
            Inclusion::StoryBible => notes::STORY_BIBLE.to_string(),
        }
    }
}

/// One note as `storyteller.notes.list` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteListing {
    pub path: String,
    pub title: String,
    pub names: Vec<String>,
    pub include: Include,
    pub story_bible: bool,
    pub has_summary: bool,
    pub chars: usize,
    pub problem: Option<String>,
    /// Only when asked about a position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_position: Option<AtPosition>,
}

/// Whether a note would be in a prompt at the position asked about, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AtPosition {
    pub included: bool,
    /// 1 for the first note of the prompt; absent when not included.
    pub rank: Option<usize>,
    pub why: String,
    #[serde(flatten)]
    pub inclusion: Inclusion,
}

/// The notes of one root as `storyteller.notes.list` shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootListing {
    pub root: PathBuf,
    pub patterns: Vec<String>,
    pub notes: Vec<NoteListing>,
}

struct RootNotes {
    patterns: Vec<String>,
    globs: GlobSet,
    /// By relative path, so the order of equal scores is stable.
    notes: BTreeMap<String, Note>,
    /// The names of the `mentioned` notes; `matched[i]` is the path of entry `i`.
    matcher: Matcher,
    matched: Vec<String>,
}

impl RootNotes {
    fn new(patterns: Vec<String>, globs: GlobSet, notes: BTreeMap<String, Note>) -> RootNotes {
        let mut root = RootNotes {
            patterns,
            globs,
            notes,
            matcher: Matcher::default(),
            matched: Vec::new(),
        };
        root.rebuild_matcher();
        root
    }

    /// After any change of `notes` (a few dozen notes: cheap, and never per keystroke).
    fn rebuild_matcher(&mut self) {
        let matchable: Vec<&Note> = self.notes.values().filter(|n| n.matchable()).collect();
        self.matched = matchable.iter().map(|n| n.path.clone()).collect();
        self.matcher = Matcher::new(matchable.iter().map(|n| n.names.clone()).collect());
    }

    /// The notes a prompt at this position carries, in order, with why.
    fn plan(&self, before: &str, after: &str) -> Vec<(&Note, Inclusion)> {
        let mut chosen: Vec<(&Note, Inclusion)> = self
            .notes
            .values()
            .filter(|n| n.include == Include::Always && !n.is_story_bible())
            .map(|n| (n, Inclusion::Always))
            .collect();
        // Per note: its score (closer and more hits weigh more) and its closest hit.
        let mut scored: HashMap<usize, (f64, matching::Hit)> = HashMap::new();
        for hit in self.matcher.find(before, after) {
            let weight = 100.0 / (100.0 + hit.distance as f64);
            let entry = scored.entry(hit.entry).or_insert((0.0, hit.clone()));
            entry.0 += weight;
            if hit.distance < entry.1.distance {
                entry.1 = hit;
            }
        }
        let mut ranked: Vec<(f64, matching::Hit)> = scored.into_values().collect();
        ranked.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.distance.cmp(&b.1.distance))
                .then_with(|| a.1.entry.cmp(&b.1.entry))
        });
        for (_, hit) in ranked {
            let Some(note) = self.matched.get(hit.entry).and_then(|p| self.notes.get(p)) else {
                continue;
            };
            let name = self
                .matcher
                .names(hit.entry)
                .get(hit.name)
                .map_or_else(String::new, |n| n.text.clone());
            chosen.push((
                note,
                Inclusion::Mentioned {
                    name,
                    matched: hit.matched,
                    distance: hit.distance,
                    side: hit.side,
                },
            ));
        }
        chosen
    }
}

/// The notes of every workspace root. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct NotesIndex {
    roots: Arc<RwLock<HashMap<PathBuf, RootNotes>>>,
}

impl std::fmt::Debug for NotesIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roots = self.read();
        f.debug_struct("NotesIndex")
            .field("roots", &roots.len())
            .field(
                "notes",
                &roots.values().map(|r| r.notes.len()).sum::<usize>(),
            )
            .finish()
    }
}

/// Compiles `patterns` (relative to a root; `**` crosses directories, `*` does not).
pub fn compile(patterns: &[String]) -> Result<GlobSet, NotesError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .map_err(|e| NotesError::InvalidGlob {
                pattern: pattern.clone(),
                reason: e.kind().to_string(),
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| NotesError::InvalidGlob {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

impl NotesIndex {
    pub fn new() -> Self {
        NotesIndex::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PathBuf, RootNotes>> {
        // Values are replaced whole; a poisoned lock still holds a consistent map.
        self.roots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PathBuf, RootNotes>> {
        self.roots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Indexes every note of `root` matching `patterns`, replacing what was known of it. Returns
    /// how many notes were indexed. Runs on the blocking pool.
    pub async fn index_root(
        &self,
        root: PathBuf,
        patterns: Vec<String>,
    ) -> Result<usize, NotesError> {
        let index = self.clone();
        tokio::task::spawn_blocking(move || index.index_root_blocking(&root, &patterns))
            .await
            .map_err(|e| NotesError::TaskFailed(e.to_string()))?
    }

    /// [`NotesIndex::index_root`] on the calling thread.
    pub fn index_root_blocking(
        &self,
        root: &Path,
        patterns: &[String],
    ) -> Result<usize, NotesError> {
        let globs = compile(patterns)?;
        let mut notes = BTreeMap::new();
        let walker = walkdir::WalkDir::new(root)
            .max_depth(MAX_DEPTH)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_skipped_dir(e));
        for entry in walker.filter_map(Result::ok) {
            if notes.len() >= MAX_NOTES_PER_ROOT {
                tracing::warn!(
                    root = %root.display(),
                    "more than {MAX_NOTES_PER_ROOT} story notes match contextFiles; the rest are ignored"
                );
                break;
            }
            if !entry.file_type().is_file() {
                continue;
            }
            let Some(relative) = relative_path(root, entry.path()) else {
                continue;
            };
            if !globs.is_match(&relative) {
                continue;
            }
            if let Some(text) = read_note(entry.path()) {
                let note = Note::new(&relative, &text);
                warn_problem(&note);
                notes.insert(relative.clone(), note);
            }
        }
        let count = notes.len();
        self.write().insert(
            root.to_path_buf(),
            RootNotes::new(patterns.to_vec(), globs, notes),
        );
        Ok(count)
    }

    /// Forgets a root (a workspace folder was removed).
    pub fn remove_root(&self, root: &Path) {
        self.write().remove(root);
    }

    /// The indexed roots with their patterns.
    pub fn roots(&self) -> Vec<(PathBuf, Vec<String>)> {
        self.read()
            .iter()
            .map(|(root, notes)| (root.clone(), notes.patterns.clone()))
            .collect()
    }

    /// Whether `path` is (or would be) a note of an indexed root.
    pub fn is_note(&self, path: &Path) -> bool {
        self.read().iter().any(|(root, notes)| {
            relative_path(root, path).is_some_and(|relative| notes.globs.is_match(&relative))
        })
    }

    /// Re-reads one file: indexes it when it is a note that exists, forgets it when it is gone.
    /// Returns whether the file is a note of some root. Blocking.
    pub fn refresh_file_blocking(&self, path: &Path) -> bool {
        let owners: Vec<(PathBuf, String)> = self
            .read()
            .iter()
            .filter_map(|(root, notes)| {
                let relative = relative_path(root, path)?;
                notes
                    .globs
                    .is_match(&relative)
                    .then(|| (root.clone(), relative))
            })
            .collect();
        if owners.is_empty() {
            return false;
        }
        let text = read_note(path);
        let mut roots = self.write();
        for (root, relative) in owners {
            if let Some(notes) = roots.get_mut(&root) {
                match &text {
                    Some(text) => {
                        let note = Note::new(&relative, text);
                        warn_problem(&note);
                        notes.notes.insert(relative.clone(), note);
                    }
                    None => {
                        notes.notes.remove(&relative);
                    }
                }
                notes.rebuild_matcher();
            }
        }
        true
    }

    /// [`NotesIndex::refresh_file_blocking`] on the blocking pool.
    pub async fn refresh_file(&self, path: PathBuf) -> bool {
        let index = self.clone();
        tokio::task::spawn_blocking(move || index.refresh_file_blocking(&path))
            .await
            .unwrap_or(false)
    }

    /// How many notes `root` has.
    pub fn count(&self, root: &Path) -> usize {
        self.read().get(root).map_or(0, |r| r.notes.len())
    }

    /// The notes a prompt at the cursor carries, formatted as `## Title\nbody` blocks within
    /// `budget_chars`: the `always` notes first (their summary when they are long), then the
    /// notes whose names are in the last chars of `before` or the first of `after` — closest
    /// and most mentioned first. A body that does not fit gives way to its summary, then to its
    /// first sentences. Empty when nothing is chosen.
    pub fn relevant(&self, root: &Path, before: &str, after: &str, budget_chars: usize) -> String {
        let roots = self.read();
        let Some(notes) = roots.get(root) else {
            return String::new();
        };
        let mut out = String::new();
        let mut used = 0;
        for (note, inclusion) in notes.plan(before, after) {
            let remaining = budget_chars.saturating_sub(used);
            let header = format!("## {}\n", note.title);
            let header_chars = header.chars().count() + 2;
            let body_chars = note.text.chars().count();
            let summary = note.summary.as_deref();
            let prefer_summary = inclusion == Inclusion::Always && body_chars > ALWAYS_LONG_CHARS;
            let summary_fits = summary.filter(|s| header_chars + s.chars().count() <= remaining);
            let text = match summary_fits {
                Some(summary) if prefer_summary => Some(summary),
                _ if header_chars + body_chars <= remaining => Some(note.text.as_str()),
                Some(summary) => Some(summary),
                None => None,
            };
            if let Some(text) = text {
                out.push_str(&header);
                out.push_str(text);
                out.push_str("\n\n");
                used += header_chars + text.chars().count();
                continue;
            }
            // A part of the next note is worth it only if something meaningful fits.
            let room = remaining.saturating_sub(header_chars);
            if room >= 200 {
                let part = cut_to_sentences(&note.text, room);
                if !part.is_empty() {
                    out.push_str(&header);
                    out.push_str(part);
                    out.push_str("\n\n");
                }
            }
            break;
        }
        out.trim_end().to_string()
    }

    /// The raw text of the story bible (`STORY.md`) of `root`, front matter included.
    pub fn story_source(&self, root: &Path) -> Option<String> {
        self.read()
            .get(root)?
            .notes
            .values()
            .find_map(|n| n.source.clone())
    }

    /// What the index holds for `root` and, given the text around a cursor (`before`,
    /// `after`), whether each note would be in a prompt there and why. `None` when the root is
    /// not indexed.
    pub fn listing(&self, root: &Path, at: Option<(&str, &str)>) -> Option<RootListing> {
        let roots = self.read();
        let notes = roots.get(root)?;
        let mut plan: HashMap<&str, (usize, Inclusion)> = HashMap::new();
        if let Some((before, after)) = at {
            for (rank, (note, inclusion)) in notes.plan(before, after).into_iter().enumerate() {
                plan.insert(note.path.as_str(), (rank + 1, inclusion));
            }
        }
        let listed = notes
            .notes
            .values()
            .map(|note| {
                let at_position = at.map(|_| {
                    let (rank, inclusion) = match plan.get(note.path.as_str()) {
                        Some((rank, inclusion)) => (Some(*rank), inclusion.clone()),
                        None if note.is_story_bible() => (None, Inclusion::StoryBible),
                        None if note.include == Include::Never => (None, Inclusion::Never),
                        None => (None, Inclusion::NotMentioned),
                    };
                    AtPosition {
                        included: inclusion.included(),
                        rank,
                        why: inclusion.describe(),
                        inclusion,
                    }
                });
                NoteListing {
                    path: note.path.clone(),
                    title: note.title.clone(),
                    names: note.names().map(str::to_string).collect(),
                    include: note.include,
                    story_bible: note.is_story_bible(),
                    has_summary: note.summary.is_some(),
                    chars: note.text.chars().count(),
                    problem: note.problem.clone(),
                    at_position,
                }
            })
            .collect();
        Some(RootListing {
            root: root.to_path_buf(),
            patterns: notes.patterns.clone(),
            notes: listed,
        })
    }
}

impl NotesIndex {
    /// [`NotesIndex::listing`] with the cursor at char `cursor` of `text`, seeing the same
    /// window a ghost-text prompt there sees.
    pub fn listing_at(
        &self,
        root: &Path,
        text: &ropey::Rope,
        cursor: usize,
    ) -> Option<RootListing> {
        let cursor = cursor.min(text.len_chars());
        let around = super::context::surroundings(
            text,
            cursor,
            cursor,
            super::context::ContextBudget::INLINE,
        );
        self.listing(root, Some((&around.before, &around.after)))
    }
}

/// A note whose front matter could not be read is indexed as plain text; the log names the
/// file (never its text).
fn warn_problem(note: &Note) {
    if note.problem.is_some() {
        tracing::warn!("{}", crate::messages::notes::log_problem(&note.path));
    }
}

/// Directories never searched for notes.
fn is_skipped_dir(entry: &walkdir::DirEntry) -> bool {
    entry.file_type().is_dir()
        && entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with('.') || name == "node_modules" || name == "target")
}

/// `path` relative to `root`, `/`-separated; `None` when it is not inside `root`.
fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The start of a note file as text; `None` when it cannot be read or is not UTF-8.
fn read_note(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_NOTE_BYTES as u64 + 4)
        .read_to_end(&mut bytes)
        .ok()?;
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        // Cut inside the last char by the limit: keep the valid part.
        Err(e) if e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).ok()
        }
        Err(_) => None,
    }
}

fn truncate_at_char(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The longest run of whole sentences from the start of `text` within `max_chars`.
pub(crate) fn cut_to_sentences(text: &str, max_chars: usize) -> &str {
    let mut end = 0;
    let mut chars = 0;
    for sentence in text.split_sentence_bounds() {
        let n = sentence.chars().count();
        if chars + n > max_chars {
            break;
        }
        chars += n;
        end += sentence.len();
    }
    text[..end].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        crate::config::Settings::default().context_files
    }

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            (
                "characters/mara-quill.md",
                "# Mara Quill\nAliases: Mara\nLighthouse keeper on Gull Rock. Left-handed. Distrusts Tomas.",
            ),
            (
                "characters/tomas.md",
                "# Tomas Vey\nThe harbour master. Owes Mara a debt.",
            ),
            (
                "places/gull-rock.md",
                "# Gull Rock\nA bare island. The lamp is old.",
            ),
            (
                "notes/secrets.md",
                "---\ninclude: never\n---\n# Secrets\nTomas drowned his brother.",
            ),
            (
                "notes/style.md",
                "---\ninclude: always\nsummary: Short sentences.\n---\n# Style\nShort sentences, past tense.",
            ),
            (
                "STORY.md",
                "---\npov: first\n---\n# The Lamp\nA story about keeping a light.",
            ),
            ("drafts/chapter-1.md", "Mara climbed."),
            ("notes/.hidden/secret.md", "# Hidden\nnot indexed"),
            ("notes/image.png", "not markdown"),
        ] {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        dir
    }

    fn titles(notes: &str) -> Vec<&str> {
        notes
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .collect()
    }

    #[test]
    fn the_default_globs_pick_the_notes_and_nothing_else() {
        let dir = workspace();
        let index = NotesIndex::new();
        let count = index.index_root_blocking(dir.path(), &defaults()).unwrap();
        assert_eq!(count, 6);
        assert!(index.is_note(&dir.path().join("characters/tomas.md")));
        assert!(index.is_note(&dir.path().join("notes/a/b/c.md")));
        assert!(index.is_note(&dir.path().join("places/harbour.md")));
        assert!(index.is_note(&dir.path().join("locations/north/quay.md")));
        assert!(!index.is_note(&dir.path().join("drafts/chapter-1.md")));
        assert!(!index.is_note(&dir.path().join("notes/image.png")));
        assert!(!index.is_note(Path::new("/elsewhere/STORY.md")));
    }

    #[test]
    fn always_notes_come_first_then_the_named_ones_closest_first() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let notes = index.relevant(dir.path(), "Mara rowed out to Gull Rock. Then", "", 10_000);
        assert_eq!(titles(&notes), ["Style", "Gull Rock", "Mara Quill"]);
        // Unmatched, never and the story bible are not chosen.
        let notes = index.relevant(dir.path(), "Tomas came", " and Tomas left.", 10_000);
        assert_eq!(titles(&notes), ["Style", "Tomas Vey"]);
        assert!(!notes.contains("drowned"), "{notes}");
        let notes = index.relevant(dir.path(), "Nobody came.", "", 10_000);
        assert_eq!(titles(&notes), ["Style"]);
    }

    #[test]
    fn the_budget_bounds_the_notes_and_prefers_a_summary_to_nothing() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let notes = index.relevant(dir.path(), "Gull Rock", "", 60);
        assert!(notes.chars().count() <= 60, "{notes}");
        // The style body (28 chars) fits; Gull Rock's does not and it has no summary.
        assert_eq!(titles(&notes), ["Style"]);
        let notes = index.relevant(dir.path(), "", "", 30);
        assert_eq!(notes, "## Style\nShort sentences.");
        assert_eq!(index.relevant(dir.path(), "", "", 0), "");
        assert_eq!(index.relevant(Path::new("/nowhere"), "Mara", "", 1_000), "");
    }

    #[test]
    fn a_long_always_note_is_sent_as_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        let long = "Rule. ".repeat(100);
        std::fs::create_dir_all(dir.path().join("notes")).unwrap();
        std::fs::write(
            dir.path().join("notes/rules.md"),
            format!("---\ninclude: always\nsummary: The gist.\n---\n# Rules\n{long}"),
        )
        .unwrap();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        assert_eq!(
            index.relevant(dir.path(), "", "", 10_000),
            "## Rules\nThe gist."
        );
    }

    #[test]
    fn the_story_bible_is_listed_and_given_whole_but_never_chosen() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let source = index.story_source(dir.path()).unwrap();
        assert!(
            source.starts_with("---\npov: first\n---\n# The Lamp"),
            "{source}"
        );
        assert!(
            !index
                .relevant(dir.path(), "The Lamp", "", 10_000)
                .contains("keeping a light")
        );
        let listing = index.listing(dir.path(), Some(("Lamp", ""))).unwrap();
        let story = listing.notes.iter().find(|n| n.path == "STORY.md").unwrap();
        assert!(story.story_bible);
        let at = story.at_position.as_ref().unwrap();
        assert_eq!(at.inclusion, Inclusion::StoryBible);
        assert_eq!(index.story_source(Path::new("/nowhere")), None);
    }

    #[test]
    fn the_listing_says_why_each_note_would_be_included() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let listing = index
            .listing(dir.path(), Some(("Tomas waited for Mara's boat", "")))
            .unwrap();
        let by_path: HashMap<&str, &NoteListing> =
            listing.notes.iter().map(|n| (n.path.as_str(), n)).collect();
        let at = |p: &str| by_path[p].at_position.clone().unwrap();
        assert_eq!(at("notes/style.md").inclusion, Inclusion::Always);
        assert_eq!(at("notes/style.md").rank, Some(1));
        assert_eq!(at("notes/secrets.md").inclusion, Inclusion::Never);
        assert_eq!(at("places/gull-rock.md").inclusion, Inclusion::NotMentioned);
        assert!(!at("places/gull-rock.md").included);
        match at("characters/mara-quill.md").inclusion {
            Inclusion::Mentioned {
                name,
                matched,
                side,
                distance,
            } => {
                assert_eq!((name.as_str(), matched.as_str()), ("Mara", "Mara's"));
                assert_eq!((side, distance), (Side::Before, 5));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(at("characters/mara-quill.md").rank, Some(2));
        assert_eq!(
            by_path["characters/mara-quill.md"].names,
            ["Mara Quill", "Mara"]
        );
        assert!(by_path["notes/style.md"].has_summary);
        // Without a position, no inclusion is claimed.
        let listing = index.listing(dir.path(), None).unwrap();
        assert!(listing.notes.iter().all(|n| n.at_position.is_none()));
    }

    #[test]
    fn a_saved_note_is_refreshed_and_a_deleted_one_forgotten() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let file = dir.path().join("characters/tomas.md");
        std::fs::write(
            &file,
            "# Tomas Vey\nAliases: the inspector\nNow the lighthouse inspector.",
        )
        .unwrap();
        assert!(index.refresh_file_blocking(&file));
        assert!(
            index
                .relevant(dir.path(), "The inspector knocked.", "", 10_000)
                .contains("lighthouse inspector")
        );

        std::fs::remove_file(&file).unwrap();
        assert!(index.refresh_file_blocking(&file));
        assert_eq!(index.count(dir.path()), 5);
        assert!(
            !index
                .relevant(dir.path(), "Tomas", "", 10_000)
                .contains("Tomas Vey")
        );

        let new = dir.path().join("notes/ships.md");
        std::fs::write(&new, "# Ships\nThe Gannet.").unwrap();
        assert!(index.refresh_file_blocking(&new));
        assert_eq!(index.count(dir.path()), 6);
        assert!(
            index
                .relevant(dir.path(), "two ships", "", 10_000)
                .contains("The Gannet")
        );
        assert!(!index.refresh_file_blocking(&dir.path().join("drafts/chapter-1.md")));
    }

    #[test]
    fn an_invalid_glob_is_named() {
        let err = compile(&["notes/[".to_string()]).unwrap_err();
        assert!(err.to_string().contains("notes/["), "{err}");
    }

    #[test]
    fn big_notes_are_cut_at_a_char_boundary() {
        let note = Note::new("notes/big.md", &"é".repeat(MAX_NOTE_BYTES));
        assert!(note.text().len() <= MAX_NOTE_BYTES);
    }

    #[test]
    fn names_come_from_title_aliases_and_file_name() {
        let note = Note::new(
            "characters/mara-quill.md",
            "---\ntitle: Mara\naliases: [the keeper]\n---\nText.",
        );
        assert_eq!(
            note.names().collect::<Vec<_>>(),
            ["Mara", "the keeper", "mara quill"]
        );
        let note = Note::new("places/the-tower.md", "# The Tower\nStone.");
        assert_eq!(note.names().collect::<Vec<_>>(), ["The Tower"]);
    }
}
