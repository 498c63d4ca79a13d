//! The seam between the author's text and ours, by the rules of prose: a space after a complete
//! word or punctuation and none inside a word; the word being typed continued, not repeated
//! (`bo` + `boot` → `ot`); a capital that is only the model's sentence case lowered mid-sentence
//! (never a name, never `I`); a paragraph break where a new beat starts (dash dialogue after a
//! finished sentence; an action at the end of a paragraph).
//!
//! Complete or partial word: the reply's own leading space says "new word"; otherwise the word at
//! the cursor plus the reply's first word is looked up in the context window (`lighthou` + `se`
//! is `lighthouse`, seen in the manuscript), the word at the cursor is looked up alone (`ledger`
//! seen elsewhere is a complete word), and a function word of three letters or more after it
//! (`and`, `the`, `with`) starts a new word. No dictionary crate: a novel's names and coinages
//! are not in one, and the manuscript around the cursor is the better dictionary.

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;

use super::clean::Leading;
use super::words::is_function_word;
use crate::assist::context::is_name_like;

/// How a piece of text is being joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Joining {
    /// Ghost text: one stretch of a paragraph; dash dialogue after a finished sentence still
    /// starts a paragraph.
    Inline,
    /// An action's passage. `new_beat`: it starts a paragraph when the cursor ends one.
    Passage { new_beat: bool },
}

/// `body` (trimmed at its start) joined between `before` and `after`. `None` when nothing is
/// left.
pub(super) fn join(
    body: &str,
    leading: Leading,
    before: &str,
    after: &str,
    joining: Joining,
) -> Option<String> {
    let body = body.trim_start();
    let body = match joining {
        Joining::Inline => body.trim_end(),
        Joining::Passage { .. } => body.trim(),
    };
    if body.is_empty() {
        return None;
    }
    let finished = ends_sentence(before.trim_end());
    let dash = starts_with_dash_dialogue(body);
    let paragraph = !before.trim().is_empty()
        && match joining {
            Joining::Inline => dash && finished,
            Joining::Passage { new_beat } => {
                (dash && (finished || before.trim_end().ends_with(':')))
                    || (new_beat && finished && line_ends_at(after))
                    || (leading == Leading::Newline && !before.ends_with(char::is_alphanumeric))
            }
        };
    if paragraph {
        let mut out = String::with_capacity(body.len() + 4);
        out.push_str(paragraph_gap(before));
        out.push_str(body);
        push_tail(&mut out, after, true);
        return Some(out);
    }

    // A passage never completes the word at the cursor: it starts a new one.
    let leading = match (joining, leading) {
        (Joining::Passage { .. }, Leading::Nothing | Leading::Restated) => Leading::Space,
        _ => leading,
    };
    let (gap, body) = word_gap(body, leading, before);
    let body = if gap.is_empty() && before.ends_with(char::is_alphanumeric) {
        // Inside a word: never change its letters.
        body
    } else if mid_sentence(before) {
        lower_sentence_case(body, before, after)
    } else {
        body
    };
    if body.trim().is_empty() {
        return None;
    }
    let mut out = String::with_capacity(body.len() + 2);
    out.push_str(gap);
    out.push_str(&body);
    push_tail(&mut out, after, false);
    Some(out)
}

/// The line break(s) that put a new paragraph after `before`.
fn paragraph_gap(before: &str) -> &'static str {
    let end = before.trim_end_matches([' ', '\t']);
    if end.is_empty() || end.ends_with("\n\n") || end.ends_with("\n\r\n") {
        ""
    } else if end.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    }
}

/// What separates the inserted text from `after`: a space before a word, or (for a paragraph)
/// a blank line before the next line of text.
fn push_tail(out: &mut String, after: &str, paragraph: bool) {
    let ends_blank = out.ends_with(char::is_whitespace);
    match after.chars().next() {
        Some(c) if (c.is_alphanumeric() || is_opening(c) || is_dash(c)) && !ends_blank => {
            out.push_str(if paragraph { "\n\n" } else { " " });
        }
        Some('\n') if paragraph => {
            // "…text|\nNext paragraph": keep a blank line between our paragraph and the next.
            let rest = after.trim_start_matches(['\n', '\r']);
            let newlines = after.len() - rest.len();
            if newlines == 1 || (after.starts_with("\r\n") && newlines == 2) {
                out.push('\n');
            }
        }
        _ => {}
    }
}

/// The whitespace between `before` and `body`, and the body without any repeat of the word the
/// cursor is in.
fn word_gap<'b>(body: &'b str, leading: Leading, before: &str) -> (&'static str, Cow<'b, str>) {
    let Some(last) = before.chars().next_back() else {
        return ("", Cow::Borrowed(body));
    };
    let first = body.chars().next().unwrap_or(' ');
    if last.is_whitespace() {
        return ("", Cow::Borrowed(body));
    }
    if opens_quotation(before) || matches!(last, '-' | '—' | '–' | '/') {
        return ("", Cow::Borrowed(body));
    }
    if !last.is_alphanumeric() {
        // After punctuation: a word, a quotation or a dash starts after a space.
        let space = first.is_alphanumeric() || is_opening(first) || is_dash(first);
        return (if space { " " } else { "" }, Cow::Borrowed(body));
    }
    // After a letter or digit.
    if matches!(leading, Leading::Space | Leading::Newline) {
        return (" ", Cow::Borrowed(body));
    }
    if !first.is_alphanumeric() {
        let space = is_opening(first) || is_dash(first);
        return (if space { " " } else { "" }, Cow::Borrowed(body));
    }
    let partial = trailing_word(before);
    let reply_word = leading_word(body);
    let partial_lower = partial.to_lowercase();
    let reply_lower = reply_word.to_lowercase();
    if leading == Leading::Restated {
        // After a label the text restarts: it repeats the word being typed or starts a new one.
        return match reply_lower.strip_prefix(&partial_lower) {
            Some(rest) if !partial.is_empty() && !rest.is_empty() => {
                let cut = reply_word
                    .char_indices()
                    .nth(partial.chars().count())
                    .map_or(reply_word.len(), |(i, _)| i);
                ("", Cow::Borrowed(&body[cut..]))
            }
            Some(_) if !partial.is_empty() => ("", Cow::Borrowed(&body[reply_word.len()..])),
            _ => (" ", Cow::Borrowed(body)),
        };
    }
    if reply_lower == partial_lower {
        // The model repeated the whole word at the cursor ("ledger" + "ledger and…").
        let rest = &body[reply_word.len()..];
        return ("", Cow::Borrowed(rest));
    }
    if reply_lower.starts_with(&partial_lower) && !partial.is_empty() {
        // The model restarted the word being typed ("bo" + "boot" → "ot"), at any length.
        let cut = reply_word
            .char_indices()
            .nth(partial.chars().count())
            .map_or(reply_word.len(), |(i, _)| i);
        return ("", Cow::Borrowed(&body[cut..]));
    }
    let earlier = &before[..before.len() - partial.len()];
    if continues_word(&partial_lower, &reply_lower, earlier, body) {
        ("", Cow::Borrowed(body))
    } else {
        (" ", Cow::Borrowed(body))
    }
}

/// Whether `reply` (lower case) continues the partial word `partial` (lower case) rather than
/// starting a new one. `earlier` is the text before the partial word.
fn continues_word(partial: &str, reply: &str, earlier: &str, body: &str) -> bool {
    let joined = format!("{partial}{reply}");
    if has_word(earlier, &joined) || has_word(body, &joined) {
        return true;
    }
    let single_letter_word = matches!(partial, "a" | "i" | "я" | "и" | "в" | "с" | "к" | "о" | "у");
    if partial.chars().count() == 1 && !single_letter_word {
        return true;
    }
    if is_function_word(partial) || has_word(earlier, partial) {
        return false;
    }
    !(reply.chars().count() >= 3 && is_function_word(reply))
}

/// Whether `text` holds `lower` as a whole word (any case).
fn has_word(text: &str, lower: &str) -> bool {
    text.unicode_words().any(|w| w.to_lowercase() == lower)
}

/// The word (letters and digits) `text` ends with.
fn trailing_word(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric())
        .last()
        .map_or(text.len(), |(i, _)| i);
    &text[start..]
}

/// The word (letters and digits) `text` starts with.
fn leading_word(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|(_, c)| !c.is_alphanumeric())
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// `body` with its first word lowered when its capital is only sentence case: a function word,
/// or a word the context writes in lower case, never a name (a capital mid-sentence in the
/// context), never `I`, never an acronym.
fn lower_sentence_case<'b>(body: Cow<'b, str>, before: &str, after: &str) -> Cow<'b, str> {
    let lead = body.len() - body.trim_start().len();
    let word = leading_word(&body[lead..]);
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return body;
    };
    let rest_of_word = &body[lead + first.len_utf8()..];
    if !first.is_uppercase()
        || word == "I"
        || rest_of_word.starts_with(['\'', '’']) && first == 'I'
        || (word.chars().count() > 1 && word.chars().all(|c| !c.is_lowercase()))
    {
        return body;
    }
    let lower = word.to_lowercase();
    let common = is_function_word(&lower)
        || !is_name_like(word)
        || has_lower_word(before, &lower)
        || has_lower_word(after, &lower);
    if !common || named_mid_sentence(before, word) || named_mid_sentence(after, word) {
        return body;
    }
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..lead]);
    out.extend(first.to_lowercase());
    out.push_str(rest_of_word);
    Cow::Owned(out)
}

/// Whether `text` writes `lower` in lower case somewhere.
fn has_lower_word(text: &str, lower: &str) -> bool {
    // The substring search (SIMD) rules out most contexts before any word is segmented.
    text.contains(lower) && text.unicode_words().any(|w| w == lower)
}

/// Whether `text` writes `word` capitalised where no sentence starts (so it is a name).
fn named_mid_sentence(text: &str, word: &str) -> bool {
    text.contains(word)
        && text.unicode_word_indices().any(|(i, w)| {
            w == word && {
                let prior = text[..i].trim_end_matches(|c: char| c == ' ' || is_opening(c));
                !prior.is_empty()
                    && !prior.ends_with(['\n', '.', '!', '?', '…', ':', '"', '”', '»', '—', '–'])
            }
        })
}

/// Whether the cursor after `before` is inside a sentence (so a capital there is wrong unless
/// it is a name).
pub(super) fn mid_sentence(before: &str) -> bool {
    let end = before.trim_end_matches([' ', '\t']);
    match end.chars().next_back() {
        None | Some('\n' | '\r' | ':') => false,
        Some(_) if opens_quotation(end) => false,
        Some(_) => !ends_sentence(end),
    }
}

/// Ends like a sentence: terminal punctuation, possibly followed by closing quotes or brackets.
pub(super) fn ends_sentence(text: &str) -> bool {
    let core = text
        .trim_end()
        .trim_end_matches(['"', '\'', '”', '’', '»', ')', ']', '*', '_']);
    core.ends_with(['.', '!', '?', '…', '。', '！', '？'])
}

/// Whether nothing but spaces follows on the cursor's line.
fn line_ends_at(after: &str) -> bool {
    after
        .chars()
        .take_while(|&c| c != '\n' && c != '\r')
        .all(char::is_whitespace)
}

/// Dash dialogue: an em or en dash and a space open the line (`— Кто сказал…`).
pub(super) fn starts_with_dash_dialogue(body: &str) -> bool {
    let mut chars = body.chars();
    matches!(chars.next(), Some('—' | '–')) && chars.next().is_some_and(char::is_whitespace)
}

fn is_dash(c: char) -> bool {
    matches!(c, '—' | '–')
}

pub(super) fn is_opening(c: char) -> bool {
    matches!(c, '"' | '“' | '‘' | '«' | '„' | '(' | '[' | '\'')
}

/// Whether `text` ends with an opening quotation mark or bracket. A straight quote opens only
/// after a space, a line break or another opening mark (`"Go."` ends with a closing one).
fn opens_quotation(text: &str) -> bool {
    let mut chars = text.chars().rev();
    match chars.next() {
        Some('"' | '\'') => chars
            .next()
            .is_none_or(|c| c.is_whitespace() || is_opening(c)),
        Some(c) => is_opening(c),
        None => false,
    }
}
