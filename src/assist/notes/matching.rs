//! Finding a note's names in the text around the cursor: case-insensitive, whole words, a
//! multi-word name as a phrase, every word compared by its stem (English or Russian Snowball,
//! chosen per word by script) so that `Toby's`, `harbourmasters`, `Мары` and `Куэйлу` find
//! `Toby`, `harbourmaster`, `Мара` and `Куэйл`.
//!
//! Stems of the names are computed when a note is indexed; per request only the words of the
//! window that could start or continue a name are stemmed. The Snowball stemmers only cut or
//! rewrite a word's ending, so a stem without its last letter begins its word: a word whose first
//! letters begin no name's stem (that is, most words) is skipped without stemming.
//!
//! Must never: allocate per note per request, log the text it reads.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

/// Only the neighbourhood counts: a name three pages up does not pick this scene's notes.
pub const NEAR_BEFORE: usize = 1_200;
pub const NEAR_AFTER: usize = 400;

static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));
static RUSSIAN: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::Russian));

/// Leading articles dropped from titles and file names: `The Widow Marsh` is found as
/// `Widow Marsh` (aliases are kept as the author wrote them).
const ARTICLES: &[&str] = &["the", "a", "an"];

/// One name of a note, as the author wrote it and as the stems it is matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    stems: Vec<String>,
}

impl Name {
    /// `None` when `text` holds no word.
    pub fn parse(text: &str) -> Option<Name> {
        let stems: Vec<String> = word_spans(text)
            .into_iter()
            .map(|(start, end)| stem_word(&text[start..end]))
            .collect();
        (!stems.is_empty()).then(|| Name {
            text: text.trim().to_string(),
            stems,
        })
    }

    /// A derived name (title, file stem) without its leading article, when something is left.
    pub fn parse_without_article(text: &str) -> Option<Name> {
        let name = Name::parse(text)?;
        match name.stems.split_first() {
            Some((first, rest)) if !rest.is_empty() && ARTICLES.contains(&first.as_str()) => {
                Some(Name {
                    text: name.text,
                    stems: rest.to_vec(),
                })
            }
            _ => Some(name),
        }
    }

    pub fn same_words(&self, other: &Name) -> bool {
        self.stems == other.stems
    }
}

/// The stem of one word: lower case, without a possessive, Russian or English by its script.
pub fn stem_word(word: &str) -> String {
    stem_lower(&word.to_lowercase())
}

/// Stemming is the costly part of a request and the words around a cursor barely change between
/// two requests: each thread remembers the stems it computed (a bounded table, emptied when full).
fn cached_stem(lower: &str) -> String {
    const MAX_CACHED: usize = 8_192;
    thread_local! {
        static STEMS: std::cell::RefCell<HashMap<String, String>> =
            std::cell::RefCell::new(HashMap::new());
    }
    STEMS.with(|cell| {
        let mut stems = cell.borrow_mut();
        if let Some(stem) = stems.get(lower) {
            return stem.clone();
        }
        let stem = stem_lower(lower);
        if stems.len() >= MAX_CACHED {
            stems.clear();
        }
        stems.insert(lower.to_string(), stem.clone());
        stem
    })
}

fn stem_lower(lower: &str) -> String {
    let bare = strip_possessive(lower);
    if bare.chars().any(is_cyrillic) {
        RUSSIAN.stem(bare).into_owned()
    } else if bare.chars().all(|c| c.is_ascii_alphabetic()) {
        ENGLISH.stem(bare).into_owned()
    } else {
        bare.to_string()
    }
}

fn strip_possessive(word: &str) -> &str {
    for suffix in ["'s", "’s", "'", "’"] {
        if let Some(bare) = word.strip_suffix(suffix)
            && !bare.is_empty()
        {
            return bare;
        }
    }
    word
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}' | '\u{0500}'..='\u{052F}')
}

/// Which side of the cursor a match is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    Before,
    After,
}

/// One name found near the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The entry of [`Matcher::new`] it belongs to.
    pub entry: usize,
    /// The name of that entry (as the author wrote it in the note).
    pub name: usize,
    /// The words as they stand in the text.
    pub matched: String,
    /// Chars between the match and the cursor.
    pub distance: usize,
    pub side: Side,
}

/// The names of a set of notes, ready to be found in a window of text.
#[derive(Debug, Default)]
pub struct Matcher {
    /// (entry, name) by the stem of the name's first word.
    by_first: HashMap<String, Vec<(usize, usize)>>,
    names: Vec<Vec<Name>>,
    /// The first letters of every stem of every name (up to three, never its last): a word that
    /// starts otherwise cannot be part of a name and is not stemmed.
    prefixes: HashSet<Prefix, BuildHasherDefault<PrefixHasher>>,
}

impl Matcher {
    /// `entries[i]` are the names of entry `i`.
    pub fn new(entries: Vec<Vec<Name>>) -> Matcher {
        let mut by_first: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        let mut prefixes = HashSet::default();
        for (entry, names) in entries.iter().enumerate() {
            for (index, name) in names.iter().enumerate() {
                if let Some(first) = name.stems.first() {
                    by_first
                        .entry(first.clone())
                        .or_default()
                        .push((entry, index));
                }
                for stem in &name.stems {
                    let letters = stem.chars().count().saturating_sub(1).clamp(1, 3);
                    prefixes.insert(Prefix::of(stem.chars().take(letters)));
                }
            }
        }
        Matcher {
            by_first,
            names: entries,
            prefixes,
        }
    }

    pub fn names(&self, entry: usize) -> &[Name] {
        self.names.get(entry).map_or(&[], Vec::as_slice)
    }

    /// Every name found in the last [`NEAR_BEFORE`] chars of `before` and the first
    /// [`NEAR_AFTER`] of `after`.
    pub fn find(&self, before: &str, after: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        if self.by_first.is_empty() {
            return hits;
        }
        let before = tail_chars(before, NEAR_BEFORE);
        self.find_in(before, Side::Before, &mut hits);
        self.find_in(head_chars(after, NEAR_AFTER), Side::After, &mut hits);
        hits
    }

    fn find_in(&self, text: &str, side: Side, hits: &mut Vec<Hit>) {
        let (words, chars) = self.words(text);
        for (i, word) in words.iter().enumerate() {
            let Some(stem) = &word.stem else { continue };
            let Some(candidates) = self.by_first.get(stem) else {
                continue;
            };
            for &(entry, index) in candidates {
                let name = &self.names[entry][index];
                let n = name.stems.len();
                let Some(run) = words.get(i..i + n) else {
                    continue;
                };
                let fits = run.iter().zip(&name.stems).enumerate().all(|(k, (w, s))| {
                    w.stem.as_deref() == Some(s.as_str()) && (k == 0 || w.joined)
                });
                if !fits {
                    continue;
                }
                let (start, end) = (word.span.start, run[n - 1].span.end);
                let distance = match side {
                    Side::Before => chars - run[n - 1].span.end_char,
                    Side::After => word.span.start_char,
                };
                hits.push(Hit {
                    entry,
                    name: index,
                    matched: text[start..end].to_string(),
                    distance,
                    side,
                });
            }
        }
    }

    /// The words of `text`, stemmed when they could belong to a name.
    fn words(&self, text: &str) -> (Vec<Word>, usize) {
        let (spans, chars) = word_spans_counted(text);
        let mut words = Vec::with_capacity(spans.len());
        let mut previous_end = 0;
        let mut lower = String::new();
        for span in spans {
            let (start, end) = (span.start, span.end);
            let gap = &text[previous_end..start];
            let joined = gap
                .chars()
                .all(|c| c.is_whitespace() || matches!(c, '-' | '‐' | '‑'))
                && !gap.contains("\n\n");
            previous_end = end;
            let word = &text[start..end];
            let stem = self.could_be_named(word).then(|| {
                lower.clear();
                lower.extend(word.chars().flat_map(char::to_lowercase));
                cached_stem(&lower)
            });
            words.push(Word { span, joined, stem });
        }
        (words, chars)
    }

    fn could_be_named(&self, word: &str) -> bool {
        let mut letters = word.chars().flat_map(char::to_lowercase);
        let mut prefix = Prefix::default();
        for _ in 0..3 {
            let Some(letter) = letters.next() else { break };
            prefix = prefix.push(letter);
            if self.prefixes.contains(&prefix) {
                return true;
            }
        }
        false
    }
}

/// Up to three letters, packed (21 bits each): hashing one number is cheaper than a string.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
struct Prefix(u64);

impl Prefix {
    fn push(self, letter: char) -> Prefix {
        Prefix(self.0 << 21 | u64::from(letter))
    }

    fn of(letters: impl Iterator<Item = char>) -> Prefix {
        letters.fold(Prefix::default(), Prefix::push)
    }
}

/// A prefix is already a number: one multiplication spreads it (SipHash per word of every
/// request was a fifth of the matching time).
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The byte spans of the words of `text`: runs of letters and digits, an apostrophe inside a
/// word kept (`Toby's`, `Toby’s`); a hyphen separates (`tide-script` is two words, which a name
/// `Tide-script` matches as a phrase).
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    word_spans_counted(text)
        .0
        .into_iter()
        .map(|s| (s.start, s.end))
        .collect()
}

/// A word's place in bytes and in chars.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    start_char: usize,
    end_char: usize,
}

/// [`word_spans`] with char offsets, and the length of `text` in chars.
fn word_spans_counted(text: &str) -> (Vec<Span>, usize) {
    let mut spans = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut count = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let in_word = c.is_alphanumeric()
            || (start.is_some()
                && matches!(c, '\'' | '’')
                && chars.peek().is_some_and(|(_, next)| next.is_alphabetic()))
            || (start.is_some() && is_combining(c));
        match (in_word, start) {
            (true, None) => start = Some((i, count)),
            (false, Some((s, s_char))) => {
                spans.push(Span {
                    start: s,
                    end: i,
                    start_char: s_char,
                    end_char: count,
                });
                start = None;
            }
            _ => {}
        }
        count += 1;
    }
    if let Some((s, s_char)) = start {
        spans.push(Span {
            start: s,
            end: text.len(),
            start_char: s_char,
            end_char: count,
        });
    }
    (spans, count)
}

/// Combining marks (a decomposed `й`, accents) belong to the word they follow.
fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}')
}

struct Word {
    span: Span,
    /// Only spaces or a hyphen since the previous word: a phrase may continue here.
    joined: bool,
    stem: Option<String>,
}

/// The last `max` chars of `text`.
fn tail_chars(text: &str, max: usize) -> &str {
    match text.char_indices().rev().nth(max.saturating_sub(1)) {
        Some((start, _)) if max > 0 => &text[start..],
        _ if max == 0 => "",
        _ => text,
    }
}

/// The first `max` chars of `text`.
fn head_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(entries: &[&[&str]]) -> Matcher {
        Matcher::new(
            entries
                .iter()
                .map(|names| names.iter().filter_map(|n| Name::parse(n)).collect())
                .collect(),
        )
    }

    fn found(m: &Matcher, before: &str, after: &str) -> Vec<(usize, String)> {
        m.find(before, after)
            .into_iter()
            .map(|h| (h.entry, h.matched))
            .collect()
    }

    #[test]
    fn names_match_their_inflected_and_possessive_forms() {
        let m = matcher(&[
            &["Toby"],
            &["harbourmaster"],
            &["Мара"],
            &["Куэйл"],
            &["Tide-script"],
        ]);
        let cases: &[(&str, &[usize])] = &[
            ("It was Toby's boat.", &[0]),
            ("It was Toby’s boat.", &[0]),
            ("TOBY!", &[0]),
            ("She found the harbourmaster asleep.", &[1]),
            ("Two Harbourmasters argued.", &[1]),
            ("Дом Мары стоял у воды.", &[2]),
            ("Она сказала Маре правду.", &[2]),
            ("Письмо Куэйлу пришло.", &[3]),
            ("the tide-script marks", &[4]),
            ("the tide script marks", &[4]),
            ("Tobias left.", &[]),
            ("the tide, script", &[]),
            ("harbour master", &[]),
        ];
        for (text, expected) in cases {
            let got: Vec<usize> = found(&m, text, "").into_iter().map(|(e, _)| e).collect();
            assert_eq!(&got, expected, "{text:?}");
        }
    }

    #[test]
    fn a_multi_word_name_matches_only_as_a_phrase() {
        let m = matcher(&[&["Marrow End"], &["Marrow Fen"]]);
        assert_eq!(
            found(&m, "out on Marrow Fen at dusk", ""),
            [(1, "Marrow Fen".into())]
        );
        assert_eq!(
            found(&m, "the marrow end of the bone", ""),
            [(0, "marrow end".into())]
        );
        assert!(found(&m, "Marrow. End of story.", "").is_empty());
        assert!(found(&m, "Marrow\n\nEnd", "").is_empty());
    }

    #[test]
    fn distance_is_counted_from_the_cursor_on_both_sides() {
        let m = matcher(&[&["Wren"]]);
        let hits = m.find("Wren sat. ", " and Wren");
        assert_eq!(hits.len(), 2);
        assert_eq!((hits[0].side, hits[0].distance), (Side::Before, 6));
        assert_eq!((hits[1].side, hits[1].distance), (Side::After, 5));
    }

    #[test]
    fn only_the_neighbourhood_is_searched() {
        let m = matcher(&[&["Wren"]]);
        let far = format!("Wren {}", "x".repeat(NEAR_BEFORE));
        assert!(m.find(&far, "").is_empty());
        let far_after = format!("{} Wren", "é".repeat(NEAR_AFTER));
        assert!(m.find("", &far_after).is_empty());
        assert_eq!(m.find("", "Wren").len(), 1);
    }

    #[test]
    fn articles_are_optional_in_derived_names_only() {
        let widow = Name::parse_without_article("The Widow Marsh").unwrap();
        let m = Matcher::new(vec![vec![widow], vec![Name::parse("the book").unwrap()]]);
        assert_eq!(found(&m, "Widow Marsh listened", "").len(), 1);
        assert!(found(&m, "a book", "").is_empty());
        assert_eq!(found(&m, "the book", "").len(), 1);
        // A lone article is a name only if that is all there is.
        assert!(Name::parse_without_article("The").is_some());
    }

    #[test]
    fn words_keep_inner_apostrophes_and_split_at_hyphens() {
        let text = "Toby’s tide-script, 'quoted' Мары\u{0301} rock'n'roll";
        let words: Vec<&str> = word_spans(text)
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        assert_eq!(
            words,
            [
                "Toby’s",
                "tide",
                "script",
                "quoted",
                "Мары\u{0301}",
                "rock'n'roll"
            ]
        );
    }

    #[test]
    fn a_stem_without_its_last_letter_begins_its_word() {
        // What the prefix filter relies on, over inflected forms of both languages. (Porter2's
        // three exceptions dying/lying/tying → die/lie/tie break it: a note named "Tie" is not
        // found by "tying", which no author will miss.)
        for word in [
            "Toby",
            "cries",
            "skies",
            "gently",
            "possibility",
            "harbourmasters",
            "Мары",
            "Маре",
            "Куэйлу",
            "длинный",
            "ледники",
            "the",
            "tide-script",
        ] {
            let lower = word.to_lowercase();
            let stem = stem_word(word);
            let keep = stem.chars().count().saturating_sub(1).clamp(1, 3);
            let prefix: String = stem.chars().take(keep).collect();
            assert!(
                lower.starts_with(&prefix),
                "{word} → {stem:?} {prefix:?} {lower:?}"
            );
        }
    }

    #[test]
    fn the_window_cut_respects_char_boundaries() {
        assert_eq!(tail_chars("абв", 2), "бв");
        assert_eq!(tail_chars("абв", 5), "абв");
        assert_eq!(tail_chars("абв", 0), "");
        assert_eq!(head_chars("абв", 2), "аб");
        assert_eq!(head_chars("абв", 9), "абв");
    }
}
