//! Turning a model's reply into text that can go into the manuscript as is: ghost text trimmed
//! to a sentence or two within one paragraph, no echo of the text before the cursor, no repeat of
//! the text after it, and whitespace that joins both sides the way a writer would type it.
//!
//! Pure string functions; they see only the reply and the context windows already extracted.

use unicode_segmentation::UnicodeSegmentation;

use super::actions::Placement;

/// Ghost text shows at most this many sentences: more is a paragraph the author did not ask for.
pub const MAX_INLINE_SENTENCES: usize = 2;

/// The shortest echo of the text before the cursor that is removed (shorter overlaps are too
/// often legitimate: "no" after "He said no").
const MIN_ECHO_CHARS: usize = 4;

/// The longest echo looked for.
const MAX_ECHO_CHARS: usize = 400;

/// The ghost text for `raw` at a cursor between `before` and `after`. `cut_off` tells that the
/// model stopped on its token limit, so its last sentence may be unfinished. `None` when nothing
/// usable is left.
pub fn inline_continuation(raw: &str, before: &str, after: &str, cut_off: bool) -> Option<String> {
    let unwrapped = unwrap_reply(raw);
    let text = drop_echo(unwrapped, before);
    let text = first_paragraph(text);
    let text = whole_sentences(
        text,
        MAX_INLINE_SENTENCES,
        cut_off && !continues_line(after),
    );
    let text = drop_repeat_of_after(&text, after);
    join(text, before, after)
}

/// The text an action inserts or puts in place of the selection. `before`/`after` are the text
/// around the cursor or selection; `selection` is the selected text (empty at a cursor).
pub fn action_output(
    raw: &str,
    placement: Placement,
    before: &str,
    selection: &str,
    after: &str,
) -> Option<String> {
    let unwrapped = unwrap_reply(raw);
    match placement {
        Placement::ReplaceSelection => {
            let body = unwrapped.trim();
            if body.is_empty() {
                return None;
            }
            // The rewrite replaces the words; the selection's own spacing stays.
            let lead = &selection[..selection.len() - selection.trim_start().len()];
            let trail = &selection[selection.trim_end().len()..];
            Some(format!("{lead}{body}{trail}"))
        }
        Placement::AtCursor => {
            let text = drop_echo(unwrapped, before);
            let text = drop_repeat_of_after(text, after);
            let new_paragraph = unwrapped.starts_with(['\n', '\r']);
            join_block(text, before, after, new_paragraph)
        }
        Placement::AfterSelection => {
            let text = drop_repeat_of_after(unwrapped, after);
            let new_paragraph = unwrapped.starts_with(['\n', '\r']);
            let preceding = format!("{before}{selection}");
            join_block(text, &preceding, after, new_paragraph)
        }
    }
}

/// The reply without a Markdown code fence or quotation marks wrapped around all of it.
fn unwrap_reply(raw: &str) -> &str {
    let trimmed = raw.trim();
    if let Some(inner) = trimmed
        .strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
    {
        // Skip an info string ("```text") on the fence line.
        return match inner.split_once('\n') {
            Some((first, body)) if !first.trim().contains(' ') => body.trim(),
            _ => inner.trim(),
        };
    }
    for (open, close) in [('"', '"'), ('“', '”'), ('«', '»')] {
        if let Some(inner) = trimmed
            .strip_prefix(open)
            .and_then(|rest| rest.strip_suffix(close))
            && !inner.contains(open)
            && !inner.contains(close)
        {
            return inner;
        }
    }
    // Keep leading whitespace: it says whether the reply starts a new word or paragraph.
    raw.trim_end()
}

/// `text` without a leading repeat of the end of `before` (a model that echoes the words it
/// continues). The repeat must start on a word boundary of `before`; a short one is kept.
fn drop_echo<'t>(text: &'t str, before: &str) -> &'t str {
    let body = text.trim_start();
    let max = body.len().min(before.len()).min(MAX_ECHO_CHARS);
    let mut ends: Vec<usize> = body
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&end| end <= max)
        .collect();
    ends.reverse();
    for end in ends {
        let candidate = &body[..end];
        if candidate.chars().count() < MIN_ECHO_CHARS {
            break;
        }
        if let Some(prefix) = before.strip_suffix(candidate) {
            let on_boundary = prefix
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            if on_boundary {
                return &body[end..];
            }
        }
    }
    text
}

/// Up to the first blank line (a new paragraph).
fn first_paragraph(text: &str) -> &str {
    let lead = text.len() - text.trim_start().len();
    let body = &text[lead..];
    let mut lines = 0;
    let mut end = body.len();
    let bytes = body.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'\n' => {
                lines += 1;
                if lines == 2 {
                    end = i;
                    break;
                }
            }
            b' ' | b'\t' | b'\r' => {}
            _ => lines = 0,
        }
    }
    &text[..lead + end]
}

/// At most `max` sentences; when `drop_unfinished`, an unfinished last sentence goes too (or,
/// if it is the only one, its unfinished last word).
fn whole_sentences(text: &str, max: usize, drop_unfinished: bool) -> String {
    let lead = text.len() - text.trim_start().len();
    let body = &text[lead..];
    let sentences: Vec<&str> = body.split_sentence_bounds().collect();
    let mut kept: Vec<&str> = sentences.iter().copied().take(max).collect();
    if drop_unfinished
        && let Some(last) = kept.last()
        && !is_finished(last)
    {
        if kept.len() > 1 {
            kept.pop();
        } else if let Some(space) = last.trim_end().rfind(char::is_whitespace) {
            kept[0] = &last[..space];
        }
    }
    let mut out = text[..lead].to_string();
    for sentence in kept {
        out.push_str(sentence);
    }
    out.trim_end().to_string()
}

/// Ends like a sentence: terminal punctuation, possibly followed by closing quotes or brackets.
fn is_finished(sentence: &str) -> bool {
    let core = sentence
        .trim_end()
        .trim_end_matches(['"', '\'', '”', '’', '»', ')', ']', '*', '_']);
    core.ends_with(['.', '!', '?', '…', '。', '！', '？'])
}

/// Whether the cursor sits inside a line of text (something other than whitespace follows it on
/// the same line): then the continuation leads into that text and is not a cut-off sentence.
fn continues_line(after: &str) -> bool {
    after
        .chars()
        .take_while(|&c| c != '\n' && c != '\r')
        .any(|c| !c.is_whitespace())
}

/// `text` cut before any repeat of the start of `after`: the start of `after` itself, or a tail
/// of `text` that is a prefix of `after`.
fn drop_repeat_of_after<'t>(text: &'t str, after: &str) -> &'t str {
    let following = after.trim_start();
    if following.is_empty() {
        return text;
    }
    // The first words of what follows (up to ~40 chars, whole words).
    let probe = {
        let mut end = 0;
        for (i, word) in following.split_word_bound_indices() {
            if i + word.len() > 40 {
                break;
            }
            end = i + word.len();
        }
        following[..end].trim_end()
    };
    if probe.chars().count() >= 8
        && let Some(at) = text.find(probe)
    {
        return &text[..at];
    }
    // "…reached the" + after "the door." → drop the trailing "the".
    for (start, _) in text.char_indices() {
        let tail = text[start..].trim_start();
        if tail.len() > following.len()
            || tail.chars().count() < MIN_ECHO_CHARS
            || !following.starts_with(tail)
        {
            continue;
        }
        let starts_word = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let ends_word = following[tail.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if starts_word && ends_word {
            return &text[..start];
        }
    }
    text
}

/// Whitespace between the text before the cursor, the continuation, and the text after it.
fn join(text: &str, before: &str, after: &str) -> Option<String> {
    let body = text.trim_end();
    if body.trim().is_empty() {
        return None;
    }
    let mut out = String::with_capacity(body.len() + 2);
    match before.chars().next_back() {
        // At the start of the document or of a line/word: no leading whitespace.
        None => out.push_str(body.trim_start()),
        Some(c) if c.is_whitespace() => out.push_str(body.trim_start()),
        Some(last) => {
            let starts_with_space = body.starts_with(char::is_whitespace);
            let first = body.chars().next().unwrap_or(' ');
            if !starts_with_space && needs_space_between(last, first) {
                out.push(' ');
            }
            out.push_str(body);
        }
    }
    if after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || is_opening(c))
        && out.chars().next_back().is_some_and(|c| !c.is_whitespace())
    {
        out.push(' ');
    }
    Some(out)
}

/// Like [`join`] for a passage of one or more paragraphs: a passage that the model started on a
/// new line starts a new paragraph.
fn join_block(text: &str, before: &str, after: &str, new_paragraph: bool) -> Option<String> {
    let body = text.trim();
    if body.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(body.len() + 4);
    match before.chars().next_back() {
        None => {}
        Some('\n') if new_paragraph && !before.ends_with("\n\n") && !before.ends_with("\n\r\n") => {
            out.push('\n');
        }
        Some(c) if c.is_whitespace() => {}
        Some(last) => {
            // A passage always starts a new word (or a new paragraph).
            if new_paragraph {
                out.push_str("\n\n");
            } else if !is_opening(last) {
                out.push(' ');
            }
        }
    }
    out.push_str(body);
    match after.chars().next() {
        Some(c) if c.is_alphanumeric() || is_opening(c) => {
            if new_paragraph {
                out.push_str("\n\n");
            } else {
                out.push(' ');
            }
        }
        _ => {}
    }
    Some(out)
}

/// Whether a space separates `last` (end of the author's text) and `first` (start of ours):
/// after a finished word or punctuation, yes; inside a word, or after an opening quote, no.
fn needs_space_between(last: char, first: char) -> bool {
    if is_opening(last) || last == '-' || last == '—' || last == '/' {
        return false;
    }
    if first.is_alphanumeric() || is_opening(first) {
        // A letter after a letter continues the word the author was typing.
        return !last.is_alphanumeric();
    }
    false
}

fn is_opening(c: char) -> bool {
    matches!(c, '"' | '“' | '‘' | '«' | '(' | '[' | '\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_suggestions_are_trimmed_and_joined() {
        // (reply, before, after, cut_off, expected)
        let cases: &[(&str, &str, &str, bool, Option<&str>)] = &[
            // A leading space is kept after a finished word…
            (
                " and the rain came.",
                "She waited",
                "",
                false,
                Some(" and the rain came."),
            ),
            // …and added when the model forgot it after punctuation.
            (
                "The rain came.",
                "She waited.",
                "",
                false,
                Some(" The rain came."),
            ),
            // Finishing the word being typed: no space.
            (
                "se keeper slept.",
                "The lighthou",
                "",
                false,
                Some("se keeper slept."),
            ),
            // The model echoed the partial word: the echo goes.
            (
                "lighthouse keeper slept.",
                "The lighthou",
                "",
                false,
                Some("se keeper slept."),
            ),
            // The model echoed the last words.
            (
                "She waited by the door. Then she left.",
                "Mara sat. She waited by the door.",
                "",
                false,
                Some(" Then she left."),
            ),
            // After a space, no second space.
            (
                "  Then she left.",
                "She waited. ",
                "",
                false,
                Some("Then she left."),
            ),
            // Two sentences at most.
            (" One. Two. Three.", "Go.", "", false, Some(" One. Two.")),
            // Cut off by the token limit: the unfinished sentence goes.
            (" One. Two and th", "Go.", "", true, Some(" One.")),
            // Cut off with a single unfinished sentence: its unfinished word goes.
            (" And then the wi", "Go.", "", true, Some(" And then the")),
            // One paragraph only.
            (
                " End of it.\n\nNew paragraph.",
                "Go.",
                "",
                false,
                Some(" End of it."),
            ),
            // Never repeat the text after the cursor.
            (
                " slowly down the hill to the harbour.",
                "He walked",
                " to the harbour.",
                false,
                Some(" slowly down the hill"),
            ),
            (
                " quietly back home",
                "He walked",
                " home, tired.",
                false,
                Some(" quietly back"),
            ),
            // Leading into a word after the cursor: a space after.
            (" slowly", "He walked", "home.", false, Some(" slowly ")),
            // Mid-line, a cut-off fragment is kept: it leads into what follows.
            (
                " slowly and",
                "He walked",
                " home.",
                true,
                Some(" slowly and"),
            ),
            // Quotes or a fence around the whole reply are not part of it.
            (
                "\"The rain came.\"",
                "She waited.",
                "",
                false,
                Some(" The rain came."),
            ),
            (
                "```\nThe rain came.\n```",
                "She waited.",
                "",
                false,
                Some(" The rain came."),
            ),
            // Dialogue keeps its quotes.
            (
                "“Come in,” she said.",
                "The door opened.",
                "",
                false,
                Some(" “Come in,” she said."),
            ),
            // Nothing left.
            ("   ", "Go.", "", false, None),
            ("She waited.", "Mara sat. She waited.", "", false, None),
            (" home.", "He walked", " home.", false, None),
        ];
        for (reply, before, after, cut_off, expected) in cases {
            assert_eq!(
                inline_continuation(reply, before, after, *cut_off).as_deref(),
                *expected,
                "reply {reply:?} before {before:?} after {after:?}"
            );
        }
    }

    #[test]
    fn a_rewrite_keeps_the_spacing_of_the_selection() {
        assert_eq!(
            action_output(
                "She ran.\n",
                Placement::ReplaceSelection,
                "x",
                " He walked. ",
                "y"
            )
            .as_deref(),
            Some(" She ran. ")
        );
        assert_eq!(
            action_output("  ", Placement::ReplaceSelection, "", "a", ""),
            None
        );
    }

    #[test]
    fn inserted_passages_join_as_words_or_paragraphs() {
        let cases: &[(&str, Placement, &str, &str, &str, &str)] = &[
            (
                "The tide turned.",
                Placement::AtCursor,
                "She waited.",
                "",
                "",
                " The tide turned.",
            ),
            (
                "\n\nThe tide turned.",
                Placement::AtCursor,
                "She waited.",
                "",
                "",
                "\n\nThe tide turned.",
            ),
            (
                "The tide turned.",
                Placement::AtCursor,
                "She waited.\n\n",
                "",
                "",
                "The tide turned.",
            ),
            (
                "The tide turned.",
                Placement::AtCursor,
                "She waited.",
                "",
                "Then",
                " The tide turned. ",
            ),
            (
                "Tall and grey-eyed, she watched.",
                Placement::AfterSelection,
                "Then ",
                "Mara",
                " left.",
                " Tall and grey-eyed, she watched.",
            ),
        ];
        for (reply, placement, before, selection, after, expected) in cases {
            assert_eq!(
                action_output(reply, *placement, before, selection, after).as_deref(),
                Some(*expected),
                "{reply:?}"
            );
        }
    }
}
