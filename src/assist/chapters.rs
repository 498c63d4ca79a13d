//! The chapter before this one: when the cursor is near the start of a chapter file, the model
//! is shown how the previous chapter ended (or its `summary:` front matter), so the new chapter
//! picks up the thread instead of starting from 136 characters of text.
//!
//! Chapter files are the numbered files of one folder (`chapter-02.md`, `03 The Tower.md`,
//! `ch10.txt`), ordered by their numbers: the previous chapter is the file with the same
//! extension whose number comes just before. Reading it is blocking work; the caller runs
//! [`previous_ending_blocking`] off the async runtime. Only the tail of the file is read.
//!
//! Must never: read more than [`MAX_TAIL_BYTES`] of a file, follow a path out of the folder, log
//! the text.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ropey::Rope;

use super::context;
use super::notes::front_matter::split_yaml;
use super::story::cut_to_sentences;

/// The most of the previous chapter's end that is read from disk.
const MAX_TAIL_BYTES: u64 = 16 * 1024;
/// The most of its start read for a `summary:` front matter.
const MAX_HEAD_BYTES: u64 = 4 * 1024;
/// The most files a folder may hold for the search (a folder of chapters, not a dump).
const MAX_SIBLINGS: usize = 2_000;

/// What a prompt may carry of the chapter before a document: its `summary:` front matter, or the
/// last part of its text. Read once, cut to each request's budget in memory.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PreviousChapter {
    summary: Option<String>,
    tail: String,
}

/// Manuscript text: `{:?}` shows sizes only.
impl std::fmt::Debug for PreviousChapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousChapter")
            .field("has_summary", &self.summary.is_some())
            .field("tail_chars", &self.tail.chars().count())
            .finish()
    }
}

impl PreviousChapter {
    /// The chapter's summary, or its ending: at most `max_chars` chars starting at a paragraph
    /// or sentence. `None` when nothing fits.
    pub fn ending(&self, max_chars: usize) -> Option<String> {
        if max_chars == 0 {
            return None;
        }
        if let Some(summary) = &self.summary {
            let cut = cut_to_sentences(summary, max_chars);
            return (!cut.is_empty()).then(|| cut.to_string());
        }
        let rope = Rope::from_str(self.tail.trim_end());
        let ending = context::before(&rope, rope.len_chars(), max_chars);
        let ending = ending.trim();
        (!ending.is_empty()).then(|| ending.to_string())
    }
}

/// The chapter before `path` as a prompt may carry it; `None` when there is no previous chapter
/// file or it cannot be read. Blocking.
pub fn previous_blocking(path: &Path) -> Option<PreviousChapter> {
    let previous = previous_chapter(path)?;
    if let Some(summary) = summary_of(&previous) {
        return Some(PreviousChapter {
            summary: Some(summary),
            tail: String::new(),
        });
    }
    Some(PreviousChapter {
        summary: None,
        tail: read_tail(&previous)?,
    })
}

/// The ending of the chapter before `path`, at most `max_chars` chars (see
/// [`PreviousChapter::ending`]). Blocking.
pub fn previous_ending_blocking(path: &Path, max_chars: usize) -> Option<String> {
    if max_chars == 0 {
        return None;
    }
    previous_blocking(path)?.ending(max_chars)
}

/// The numbered sibling of `path` that comes just before it (same extension), if any.
pub fn previous_chapter(path: &Path) -> Option<PathBuf> {
    let folder = path.parent()?;
    let name = path.file_name()?.to_str()?;
    let extension = path.extension().and_then(|e| e.to_str());
    let key = chapter_key(name)?;
    let mut best: Option<(Vec<Segment>, PathBuf)> = None;
    for entry in std::fs::read_dir(folder).ok()?.take(MAX_SIBLINGS).flatten() {
        let candidate = entry.path();
        let Some(other) = candidate.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if other == name
            || candidate.extension().and_then(|e| e.to_str()) != extension
            || !entry.file_type().is_ok_and(|t| t.is_file())
        {
            continue;
        }
        let Some(other_key) = chapter_key(other) else {
            continue;
        };
        if other_key < key && best.as_ref().is_none_or(|(b, _)| other_key > *b) {
            best = Some((other_key, candidate));
        }
    }
    best.map(|(_, path)| path)
}

/// One run of a file name: digits compare as numbers, the rest as lower-case text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Number(u64),
    Text(String),
}

/// The natural-order key of a chapter file name; `None` for a name without a number (not a
/// numbered chapter).
fn chapter_key(name: &str) -> Option<Vec<Segment>> {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let mut segments = Vec::new();
    let mut digits = String::new();
    let mut text = String::new();
    for c in stem.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            digits.push(c);
        } else {
            if !digits.is_empty() {
                segments.push(Segment::Number(digits.parse().unwrap_or(u64::MAX)));
                digits.clear();
            }
            text.extend(c.to_lowercase());
        }
    }
    if !digits.is_empty() {
        segments.push(Segment::Number(digits.parse().unwrap_or(u64::MAX)));
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    segments
        .iter()
        .any(|s| matches!(s, Segment::Number(_)))
        .then_some(segments)
}

/// The `summary:` of a chapter file's front matter.
fn summary_of(path: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Front {
        summary: Option<String>,
    }
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_HEAD_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    let head = String::from_utf8_lossy(&head);
    let (front, _) = split_yaml(&head);
    let front: Front = serde_norway::from_str(front?).ok()?;
    front
        .summary
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The last [`MAX_TAIL_BYTES`] of a file as text (a char cut by the start is dropped).
fn read_tail(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(MAX_TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    // Skip UTF-8 continuation bytes at the cut.
    let skip = if start > 0 {
        bytes.iter().take_while(|b| (**b & 0xC0) == 0x80).count()
    } else {
        0
    };
    String::from_utf8(bytes.split_off(skip)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn the_previous_chapter_is_the_one_numbered_just_before() {
        let dir = folder(&[
            ("chapter-1.md", "one"),
            ("chapter-2.md", "two"),
            ("chapter-10.md", "ten"),
            ("chapter-9.txt", "other extension"),
            ("notes.md", "not a chapter"),
        ]);
        let name =
            |p: Option<PathBuf>| p.map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(
            name(previous_chapter(&dir.path().join("chapter-10.md"))).as_deref(),
            Some("chapter-2.md")
        );
        assert_eq!(
            name(previous_chapter(&dir.path().join("chapter-2.md"))).as_deref(),
            Some("chapter-1.md")
        );
        assert_eq!(
            name(previous_chapter(&dir.path().join("chapter-1.md"))),
            None
        );
        assert_eq!(name(previous_chapter(&dir.path().join("notes.md"))), None);
        // A new, unsaved chapter file still finds the one before it.
        assert_eq!(
            name(previous_chapter(&dir.path().join("chapter-3.md"))).as_deref(),
            Some("chapter-2.md")
        );
    }

    #[test]
    fn the_ending_starts_at_a_paragraph_or_a_sentence() {
        let dir = folder(&[
            (
                "01.md",
                "# One\n\nFirst paragraph, long ago.\n\nShe hid the scrap in her coat. She meant to be there when they did.\n",
            ),
            ("02.md", "# Two\n\nThe stairs."),
        ]);
        let ending = previous_ending_blocking(&dir.path().join("02.md"), 80).unwrap();
        assert_eq!(
            ending,
            "She hid the scrap in her coat. She meant to be there when they did."
        );
        assert_eq!(previous_ending_blocking(&dir.path().join("02.md"), 0), None);
        assert_eq!(
            previous_ending_blocking(&dir.path().join("01.md"), 500),
            None
        );
    }

    #[test]
    fn a_summary_in_front_matter_is_carried_instead() {
        let dir = folder(&[
            (
                "ch1.md",
                "---\nsummary: Wren finds the ledger changed after the ninth of March.\n---\n# One\n\nLong text.\n",
            ),
            ("ch2.md", ""),
        ]);
        assert_eq!(
            previous_ending_blocking(&dir.path().join("ch2.md"), 500).as_deref(),
            Some("Wren finds the ledger changed after the ninth of March.")
        );
    }

    #[test]
    fn only_the_tail_of_a_big_chapter_is_read_and_a_cut_char_is_dropped() {
        let big = format!("{}\n\nThe last line.", "ё".repeat(40_000));
        let dir = folder(&[("1.md", &big), ("2.md", "")]);
        let ending = previous_ending_blocking(&dir.path().join("2.md"), 100).unwrap();
        assert_eq!(ending, "The last line.");
    }
}
