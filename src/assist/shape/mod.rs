//! The one answer-cleaning stage: turning a model's reply into text that can go into the
//! manuscript as is. Ghost text and every action pass through here ([`inline`], [`action`]); no
//! path inserts a reply any other way.
//!
//! The stages, in order:
//! 1. [`clean`]: preambles and labels, wrapping Markdown, trailing commentary and sign-offs go.
//! 2. [`unquote`]: quotation marks around the whole reply go only on clear evidence that they wrap
//!    it (see there); dialogue keeps its quotes, guillemets and dashes as the model wrote them.
//! 3. Trimming: no echo of the text before the cursor, no repeat of the text after it; ghost text
//!    keeps at most two sentences of one paragraph.
//! 4. [`join`]: the seam, by the rules of prose.
//!
//! Describe character goes after the sentence that names the character, never inside it:
//! [`insertion_shift`] tells how far past the selection that is, and `assist::place` uses the same
//! function to put the edit there.
//!
//! Pure string functions over the reply and the context windows already extracted; nothing here
//! logs, allocates much, or touches a document.

mod clean;
mod join;
mod words;

use unicode_segmentation::UnicodeSegmentation;

use super::actions::Placement;
use clean::{Cleaned, Leading};
use join::Joining;

/// Ghost text shows at most this many sentences: more is a paragraph the author did not ask for.
pub const MAX_INLINE_SENTENCES: usize = 2;

/// The shortest echo of the text before the cursor that is removed by [`drop_echo`] (a repeat of
/// the partial word at the cursor is removed at any length by the seam rules).
const MIN_ECHO_CHARS: usize = 4;

/// The longest echo looked for.
const MAX_ECHO_CHARS: usize = 400;

/// Describe character looks this far past the selection for the end of its sentence.
const MAX_SENTENCE_SEARCH_CHARS: usize = 600;

/// Where a reply goes and what is around it.
#[derive(Debug, Clone, Copy)]
pub struct ReplyContext<'a> {
    /// The text before the cursor or selection (the context window).
    pub before: &'a str,
    /// The selected text (empty at a cursor and for ghost text).
    pub selection: &'a str,
    /// The text after the cursor or selection (the context window).
    pub after: &'a str,
    /// Where an action's text goes (ghost text: [`Placement::AtCursor`]).
    pub placement: Placement,
    /// The model stopped on its token limit: its last sentence may be unfinished.
    pub cut_off: bool,
    /// The text asked for is dialogue (Suggest dialogue): quotation marks are never its wrapping.
    pub dialogue: bool,
}

impl<'a> ReplyContext<'a> {
    /// Ghost text at a cursor between `before` and `after`.
    pub fn inline(before: &'a str, after: &'a str, cut_off: bool) -> Self {
        ReplyContext {
            before,
            selection: "",
            after,
            placement: Placement::AtCursor,
            cut_off,
            dialogue: false,
        }
    }
}

/// An action's text and where it goes.
#[derive(Clone, PartialEq, Eq)]
pub struct ActionSeam {
    /// The exact text to insert (or to put in place of the selection).
    pub text: String,
    /// For an insertion: how many chars of `after` come before it (Describe character skips to
    /// the end of the sentence that names the character); 0 for the other placements.
    pub after_chars: usize,
}

impl std::fmt::Debug for ActionSeam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionSeam")
            .field("chars", &self.text.chars().count())
            .field("after_chars", &self.after_chars)
            .finish()
    }
}

/// The ghost text for the reply `raw`; `None` when nothing usable is left.
pub fn inline(raw: &str, cx: &ReplyContext<'_>) -> Option<String> {
    let Cleaned { body, leading } = clean::clean(raw);
    let body = unquote(&body, cx);
    let (text, leading) = drop_echo(body, cx.before, leading);
    let text = first_paragraph(text);
    let text = whole_sentences(
        text,
        MAX_INLINE_SENTENCES,
        cx.cut_off && !continues_line(cx.after),
    );
    let text = drop_repeat_of_after(&text, cx.after);
    join::join(text, leading, cx.before, cx.after, Joining::Inline)
}

/// An action's text for the reply `raw`, and where it goes; `None` when nothing usable is left.
pub fn action(raw: &str, cx: &ReplyContext<'_>) -> Option<ActionSeam> {
    let Cleaned { body, leading } = clean::clean(raw);
    let body = unquote(&body, cx);
    match cx.placement {
        Placement::ReplaceSelection => {
            let body = body.trim();
            if body.is_empty() {
                return None;
            }
            // The rewrite replaces the words; the selection's own spacing stays.
            let selection = cx.selection;
            let lead = &selection[..selection.len() - selection.trim_start().len()];
            let trail = &selection[selection.trim_end().len()..];
            Some(ActionSeam {
                text: format!("{lead}{body}{trail}"),
                after_chars: 0,
            })
        }
        Placement::AtCursor => {
            let (text, leading) = drop_echo(body, cx.before, leading);
            let text = drop_repeat_of_after(text, cx.after);
            let joining = Joining::Passage { new_beat: true };
            join::join(text, leading, cx.before, cx.after, joining).map(|text| ActionSeam {
                text,
                after_chars: 0,
            })
        }
        Placement::AfterSelection => {
            let shift = insertion_shift(cx.before, cx.selection, cx.after);
            let split = cx
                .after
                .char_indices()
                .nth(shift)
                .map_or(cx.after.len(), |(i, _)| i);
            let preceding = format!("{}{}{}", cx.before, cx.selection, &cx.after[..split]);
            let following = &cx.after[split..];
            let text = drop_repeat_of_after(body, following);
            let joining = Joining::Passage { new_beat: false };
            join::join(text, leading, &preceding, following, joining).map(|text| ActionSeam {
                text,
                after_chars: shift,
            })
        }
    }
}

/// How many chars past the end of `selection` its sentence ends (after a closing quote when the
/// selection is inside quoted speech, and after a dialogue tag that goes on after the quote):
/// where a description of what the selection names goes. 0 when the selection ends its sentence
/// itself, or when no end is found within reach (then the text goes right after the selection,
/// as before).
pub fn insertion_shift(before: &str, selection: &str, after: &str) -> usize {
    if ends_sentence_or_line(selection) || selection.is_empty() && ends_sentence_or_line(before) {
        return 0;
    }
    let mut in_quote = inside_quote(before, selection);
    let chars: Vec<char> = after.chars().take(MAX_SENTENCE_SEARCH_CHARS + 1).collect();
    let mut i = 0;
    while i < chars.len() && i < MAX_SENTENCE_SEARCH_CHARS {
        let c = chars[i];
        if c == '\n' || c == '\r' {
            // The paragraph ends first: the description closes it.
            return i;
        }
        if in_quote && is_closing_quote(c) {
            in_quote = false;
            let terminated = i > 0 && matches!(chars[i - 1], '.' | '!' | '?' | '…');
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            let tag_follows = next.is_some_and(|c| c.is_lowercase() || *c == ',');
            if terminated && !tag_follows {
                return i + 1;
            }
            i += 1;
            continue;
        }
        if matches!(c, '.' | '!' | '?' | '…') && !in_quote {
            let mut end = i + 1;
            while end < chars.len()
                && (matches!(chars[end], '.' | '!' | '?' | '…')
                    || is_closing_quote(chars[end])
                    || chars[end] == ')')
            {
                end += 1;
            }
            let at_boundary = end >= chars.len() || chars[end].is_whitespace();
            if at_boundary && !(c == '.' && is_abbreviation(&chars[..i])) {
                return end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    if chars.len() <= MAX_SENTENCE_SEARCH_CHARS {
        // The window ends before the sentence does: the end of what we know.
        chars.len()
    } else {
        0
    }
}

fn ends_sentence_or_line(text: &str) -> bool {
    join::ends_sentence(text) || text.ends_with(['\n', '\r'])
}

/// Whether the end of `before` + `selection` lies inside quoted speech of its paragraph.
fn inside_quote(before: &str, selection: &str) -> bool {
    let paragraph_start = before.rfind("\n").map_or(0, |i| i + 1);
    let text = format!("{}{}", &before[paragraph_start..], selection);
    let straight = text.chars().filter(|&c| c == '"').count();
    let open_curly = text.rfind('“');
    let close_curly = text.rfind('”');
    let open_guillemet = text.rfind('«');
    let close_guillemet = text.rfind('»');
    straight % 2 == 1 || open_curly > close_curly || open_guillemet > close_guillemet
}

fn is_closing_quote(c: char) -> bool {
    matches!(c, '"' | '”' | '»' | '’')
}

/// Whether the chars before a full stop end in an abbreviation ("Mr", "Dr", "St").
fn is_abbreviation(chars: &[char]) -> bool {
    let word: String = chars
        .iter()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    matches!(
        word.as_str(),
        "Mr" | "Mrs" | "Ms" | "Dr" | "St" | "Prof" | "Capt" | "Sgt" | "Lt"
    ) || (word.chars().count() == 1 && word.chars().all(char::is_uppercase))
}

/// The reply without quotation marks around all of it, when they are clearly wrapping rather
/// than dialogue (Suggest dialogue never unwraps). The evidence that strips a pair (straight,
/// curly, guillemets) with no other quotes inside:
/// - the cursor sits right after an opening quote of the author's (the quote is already open);
/// - a rewrite (not Suggest dialogue) of a selection that is not itself quoted;
/// - straight quotes around a narrative passage: two sentences or more, no `?`/`!`, no first or
///   second person (speech nearly always has them).
///
/// A single quoted sentence in ghost text or a continuation is dialogue and keeps its quotes.
fn unquote<'b>(body: &'b str, cx: &ReplyContext<'_>) -> &'b str {
    const QUOTES: [char; 6] = ['"', '“', '”', '«', '»', '„'];
    let Some((inner, straight)) = [('"', '"'), ('“', '”'), ('«', '»'), ('„', '“')]
        .iter()
        .find_map(|&(open, close)| {
            body.strip_prefix(open)
                .and_then(|rest| rest.strip_suffix(close))
                .map(|inner| (inner, open == '"'))
        })
    else {
        return body;
    };
    if inner.contains(QUOTES) || inner.trim().is_empty() || cx.dialogue {
        return body;
    }
    let quote_open_at_cursor = cx
        .before
        .trim_end_matches([' ', '\t'])
        .ends_with(['"', '“', '«', '„']);
    let unquoted_selection = cx.placement == Placement::ReplaceSelection
        && !cx.selection.trim_start().starts_with(QUOTES);
    let narrative =
        straight && cx.placement != Placement::ReplaceSelection && reads_as_narration(inner);
    if quote_open_at_cursor || unquoted_selection || narrative {
        inner.trim()
    } else {
        body
    }
}

/// Two sentences or more, no question or exclamation, no first or second person.
fn reads_as_narration(text: &str) -> bool {
    const SPEECH_WORDS: &[&str] = &[
        "i", "i'm", "i’m", "i'll", "i’ll", "i've", "i’ve", "i'd", "i’d", "me", "my", "we", "us",
        "our", "you", "your", "я", "меня", "мне", "мы", "нас", "ты", "тебя", "вы", "вас",
    ];
    let sentences = text
        .split_sentence_bounds()
        .filter(|s| !s.trim().is_empty())
        .count();
    sentences >= 2
        && !text.contains(['?', '!'])
        && !text
            .unicode_words()
            .any(|w| SPEECH_WORDS.contains(&w.to_lowercase().as_str()))
}

/// `text` without a leading repeat of the end of `before` (a model that echoes the words it
/// continues), with how what is left begins. The repeat must start on a word boundary of
/// `before`; a short one is kept here (the seam rules handle a repeated partial word).
fn drop_echo<'t>(text: &'t str, before: &str, leading: Leading) -> (&'t str, Leading) {
    let body = text.trim_start();
    let max = body.len().min(before.len()).min(MAX_ECHO_CHARS);
    let Some(&last_before) = before.as_bytes().last() else {
        return (text, leading);
    };
    // A repeat of the end of `before` ends with its last byte: only the places where that byte
    // stands in the reply are candidates, the longest first.
    let mut unseen = &body.as_bytes()[..max];
    while let Some(at) = unseen.iter().rposition(|&b| b == last_before) {
        unseen = &unseen[..at];
        let end = at + 1;
        if !body.is_char_boundary(end) {
            continue;
        }
        let candidate = &body[..end];
        // Candidates only get shorter: once one is under the minimum, so are the rest.
        if candidate.len() < MIN_ECHO_CHARS * 4 && candidate.chars().count() < MIN_ECHO_CHARS {
            break;
        }
        if let Some(prefix) = before.strip_suffix(candidate) {
            let on_boundary = prefix
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            if on_boundary {
                let rest = &body[end..];
                let leading = match rest.chars().next() {
                    Some('\n' | '\r') => Leading::Newline,
                    Some(c) if c.is_whitespace() => Leading::Space,
                    _ => Leading::Nothing,
                };
                return (rest, leading);
            }
        }
    }
    (text, leading)
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
    let mut kept: Vec<&str> = body.split_sentence_bounds().take(max).collect();
    if drop_unfinished
        && let Some(last) = kept.last()
        && !join::ends_sentence(last)
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
        // Cheapest test first: most tails are not a prefix of `following` at all.
        if tail.len() > following.len()
            || !following.starts_with(tail)
            || tail.chars().count() < MIN_ECHO_CHARS
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

#[cfg(test)]
mod tests;
