//! Open documents: the text of every manuscript the editor has open, kept in step with the editor
//! by full and incremental changes, and the conversion between editor positions and text offsets.
//!
//! What this module owns:
//! - [`DocumentStore`]: the open documents keyed by URI. Each holds a [`ropey::Rope`] (the only
//!   copy of its text), the editor's version and the language id.
//! - [`PositionEncoding`] and the conversion between a `(line, character)` [`Position`] counted in
//!   UTF-8, UTF-16 or UTF-32 units and char / byte offsets. Lines end at `\n`, `\r\n` or `\r` (as
//!   in LSP); a position never lands between the `\r` and `\n` of one line ending; a character past
//!   the end of a line clamps to the line end (LSP rule); a line past the end is an error.
//!
//! Why a `DashMap` and not a single owner task: the text-sync path applies each change
//! synchronously, in arrival order, without awaiting (a task would need a channel round trip per
//! keystroke and make every snapshot async), while background work takes a [`DocumentSnapshot`]
//! in a few hundred nanoseconds (a rope clone shares its chunks) under a per-shard lock that is
//! never held across an `.await` — the API hands out owned snapshots, never map guards.
//!
//! What it must never do: know LSP or JSON (the `lsp` module converts its types), log or return
//! manuscript text in an error, panic on a position or change that came from outside, or apply
//! part of a change set (a rejected set leaves the document exactly as it was).

use std::fmt::{self, Write as _};
use std::ops::Range as OffsetRange;
use std::sync::Arc;

use dashmap::DashMap;
use ropey::Rope;
use sha2::{Digest, Sha256};

mod trail;

pub use trail::{EditMark, EditTrail};

/// The unit in which a position's `character` counts (negotiated once per session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PositionEncoding {
    /// Bytes of UTF-8.
    Utf8,
    /// UTF-16 code units: astral characters such as emoji count 2 (the LSP default).
    #[default]
    Utf16,
    /// Unicode scalar values (chars).
    Utf32,
}

impl fmt::Display for PositionEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PositionEncoding::Utf8 => "UTF-8",
            PositionEncoding::Utf16 => "UTF-16",
            PositionEncoding::Utf32 => "UTF-32",
        })
    }
}

/// A zero-based line and a character offset within it, counted in the session's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub const fn new(line: u32, character: u32) -> Self {
        Position { line, character }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.character)
    }
}

/// A span between two positions; `start` must not come after `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

impl Range {
    pub const fn new(start: Position, end: Position) -> Self {
        Range { start, end }
    }
}

/// An offset in chars (Unicode scalar values) from the start of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CharOffset(pub usize);

/// One change of a `didChange`: replace `range` (or, without one, the whole text) by `text`.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentChange {
    pub range: Option<Range>,
    pub text: String,
}

/// Manuscript text never reaches a log through `{:?}`: only its length is shown.
impl fmt::Debug for ContentChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentChange")
            .field("range", &self.range)
            .field("text_chars", &self.text.chars().count())
            .finish()
    }
}

impl ContentChange {
    pub fn replace(range: Range, text: impl Into<String>) -> Self {
        ContentChange {
            range: Some(range),
            text: text.into(),
        }
    }

    pub fn full(text: impl Into<String>) -> Self {
        ContentChange {
            range: None,
            text: text.into(),
        }
    }
}

/// A position or offset that does not address the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("line {line} is past the end of the document, which has {line_count} lines")]
    LineOutOfRange { line: u32, line_count: usize },
    #[error("position {position} falls inside a character when counting {encoding} units")]
    InsideCharacter {
        position: Position,
        encoding: PositionEncoding,
    },
    #[error("range start {start} comes after its end {end}")]
    InvertedRange { start: Position, end: Position },
    #[error("offset {offset} is past the end of the document, which has {len} characters")]
    OffsetOutOfRange { offset: usize, len: usize },
}

/// Why a document operation was refused. Texts name the URI and positions, never document text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("{uri} is not open")]
    NotOpen { uri: String },
    #[error("version {received} of {uri} does not follow its current version {current}")]
    StaleVersion {
        uri: String,
        current: i32,
        received: i32,
    },
    #[error("change {index} of version {version} of {uri} was refused: {source}")]
    InvalidChange {
        uri: String,
        version: i32,
        index: usize,
        #[source]
        source: PositionError,
    },
    /// An earlier change set was refused, so an incremental edit would land on the wrong text.
    #[error(
        "{uri} is out of sync since a change was refused; only a full-text change or reopening it restores it"
    )]
    OutOfSync { uri: String },
}

/// Sizes and a digest of a text: enough to check that two sides agree, without the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFingerprint {
    pub line_count: usize,
    pub utf16_len: usize,
    pub char_len: usize,
    pub byte_len: usize,
    /// Lower-case hex SHA-256 of the UTF-8 text.
    pub sha256: String,
}

struct Document {
    uri: Arc<str>,
    text: Rope,
    version: i32,
    language_id: Arc<str>,
    in_sync: bool,
    /// Where the last change sets fell.
    trail: EditTrail,
}

impl Document {
    fn snapshot(&self) -> DocumentSnapshot {
        DocumentSnapshot {
            uri: self.uri.clone(),
            text: self.text.clone(),
            version: self.version,
            language_id: self.language_id.clone(),
            in_sync: self.in_sync,
            trail: self.trail,
        }
    }

    /// Applies the whole set to a copy (cheap: a rope clone shares its chunks) and commits only
    /// if every change applied, so a refused set leaves the text and version untouched.
    fn apply(
        &mut self,
        version: i32,
        changes: Vec<ContentChange>,
        encoding: PositionEncoding,
    ) -> Result<(), DocumentError> {
        if version <= self.version {
            return Err(DocumentError::StaleVersion {
                uri: self.uri.to_string(),
                current: self.version,
                received: version,
            });
        }
        let mut next = self.text.clone();
        let mut in_sync = self.in_sync;
        // The lowest char any change of the set touched (each counted in the text it applied to:
        // none moves what is before its own start).
        let mut lowest = usize::MAX;
        for (index, change) in changes.into_iter().enumerate() {
            match change.range {
                None => {
                    next = Rope::from_str(&change.text);
                    in_sync = true;
                    lowest = 0;
                }
                Some(_) if !in_sync => {
                    return Err(DocumentError::OutOfSync {
                        uri: self.uri.to_string(),
                    });
                }
                Some(range) => {
                    let span = char_span(&next, range, encoding).map_err(|source| {
                        DocumentError::InvalidChange {
                            uri: self.uri.to_string(),
                            version,
                            index,
                            source,
                        }
                    })?;
                    let start = span.start;
                    lowest = lowest.min(start);
                    if !span.is_empty() {
                        next.remove(span);
                    }
                    if !change.text.is_empty() {
                        next.insert(start, &change.text);
                    }
                }
            }
        }
        self.text = next;
        self.version = version;
        self.in_sync = in_sync;
        self.trail.record(lowest);
        Ok(())
    }
}

/// An immutable view of one document at one version. Cheap to take and to clone; later edits to
/// the store never change it, so background work can read it while the author keeps typing.
#[derive(Clone)]
pub struct DocumentSnapshot {
    uri: Arc<str>,
    text: Rope,
    version: i32,
    language_id: Arc<str>,
    in_sync: bool,
    trail: EditTrail,
}

/// Sizes only: `{:?}` of a snapshot must never print the manuscript.
impl fmt::Debug for DocumentSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentSnapshot")
            .field("uri", &self.uri)
            .field("version", &self.version)
            .field("language_id", &self.language_id)
            .field("chars", &self.text.len_chars())
            .field("in_sync", &self.in_sync)
            .finish()
    }
}

impl DocumentSnapshot {
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn text(&self) -> &Rope {
        &self.text
    }

    /// Where the last edits before this text fell: whether an earlier text's start still holds.
    pub fn trail(&self) -> &EditTrail {
        &self.trail
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn language_id(&self) -> &str {
        &self.language_id
    }

    /// False after a refused change set until a full-text change: the text may then differ from
    /// the editor's, and nothing should be generated from or applied to it.
    pub fn is_in_sync(&self) -> bool {
        self.in_sync
    }

    /// The char offset that `position` addresses.
    pub fn offset_of(
        &self,
        position: Position,
        encoding: PositionEncoding,
    ) -> Result<CharOffset, PositionError> {
        char_offset(&self.text, position, encoding).map(CharOffset)
    }

    /// The byte offset (in the UTF-8 text) that `position` addresses.
    pub fn byte_offset_of(
        &self,
        position: Position,
        encoding: PositionEncoding,
    ) -> Result<usize, PositionError> {
        char_offset(&self.text, position, encoding).map(|c| self.text.char_to_byte(c))
    }

    /// The char offsets that `range` spans.
    pub fn span_of(
        &self,
        range: Range,
        encoding: PositionEncoding,
    ) -> Result<OffsetRange<CharOffset>, PositionError> {
        char_span(&self.text, range, encoding).map(|r| CharOffset(r.start)..CharOffset(r.end))
    }

    /// The position of a char offset. An offset between the `\r` and `\n` of a line ending maps
    /// to the end of that line.
    pub fn position_of(
        &self,
        offset: CharOffset,
        encoding: PositionEncoding,
    ) -> Result<Position, PositionError> {
        position_at(&self.text, offset.0, encoding)
    }

    pub fn fingerprint(&self) -> TextFingerprint {
        let mut hasher = Sha256::new();
        for chunk in self.text.chunks() {
            hasher.update(chunk.as_bytes());
        }
        let mut sha256 = String::with_capacity(64);
        for byte in hasher.finalize() {
            // Writing to a String cannot fail.
            let _ = write!(sha256, "{byte:02x}");
        }
        TextFingerprint {
            line_count: self.text.len_lines(),
            utf16_len: self.text.len_utf16_cu(),
            char_len: self.text.len_chars(),
            byte_len: self.text.len_bytes(),
            sha256,
        }
    }
}

/// The open documents of one server session, keyed by URI.
#[derive(Default)]
pub struct DocumentStore {
    documents: DashMap<String, Document>,
}

impl DocumentStore {
    pub fn new() -> Self {
        DocumentStore::default()
    }

    /// Opens (or, if the editor opens it again, replaces) a document. Returns true when it
    /// replaced one that was already open.
    pub fn open(&self, uri: &str, language_id: &str, version: i32, text: &str) -> bool {
        let document = Document {
            uri: Arc::from(uri),
            text: Rope::from_str(text),
            version,
            language_id: Arc::from(language_id),
            in_sync: true,
            trail: EditTrail::new(),
        };
        self.documents.insert(uri.to_string(), document).is_some()
    }

    /// Applies one `didChange`: the changes in order, positions counted in `encoding`, each range
    /// relative to the text left by the previous change. All or nothing: on error the text and
    /// version stay as they were, and the document is marked out of sync (an incremental edit
    /// would now land on a text the editor no longer has) until a full-text change.
    pub fn apply_changes(
        &self,
        uri: &str,
        version: i32,
        changes: Vec<ContentChange>,
        encoding: PositionEncoding,
    ) -> Result<(), DocumentError> {
        let mut document = self
            .documents
            .get_mut(uri)
            .ok_or_else(|| DocumentError::NotOpen {
                uri: uri.to_string(),
            })?;
        let result = document.apply(version, changes, encoding);
        if result.is_err() {
            document.in_sync = false;
        }
        result
    }

    pub fn close(&self, uri: &str) -> Result<(), DocumentError> {
        self.documents
            .remove(uri)
            .map(|_| ())
            .ok_or_else(|| DocumentError::NotOpen {
                uri: uri.to_string(),
            })
    }

    pub fn snapshot(&self, uri: &str) -> Result<DocumentSnapshot, DocumentError> {
        self.documents
            .get(uri)
            .map(|document| document.snapshot())
            .ok_or_else(|| DocumentError::NotOpen {
                uri: uri.to_string(),
            })
    }

    pub fn is_open(&self, uri: &str) -> bool {
        self.documents.contains_key(uri)
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The URIs of the open documents, in no particular order.
    pub fn uris(&self) -> Vec<String> {
        self.documents.iter().map(|d| d.key().clone()).collect()
    }
}

/// The char span of the content of `line`, without its line ending. (Found from the starts of
/// this line and the next: `Rope::line` would also count the chars and breaks of the whole line,
/// and a paragraph is one line.)
fn line_content(text: &Rope, line: usize) -> OffsetRange<usize> {
    let start = text.line_to_char(line);
    let end = if line + 1 < text.len_lines() {
        text.line_to_char(line + 1)
    } else {
        text.len_chars()
    };
    let ending = match end
        .checked_sub(1)
        .filter(|&last| last >= start)
        .map(|last| text.char(last))
    {
        Some('\n') if end >= start + 2 && text.char(end - 2) == '\r' => 2,
        Some('\n' | '\r') => 1,
        _ => 0,
    };
    start..end - ending
}

fn char_offset(
    text: &Rope,
    position: Position,
    encoding: PositionEncoding,
) -> Result<usize, PositionError> {
    let line = position.line as usize;
    if line >= text.len_lines() {
        return Err(PositionError::LineOutOfRange {
            line: position.line,
            line_count: text.len_lines(),
        });
    }
    let content = line_content(text, line);
    let character = position.character as usize;
    let inside = || PositionError::InsideCharacter { position, encoding };
    match encoding {
        PositionEncoding::Utf32 => Ok((content.start + character).min(content.end)),
        PositionEncoding::Utf16 => {
            let start = text.char_to_utf16_cu(content.start);
            let target = start + character;
            if target >= text.char_to_utf16_cu(content.end) {
                return Ok(content.end);
            }
            let offset = text.utf16_cu_to_char(target);
            if text.char_to_utf16_cu(offset) != target {
                return Err(inside());
            }
            Ok(offset)
        }
        PositionEncoding::Utf8 => {
            let start = text.char_to_byte(content.start);
            let target = start + character;
            if target >= text.char_to_byte(content.end) {
                return Ok(content.end);
            }
            let offset = text.byte_to_char(target);
            if text.char_to_byte(offset) != target {
                return Err(inside());
            }
            Ok(offset)
        }
    }
}

fn char_span(
    text: &Rope,
    range: Range,
    encoding: PositionEncoding,
) -> Result<OffsetRange<usize>, PositionError> {
    if range.start > range.end {
        return Err(PositionError::InvertedRange {
            start: range.start,
            end: range.end,
        });
    }
    let start = char_offset(text, range.start, encoding)?;
    // An insertion (most keystrokes) has one position.
    let end = if range.end == range.start {
        start
    } else {
        char_offset(text, range.end, encoding)?
    };
    // Ordered positions give ordered offsets (clamping is monotonic); checked anyway so that a
    // mistake here can never reach `Rope::remove`, which panics on an inverted range.
    if start > end {
        return Err(PositionError::InvertedRange {
            start: range.start,
            end: range.end,
        });
    }
    Ok(start..end)
}

fn position_at(
    text: &Rope,
    offset: usize,
    encoding: PositionEncoding,
) -> Result<Position, PositionError> {
    if offset > text.len_chars() {
        return Err(PositionError::OffsetOutOfRange {
            offset,
            len: text.len_chars(),
        });
    }
    let line = text.char_to_line(offset);
    let content = line_content(text, line);
    let offset = offset.min(content.end);
    let units = match encoding {
        PositionEncoding::Utf32 => offset - content.start,
        PositionEncoding::Utf16 => {
            text.char_to_utf16_cu(offset) - text.char_to_utf16_cu(content.start)
        }
        PositionEncoding::Utf8 => text.char_to_byte(offset) - text.char_to_byte(content.start),
    };
    Ok(Position {
        line: saturating_u32(line),
        character: saturating_u32(units),
    })
}

/// LSP positions are `u32`; a line longer than 4 GiB cannot occur in a document we accept.
fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PositionEncoding::{Utf8, Utf16, Utf32};

    const URI: &str = "file:///novel/chapter-1.md";

    fn snapshot_of(text: &str) -> DocumentSnapshot {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, text);
        store.snapshot(URI).expect("just opened")
    }

    fn pos(line: u32, character: u32) -> Position {
        Position::new(line, character)
    }

    fn range(a: (u32, u32), b: (u32, u32)) -> Range {
        Range::new(pos(a.0, a.1), pos(b.0, b.1))
    }

    #[test]
    fn positions_map_to_char_offsets_in_each_encoding() {
        // (text, encoding, position, expected char offset)
        let cases: &[(&str, PositionEncoding, Position, usize)] = &[
            // Emoji: 1 char, 2 UTF-16 units, 4 UTF-8 bytes.
            ("a😀b", Utf32, pos(0, 2), 2),
            ("a😀b", Utf16, pos(0, 3), 2),
            ("a😀b", Utf8, pos(0, 5), 2),
            ("a😀b", Utf16, pos(0, 4), 3),
            // CJK: 1 char, 1 UTF-16 unit, 3 UTF-8 bytes.
            ("日本語です", Utf16, pos(0, 2), 2),
            ("日本語です", Utf8, pos(0, 6), 2),
            ("日本語です", Utf32, pos(0, 5), 5),
            // CRLF ends a line; the next line starts after both characters.
            ("ab\r\ncd", Utf16, pos(0, 2), 2),
            ("ab\r\ncd", Utf16, pos(1, 0), 4),
            ("ab\r\ncd", Utf8, pos(1, 2), 6),
            // A lone CR ends a line too.
            ("ab\rcd", Utf32, pos(1, 1), 4),
            // A trailing newline opens an empty last line that can be addressed.
            ("ab\n", Utf16, pos(1, 0), 3),
            ("", Utf8, pos(0, 0), 0),
            // U+2028 and NEL are text, not line breaks, in LSP.
            ("a\u{2028}b\u{85}c", Utf32, pos(0, 4), 4),
        ];
        for &(text, encoding, position, expected) in cases {
            let got = snapshot_of(text).offset_of(position, encoding);
            assert_eq!(
                got,
                Ok(CharOffset(expected)),
                "{text:?} {encoding} {position}"
            );
        }
    }

    #[test]
    fn a_character_past_the_line_end_clamps_to_the_line_end() {
        // Never between \r and \n, never onto the next line.
        let cases: &[(&str, PositionEncoding, Position, usize)] = &[
            ("ab\r\ncd", Utf16, pos(0, 3), 2),
            ("ab\r\ncd", Utf8, pos(0, 99), 2),
            ("ab\r\ncd", Utf32, pos(0, u32::MAX), 2),
            ("ab\ncd", Utf16, pos(1, 7), 5),
            ("a😀", Utf16, pos(0, 9), 2),
        ];
        for &(text, encoding, position, expected) in cases {
            assert_eq!(
                snapshot_of(text).offset_of(position, encoding),
                Ok(CharOffset(expected)),
                "{text:?} {encoding} {position}"
            );
        }
    }

    #[test]
    fn a_line_past_the_end_is_an_error() {
        for (text, line, line_count) in [("ab", 1, 1), ("ab\n", 2, 2), ("a\r\nb\rc", 3, 3)] {
            assert_eq!(
                snapshot_of(text).offset_of(pos(line, 0), Utf16),
                Err(PositionError::LineOutOfRange { line, line_count }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_position_inside_a_character_is_an_error() {
        let cases: &[(&str, PositionEncoding, Position)] = &[
            ("a😀b", Utf16, pos(0, 2)),
            ("a😀b", Utf8, pos(0, 2)),
            ("a😀b", Utf8, pos(0, 4)),
            ("日本", Utf8, pos(0, 1)),
        ];
        for &(text, encoding, position) in cases {
            assert_eq!(
                snapshot_of(text).offset_of(position, encoding),
                Err(PositionError::InsideCharacter { position, encoding }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn offsets_map_back_to_positions_and_round_trip() {
        let text = "Once 😀 upon\r\na 時間\rtime\n\u{2028}end\n";
        let doc = snapshot_of(text);
        for encoding in [Utf8, Utf16, Utf32] {
            for offset in 0..=doc.text().len_chars() {
                let position = doc.position_of(CharOffset(offset), encoding).unwrap();
                let back = doc.offset_of(position, encoding).unwrap().0;
                if offset == 12 {
                    // Between \r and \n: reported as the end of the line.
                    assert_eq!(back, 11, "{encoding}");
                } else {
                    assert_eq!(back, offset, "{encoding} {position}");
                }
            }
        }
        assert_eq!(doc.position_of(CharOffset(7), Utf16), Ok(pos(0, 8)));
        assert_eq!(doc.position_of(CharOffset(7), Utf8), Ok(pos(0, 10)));
        assert_eq!(doc.position_of(CharOffset(17), Utf8), Ok(pos(1, 8)));
        assert_eq!(
            doc.position_of(CharOffset(99), Utf16),
            Err(PositionError::OffsetOutOfRange {
                offset: 99,
                len: doc.text().len_chars()
            })
        );
    }

    #[test]
    fn incremental_changes_apply_in_order_each_relative_to_the_previous() {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, "The night was dark.\r\nShe waited.");
        store
            .apply_changes(
                URI,
                2,
                vec![
                    ContentChange::replace(range((0, 4), (0, 9)), "storm"),
                    ContentChange::replace(range((1, 4), (1, 4)), "😀 "),
                    ContentChange::replace(range((1, 7), (1, 13)), "stayed"),
                ],
                Utf16,
            )
            .unwrap();
        let doc = store.snapshot(URI).unwrap();
        assert_eq!(
            doc.text().to_string(),
            "The storm was dark.\r\nShe 😀 stayed."
        );
        assert_eq!(doc.version(), 2);
    }

    #[test]
    fn a_full_change_replaces_the_text() {
        let store = DocumentStore::new();
        store.open(URI, "plaintext", 1, "draft");
        store
            .apply_changes(URI, 5, vec![ContentChange::full("second draft")], Utf8)
            .unwrap();
        let doc = store.snapshot(URI).unwrap();
        assert_eq!(doc.text().to_string(), "second draft");
        assert_eq!(doc.language_id(), "plaintext");
        assert_eq!(doc.version(), 5);
    }

    #[test]
    fn a_refused_change_set_leaves_the_document_as_it_was() {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, "one\ntwo");
        let err = store
            .apply_changes(
                URI,
                2,
                vec![
                    ContentChange::replace(range((0, 0), (0, 3)), "ONE"),
                    ContentChange::replace(range((5, 0), (5, 0)), "x"),
                ],
                Utf16,
            )
            .unwrap_err();
        assert_eq!(
            err,
            DocumentError::InvalidChange {
                uri: URI.into(),
                version: 2,
                index: 1,
                source: PositionError::LineOutOfRange {
                    line: 5,
                    line_count: 2
                },
            }
        );
        let doc = store.snapshot(URI).unwrap();
        assert_eq!(doc.text().to_string(), "one\ntwo");
        assert_eq!(doc.version(), 1);
    }

    #[test]
    fn invalid_changes_are_typed_errors() {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 3, "abc");
        let inverted = store
            .apply_changes(
                URI,
                4,
                vec![ContentChange::replace(range((0, 2), (0, 1)), "")],
                Utf8,
            )
            .unwrap_err();
        assert!(matches!(
            inverted,
            DocumentError::InvalidChange {
                source: PositionError::InvertedRange { .. },
                ..
            }
        ));
        for version in [3, 2, -1] {
            assert_eq!(
                store.apply_changes(URI, version, vec![ContentChange::full("x")], Utf8),
                Err(DocumentError::StaleVersion {
                    uri: URI.into(),
                    current: 3,
                    received: version
                })
            );
        }
        let unknown = "file:///novel/missing.md";
        assert_eq!(
            store.apply_changes(unknown, 1, vec![], Utf8),
            Err(DocumentError::NotOpen {
                uri: unknown.into()
            })
        );
        assert!(store.close(unknown).is_err());
        assert!(store.snapshot(unknown).is_err());
        assert_eq!(store.snapshot(URI).unwrap().text().to_string(), "abc");
    }

    #[test]
    fn after_a_refused_change_only_a_full_text_restores_sync() {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, "abc");
        let bad = vec![ContentChange::replace(range((9, 0), (9, 0)), "x")];
        assert!(store.apply_changes(URI, 2, bad, Utf16).is_err());
        assert!(!store.snapshot(URI).unwrap().is_in_sync());

        let next = vec![ContentChange::replace(range((0, 0), (0, 0)), "x")];
        assert_eq!(
            store.apply_changes(URI, 3, next, Utf16),
            Err(DocumentError::OutOfSync { uri: URI.into() })
        );
        store
            .apply_changes(URI, 4, vec![ContentChange::full("fresh")], Utf16)
            .unwrap();
        let doc = store.snapshot(URI).unwrap();
        assert!(doc.is_in_sync());
        assert_eq!(doc.text().to_string(), "fresh");
    }

    #[test]
    fn a_snapshot_does_not_change_when_the_document_does() {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, "before");
        let before = store.snapshot(URI).unwrap();
        store
            .apply_changes(
                URI,
                2,
                vec![ContentChange::replace(range((0, 0), (0, 6)), "after")],
                Utf32,
            )
            .unwrap();
        assert_eq!(before.text().to_string(), "before");
        assert_eq!(before.version(), 1);
        assert_eq!(store.snapshot(URI).unwrap().text().to_string(), "after");
    }

    #[test]
    fn closing_forgets_the_document_and_reopening_replaces_it() {
        let store = DocumentStore::new();
        assert!(!store.open(URI, "markdown", 1, "a"));
        assert!(store.open(URI, "markdown", 1, "b"));
        assert_eq!(store.len(), 1);
        store.close(URI).unwrap();
        assert!(!store.is_open(URI));
        assert!(store.is_empty());
    }

    #[test]
    fn the_fingerprint_counts_every_unit_and_digests_the_utf8_text() {
        let doc = snapshot_of("a😀\r\n日");
        let fp = doc.fingerprint();
        assert_eq!(fp.line_count, 2);
        assert_eq!(fp.char_len, 5);
        assert_eq!(fp.utf16_len, 6);
        assert_eq!(fp.byte_len, 1 + 4 + 2 + 3);
        let expected: String = Sha256::digest("a😀\r\n日".as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(fp.sha256, expected);
    }

    #[test]
    fn debug_output_never_contains_the_text() {
        let doc = snapshot_of("a secret plot twist");
        let change = ContentChange::full("another secret");
        let printed = format!("{doc:?} {change:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("chars: 19"), "{printed}");
    }

    #[test]
    fn a_ten_megabyte_manuscript_opens_edits_and_converts() {
        let paragraph = "She turned the key — 鍵 — and the door opened 🚪.\r\n";
        let repeats = 10 * 1024 * 1024 / paragraph.len() + 1;
        let text = paragraph.repeat(repeats);
        assert!(text.len() >= 10 * 1024 * 1024);
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, &text);
        let last_line = repeats as u32 - 1;
        store
            .apply_changes(
                URI,
                2,
                vec![
                    ContentChange::replace(range((last_line, 0), (last_line, 3)), "He"),
                    ContentChange::replace(range((0, 0), (0, 0)), "# Chapter 1\n"),
                ],
                Utf16,
            )
            .unwrap();
        let doc = store.snapshot(URI).unwrap();
        assert_eq!(
            doc.text().len_bytes(),
            text.len() - 1 + "# Chapter 1\n".len()
        );
        let end = doc
            .position_of(CharOffset(doc.text().len_chars()), Utf16)
            .unwrap();
        assert_eq!(end, pos(last_line + 2, 0));
        let last = doc.offset_of(pos(last_line + 1, 2), Utf8).unwrap();
        assert_eq!(doc.text().slice(last.0..last.0 + 6).to_string(), " turne");
    }
}
