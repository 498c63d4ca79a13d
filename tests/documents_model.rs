//! The document store against a naive model: a `String` edited by byte ranges found by walking
//! the text char by char. Random texts mix ASCII, accents, CJK, emoji, `\n`, lone `\r` (so CRLF
//! pairs form and split as edits land next to each other) and U+2028 (text, not a line break).
//! Random positions are counted in UTF-8, UTF-16 or UTF-32 and are sometimes invalid (past the
//! last line, inside a character, inverted ranges), so refused change sets are covered too.
//!
//! The edit trail is held to the same model: where it vouches that an earlier text's start still
//! holds, that start is the model's.
//!
//! 10,000 cases per property (edit sequences of up to 12 change sets each; conversions), in every
//! encoding; `PROPTEST_CASES` replaces the count (see `tests/prop_support`).

mod prop_support;

use proptest::prelude::*;
use storyteller_lsp::documents::{
    CharOffset, ContentChange, DocumentError, DocumentStore, Position, PositionEncoding, Range,
};

const URI: &str = "file:///model/chapter.md";

fn piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just("a"),
        3 => Just(" "),
        2 => Just("é"),
        2 => Just("日"),
        2 => Just("😀"),
        1 => Just("🌊"),
        3 => Just("\n"),
        2 => Just("\r"),
        1 => Just("\r\n"),
        1 => Just("\u{2028}"),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..max).prop_map(|pieces| pieces.concat())
}

fn encoding() -> impl Strategy<Value = PositionEncoding> {
    prop_oneof![
        Just(PositionEncoding::Utf8),
        Just(PositionEncoding::Utf16),
        Just(PositionEncoding::Utf32),
    ]
}

/// Raw numbers turned into a position against the text current when it is applied.
#[derive(Debug, Clone)]
struct PositionSeed {
    line: u32,
    character: u32,
    /// Usually a char boundary of an existing line; otherwise raw (maybe invalid) numbers.
    exact: bool,
}

fn position_seed() -> impl Strategy<Value = PositionSeed> {
    (any::<u32>(), any::<u32>(), prop::bool::weighted(0.85)).prop_map(|(line, character, exact)| {
        PositionSeed {
            line,
            character,
            exact,
        }
    })
}

#[derive(Debug, Clone)]
enum ChangeSeed {
    Full(String),
    Edit {
        a: PositionSeed,
        b: PositionSeed,
        ordered: bool,
        text: String,
    },
}

fn change_seed() -> impl Strategy<Value = ChangeSeed> {
    prop_oneof![
        1 => text(30).prop_map(ChangeSeed::Full),
        12 => (position_seed(), position_seed(), prop::bool::weighted(0.9), text(6)).prop_map(
            |(a, b, ordered, text)| ChangeSeed::Edit { a, b, ordered, text }
        ),
    ]
}

// ---- the naive model ----

/// Byte spans of each line's content (without its ending), LSP line breaks only.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                spans.push((start, i));
                i += 1;
                start = i;
            }
            b'\r' => {
                spans.push((start, i));
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    spans.push((start, bytes.len()));
    spans
}

fn units(c: char, encoding: PositionEncoding) -> usize {
    match encoding {
        PositionEncoding::Utf8 => c.len_utf8(),
        PositionEncoding::Utf16 => c.len_utf16(),
        PositionEncoding::Utf32 => 1,
    }
}

/// The byte index `position` addresses, or `None` when it does not exist.
fn model_byte(text: &str, position: Position, encoding: PositionEncoding) -> Option<usize> {
    let (start, end) = *line_spans(text).get(position.line as usize)?;
    let target = position.character as usize;
    let mut counted = 0;
    for (i, c) in text[start..end].char_indices() {
        if counted == target {
            return Some(start + i);
        }
        counted += units(c, encoding);
        if counted > target {
            return None; // inside a character
        }
    }
    Some(end) // at or past the end of the line: clamped
}

fn position_for(text: &str, seed: &PositionSeed, encoding: PositionEncoding) -> Position {
    let spans = line_spans(text);
    if !seed.exact {
        // Mostly near the text so that clamping and inside-character cases both occur.
        let line = seed.line % (spans.len() as u32 + 1);
        return Position::new(line, seed.character % 24);
    }
    let line = seed.line % spans.len() as u32;
    let (start, end) = spans[line as usize];
    let content = &text[start..end];
    let chars = content.chars().count();
    let k = seed.character as usize % (chars + 1);
    let character = content
        .chars()
        .take(k)
        .map(|c| units(c, encoding))
        .sum::<usize>();
    Position::new(line, character as u32)
}

/// Applies a change set to the model the way the protocol defines it, all or nothing.
fn model_apply(
    text: &str,
    in_sync: bool,
    changes: &[ContentChange],
    encoding: PositionEncoding,
) -> Option<String> {
    let mut next = text.to_string();
    let mut in_sync = in_sync;
    for change in changes {
        match change.range {
            None => {
                next = change.text.clone();
                in_sync = true;
            }
            Some(range) => {
                if !in_sync || range.start > range.end {
                    return None;
                }
                let start = model_byte(&next, range.start, encoding)?;
                let end = model_byte(&next, range.end, encoding)?;
                next.replace_range(start..end, &change.text);
            }
        }
    }
    Some(next)
}

fn check_same(store: &DocumentStore, model: &str) -> Result<(), TestCaseError> {
    let snapshot = store.snapshot(URI).expect("open");
    prop_assert_eq!(snapshot.text().to_string(), model);
    let fingerprint = snapshot.fingerprint();
    prop_assert_eq!(fingerprint.line_count, line_spans(model).len());
    prop_assert_eq!(fingerprint.utf16_len, model.encode_utf16().count());
    Ok(())
}

proptest! {
    #![proptest_config(prop_support::config())]

    #[test]
    fn incremental_edits_match_a_naive_model(
        initial in text(40),
        encoding in encoding(),
        sets in proptest::collection::vec(proptest::collection::vec(change_seed(), 1..4), 1..12),
    ) {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, &initial);
        let mut model = initial;
        let mut in_sync = true;
        let mut version = 1;
        // Each text the document had, by its mark: what the trail may vouch for.
        let mut earlier = vec![(store.snapshot(URI).expect("open").trail().mark(), model.clone())];
        for set in sets {
            // Positions of each change are relative to the text left by the previous one.
            let mut scratch = model.clone();
            let mut changes = Vec::new();
            for seed in set {
                let change = match seed {
                    ChangeSeed::Full(text) => ContentChange::full(text),
                    ChangeSeed::Edit { a, b, ordered, text } => {
                        let (mut start, mut end) = (
                            position_for(&scratch, &a, encoding),
                            position_for(&scratch, &b, encoding),
                        );
                        if ordered && start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        ContentChange::replace(Range::new(start, end), text)
                    }
                };
                if let Some(next) = model_apply(&scratch, true, std::slice::from_ref(&change), encoding) {
                    scratch = next;
                }
                changes.push(change);
            }
            version += 1;
            let expected = model_apply(&model, in_sync, &changes, encoding);
            let result = store.apply_changes(URI, version, changes, encoding);
            match expected {
                Some(next) => {
                    prop_assert!(result.is_ok(), "store refused a valid set: {:?}", result);
                    model = next;
                    in_sync = true;
                }
                None => {
                    prop_assert!(result.is_err(), "store accepted an invalid set");
                    if in_sync {
                        let out_of_sync = matches!(result, Err(DocumentError::OutOfSync { .. }));
                        prop_assert!(!out_of_sync, "refused for the wrong reason");
                    }
                    in_sync = false;
                }
            }
            let snapshot = store.snapshot(URI).expect("open");
            prop_assert_eq!(snapshot.is_in_sync(), in_sync);
            check_same(&store, &model)?;
            // Where the trail says an earlier text's start still holds, it does.
            // (Vouching for a start vouches for every shorter one: the longest is checked.)
            for (mark, old) in &earlier {
                let vouched = (0..=old.chars().count())
                    .take_while(|&offset| snapshot.trail().unchanged_before(*mark, offset) == Some(true))
                    .last();
                if let Some(offset) = vouched {
                    let now: String = model.chars().take(offset).collect();
                    let then: String = old.chars().take(offset).collect();
                    prop_assert_eq!(now, then, "the trail vouched for {} chars", offset);
                }
            }
            earlier.push((snapshot.trail().mark(), model.clone()));
        }
    }
}

proptest! {
    #![proptest_config(prop_support::config())]

    #[test]
    fn positions_convert_like_a_naive_model(
        text in text(60),
        encoding in encoding(),
        seed in position_seed(),
    ) {
        let store = DocumentStore::new();
        store.open(URI, "markdown", 1, &text);
        let snapshot = store.snapshot(URI).expect("open");
        let position = position_for(&text, &seed, encoding);
        let expected = model_byte(&text, position, encoding);
        let got = snapshot.offset_of(position, encoding);
        match expected {
            Some(byte) => {
                let offset = got.expect("valid position");
                prop_assert_eq!(offset, CharOffset(text[..byte].chars().count()));
                prop_assert_eq!(snapshot.byte_offset_of(position, encoding).expect("valid"), byte);
                // Back again: the same position, or the clamped one at the line end.
                let back = snapshot.position_of(offset, encoding).expect("in range");
                prop_assert_eq!(model_byte(&text, back, encoding), Some(byte));
                prop_assert!(back.line == position.line && back.character <= position.character);
            }
            None => prop_assert!(got.is_err(), "{position} accepted in {text:?}"),
        }
    }
}
