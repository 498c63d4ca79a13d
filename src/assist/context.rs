//! The context window around a cursor or selection: the manuscript text before and after it,
//! within a token budget, cut at paragraph or sentence boundaries; the nearest chapter heading
//! above it (in many languages); and whether a word reads as a name (the answer-cleaning stage never
//! lowers one). The story notes a window names are chosen by `assist::notes`.
//!
//! Everything here reads a [`Rope`] by char offsets and touches only the window it returns (plus a
//! bounded scan upwards for the heading, which ghost text skips when the text above the cursor's
//! line has not changed since the last look: [`HeadingMemo`]): the cost does not grow with the
//! manuscript, so a 10 MB novel costs what a short story does. Slicing by chars means a cut never
//! falls inside a UTF-8 sequence; cutting at sentence or word boundaries (UAX #29, as Harper's
//! sentence iterator does) keeps grapheme clusters whole too.
//!
//! Must never: copy the whole document, log the text it extracts.

use ropey::{Rope, RopeSlice};
use unicode_segmentation::UnicodeSegmentation;

use crate::documents::{EditMark, EditTrail};

/// The rough size of a token in chars, for budgets (English prose averages about four).
pub const CHARS_PER_TOKEN: usize = 4;

/// How much text above the cursor the heading search reads (about ten thousand words: a long
/// chapter). A constant bound keeps the search cheap on a manuscript without headings.
const HEADING_SCAN_CHARS: usize = 64 * 1024;

/// A heading line is short; a long line that starts with "Chapter" is prose.
const HEADING_MAX_CHARS: usize = 100;

/// How much context a request kind may spend, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextBudget {
    pub before_tokens: usize,
    pub after_tokens: usize,
    pub notes_tokens: usize,
    /// Reserved for `STORY.md` (point of view, tense, language, style sample).
    pub story_tokens: usize,
    /// At most this much of the previous chapter's end, near a chapter's start (and never more
    /// than the text before the cursor leaves unused).
    pub previous_tokens: usize,
}

impl ContextBudget {
    /// Inline completion: small and fast, the sentence being written matters most.
    pub const INLINE: ContextBudget = ContextBudget {
        before_tokens: 500,
        after_tokens: 120,
        notes_tokens: 250,
        story_tokens: 150,
        previous_tokens: 200,
    };

    /// Code actions: the scene so far and the notes that shape it.
    pub const ACTION: ContextBudget = ContextBudget {
        before_tokens: 1_500,
        after_tokens: 400,
        notes_tokens: 1_000,
        story_tokens: 400,
        previous_tokens: 500,
    };

    pub fn before_chars(self) -> usize {
        self.before_tokens * CHARS_PER_TOKEN
    }

    pub fn after_chars(self) -> usize {
        self.after_tokens * CHARS_PER_TOKEN
    }

    pub fn notes_chars(self) -> usize {
        self.notes_tokens * CHARS_PER_TOKEN
    }

    pub fn story_chars(self) -> usize {
        self.story_tokens * CHARS_PER_TOKEN
    }

    pub fn previous_chars(self) -> usize {
        self.previous_tokens * CHARS_PER_TOKEN
    }
}

/// The text around a span of the manuscript.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Surroundings {
    /// Ends exactly at the span's start.
    pub before: String,
    /// Starts exactly at the span's end.
    pub after: String,
    /// The nearest heading above the span, without its `#` marks.
    pub heading: Option<String>,
}

/// Manuscript text: `{:?}` shows sizes only.
impl std::fmt::Debug for Surroundings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Surroundings")
            .field("before_chars", &self.before.chars().count())
            .field("after_chars", &self.after.chars().count())
            .field("has_heading", &self.heading.is_some())
            .finish()
    }
}

/// The text before `start` and after `end` (char offsets, clamped to the text) within `budget`.
pub fn surroundings(text: &Rope, start: usize, end: usize, budget: ContextBudget) -> Surroundings {
    around(text, start, end, budget, |start| heading_above(text, start))
}

/// [`surroundings`], looking for the heading with [`heading_above_remembering`] (ghost text
/// asks again at every pause in the same place).
pub fn surroundings_remembering(
    text: &Rope,
    start: usize,
    end: usize,
    budget: ContextBudget,
    memo: &mut Option<HeadingMemo>,
    trail: Option<&EditTrail>,
) -> Surroundings {
    around(text, start, end, budget, |start| {
        heading_above_remembering(text, start, memo, trail)
    })
}

fn around(
    text: &Rope,
    start: usize,
    end: usize,
    budget: ContextBudget,
    heading_above: impl FnOnce(usize) -> Option<String>,
) -> Surroundings {
    let len = text.len_chars();
    let end = end.min(len);
    let start = start.min(end);
    Surroundings {
        before: before(text, start, budget.before_chars()),
        after: after(text, end, budget.after_chars()),
        heading: heading_above(start),
    }
}

/// At most `max_chars` chars ending at `at`, starting at a paragraph or sentence boundary unless
/// the window reaches the start of the document.
pub fn before(text: &Rope, at: usize, max_chars: usize) -> String {
    let at = at.min(text.len_chars());
    let start = at.saturating_sub(max_chars);
    let window = text.slice(start..at).to_string();
    if start == 0 {
        return window;
    }
    let cut = leading_cut(&window);
    window[cut..].to_string()
}

/// At most `max_chars` chars starting at `at`, ending at a paragraph or sentence boundary unless
/// the window reaches the end of the document.
pub fn after(text: &Rope, at: usize, max_chars: usize) -> String {
    let len = text.len_chars();
    let at = at.min(len);
    let end = (at + max_chars).min(len);
    let mut window = text.slice(at..end).to_string();
    if end < len {
        let cut = trailing_cut(&window);
        window.truncate(cut);
    }
    window
}

/// Where a window that starts mid-text should start: after the first paragraph break in its
/// first half, else at its second sentence, else after its first whitespace (never mid-word).
fn leading_cut(window: &str) -> usize {
    if let Some(end) = paragraph_breaks(window)
        .map(|(_, end)| end)
        .find(|&end| end <= window.len() / 2)
    {
        return end;
    }
    if may_break_sentences(window)
        && let Some((index, _)) = window.split_sentence_bound_indices().nth(1)
    {
        return index;
    }
    match window.char_indices().find(|(_, c)| c.is_whitespace()) {
        Some((index, c)) => index + c.len_utf8(),
        None => 0,
    }
}

/// Where a window that ends mid-text should end: at the last paragraph break in its second half,
/// else at the end of its last whole sentence, else at its last whitespace.
fn trailing_cut(window: &str) -> usize {
    if let Some(start) = paragraph_breaks(window)
        .map(|(start, _)| start)
        .filter(|&start| start >= window.len() / 2)
        .last()
    {
        return start;
    }
    if may_break_sentences(window)
        && let Some(index) = last_sentence_start(window)
        && index > 0
    {
        return index;
    }
    window
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(window.len(), |(index, _)| index)
}

/// Where the last sentence of `text` starts (byte index), as Unicode's sentence segmentation
/// says; `None` for empty text. A line or paragraph separator always ends a sentence and nothing
/// after it looks back past it (rules SB4–SB11), so the segmentation starts after the last line
/// break instead of reading the whole window.
fn last_sentence_start(text: &str) -> Option<usize> {
    if let Some(at) = memchr::memrchr2(b'\n', b'\r', text.as_bytes())
        && at + 1 < text.len()
    {
        let tail = &text[at + 1..];
        return tail
            .split_sentence_bound_indices()
            .last()
            .map(|(index, _)| at + 1 + index);
    }
    text.split_sentence_bound_indices()
        .last()
        .map(|(index, _)| index)
}

/// Whether `text` may hold a sentence boundary before its end. Sentences end only after a
/// terminator (`.`, `!`, `?` and their kin in other scripts) or a line or paragraph separator
/// (Unicode's sentence rules SB4–SB11): ASCII text without any of them has none, and the
/// segmentation, which reads every char, is not needed to say so.
fn may_break_sentences(text: &str) -> bool {
    let bytes = text.as_bytes();
    !text.is_ascii()
        || memchr::memchr3(b'.', b'!', b'?', bytes).is_some()
        || memchr::memchr2(b'\n', b'\r', bytes).is_some()
}

/// Byte spans of the blank-line runs that separate paragraphs (`\n\n`, `\r\n\r\n`, with spaces
/// on the empty line allowed).
fn paragraph_breaks(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        // Line feeds are looked for a word at a time: a window is often one long paragraph.
        while let Some(found) = memchr::memchr(b'\n', &bytes[i..]) {
            let start = i + found;
            let mut j = start + 1;
            let mut blank = false;
            // Only spaces, tabs and carriage returns may sit between two line feeds.
            while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
                if bytes[j] == b'\n' {
                    blank = true;
                }
                j += 1;
            }
            i = j;
            if blank {
                // Include a `\r` just before the first `\n` in the break.
                let start = if start > 0 && bytes[start - 1] == b'\r' {
                    start - 1
                } else {
                    start
                };
                return Some((start, j));
            }
        }
        None
    })
}

/// The nearest heading at or above the line of char offset `at`: a Markdown ATX heading
/// (`# Title`, up to `######`) or a short line that starts with "Chapter", "Prologue",
/// "Epilogue" or "Part". Reads the cursor's line and the lines that start at most
/// [`HEADING_SCAN_CHARS`] chars above it.
pub fn heading_above(text: &Rope, at: usize) -> Option<String> {
    let line_start = line_start_of(text, at);
    heading_on_line(text, line_start).or_else(|| {
        heading_before(
            text,
            line_start.saturating_sub(HEADING_SCAN_CHARS),
            line_start,
        )
        .map(|(_, title)| title)
    })
}

/// What a look for the heading above a cursor found, kept for the next look in the same
/// document: while typing, only the cursor's line is read again, not the chapter above it.
#[derive(Clone)]
pub struct HeadingMemo {
    /// The text that was read (a rope clone shares its chunks: this costs no copy, and the
    /// chunks that later texts still share are recognised by their address).
    text: Rope,
    /// Where the cursor's line started: the lines above it were read.
    line_start: usize,
    /// The nearest heading line above it within the bound: where it starts, and its title.
    above: Option<(usize, String)>,
    /// The text's mark in its document's edit trail, when it came with one.
    mark: Option<EditMark>,
}

/// [`heading_above`], reading again only what changed since `memo` was taken (none: all of
/// it), and leaving in `memo` what this look found. `trail` (the document's, when `text` is an
/// open document's) says without reading whether the text above the remembered line changed.
pub fn heading_above_remembering(
    text: &Rope,
    at: usize,
    memo: &mut Option<HeadingMemo>,
    trail: Option<&EditTrail>,
) -> Option<String> {
    let line_start = line_start_of(text, at);
    let bound = line_start.saturating_sub(HEADING_SCAN_CHARS);
    let above = match memo.take() {
        Some(old) if old.line_start <= line_start && holds(&old, text, bound, trail) => {
            // Lines that came between the remembered cursor line and this one (Enter, or the
            // cursor moved down) come first; then what was found above them.
            heading_before(text, old.line_start.max(bound), line_start)
                .or(old.above.filter(|(start, _)| *start >= bound))
        }
        _ => heading_before(text, bound, line_start),
    };
    let heading = heading_on_line(text, line_start)
        .or_else(|| above.as_ref().map(|(_, title)| title.clone()));
    *memo = Some(HeadingMemo {
        text: text.clone(),
        line_start,
        above,
        mark: trail.map(EditTrail::mark),
    });
    heading
}

/// Whether what `memo` found above its cursor line is still true of `text`: the edit trail
/// says so when it leads back to the memo's text (no edit since reached above that line), else
/// the text it relied on is compared ([`still_holds`]).
fn holds(memo: &HeadingMemo, text: &Rope, bound: usize, trail: Option<&EditTrail>) -> bool {
    let vouched = memo
        .mark
        .zip(trail)
        .and_then(|(mark, trail)| trail.unchanged_before(mark, memo.line_start));
    match vouched {
        Some(unchanged) => unchanged && memo.line_start <= text.len_chars(),
        None => still_holds(memo, text, bound),
    }
}

/// Whether what `memo` found above its cursor line is still true of `text`, whose cursor line
/// starts at or below it and whose window starts at `bound`: the text it relied on (from the
/// heading it found, or from the window's start, to its cursor line, with the char before, which
/// says whether a line starts there) is the same.
fn still_holds(memo: &HeadingMemo, text: &Rope, bound: usize) -> bool {
    let from = match memo.above {
        Some((start, _)) if start >= bound => start,
        _ => bound,
    }
    .saturating_sub(1);
    let to = memo.line_start;
    from <= to
        && to <= text.len_chars()
        && same_text(memo.text.slice(from..to), text.slice(from..to))
}

/// Whether two slices hold the same text. Chunks that two ropes share (the parts an edit did not
/// touch) are recognised by their address and not read.
fn same_text(a: RopeSlice<'_>, b: RopeSlice<'_>) -> bool {
    if a.len_bytes() != b.len_bytes() {
        return false;
    }
    let (mut a_chunks, mut b_chunks) = (a.chunks(), b.chunks());
    let (mut left, mut right): (&[u8], &[u8]) = (&[], &[]);
    loop {
        while left.is_empty() {
            match a_chunks.next() {
                Some(chunk) => left = chunk.as_bytes(),
                // Equal lengths, equal amounts taken from both: `b` is used up too.
                None => return true,
            }
        }
        while right.is_empty() {
            match b_chunks.next() {
                Some(chunk) => right = chunk.as_bytes(),
                None => return false,
            }
        }
        let n = left.len().min(right.len());
        if left.as_ptr() != right.as_ptr() && left[..n] != right[..n] {
            return false;
        }
        left = &left[n..];
        right = &right[n..];
    }
}

/// The char offset where the line holding char offset `at` starts.
fn line_start_of(text: &Rope, at: usize) -> usize {
    let at = at.min(text.len_chars());
    text.line_to_char(text.char_to_line(at))
}

/// The heading title of the line that starts at char `line_start`, or `None` when it is not a
/// heading (its first letter rules most lines out before it is read).
fn heading_on_line(text: &Rope, line_start: usize) -> Option<String> {
    // The first chars are read where the line starts: a slice of the whole line would count the
    // chars and breaks of all of it (a paragraph is one line), and most lines stop here.
    let first = text
        .chars_at(line_start)
        .take(8)
        .take_while(|&c| c != '\n' && c != '\r')
        .find(|c| !c.is_whitespace());
    if !first.is_some_and(may_start_heading) {
        return None;
    }
    heading_title(&text.line(text.char_to_line(line_start)).to_string())
}

/// The nearest heading line that starts at or after char `bound` and above char `end` (where a
/// line starts), with where it starts. The window's chunks are walked backwards with a scan for
/// line breaks (SIMD, memchr) in each: no copy of the window, no decoding of its chars; only a
/// line that may be a heading (its first letter says so) is read.
fn heading_before(text: &Rope, bound: usize, end: usize) -> Option<(usize, String)> {
    if end <= bound {
        return None;
    }
    let starts_at_line = bound == 0 || matches!(text.char(bound - 1), '\n' | '\r');
    let window = text.slice(bound..end);
    let (mut chunks, mut chunk_start, _, _) = window.chunks_at_byte(window.len_bytes());
    // Byte offset (in the window) where the line being looked at ends (its break excluded).
    let mut line_end = window.len_bytes();
    while let Some(chunk) = chunks.prev() {
        chunk_start -= chunk.len();
        let bytes = chunk.as_bytes();
        let mut breaks = memchr::memrchr2_iter(b'\n', b'\r', bytes);
        loop {
            let line_start = match breaks.next() {
                Some(at) => chunk_start + at + 1,
                // The chunk's first line goes on into the previous chunk, unless this is the
                // window's first chunk.
                None if chunk_start > 0 => break,
                None => {
                    // The window's first line is cut unless the window starts a line.
                    if !starts_at_line {
                        return None;
                    }
                    0
                }
            };
            if let Some(title) = heading_in(&window, chunk, chunk_start, line_start, line_end) {
                return Some((bound + window.byte_to_char(line_start), title));
            }
            if line_start == 0 {
                return None;
            }
            line_end = line_start - 1;
        }
    }
    None
}

/// The heading title of the line at bytes `line_start..line_end` of `window`, which starts in
/// `chunk` (at byte `chunk_start` of the window); `None` when it is not a heading.
fn heading_in(
    window: &RopeSlice<'_>,
    chunk: &str,
    chunk_start: usize,
    line_start: usize,
    line_end: usize,
) -> Option<String> {
    let chunk_end = chunk_start + chunk.len();
    // Line breaks are ASCII, so both ends are char boundaries.
    let within = line_end <= chunk_end;
    let head = &chunk[line_start - chunk_start..line_end.min(chunk_end) - chunk_start];
    // Most lines are prose: their first letter rules them out at once.
    let mut first = head.chars().take(8).find(|c| !c.is_whitespace());
    if first.is_none() && !within && head.chars().count() < 8 {
        first = window
            .byte_slice(line_start..line_end)
            .chars()
            .take(8)
            .find(|c| !c.is_whitespace());
    }
    if !first.is_some_and(may_start_heading) {
        return None;
    }
    if within {
        heading_title(head)
    } else {
        heading_title(&window.byte_slice(line_start..line_end).to_string())
    }
}

/// The words that open a chapter or part heading line, lower case, in the languages authors
/// most often write in: "Chapter 3", "Глава 3", "Kapitel 3", "Chapitre 3", "Capítulo 3"…
const HEADING_WORDS: &[&str] = &[
    // English
    "chapter",
    "prologue",
    "epilogue",
    "part",
    "interlude",
    // Russian, Ukrainian, Belarusian
    "глава",
    "пролог",
    "эпилог",
    "часть",
    "розділ",
    "частина",
    "раздзел",
    // German, Dutch, Scandinavian
    "kapitel",
    "prolog",
    "epilog",
    "teil",
    "hoofdstuk",
    "deel",
    "kapittel",
    "del",
    // French, Spanish, Portuguese, Italian, Catalan
    "chapitre",
    "partie",
    "capítulo",
    "capitulo",
    "parte",
    "capitolo",
    "prologo",
    "prólogo",
    "epílogo",
    "epilogo",
    "épilogue",
    "capítol",
    // Polish, Czech, Slovak, Finnish, Hungarian, Turkish
    "rozdział",
    "rozdzial",
    "kapitola",
    "luku",
    "fejezet",
    "bölüm",
];

/// Whether a line whose first non-blank char is `c` can be a heading (most prose lines are
/// ruled out by their first letter before any other work).
fn may_start_heading(c: char) -> bool {
    if c.is_ascii() {
        // Most lines start with an ASCII letter: one bit answers (it runs once per line of the
        // window above the cursor on every ghost-text request).
        let lower = c.to_ascii_lowercase() as u8;
        return c == '#' || HEADING_ASCII_INITIALS & (1u128 << lower) != 0;
    }
    starts_a_heading_word(c)
}

/// Whether some word of [`HEADING_WORDS`] begins with `c` in lower case (the general test that
/// [`HEADING_ASCII_INITIALS`] answers early for ASCII).
fn starts_a_heading_word(c: char) -> bool {
    c.to_lowercase()
        .next()
        .is_some_and(|lower| HEADING_WORDS.iter().any(|word| word.starts_with(lower)))
}

/// The ASCII first letters of [`HEADING_WORDS`], one bit each.
const HEADING_ASCII_INITIALS: u128 = {
    let mut bits = 0u128;
    let mut i = 0;
    while i < HEADING_WORDS.len() {
        let first = HEADING_WORDS[i].as_bytes()[0];
        if first.is_ascii() {
            bits |= 1u128 << first;
        }
        i += 1;
    }
    bits
};

/// The title of a heading line, or `None` when the line is not one.
pub fn heading_title(line: &str) -> Option<String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim_start();
    let hashes = trimmed.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&hashes) {
        let rest = &trimmed[hashes..];
        if rest.is_empty() || rest.starts_with([' ', '\t']) {
            let title = rest.trim().trim_end_matches('#').trim();
            return (!title.is_empty()).then(|| title.to_string());
        }
        return None;
    }
    if line.chars().count() > HEADING_MAX_CHARS || trimmed.is_empty() {
        return None;
    }
    let first = trimmed.split_whitespace().next()?;
    let word: String = first
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect::<String>()
        .to_lowercase();
    let named = HEADING_WORDS.contains(&word.as_str());
    // "Chapter 3", "CHAPTER ONE", "Prologue": not "Chapters later, she…" (a sentence).
    let ends_like_a_title = !trimmed.ends_with(['.', ',', ';']) || trimmed.ends_with("..");
    (named && ends_like_a_title && first.to_lowercase().trim_end_matches(':') == word)
        .then(|| trimmed.trim().to_string())
}

/// Words that start with a capital but are not names: sentence openers, pronouns, titles.
const NOT_NAMES: &[&str] = &[
    "A",
    "About",
    "After",
    "All",
    "Also",
    "An",
    "And",
    "Another",
    "Any",
    "As",
    "At",
    "Back",
    "Because",
    "Before",
    "But",
    "By",
    "Chapter",
    "Did",
    "Do",
    "Does",
    "Don't",
    "Dr",
    "Each",
    "Even",
    "Every",
    "Everyone",
    "For",
    "From",
    "Had",
    "Has",
    "Have",
    "He",
    "Her",
    "Here",
    "Hers",
    "Him",
    "His",
    "How",
    "I",
    "I'd",
    "I'll",
    "I'm",
    "I've",
    "If",
    "In",
    "Into",
    "Is",
    "It",
    "It's",
    "Its",
    "Just",
    "Let",
    "Like",
    "Maybe",
    "Me",
    "Miss",
    "Mr",
    "Mrs",
    "Ms",
    "My",
    "No",
    "Nobody",
    "Not",
    "Nothing",
    "Now",
    "Of",
    "Oh",
    "On",
    "Once",
    "One",
    "Only",
    "Or",
    "Our",
    "Out",
    "Part",
    "Perhaps",
    "Please",
    "Prologue",
    "Epilogue",
    "She",
    "So",
    "Some",
    "Someone",
    "Something",
    "Still",
    "Such",
    "That",
    "The",
    "Their",
    "Them",
    "Then",
    "There",
    "These",
    "They",
    "This",
    "Those",
    "Though",
    "Through",
    "To",
    "Too",
    "Under",
    "Until",
    "Up",
    "We",
    "Well",
    "Were",
    "What",
    "When",
    "Where",
    "Which",
    "While",
    "Who",
    "Why",
    "With",
    "Yes",
    "Yet",
    "You",
    "Your",
    "Я",
    "Он",
    "Она",
    "Оно",
    "Они",
    "Мы",
    "Вы",
    "Ты",
    "Это",
    "И",
    "Но",
    "А",
    "В",
    "На",
    "Глава",
    "Не",
    "Да",
    "Нет",
    "Как",
    "Что",
    "Когда",
    "Где",
    "Потом",
];

/// Looks like a name: a capital followed by at least one lower-case letter, not a common opener.
pub fn is_name_like(word: &str) -> bool {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    first.is_uppercase()
        && word.chars().any(char::is_lowercase)
        && word.chars().count() >= 2
        && !NOT_NAMES.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paragraph breaks the slow way: each maximal run of spaces, tabs and line breaks that holds
    /// two line feeds, from its first line feed (with a `\r` just before it) to its end.
    fn paragraph_breaks_slowly(text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let mut breaks = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let run_end = (i..bytes.len())
                .find(|&j| !is_space(bytes[j]))
                .unwrap_or(bytes.len());
            let run = &bytes[i..run_end];
            if run.iter().filter(|&&b| b == b'\n').count() >= 2 {
                let first = i + run.iter().position(|&b| b == b'\n').unwrap_or(0);
                let start = if first > i && bytes[first - 1] == b'\r' {
                    first - 1
                } else {
                    first
                };
                breaks.push((start, run_end));
            }
            i = run_end.max(i + 1);
        }
        breaks
    }

    proptest::proptest! {
        #[test]
        fn paragraph_breaks_are_the_runs_with_two_line_feeds(text in "[a \t\r\né.]{0,60}") {
            proptest::prop_assert_eq!(
                paragraph_breaks(&text).collect::<Vec<_>>(),
                paragraph_breaks_slowly(&text)
            );
        }
    }

    fn rope(text: &str) -> Rope {
        Rope::from_str(text)
    }

    #[test]
    fn a_window_that_reaches_the_start_keeps_everything() {
        let text = rope("Mara climbed. The lamp");
        assert_eq!(before(&text, 22, 1_000), "Mara climbed. The lamp");
        assert_eq!(after(&text, 0, 1_000), "Mara climbed. The lamp");
    }

    #[test]
    fn the_text_before_starts_at_a_sentence_or_paragraph() {
        let cases = [
            // A paragraph break in the first half wins.
            (
                "first para ends here.\n\nSecond para. Still second",
                30,
                "Second para. Still second",
            ),
            // Otherwise the partial first sentence is dropped.
            (
                "xx one. Two three. Four five six seven eight nine",
                44,
                "Two three. Four five six seven eight nine",
            ),
            // No sentence boundary: start after a whitespace, never mid-word.
            (
                "aaaa bbbb cccc dddd eeee ffff gggg",
                30,
                "bbbb cccc dddd eeee ffff gggg",
            ),
        ];
        for (text, budget, expected) in cases {
            let r = rope(text);
            assert_eq!(before(&r, r.len_chars(), budget), expected, "{text:?}");
        }
    }

    #[test]
    fn the_text_after_ends_at_a_sentence_or_paragraph() {
        let cases = [
            (
                "One two. Three four.\n\nFive six seven eight nine ten",
                30,
                "One two. Three four.",
            ),
            ("One two. Three four five six seven", 20, "One two. "),
            ("aaaa bbbb cccc dddd eeee", 12, "aaaa bbbb"),
        ];
        for (text, budget, expected) in cases {
            assert_eq!(after(&rope(text), 0, budget), expected, "{text:?}");
        }
    }

    #[test]
    fn cuts_never_split_a_character() {
        // Emoji, combining marks and CJK around every possible budget: the result is always a
        // suffix/prefix of the text made of whole chars (a String could not hold anything else,
        // and no panic means no slice fell inside a char).
        let text = "Он сказал: «Ветер 🌬️ стих». 灯台守は船を数えた。 e\u{301}té 😀😀 fin.";
        let r = rope(text);
        let len = r.len_chars();
        for budget in 0..=len + 2 {
            for at in 0..=len {
                let b = before(&r, at, budget);
                let a = after(&r, at, budget);
                let prefix: String = r.slice(..at).to_string();
                let suffix: String = r.slice(at..).to_string();
                assert!(prefix.ends_with(&b), "before({at},{budget}) = {b:?}");
                assert!(suffix.starts_with(&a), "after({at},{budget}) = {a:?}");
                assert!(b.chars().count() <= budget);
                assert!(a.chars().count() <= budget);
            }
        }
    }

    #[test]
    fn the_nearest_heading_above_is_found() {
        let text = rope(
            "# The Novel\n\n## Chapter 1: Salt\n\nMara climbed.\n\nCHAPTER TWO\n\nThe lamp went out.\n",
        );
        let cases = [
            (0, Some("The Novel")),
            (20, Some("Chapter 1: Salt")),
            (40, Some("Chapter 1: Salt")),
            (text.len_chars(), Some("CHAPTER TWO")),
        ];
        for (at, expected) in cases {
            assert_eq!(heading_above(&text, at).as_deref(), expected, "at {at}");
        }
        assert_eq!(
            heading_above(&rope("no headings here.\nnor here."), 20),
            None
        );
    }

    #[test]
    fn heading_lines_are_told_from_prose() {
        let cases = [
            ("# Title", Some("Title")),
            ("###   Spaced ###", Some("Spaced")),
            ("#hashtag", None),
            ("####### too deep", None),
            ("Chapter 12", Some("Chapter 12")),
            (
                "Chapter Twelve: The Storm",
                Some("Chapter Twelve: The Storm"),
            ),
            ("Prologue", Some("Prologue")),
            ("Chapters later, she left.", None),
            ("Chapter and verse were quoted at length.", None),
            ("Party time", None),
            ("", None),
            ("Глава 3", Some("Глава 3")),
            ("ГЛАВА ТРЕТЬЯ", Some("ГЛАВА ТРЕТЬЯ")),
            ("Пролог", Some("Пролог")),
            ("Глава за главой она читала дальше.", None),
            ("Kapitel 3", Some("Kapitel 3")),
            ("Chapitre 3 : La tour", Some("Chapitre 3 : La tour")),
            ("Capítulo 3", Some("Capítulo 3")),
            ("Rozdział 3", Some("Rozdział 3")),
            ("Delen ble sendt i går.", None),
        ];
        for (line, expected) in cases {
            assert_eq!(heading_title(line).as_deref(), expected, "{line:?}");
        }
    }

    /// The scan as it was before it walked the rope's chunks: the cursor's line, then one copy
    /// of the window above it and a backwards search for line breaks. The chunk walk must find
    /// the same heading everywhere.
    fn heading_above_by_copy(text: &Rope, at: usize) -> Option<String> {
        let at = at.min(text.len_chars());
        let line = text.char_to_line(at);
        let line_start = text.line_to_char(line);
        if let Some(title) = heading_title(&text.line(line).to_string()) {
            return Some(title);
        }
        let start = line_start.saturating_sub(HEADING_SCAN_CHARS);
        if start == line_start {
            return None;
        }
        let window = text.slice(start..line_start).to_string();
        let starts_at_line =
            start == 0 || text.char(start - 1) == '\n' || text.char(start - 1) == '\r';
        let mut breaks = memchr::memrchr2_iter(b'\n', b'\r', window.as_bytes());
        let mut line_end = window.len();
        loop {
            let (line_start, first_line) = match breaks.next() {
                Some(at) => (at + 1, false),
                None => (0, true),
            };
            if first_line && !starts_at_line {
                return None;
            }
            let candidate = &window[line_start..line_end];
            if let Some(title) = heading_title(candidate) {
                return Some(title);
            }
            if first_line {
                return None;
            }
            line_end = line_start - 1;
        }
    }

    #[test]
    fn the_first_letter_test_agrees_with_the_heading_words() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let by_words = c == '#' || starts_a_heading_word(c);
            assert_eq!(may_start_heading(c), by_words, "{c:?}");
        }
    }

    /// Lines of every kind for the heading scans: headings, indented ones, prose, blank,
    /// multi-byte text.
    const MIXED_LINES: [&str; 11] = [
        "# Title",
        "   ## Indented heading",
        "Chapter 7",
        "Глава 3",
        "Chapters later, she left.",
        "Prose that goes on and on, Mara said, and the lamp burned.",
        "",
        "      ",
        "灯台の光が消えた。",
        "Prologue",
        "#not a heading",
    ];

    /// [`MIXED_LINES`] (some after a long line that crosses the rope's chunks) joined by every
    /// line ending, until the text has `target` chars.
    fn mixed_manuscript(next: &mut impl FnMut(usize) -> usize, target: usize) -> String {
        let breaks = ["\n", "\r\n", "\r", "\n\n"];
        let mut text = String::new();
        while text.chars().count() < target {
            let line = MIXED_LINES[next(MIXED_LINES.len())];
            if next(5) == 0 {
                // A long line: crosses chunk boundaries.
                text.push_str(&"word ".repeat(next(400)));
            }
            text.push_str(line);
            text.push_str(breaks[next(breaks.len())]);
        }
        text
    }

    #[test]
    fn the_chunk_walk_finds_the_headings_a_copy_of_the_window_finds() {
        // Long enough for many chunks and, every third round, for the scan's bound.
        let mut next = crate::assist::test_sequence(0x9E37_79B9_7F4A_7C15);
        for round in 0..12 {
            let target = if round % 3 == 0 {
                HEADING_SCAN_CHARS + 5_000
            } else {
                6_000
            };
            let text = mixed_manuscript(&mut next, target);
            let r = rope(&text);
            let len = r.len_chars();
            for _ in 0..200 {
                let at = next(len + 1);
                assert_eq!(
                    heading_above(&r, at),
                    heading_above_by_copy(&r, at),
                    "round {round}, at {at}"
                );
            }
        }
    }

    #[test]
    fn a_remembered_heading_is_the_heading_a_fresh_look_finds() {
        // A manuscript typed into, edited above the cursor, split by Enter, cut, and walked up
        // and down: after every step, the look that reuses the last one finds what a look from
        // scratch finds.
        // Rounds 0, 1, 4 and 5 keep an edit trail as the document store does (the memo then
        // relies on it, and on the text where the trail is too short); rounds 2 and 3 have none.
        let mut next = crate::assist::test_sequence(0x5851_F42D_4C95_7F2D);
        for round in 0..6 {
            let target = if round % 2 == 0 {
                HEADING_SCAN_CHARS + 3_000
            } else {
                4_000
            };
            let mut live = rope(&mixed_manuscript(&mut next, target));
            let mut trail = (round / 2 != 1).then(EditTrail::new);
            let edited_at = |trail: &mut Option<EditTrail>, lowest: usize| {
                if let Some(trail) = trail {
                    trail.record(lowest);
                }
            };
            let mut memo = None;
            let mut at = live.len_chars();
            for step in 0..400 {
                let len = live.len_chars();
                match next(10) {
                    // Typing at the cursor (most steps).
                    0..=3 => {
                        live.insert(at, ["a", " word", ".", "é"][next(4)]);
                        edited_at(&mut trail, at);
                    }
                    // Enter, or a heading typed on a new line.
                    4 => {
                        live.insert(at, ["\n", "\n# New part\n", "\r\n"][next(3)]);
                        edited_at(&mut trail, at);
                    }
                    // An edit somewhere above, or a cut that may take a heading away.
                    5 => {
                        let place = next(at + 1);
                        live.insert(place, MIXED_LINES[next(MIXED_LINES.len())]);
                        edited_at(&mut trail, place);
                    }
                    6 => {
                        let from = next(at + 1);
                        let to = (from + next(200)).min(len);
                        live.remove(from..to);
                        edited_at(&mut trail, from);
                    }
                    // The cursor moves.
                    7 => at = next(len + 1),
                    8 => at = (at + next(500)).min(len),
                    _ => at = at.saturating_sub(next(300)),
                }
                at = at.min(live.len_chars());
                // The request's snapshot: a clone, as the server takes.
                let snapshot = live.clone();
                assert_eq!(
                    heading_above_remembering(&snapshot, at, &mut memo, trail.as_ref()),
                    heading_above(&snapshot, at),
                    "round {round}, step {step}, at {at}"
                );
            }
        }
    }

    #[test]
    fn texts_are_compared_by_content_whatever_their_chunks() {
        let text = "Mara climbed the steps. ".repeat(500);
        let one = rope(&text);
        let mut two = Rope::new();
        for piece in text.as_bytes().chunks(7) {
            two.insert(two.len_chars(), std::str::from_utf8(piece).unwrap());
        }
        let len = one.len_chars();
        assert!(same_text(one.slice(..), two.slice(..)));
        assert!(same_text(one.slice(100..len - 5), two.slice(100..len - 5)));
        let mut three = one.clone();
        three.remove(len - 3..len - 2);
        three.insert(len - 3, "X");
        assert!(same_text(one.slice(..len - 4), three.slice(..len - 4)));
        assert!(!same_text(one.slice(..), three.slice(..)));
        assert!(!same_text(one.slice(..10), two.slice(1..11)));
    }

    #[test]
    fn the_last_sentence_is_found_from_the_last_line_break() {
        let pieces = [
            "One two. ",
            "Three?! ",
            "\"Four,\" she said. ",
            "e.g. five ",
            "\n",
            "\r\n",
            "\r",
            "\n\n",
            "Он сказал. ",
            "灯台の光。",
            "  ",
            "six",
            "Mr. Seven. ",
            "(eight.) ",
            "\u{2029}",
            "\u{85}",
        ];
        let mut next = crate::assist::test_sequence(0x2545_F491_4F6C_DD1D);
        for _ in 0..3_000 {
            let text: String = (0..next(12)).map(|_| pieces[next(pieces.len())]).collect();
            let whole = text
                .split_sentence_bound_indices()
                .last()
                .map(|(index, _)| index);
            assert_eq!(last_sentence_start(&text), whole, "{text:?}");
        }
    }

    #[test]
    fn the_heading_scan_is_bounded() {
        let mut text = String::from("# Far away\n");
        while text.len() < HEADING_SCAN_CHARS + 100 {
            text.push_str("line\n");
        }
        let r = rope(&text);
        assert_eq!(heading_above(&r, r.len_chars()), None);
        assert_eq!(heading_above(&r, 12).as_deref(), Some("Far away"));
        // The last line whose window still reaches the heading, then the next one: remembered
        // or not, the heading is out of reach there.
        let within = r.line_to_char(r.char_to_line(HEADING_SCAN_CHARS));
        let beyond = r.line_to_char(r.char_to_line(HEADING_SCAN_CHARS) + 1);
        let mut memo = None;
        assert_eq!(
            heading_above_remembering(&r, within, &mut memo, None).as_deref(),
            Some("Far away")
        );
        assert_eq!(heading_above_remembering(&r, beyond, &mut memo, None), None);
        assert_eq!(heading_above(&r, beyond), None);
        // A window that starts inside a heading line does not take its tail for a heading.
        // The window starts at "# Fake", the tail of the prose line "abc # Fake".
        let cut = format!(
            "abc # Fake\n{}z",
            "y\n".repeat((HEADING_SCAN_CHARS - 8) / 2)
        );
        assert_eq!(cut.chars().count() - HEADING_SCAN_CHARS, 4);
        let r = rope(&cut);
        assert_eq!(heading_above(&r, r.len_chars()), None);
    }

    #[test]
    fn headings_in_other_languages_are_found_above_the_cursor() {
        let text = rope("# Роман\n\nГлава 3\n\nМара поднялась по лестнице.");
        assert_eq!(
            heading_above(&text, text.len_chars()).as_deref(),
            Some("Глава 3")
        );
        let text = rope("Kapitel 12\n\nSie stieg die Treppe hinauf.");
        assert_eq!(
            heading_above(&text, text.len_chars()).as_deref(),
            Some("Kapitel 12")
        );
    }

    #[test]
    fn headings_are_found_across_line_ending_styles() {
        let text = rope("# One\r\n\r\nChapter 2\rtext\r\nmore");
        assert_eq!(
            heading_above(&text, text.len_chars()).as_deref(),
            Some("Chapter 2")
        );
    }
}
