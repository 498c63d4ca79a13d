//! The bookkeeping of inline completion per document: a newer request supersedes the older one
//! (whose token is cancelled, aborting its provider call), a request waits out the debounce
//! before it may call a provider, and the last suggestion is kept so that typing it out is served
//! from memory (what the author typed since is a prefix of it → the rest, no provider call).
//! Each document's slot also keeps what the last request found looking for the heading above its
//! cursor ([`HeadingMemo`]), so that the next one reads only what changed.
//!
//! When the author asks (an invoked request), up to [`MAX_ALTERNATIVES`] continuations are
//! offered: [`alternative`] shapes each one's request, [`same_suggestion`] keeps them distinct.
//!
//! No I/O here: the caller ([`super::Assistant::continue_inline`]) asks for a ticket, the cache,
//! and the debounce, then does the provider work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ropey::Rope;
use tokio_util::sync::CancellationToken;

use super::context::HeadingMemo;
use crate::providers::{CompletionRequest, Message, Role};

/// How many chars before the cursor must be unchanged for a cached suggestion to still apply
/// (the author may have edited the sentence the suggestion continued).
const CACHE_ANCHOR_CHARS: usize = 64;

/// Most continuations offered to one invoked request (VS Code cycles them with Alt+]).
pub const MAX_ALTERNATIVES: usize = 3;

/// How much warmer each further alternative is sampled than the first.
const ALTERNATIVE_TEMPERATURE_STEP: f32 = 0.15;

/// The request of alternative `index` (0-based) of `count`: the first is `base` unchanged (the
/// same prompt as an automatic request, so its cache and statistics mean the same); each further
/// one asks the model, at the end of the prompt, for a different direction and is sampled a
/// little warmer. Models asked the same thing twice tend to answer the same way, and near-copies
/// are no choice for the author.
pub fn alternative(base: &CompletionRequest, index: usize, count: usize) -> CompletionRequest {
    let mut request = base.clone();
    if index == 0 {
        return request;
    }
    // Step is tiny and index ≤ MAX_ALTERNATIVES: the cast loses nothing.
    #[allow(clippy::cast_precision_loss)]
    let warmer = ALTERNATIVE_TEMPERATURE_STEP * index as f32;
    request.temperature = base.temperature.map(|t| (t + warmer).min(1.0));
    let hint = format!(
        "\n\nThis is alternative {n} of {count} offered to the author: take the continuation in a \
         different direction from the most obvious one (another action, image or line of \
         dialogue), in the same voice and with the same rules.",
        n = index + 1
    );
    match request
        .messages
        .iter_mut()
        .rev()
        .find(|m| m.role == Role::User)
    {
        Some(last) => last.content.push_str(&hint),
        None => request.messages.push(Message::user(hint.trim_start())),
    }
    request
}

/// Whether two cleaned suggestions would offer the author the same text: equal but for case,
/// spacing and punctuation.
pub fn same_suggestion(a: &str, b: &str) -> bool {
    fn words(text: &str) -> impl Iterator<Item = String> + '_ {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
    }
    words(a).eq(words(b))
}

/// Why the editor asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The author asked (a shortcut, or a completion request).
    Invoked,
    /// The editor asked while the author typed.
    Automatic,
}

/// One request's place in its document's queue.
#[derive(Debug)]
pub struct Ticket {
    uri: String,
    number: u64,
    cancel: CancellationToken,
}

impl Ticket {
    /// Cancelled when the editor cancels the request or a newer one supersedes it.
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// A suggestion served from memory.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheHit {
    pub id: String,
    /// What is left of the suggestion after what the author typed.
    pub text: String,
}

impl std::fmt::Debug for CacheHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheHit")
            .field("id", &self.id)
            .field("chars", &self.text.chars().count())
            .finish()
    }
}

struct Cached {
    id: String,
    text: String,
    /// Char offset of the cursor the suggestion was made for.
    cursor: usize,
    /// The chars just before that cursor.
    anchor: String,
}

#[derive(Default)]
struct Slot {
    latest: u64,
    running: Option<CancellationToken>,
    cached: Option<Cached>,
    /// What the last request learned about the heading above its cursor.
    heading: Option<HeadingMemo>,
}

/// Per-document inline state of one session.
#[derive(Default)]
pub struct InlineEngine {
    slots: Mutex<HashMap<String, Slot>>,
}

impl InlineEngine {
    pub fn new() -> Self {
        InlineEngine::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Slots hold plain data replaced whole; a poisoned lock is still consistent.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a request for `uri` whose work stops when `cancel` fires; the request before it
    /// for the same document is superseded (its token is cancelled).
    pub fn begin(&self, uri: &str, cancel: CancellationToken) -> Ticket {
        let mut slots = self.lock();
        let slot = slots.entry(uri.to_string()).or_default();
        if let Some(previous) = slot.running.replace(cancel.clone()) {
            previous.cancel();
        }
        slot.latest += 1;
        Ticket {
            uri: uri.to_string(),
            number: slot.latest,
            cancel,
        }
    }

    /// Marks `ticket` done (its document has no running request unless a newer one started).
    pub fn finish(&self, ticket: &Ticket) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(&ticket.uri)
            && slot.latest == ticket.number
        {
            slot.running = None;
        }
    }

    /// Waits `delay`; true when the request may go on (not superseded or cancelled meanwhile).
    pub async fn debounce(&self, ticket: &Ticket, delay: Duration) -> bool {
        if !delay.is_zero() {
            tokio::select! {
                biased;
                () = ticket.cancel.cancelled() => return false,
                () = tokio::time::sleep(delay) => {}
            }
        }
        !ticket.cancel.is_cancelled() && self.is_latest(ticket)
    }

    fn is_latest(&self, ticket: &Ticket) -> bool {
        self.lock()
            .get(&ticket.uri)
            .is_some_and(|slot| slot.latest == ticket.number)
    }

    /// The rest of the last suggestion for `uri`, if the text before `cursor` is the text it was
    /// made for followed by a prefix of it. `same_place` allows serving it whole when nothing
    /// was typed (an editor asking again at the same cursor).
    pub fn cached(
        &self,
        uri: &str,
        text: &Rope,
        cursor: usize,
        same_place: bool,
    ) -> Option<CacheHit> {
        let mut slots = self.lock();
        let slot = slots.get_mut(uri)?;
        let cached = slot.cached.as_ref()?;
        let hit = remainder(cached, text, cursor, same_place);
        if hit.is_none() && cursor != cached.cursor {
            // The author went another way: the suggestion will not apply again.
            slot.cached = None;
        }
        hit
    }

    /// Keeps `suggestion` (id `id`) as the one made at `cursor` of `text`.
    pub fn remember(&self, uri: &str, text: &Rope, cursor: usize, id: &str, suggestion: &str) {
        let cursor = cursor.min(text.len_chars());
        let anchor_start = cursor.saturating_sub(CACHE_ANCHOR_CHARS);
        let cached = Cached {
            id: id.to_string(),
            text: suggestion.to_string(),
            cursor,
            anchor: text.slice(anchor_start..cursor).to_string(),
        };
        self.lock().entry(uri.to_string()).or_default().cached = Some(cached);
    }

    /// What the last request for `uri` found looking for the heading above its cursor (taken:
    /// the request puts back what it finds with [`InlineEngine::keep_heading_memo`]).
    pub fn take_heading_memo(&self, uri: &str) -> Option<HeadingMemo> {
        self.lock().get_mut(uri)?.heading.take()
    }

    /// Keeps `memo` for the next request for `uri` (not for a document closed meanwhile).
    pub fn keep_heading_memo(&self, uri: &str, memo: Option<HeadingMemo>) {
        if let Some(slot) = self.lock().get_mut(uri) {
            slot.heading = memo;
        }
    }

    /// Forgets a closed document.
    pub fn forget(&self, uri: &str) {
        if let Some(slot) = self.lock().remove(uri)
            && let Some(running) = slot.running
        {
            running.cancel();
        }
    }
}

fn remainder(cached: &Cached, text: &Rope, cursor: usize, same_place: bool) -> Option<CacheHit> {
    if cursor < cached.cursor || cursor > text.len_chars() {
        return None;
    }
    let typed_chars = cursor - cached.cursor;
    if typed_chars == 0 && !same_place {
        return None;
    }
    let anchor_chars = cached.anchor.chars().count();
    if cached.cursor < anchor_chars {
        return None;
    }
    // Only the anchor and what was typed are compared: O(suggestion), not O(document).
    let anchor = text.slice(cached.cursor - anchor_chars..cached.cursor);
    if anchor != cached.anchor.as_str() {
        return None;
    }
    let typed = text.slice(cached.cursor..cursor);
    let mut suggestion = cached.text.char_indices();
    for typed_char in typed.chars() {
        match suggestion.next() {
            Some((_, c)) if c == typed_char => {}
            _ => return None,
        }
    }
    let rest_start = suggestion.next().map(|(i, _)| i)?;
    let rest = &cached.text[rest_start..];
    (!rest.trim().is_empty()).then(|| CacheHit {
        id: cached.id.clone(),
        text: rest.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rope(text: &str) -> Rope {
        Rope::from_str(text)
    }

    #[test]
    fn typing_the_suggestion_serves_the_rest_from_memory() {
        let engine = InlineEngine::new();
        let uri = "file:///n/ch1.md";
        let before = "She waited";
        engine.remember(uri, &rope(before), 10, "s-1", " by the door.");

        let cases: &[(&str, usize, bool, Option<&str>)] = &[
            // Typed " by": the rest.
            ("She waited by", 13, false, Some(" the door.")),
            // Asked again at the same place: only when allowed.
            ("She waited", 10, true, Some(" by the door.")),
            ("She waited", 10, false, None),
            // Typed the whole suggestion: nothing left.
            ("She waited by the door.", 23, false, None),
        ];
        for (text, cursor, same_place, expected) in cases {
            let hit = engine.cached(uri, &rope(text), *cursor, *same_place);
            assert_eq!(
                hit.as_ref().map(|h| h.text.as_str()),
                *expected,
                "{text:?} at {cursor}"
            );
            if let Some(hit) = hit {
                assert_eq!(hit.id, "s-1");
            }
        }
    }

    #[test]
    fn typing_something_else_or_editing_before_drops_the_cache() {
        let engine = InlineEngine::new();
        let uri = "u";
        engine.remember(uri, &rope("She waited"), 10, "s-1", " by the door.");
        assert!(
            engine
                .cached(uri, &rope("He waited by"), 12, false)
                .is_none()
        );
        engine.remember(uri, &rope("She waited"), 10, "s-1", " by the door.");
        assert!(
            engine
                .cached(uri, &rope("She waited at"), 13, false)
                .is_none()
        );
        // Once a divergence was seen, the suggestion is gone even if the author undoes it.
        assert!(
            engine
                .cached(uri, &rope("She waited by"), 13, false)
                .is_none()
        );
        assert!(engine.cached("other", &rope("x"), 1, true).is_none());
    }

    #[test]
    fn alternatives_ask_for_another_direction_and_the_first_is_the_plain_request() {
        let mut base = CompletionRequest::new(vec![Message::user("<text_before_cursor>She")]);
        base.temperature = Some(0.7);
        let first = alternative(&base, 0, 3);
        assert_eq!(first.messages, base.messages);
        assert_eq!(first.temperature, Some(0.7));
        let second = alternative(&base, 1, 3);
        let third = alternative(&base, 2, 3);
        for (request, n) in [(&second, 2), (&third, 3)] {
            let prompt = &request.messages[0].content;
            assert!(prompt.starts_with("<text_before_cursor>She"), "{prompt}");
            assert!(
                prompt.contains(&format!("alternative {n} of 3")),
                "{prompt}"
            );
        }
        assert_ne!(second.messages, third.messages);
        assert!(second.temperature > first.temperature);
        assert!(third.temperature > second.temperature);
        assert!(third.temperature <= Some(1.0));
        // All three stop with the one request: they share its token.
        base.cancel.cancel();
        assert!(second.cancel.is_cancelled() && third.cancel.is_cancelled());
    }

    #[test]
    fn suggestions_differing_only_in_case_spacing_or_punctuation_are_the_same() {
        let cases = [
            (" and the door opened.", "and the door opened", true),
            (" And  the door\nopened!", " and the door opened.", true),
            (" — Кто там?", "кто там", true),
            (" and the door opened.", " and the window opened.", false),
            (" and the door", " and the door opened", false),
            ("", "", true),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_suggestion(a, b), same, "{a:?} vs {b:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_request_supersedes_the_older_one() {
        let engine = std::sync::Arc::new(InlineEngine::new());
        let first = engine.begin("u", CancellationToken::new());
        let waiting = tokio::spawn({
            let engine = engine.clone();
            async move { engine.debounce(&first, Duration::from_millis(120)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = engine.begin("u", CancellationToken::new());
        assert!(!waiting.await.unwrap(), "the superseded request stops");
        assert!(engine.debounce(&second, Duration::from_millis(120)).await);
        // Another document is independent.
        let other = engine.begin("v", CancellationToken::new());
        assert!(!second.is_cancelled());
        assert!(engine.debounce(&other, Duration::ZERO).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_request_stops_waiting_at_once() {
        let engine = InlineEngine::new();
        let cancel = CancellationToken::new();
        let ticket = engine.begin("u", cancel.clone());
        let start = tokio::time::Instant::now();
        cancel.cancel();
        assert!(!engine.debounce(&ticket, Duration::from_secs(60)).await);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_debounce_waits_its_delay() {
        let engine = InlineEngine::new();
        let ticket = engine.begin("u", CancellationToken::new());
        let start = tokio::time::Instant::now();
        assert!(engine.debounce(&ticket, Duration::from_millis(120)).await);
        assert_eq!(start.elapsed(), Duration::from_millis(120));
        engine.finish(&ticket);
        engine.forget("u");
    }
}
