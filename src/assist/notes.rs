//! Story notes: the author's files about characters, places and facts (`contextFiles` globs under
//! each workspace root; by default `notes/**/*.md`, `characters/**/*.md`, `STORY.md`), indexed
//! in memory so that each request picks the relevant ones without touching the disk.
//!
//! The index is filled at start-up and refreshed file by file when a note is opened, saved or
//! changed on disk (file watching) — never re-read per keystroke. Reading files is blocking work:
//! callers run the `*_blocking` methods off the async runtime (see [`NotesIndex::index_root`]).
//! Choosing notes ([`NotesIndex::relevant`]) is in-memory and cheap.
//!
//! Ranking: a note whose title names a character or place near the cursor first, then notes that
//! mention those names (more mentions first), then the rest, until the budget is spent.
//!
//! Must never: follow the walk outside a root, read huge files whole, log note text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use globset::{GlobSet, GlobSetBuilder};
use unicode_segmentation::UnicodeSegmentation;

use super::context::is_name_like;

/// The most of one note that is kept (a note is a page, not a novel).
const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most notes indexed per root: a workspace that matches more is probably misconfigured.
const MAX_NOTES_PER_ROOT: usize = 2_000;
/// How deep the walk goes below a root.
const MAX_DEPTH: usize = 12;

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
    text: String,
    /// Lower-case words of the title and file name: "characters/mara-quill.md" → mara, quill.
    keys: HashSet<String>,
    /// Name-like words the note mentions, lower-case.
    mentions: HashSet<String>,
    /// The file's text as read.
    source: String,
}

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Note")
            .field("path", &self.path)
            .field("chars", &self.text.chars().count())
            .finish()
    }
}

impl Note {
    /// Builds a note from its relative path and text.
    pub fn new(path: &str, text: &str) -> Note {
        let source = text;
        let text = truncate_at_char(text, MAX_NOTE_BYTES).trim();
        let stem = path
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".md")
            .trim_end_matches(".txt")
            .trim_end_matches(".markdown");
        // A first-line heading is the title (and not repeated in the body).
        let (heading, body) = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with('#') => (Some(first), rest.trim()),
            None if text.starts_with('#') => (Some(text), ""),
            _ => (None, text),
        };
        let heading = heading
            .map(|h| h.trim_start_matches('#').trim())
            .filter(|h| !h.is_empty());
        let title = heading.map_or_else(|| stem.replace(['-', '_'], " "), str::to_string);
        let text = body.to_string();
        let keys = title
            .unicode_words()
            .chain(stem.split(['-', '_', ' ', '.']))
            .filter(|w| w.chars().count() >= 2)
            .map(str::to_lowercase)
            .collect();
        let mentions = text
            .unicode_words()
            .map(|w| w.trim_end_matches("'s").trim_end_matches("’s"))
            .filter(|w| is_name_like(w))
            .map(str::to_lowercase)
            .collect();
        Note {
            path: path.to_string(),
            title,
            text,
            keys,
            mentions,
            source: truncate_at_char(source, MAX_NOTE_BYTES).to_string(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// How relevant this note is to `names` (lower-case): a title hit weighs more than mentions.
    fn score(&self, names: &[String]) -> usize {
        names
            .iter()
            .map(|name| {
                if self.keys.contains(name) {
                    10
                } else if self.mentions.contains(name) {
                    1
                } else {
                    0
                }
            })
            .sum()
    }
}

struct RootNotes {
    patterns: Vec<String>,
    globs: GlobSet,
    /// By relative path, so the order of equal scores is stable.
    notes: BTreeMap<String, Note>,
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
                notes.insert(relative.clone(), Note::new(&relative, &text));
            }
        }
        let count = notes.len();
        self.write().insert(
            root.to_path_buf(),
            RootNotes {
                patterns: patterns.to_vec(),
                globs,
                notes,
            },
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
                        notes
                            .notes
                            .insert(relative.clone(), Note::new(&relative, text));
                    }
                    None => {
                        notes.notes.remove(&relative);
                    }
                }
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

    /// The raw text of `STORY.md` at `root`, if the index holds it.
    pub fn story_source(&self, root: &Path) -> Option<String> {
        let roots = self.read();
        let notes = roots.get(root)?;
        notes.notes.get("STORY.md").map(|note| note.source.clone())
    }

    /// How many notes `root` has.
    pub fn count(&self, root: &Path) -> usize {
        self.read().get(root).map_or(0, |r| r.notes.len())
    }

    /// The notes of `root` most relevant to `names`, formatted for a prompt, within
    /// `budget_chars`. Empty when the root has no notes.
    pub fn relevant(&self, root: &Path, names: &[String], budget_chars: usize) -> String {
        let roots = self.read();
        let Some(notes) = roots.get(root) else {
            return String::new();
        };
        let names: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        let mut ranked: Vec<(usize, &Note)> = notes
            .notes
            .values()
            .map(|note| (note.score(&names), note))
            .collect();
        // Highest score first; the stable sort keeps path order among equals.
        ranked.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        let mut out = String::new();
        for (_, note) in ranked {
            let remaining = budget_chars.saturating_sub(out.chars().count());
            let header = format!("## {}\n", note.title);
            let needed = header.chars().count() + note.text.chars().count() + 2;
            if needed <= remaining {
                out.push_str(&header);
                out.push_str(&note.text);
                out.push_str("\n\n");
            } else {
                // A part of the next note is worth it only if something meaningful fits.
                let room = remaining.saturating_sub(header.chars().count() + 2);
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
        }
        out.trim_end().to_string()
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
fn cut_to_sentences(text: &str, max_chars: usize) -> &str {
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
                "# Mara Quill\nLighthouse keeper on Gull Rock. Left-handed. Distrusts Tomas.",
            ),
            (
                "characters/tomas.md",
                "# Tomas Vey\nThe harbour master. Owes Mara a debt.",
            ),
            (
                "notes/places/gull-rock.md",
                "# Gull Rock\nA bare island. The lamp is old.",
            ),
            ("STORY.md", "# The Lamp\nA story about keeping a light."),
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

    #[test]
    fn the_default_globs_pick_the_notes_and_nothing_else() {
        let dir = workspace();
        let index = NotesIndex::new();
        let count = index.index_root_blocking(dir.path(), &defaults()).unwrap();
        assert_eq!(count, 4);
        assert!(index.is_note(&dir.path().join("characters/tomas.md")));
        assert!(index.is_note(&dir.path().join("notes/a/b/c.md")));
        assert!(!index.is_note(&dir.path().join("drafts/chapter-1.md")));
        assert!(!index.is_note(&dir.path().join("notes/image.png")));
        assert!(!index.is_note(Path::new("/elsewhere/STORY.md")));
    }

    #[test]
    fn notes_named_by_the_scene_come_first_then_mentions_then_the_rest() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let notes = index.relevant(dir.path(), &["Tomas".to_string()], 10_000);
        let order: Vec<&str> = notes
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .collect();
        // Title hit, then the note mentioning Tomas, then the others in path order (STORY.md
        // sorts before notes/ byte-wise).
        assert_eq!(order, ["Tomas Vey", "Mara Quill", "The Lamp", "Gull Rock"]);
    }

    #[test]
    fn the_budget_bounds_the_notes() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let notes = index.relevant(dir.path(), &["Gull".to_string()], 60);
        assert!(notes.chars().count() <= 60, "{notes}");
        assert!(notes.starts_with("## Gull Rock"), "{notes}");
        assert_eq!(index.relevant(dir.path(), &[], 0), "");
        assert_eq!(index.relevant(Path::new("/nowhere"), &[], 1_000), "");
    }

    #[test]
    fn a_saved_note_is_refreshed_and_a_deleted_one_forgotten() {
        let dir = workspace();
        let index = NotesIndex::new();
        index.index_root_blocking(dir.path(), &defaults()).unwrap();
        let file = dir.path().join("characters/tomas.md");
        std::fs::write(&file, "# Tomas Vey\nNow the lighthouse inspector.").unwrap();
        assert!(index.refresh_file_blocking(&file));
        assert!(
            index
                .relevant(dir.path(), &["Tomas".into()], 10_000)
                .contains("lighthouse inspector")
        );

        std::fs::remove_file(&file).unwrap();
        assert!(index.refresh_file_blocking(&file));
        assert_eq!(index.count(dir.path()), 3);

        let new = dir.path().join("notes/ships.md");
        std::fs::write(&new, "# Ships\nThe Gannet.").unwrap();
        assert!(index.refresh_file_blocking(&new));
        assert_eq!(index.count(dir.path()), 4);
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
}
