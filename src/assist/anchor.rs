//! Where a generated edit goes when the author kept writing while it was generated.
//!
//! An [`Anchor`] remembers the span an action was run on and the text around it. When the
//! document has changed by the time the text is ready, the anchor finds the same text again (it
//! may have moved because the author typed above it) and returns the span's new place; when the
//! span or its surroundings were themselves edited, or the text now occurs ambiguously, it refuses
//! — the edit is then not applied: never over the author's new text.

use std::ops::Range;

use ropey::Rope;

/// Chars of context on each side that must still match for the span to be found again.
const CONTEXT_CHARS: usize = 48;

/// A span of one document version, with what surrounded it.
#[derive(Clone, PartialEq, Eq)]
pub struct Anchor {
    version: i32,
    span: Range<usize>,
    before: String,
    selected: String,
    after: String,
}

/// Manuscript text: `{:?}` shows sizes only.
impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor")
            .field("version", &self.version)
            .field("span", &self.span)
            .field("context_chars", &(self.before.len() + self.after.len()))
            .finish()
    }
}

/// The anchored text was edited (or is no longer unique): the edit must not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the text the edit belongs to was changed")]
pub struct Conflict;

impl Anchor {
    /// Remembers `span` (char offsets, clamped) of `text` at `version`.
    pub fn capture(text: &Rope, version: i32, span: Range<usize>) -> Anchor {
        let len = text.len_chars();
        let end = span.end.min(len);
        let start = span.start.min(end);
        let before_start = start.saturating_sub(CONTEXT_CHARS);
        let after_end = (end + CONTEXT_CHARS).min(len);
        Anchor {
            version,
            span: start..end,
            before: text.slice(before_start..start).to_string(),
            selected: text.slice(start..end).to_string(),
            after: text.slice(end..after_end).to_string(),
        }
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The selected text when it was captured.
    pub fn selected(&self) -> &str {
        &self.selected
    }

    /// The span's place in `text` at `version`: the same span when the version is unchanged,
    /// else where the span with its context occurs now — the occurrence nearest its old place,
    /// which must be unambiguous.
    pub fn locate(&self, text: &Rope, version: i32) -> Result<Range<usize>, Conflict> {
        if version == self.version {
            return Ok(self.span.clone());
        }
        let needle = format!("{}{}{}", self.before, self.selected, self.after);
        let old_start = self.span.start - self.before.chars().count();
        // Edits usually sit near the cursor: look close by first, the whole document only when
        // the text moved far (a paste above it).
        let near = 64 * 1024;
        for radius in [near, usize::MAX] {
            let from = old_start.saturating_sub(radius);
            let to = old_start
                .saturating_add(radius)
                .saturating_add(needle.chars().count())
                .min(text.len_chars());
            if let Some(start) = nearest(text, from..to, &needle, old_start)? {
                let begin = start + self.before.chars().count();
                return Ok(begin..begin + self.selected.chars().count());
            }
            if from == 0 && to == text.len_chars() {
                break;
            }
        }
        Err(Conflict)
    }
}

/// The char offset of the occurrence of `needle` in `text[window]` nearest to `target`; an error
/// when two occurrences are equally near.
fn nearest(
    text: &Rope,
    window: Range<usize>,
    needle: &str,
    target: usize,
) -> Result<Option<usize>, Conflict> {
    if needle.is_empty() {
        return Err(Conflict);
    }
    let haystack = text.slice(window.clone()).to_string();
    let mut best: Option<(usize, usize)> = None;
    let mut tie = false;
    let mut chars_before = 0;
    let mut last_byte = 0;
    let mut from = 0;
    // Overlapping occurrences count too ("abab" holds "ab ab"-like repeats twice).
    while let Some(found) = haystack[from..].find(needle) {
        let byte = from + found;
        from = byte + haystack[byte..].chars().next().map_or(1, char::len_utf8);
        chars_before += haystack[last_byte..byte].chars().count();
        last_byte = byte;
        let at = window.start + chars_before;
        let distance = at.abs_diff(target);
        match best {
            Some((_, d)) if distance > d => {}
            Some((_, d)) if distance == d => tie = true,
            _ => {
                best = Some((at, distance));
                tie = false;
            }
        }
    }
    if tie {
        return Err(Conflict);
    }
    Ok(best.map(|(at, _)| at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rope(text: &str) -> Rope {
        Rope::from_str(text)
    }

    fn at(text: &str, needle: &str) -> Range<usize> {
        let byte = text.find(needle).unwrap();
        let start = text[..byte].chars().count();
        start..start + needle.chars().count()
    }

    #[test]
    fn an_unchanged_version_keeps_the_span() {
        let text = "Mara climbed the stairs. The lamp was out.";
        let anchor = Anchor::capture(&rope(text), 3, at(text, "The lamp"));
        assert_eq!(
            anchor.locate(&rope("anything"), 3),
            Ok(at(text, "The lamp"))
        );
    }

    #[test]
    fn edits_elsewhere_move_the_span_and_edits_to_it_refuse() {
        // The context that must match is 48 chars each side; the heading lies outside it.
        let original = "Chapter 1\n\nThe island was bare and the wind never stopped. Mara climbed the stairs. The lamp was out. She waited.";
        let span = at(original, "The lamp was out.");
        let anchor = Anchor::capture(&rope(original), 1, span);
        let cases: &[(&str, Result<&str, Conflict>)] = &[
            // Text typed above: the span moved.
            (
                "Chapter 1: Salt 🌊\n\nThe island was bare and the wind never stopped. Mara climbed the stairs. The lamp was out. She waited.",
                Ok("The lamp was out."),
            ),
            // Text typed far below: same place.
            (
                "Chapter 1\n\nThe island was bare and the wind never stopped. Mara climbed the stairs. The lamp was out. She waited. And waited.",
                Ok("The lamp was out."),
            ),
            // The selection itself was edited.
            (
                "Chapter 1\n\nThe island was bare and the wind never stopped. Mara climbed the stairs. The lamp was lit. She waited.",
                Err(Conflict),
            ),
            // Its immediate surroundings were edited.
            (
                "Chapter 1\n\nThe island was bare and the wind never stopped. Mara ran up the stairs. The lamp was out. She waited.",
                Err(Conflict),
            ),
            // Gone.
            ("Chapter 1\n\n", Err(Conflict)),
        ];
        for (now, expected) in cases {
            let got = anchor.locate(&rope(now), 2);
            let want = expected.map(|needle| at(now, needle));
            assert_eq!(got, want, "{now:?}");
        }
    }

    #[test]
    fn an_insertion_point_is_found_between_its_neighbours() {
        let original = "She waited. He came.";
        let cursor = "She waited.".chars().count();
        let anchor = Anchor::capture(&rope(original), 1, cursor..cursor);
        let now = "Night fell. She waited. He came.";
        let expected = "Night fell. She waited.".chars().count();
        assert_eq!(anchor.locate(&rope(now), 5), Ok(expected..expected));
        // Typed at the cursor itself: the author's new words are in the way.
        assert_eq!(
            anchor.locate(&rope("She waited. Long. He came."), 5),
            Err(Conflict)
        );
    }

    #[test]
    fn the_nearest_occurrence_wins_and_a_tie_refuses() {
        let text = rope("ab__ab_ab");
        assert_eq!(nearest(&text, 0..9, "ab", 5), Ok(Some(4)));
        assert_eq!(nearest(&text, 0..9, "ab", 2), Err(Conflict));
        assert_eq!(nearest(&text, 0..9, "zz", 2), Ok(None));
        // Overlapping occurrences are all seen.
        assert_eq!(nearest(&rope("aaaa"), 0..4, "aa", 2), Ok(Some(2)));
    }
}
