//! Taking off what a chat model wraps around the text: a preamble or label before it ("Here is
//! the continuation:", "Sure! Here's…", "**Continuation:**", "Вот продолжение:", a heading line),
//! wrapping Markdown (code fences, `*…*`/`_…_`/`**…**` around all of it, `> ` on every line), and
//! commentary or a sign-off after it ("(This keeps the tension high.)", "Note: …", "---" and a
//! remark, "Let me know if…", "Надеюсь, …").
//!
//! Recognised by shape, with small vocabularies (`words`): a preamble is a short first line or
//! sentence that announces the text (an opener such as "Here is" and a noun such as
//! "continuation"), or a label line made of label words ending in `:`; narrative that merely ends
//! with a colon ("She said only one thing:") has neither and stays. Quotation marks are not
//! touched here (see `unquote` in the parent module).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use unicode_segmentation::UnicodeSegmentation;

use super::words::{
    ANNOUNCED_NOUNS, ANNOUNCEMENT_OPENERS, LABEL_WORDS, META_WORDS, PLEASANTRIES, SIGN_OFFS,
};

/// A first line longer than this is prose, whatever it ends with.
const MAX_PREAMBLE_CHARS: usize = 120;
const MAX_PREAMBLE_WORDS: usize = 14;

/// How the reply began, before its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leading {
    /// Straight into the text: it may continue the word at the cursor.
    Nothing,
    /// A space: the text starts a new word.
    Space,
    /// The text came after a stripped preamble or label ("Continuation: lantern…"): it starts a
    /// new word unless it restates the word at the cursor ("lan" + "lantern" → "tern").
    Restated,
    /// A line break: the text starts a new line or paragraph.
    Newline,
}

/// A reply without its wrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cleaned {
    /// Trimmed on both sides.
    pub body: String,
    pub leading: Leading,
}

/// `raw` without preamble, wrapping Markdown and trailing commentary.
pub(super) fn clean(raw: &str) -> Cleaned {
    let lead = &raw[..raw.len() - raw.trim_start().len()];
    let mut leading = if lead.contains(['\n', '\r']) {
        Leading::Newline
    } else if lead.is_empty() {
        Leading::Nothing
    } else {
        Leading::Space
    };
    let mut body = raw.trim().to_string();
    // Wrappings nest ("Sure!\n```\n…\n```\nHope this helps"): peel until nothing changes.
    for _ in 0..8 {
        let start = body.clone();
        if let Some(rest) = strip_preamble(&body) {
            body = rest;
            leading = Leading::Restated;
        }
        body = strip_trailing_commentary(&body);
        body = strip_fence(&body);
        body = strip_blockquote(&body);
        body = strip_emphasis(&body);
        if body == start {
            break;
        }
    }
    Cleaned { body, leading }
}

/// The body without a leading preamble, label or heading line; `None` when there is none (or
/// nothing would be left).
fn strip_preamble(body: &str) -> Option<String> {
    let (first, rest) = match body.split_once('\n') {
        Some((first, rest)) => (first.trim_end_matches('\r'), rest.trim()),
        None => (body, ""),
    };
    // A Markdown heading line ("## Continuation", "# Chapter 4") over the text.
    if first.trim_start().starts_with('#') && !rest.is_empty() {
        return Some(rest.to_string());
    }
    // A pleasantry ("Sure!", "Certainly!", "Конечно!") alone on its line or before an
    // announcement.
    if let Some(after) = strip_pleasantry(first) {
        let after = strip_offer_of_help(after);
        if after.is_empty() && !rest.is_empty() {
            return Some(strip_preamble(rest).unwrap_or_else(|| rest.to_string()));
        }
        let remainder = format!("{after}{}{rest}", if rest.is_empty() { "" } else { "\n" });
        if let Some(stripped) = strip_preamble(&remainder) {
            return Some(stripped);
        }
    }
    // A whole line announcing the text, or a label line (alone: a reply that is all preamble).
    if is_announcement(first) && (!rest.is_empty() || first.trim_end().ends_with([':', '*'])) {
        return Some(rest.to_string());
    }
    // "Continuation: The rain came." — a label before a colon on the text's own line; likewise "Here is the continuation: The rain came."
    if let Some((label, text)) = first.split_once(':')
        && (is_label(label) || is_announcement(&format!("{label}:")))
        && !text.trim().is_empty()
    {
        let text = text.trim_start_matches(['*', '_']).trim();
        let joined = if rest.is_empty() {
            text.to_string()
        } else {
            format!("{text}\n{rest}")
        };
        return Some(joined);
    }
    None
}

/// More chars than the longest pleasantry has.
const PLEASANTRY_CHARS: usize = 24;

/// `line` after a leading pleasantry and its punctuation; `None` when it has none.
fn strip_pleasantry(line: &str) -> Option<&str> {
    let trimmed = line.trim_start_matches(['*', '_', ' ']);
    // Only the start can match: a reply is often one long line, not lower-cased whole.
    let lower: String = trimmed
        .chars()
        .take(PLEASANTRY_CHARS)
        .flat_map(char::to_lowercase)
        .collect();
    for pleasantry in PLEASANTRIES {
        if lower.starts_with(pleasantry) {
            // Lower-casing keeps these lengths for the scripts used (ASCII and Cyrillic).
            let rest = trimmed.get(pleasantry.len()..)?;
            let after_punct = rest.trim_start_matches(['!', '.', ',', '—', '-', ' ', '*', '_']);
            // "Sure" must be a whole word followed by punctuation ("Surely" is not, and "Okay
            // then, she said" is prose without the punctuation right after).
            if !rest.starts_with(['!', '.', ',']) {
                return None;
            }
            return Some(after_punct.trim());
        }
    }
    None
}

/// `text` without a leading "I can help with that!" / "I'd be happy to help." sentence (what
/// follows a pleasantry before the announcement).
fn strip_offer_of_help(text: &str) -> &str {
    const OFFERS: &[&str] = &[
        "i can help",
        "i'd be happy",
        "i’d be happy",
        "i would be happy",
        "i'd love to",
        "i’d love to",
        "happy to help",
        "glad to help",
        "с радостью",
        "я помогу",
        "могу помочь",
    ];
    let lower = text.to_lowercase();
    if !starts_with_any(&lower, OFFERS) {
        return text;
    }
    match text.find(['!', '.']) {
        Some(end) => text[end + 1..].trim_start(),
        None => text,
    }
}

/// A short first line that announces the text ("Here is the continuation:", "Вот переписанный
/// текст:", "Here's a continuation of the scene.") or is a label ("**Continuation:**").
fn is_announcement(line: &str) -> bool {
    let core = line.trim().trim_matches(['*', '_', ' ', '#']).trim();
    if core.chars().count() > MAX_PREAMBLE_CHARS
        || core.split_whitespace().count() > MAX_PREAMBLE_WORDS
    {
        return false;
    }
    if let Some(label) = core.strip_suffix(':')
        && is_label(label)
    {
        return true;
    }
    let lower = core.to_lowercase();
    let opens = ANNOUNCEMENT_OPENERS.iter().any(|o| {
        lower.starts_with(o)
            && lower[o.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
    });
    if !opens {
        return false;
    }
    let ends_as_announcement = core.ends_with([':', '.', '!']);
    ends_as_announcement && (names_the_text(&lower) || lower.starts_with("here you go"))
}

/// Whether a lower-cased line names the text ("continuation", "rewritten passage", "текст").
fn names_the_text(lower: &str) -> bool {
    lower
        .unicode_words()
        .any(|w| ANNOUNCED_NOUNS.iter().any(|n| w.starts_with(n)))
}

/// One to four label words ("Continuation", "Rewritten passage", "Описание персонажа").
fn is_label(text: &str) -> bool {
    let core = text.trim().trim_matches(['*', '_', ' ', '#']).trim();
    let words: Vec<String> = core.unicode_words().map(str::to_lowercase).collect();
    (1..=4).contains(&words.len())
        && words.iter().all(|w| LABEL_WORDS.contains(&w.as_str()))
        && words
            .iter()
            .any(|w| !matches!(w.as_str(), "the" | "a" | "of" | "new" | "новый"))
        && !core.contains(['"', '“', '«'])
}

/// The body without commentary or a sign-off after the text.
fn strip_trailing_commentary(body: &str) -> String {
    let mut text = body.trim_end().to_string();
    // A horizontal rule or a "Note:" line that starts the remarks, with everything after it.
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim();
        let is_rule = trimmed.len() >= 3 && trimmed.chars().all(|c| matches!(c, '-' | '_' | '—'));
        let rest = body[offset + line.len()..].trim();
        if offset > 0 && !body[..offset].trim().is_empty() {
            let remark = (is_rule
                && (rest.is_empty() || is_commentary(rest) || talks_about_text(rest)))
                || starts_with_any(
                    &trimmed.to_lowercase(),
                    &["note:", "notes:", "*note", "примечание:", "n.b."],
                );
            if remark {
                text = body[..offset].trim_end().to_string();
                break;
            }
        }
        offset += line.len();
    }
    // Trailing sentences that are remarks or sign-offs, one at a time from the end. Splitting
    // into sentences (UAX #29) costs far more than a look for the words a remark needs, and most
    // replies have none of them.
    while may_hold_commentary(&text) {
        let sentences: Vec<(usize, &str)> = text.split_sentence_bound_indices().collect();
        let Some(&(start, last)) = sentences.iter().rev().find(|(_, s)| !s.trim().is_empty())
        else {
            break;
        };
        if start == 0 || !is_commentary(last) {
            break;
        }
        text = text[..start].trim_end().to_string();
    }
    text
}

/// Whether some sentence of `text` may be a remark ([`is_commentary`]): every remark holds a
/// sign-off, a word about the writing or a note, and a sentence's words are the text's words.
fn may_hold_commentary(text: &str) -> bool {
    static REMARK_WORDS: LazyLock<Option<AhoCorasick>> =
        LazyLock::new(|| AhoCorasick::new(remark_words()).ok());
    let lower = text.to_lowercase();
    match &*REMARK_WORDS {
        Some(words) => words.is_match(&lower),
        // A fixed list of short words always builds; the plain search says the same.
        None => remark_words().any(|word| lower.contains(word)),
    }
}

fn remark_words() -> impl Iterator<Item = &'static str> {
    SIGN_OFFS
        .iter()
        .chain(META_WORDS)
        .chain(NOTE_WORDS)
        .copied()
}

/// What a parenthesis that is a note starts with.
const NOTE_WORDS: &[&str] = &["note", "примечание"];

/// A remark about the text: a sign-off, a note, or a parenthesis that talks about the writing.
fn is_commentary(text: &str) -> bool {
    let trimmed = text.trim().trim_matches(['*', '_']).trim();
    let lower = trimmed.to_lowercase();
    if starts_with_any(&lower, SIGN_OFFS) {
        return true;
    }
    let talks_about_text = talks_about_text(&lower);
    if let Some(inner) = lower.strip_prefix('(') {
        return inner.trim_end().ends_with(')')
            && (talks_about_text || starts_with_any(inner, NOTE_WORDS));
    }
    // An unbracketed remark: "This keeps the tension high." / "I kept the tone spare."
    talks_about_text
        && starts_with_any(
            &lower,
            &[
                "this ",
                "these ",
                "i ",
                "i've",
                "i’ve",
                "это ",
                "этот ",
                "я ",
            ],
        )
}

/// Whether a remark names the writing itself ("tension", "tone", "word count", "сцена").
fn talks_about_text(text: &str) -> bool {
    let lower = text.to_lowercase();
    META_WORDS.iter().any(|m| lower.contains(m))
}

fn starts_with_any(lower: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| lower.starts_with(p))
}

/// The body without a Markdown code fence around it (an info string on the fence line goes too).
fn strip_fence(body: &str) -> String {
    let mut text = body;
    if text.starts_with("```") || text.starts_with("~~~") {
        text = match text.split_once('\n') {
            Some((_, rest)) => rest,
            None => text.trim_start_matches(['`', '~']),
        };
    }
    let trimmed = text.trim_end();
    if trimmed.ends_with("```") || trimmed.ends_with("~~~") {
        text = match trimmed.rsplit_once('\n') {
            Some((rest, last)) if last.trim().chars().all(|c| c == '`' || c == '~') => rest,
            _ => trimmed.trim_end_matches(['`', '~']),
        };
    }
    text.trim().to_string()
}

/// The body without `>` quote markers when every line carries one.
fn strip_blockquote(body: &str) -> String {
    let quoted = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .all(|l| l.trim_start().starts_with('>'));
    if !quoted || body.is_empty() {
        return body.to_string();
    }
    let lines: Vec<&str> = body
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix('>').unwrap_or(l);
            l.strip_prefix(' ').unwrap_or(l)
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// The body without one emphasis wrapped around all of it (`**…**`, `*…*`, `_…_`).
fn strip_emphasis(body: &str) -> String {
    for mark in ["**", "__", "*", "_"] {
        if let Some(inner) = body
            .strip_prefix(mark)
            .and_then(|rest| rest.strip_suffix(mark))
            && !inner.contains(mark)
            && !inner.trim().is_empty()
            && !inner.starts_with(char::is_whitespace)
        {
            return inner.trim().to_string();
        }
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pleasantry_fits_the_start_that_is_read() {
        for pleasantry in PLEASANTRIES {
            assert!(
                pleasantry.chars().count() < PLEASANTRY_CHARS,
                "{pleasantry}"
            );
            let line = format!("{}! {}", pleasantry.to_uppercase(), "Mara ".repeat(40));
            assert_eq!(
                strip_pleasantry(&line),
                Some(line[pleasantry.len() + 2..].trim())
            );
        }
    }

    #[test]
    fn prose_ending_in_a_colon_is_not_a_preamble() {
        for line in [
            "She said only one thing:",
            "He read the letter aloud:",
            "Here is what she wrote:",
            "Тогда он сказал:",
        ] {
            assert!(!is_announcement(line), "{line:?}");
        }
        for line in [
            "Here is the continuation:",
            "Here's a continuation of the scene:",
            "**Continuation:**",
            "Rewritten passage:",
            "Вот продолжение:",
            "Вот переписанный текст:",
            "Here is the rewritten passage.",
        ] {
            assert!(is_announcement(line), "{line:?}");
        }
    }

    /// Sentences a reply ends with: prose (some with words that also name the writing, such as
    /// "stone" or "voice") and remarks of every kind, in English and Russian, in any case.
    fn closing_sentences() -> Vec<String> {
        let mut sentences: Vec<String> = [
            "The lamp went out.",
            "She heard his voice in the stairwell.",
            "The stone was cold under her hand!",
            "Он ждал у окна.",
            "“Stay,” she said.",
            "(He did not look back.)",
            "This is where the road ends.",
            "I never saw her again.",
            "This keeps the tension high.",
            "I kept the tone spare.",
            "(Note: the names are from your notes.)",
            "(This version slows the pacing.)",
            "**Let me know if you want a darker ending.**",
            "Hope this helps!",
            "Это усиливает напряжение.",
            "Надеюсь, это подойдёт.",
            "Примечание: имена взяты из заметок.",
            "N.B. the ending is open.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for phrase in SIGN_OFFS.iter().chain(META_WORDS) {
            sentences.push(format!("{} the rest of it.", capitalise(phrase)));
            sentences.push(format!("This {phrase} matters."));
            sentences.push(format!("({phrase} aside)"));
            sentences.push(format!("I {} it.", phrase.to_uppercase()));
        }
        sentences
    }

    fn capitalise(text: &str) -> String {
        let mut chars = text.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_word_check_lets_every_remark_through() {
        for sentence in closing_sentences() {
            if is_commentary(&sentence) {
                assert!(may_hold_commentary(&sentence), "{sentence:?}");
            }
        }
        assert!(!may_hold_commentary("The lamp went out. Он ждал у окна."));
    }

    /// The trailing remarks stripped as before the word check: every sentence split, then the
    /// last one judged, until one is not a remark.
    fn strip_by_splitting(text: &str) -> String {
        let mut text = text.to_string();
        loop {
            let sentences: Vec<(usize, &str)> = text.split_sentence_bound_indices().collect();
            let Some(&(start, last)) = sentences.iter().rev().find(|(_, s)| !s.trim().is_empty())
            else {
                return text;
            };
            if start == 0 || !is_commentary(last) {
                return text;
            }
            text = text[..start].trim_end().to_string();
        }
    }

    #[test]
    fn the_word_check_strips_what_splitting_every_reply_stripped() {
        let sentences = closing_sentences();
        let mut next = crate::assist::test_sequence(0x2545_F491_4F6C_DD1D);
        for _ in 0..3_000 {
            let count = 1 + next(5);
            let text: Vec<&str> = (0..count)
                .map(|_| sentences[next(sentences.len())].as_str())
                .collect();
            // One paragraph: the line rules (a "Note:" line, a rule) are not what changed.
            let text = text.join(" ");
            assert_eq!(
                strip_trailing_commentary(&text),
                strip_by_splitting(text.trim_end()),
                "{text:?}"
            );
        }
    }
}
