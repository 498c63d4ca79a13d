//! Did the author keep the text? Acceptance measured a while after the fact, not when applied.
//!
//! - A code action's text counts as accepted only if most of its words are still in the document,
//!   in order, around where it went: judged on the next save of the document, after
//!   [`EDITS_BEFORE_JUDGING`] further edits, or at close, whichever comes first ([`kept_share`]).
//! - Ghost text counts partial accepts: an edit that inserts a prefix of the shown suggestion at
//!   its position (what VS Code's word and line accept do, and what typing the suggestion does)
//!   accumulates; when the suggestion is over, the accepted share is recorded. A full accept is
//!   left to `storyteller.feedback`, which the suggestion's command sends.
//!
//! The measures are pure functions; [`AcceptanceTracker`] only keeps what is pending per document
//! and decides *when* to judge. Its per-keystroke work is a map lookup and, while a ghost
//! suggestion is pending, a comparison of the few characters just typed. Must never: log the
//! texts it holds (manuscript and generated text), judge on the keystroke path (the caller runs
//! [`PendingAction::judge`] on a task).

use std::collections::HashMap;
use std::sync::Mutex;

use ropey::Rope;

use super::ledger::TemplateRef;

/// The share of an action's words still present for it to count as accepted.
pub const ACCEPT_THRESHOLD: f64 = 0.6;

/// Edits of a document after which a pending action is judged (if no save came first).
pub const EDITS_BEFORE_JUDGING: u32 = 20;

/// Characters of context either side of the inserted text searched for its words (the author may
/// have typed a little before or after it).
const SLACK_CHARS: usize = 80;

/// Longest inserted text compared word by word (the comparison is quadratic in words).
const MAX_WORDS: usize = 600;

/// Comparable words (at most `cap`), as ids from `vocabulary`: lower case, without surrounding
/// punctuation. Ids make the quadratic comparison compare integers, not strings.
fn words(text: &str, cap: usize, vocabulary: &mut HashMap<String, u32>) -> Vec<u32> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .take(cap)
        .map(|w| {
            let next = u32::try_from(vocabulary.len()).unwrap_or(u32::MAX);
            *vocabulary.entry(w).or_insert(next)
        })
        .collect()
}

/// Length of the longest common subsequence of two word lists (words present, in order).
fn common_in_order(a: &[u32], b: &[u32]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The share (0–1) of `inserted`'s words still present, in order, in `region` (the document
/// around where it was inserted, now). `replaced` is the text the action replaced (empty for an
/// insertion): words the rewrite shares with it would also be there after an undo, so only what
/// the action added beyond them counts.
pub fn kept_share(inserted: &str, replaced: &str, region: &str) -> f64 {
    let mut vocabulary = HashMap::new();
    let inserted = words(inserted, MAX_WORDS, &mut vocabulary);
    if inserted.is_empty() {
        return 0.0;
    }
    let total = inserted.len() as f64;
    let region = words(region, 3 * MAX_WORDS, &mut vocabulary);
    let now = common_in_order(&inserted, &region) as f64 / total;
    let replaced = words(replaced, 3 * MAX_WORDS, &mut vocabulary);
    let baseline = common_in_order(&inserted, &replaced) as f64 / total;
    if baseline >= 1.0 {
        // The action changed no word: nothing of its own can be judged; kept if still there.
        return now;
    }
    ((now - baseline) / (1.0 - baseline)).clamp(0.0, 1.0)
}

/// Whether a share counts as accepted.
pub fn is_kept(share: f64) -> bool {
    share >= ACCEPT_THRESHOLD
}

/// How many chars of `suggestion` (after the `accepted` already taken) `inserted` continues: the
/// new accepted count when `inserted` is a non-empty prefix of the rest, else `None`.
pub fn extends_prefix(suggestion: &[char], accepted: usize, inserted: &[char]) -> Option<usize> {
    let rest = suggestion.get(accepted..)?;
    (!inserted.is_empty() && rest.starts_with(inserted)).then(|| accepted + inserted.len())
}

/// An applied action waiting to be judged.
#[derive(Debug, Clone)]
pub struct PendingAction {
    pub template: TemplateRef,
    inserted: String,
    replaced: String,
    /// Char offset where the text went.
    start: usize,
    /// Document length (chars) right after it was applied.
    applied_len: usize,
    edits: u32,
    /// The editor answered applyEdit before sending the edit's didChange: that one is the
    /// action's own edit, not the author's.
    awaiting_own_edit: bool,
}

impl PendingAction {
    fn holds_text(&self, text: &Rope) -> bool {
        let end = self.start + self.inserted.chars().count();
        text.get_slice(self.start..end)
            .is_some_and(|s| s.chars().eq(self.inserted.chars()))
    }

    /// The share of the action's text still in `text` around where it went.
    pub fn judge(&self, text: &Rope) -> f64 {
        let inserted_chars = self.inserted.chars().count();
        let grown = text.len_chars().saturating_sub(self.applied_len);
        let from = self.start.saturating_sub(SLACK_CHARS).min(text.len_chars());
        let to = (self.start + inserted_chars + grown + SLACK_CHARS).min(text.len_chars());
        let region = text.slice(from..to).to_string();
        kept_share(&self.inserted, &self.replaced, &region)
    }
}

/// A shown ghost suggestion, and how much of it the author's edits have taken so far.
#[derive(Debug, Clone)]
pub struct PendingGhost {
    pub id: String,
    pub template: TemplateRef,
    suggestion: Vec<char>,
    start: usize,
    /// Document length when it was shown (before any of it was accepted).
    shown_len: usize,
    accepted: usize,
}

impl PendingGhost {
    /// Chars of the suggestion accepted.
    pub fn accepted_chars(&self) -> usize {
        self.accepted
    }

    pub fn suggested_chars(&self) -> usize {
        self.suggestion.len()
    }

    /// Accepted share: more than nothing and less than all (a full accept is counted by
    /// `storyteller.feedback`).
    pub fn partial_share(&self) -> Option<f64> {
        (self.accepted > 0 && self.accepted < self.suggestion.len())
            .then(|| self.accepted as f64 / self.suggestion.len() as f64)
    }

    /// Follows one edit: `true` while the document still reads as "the suggestion's first
    /// `accepted` chars inserted at its position, nothing else changed".
    fn follow(&mut self, text: &Rope) -> bool {
        let Some(inserted) = text.len_chars().checked_sub(self.shown_len) else {
            return false;
        };
        if inserted == self.accepted {
            // Something else changed without changing the length (or nothing): still ours only
            // if the accepted text is there.
            return self.reads_accepted(text, inserted);
        }
        if inserted < self.accepted || inserted > self.suggestion.len() {
            return false;
        }
        if !self.reads_accepted(text, inserted) {
            return false;
        }
        let new: Vec<char> = self.suggestion[self.accepted..inserted].to_vec();
        match extends_prefix(&self.suggestion, self.accepted, &new) {
            Some(n) => {
                self.accepted = n;
                true
            }
            None => false,
        }
    }

    fn reads_accepted(&self, text: &Rope, chars: usize) -> bool {
        let end = self.start + chars;
        end <= text.len_chars()
            && text
                .slice(self.start..end)
                .chars()
                .eq(self.suggestion[..chars].iter().copied())
    }
}

/// Everything judged or finished for one document at one event.
#[derive(Debug, Default)]
pub struct Due {
    pub actions: Vec<PendingAction>,
    pub ghosts: Vec<PendingGhost>,
}

impl Due {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.ghosts.is_empty()
    }
}

#[derive(Debug, Default)]
struct DocumentPending {
    actions: Vec<PendingAction>,
    ghost: Option<PendingGhost>,
}

/// Pending acceptance, per document uri.
#[derive(Debug, Default)]
pub struct AcceptanceTracker {
    pending: Mutex<HashMap<String, DocumentPending>>,
}

impl AcceptanceTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DocumentPending>> {
        // Entries are replaced whole; a panic elsewhere cannot leave them half-written.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An action's text was applied at `start` (chars) of `text` (the document now).
    pub fn action_applied(
        &self,
        uri: &str,
        template: TemplateRef,
        inserted: &str,
        replaced: &str,
        start: usize,
        text: &Rope,
    ) {
        let inserted_chars = inserted.chars().count();
        let replaced_chars = replaced.chars().count();
        // The editor usually sends the edit's didChange before answering applyEdit; if it has not
        // arrived yet, the length it will have is what the action leaves.
        let mut action = PendingAction {
            template,
            inserted: inserted.to_string(),
            replaced: replaced.to_string(),
            start,
            applied_len: text.len_chars(),
            edits: 0,
            awaiting_own_edit: false,
        };
        if !action.holds_text(text) {
            action.awaiting_own_edit = true;
            action.applied_len = (text.len_chars() + inserted_chars).saturating_sub(replaced_chars);
        }
        self.lock()
            .entry(uri.to_string())
            .or_default()
            .actions
            .push(action);
    }

    /// A ghost suggestion was shown at `start` of `text`. Another pending suggestion of the
    /// document is over (returned); the same one shown again (from the prefix cache) goes on.
    pub fn ghost_shown(
        &self,
        uri: &str,
        id: &str,
        template: TemplateRef,
        suggestion: &str,
        start: usize,
        text: &Rope,
    ) -> Option<PendingGhost> {
        let mut pending = self.lock();
        let doc = pending.entry(uri.to_string()).or_default();
        if doc.ghost.as_ref().is_some_and(|g| g.id == id) {
            return None;
        }
        doc.ghost.replace(PendingGhost {
            id: id.to_string(),
            template,
            suggestion: suggestion.chars().collect(),
            start,
            shown_len: text.len_chars(),
            accepted: 0,
        })
    }

    /// Whether anything waits for `uri` (one map lookup: the keystroke path asks this first).
    pub fn is_pending(&self, uri: &str) -> bool {
        self.lock().contains_key(uri)
    }

    /// After an edit of `uri` was applied (`text` is the document now). Cheap when nothing is
    /// pending for the document.
    pub fn edited(&self, uri: &str, text: &Rope) -> Due {
        let mut pending = self.lock();
        let Some(doc) = pending.get_mut(uri) else {
            return Due::default();
        };
        let mut due = Due::default();
        if let Some(ghost) = doc.ghost.as_mut()
            && !ghost.follow(text)
            && let Some(over) = doc.ghost.take()
        {
            due.ghosts.push(over);
        }
        for action in &mut doc.actions {
            if action.awaiting_own_edit && action.holds_text(text) {
                action.awaiting_own_edit = false;
                continue;
            }
            action.edits += 1;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut doc.actions)
            .into_iter()
            .partition(|a| a.edits >= EDITS_BEFORE_JUDGING);
        doc.actions = waiting;
        due.actions = ready;
        if doc.actions.is_empty() && doc.ghost.is_none() {
            pending.remove(uri);
        }
        due
    }

    /// Saved or closed: everything pending for the document is due.
    pub fn settle(&self, uri: &str) -> Due {
        match self.lock().remove(uri) {
            Some(doc) => Due {
                actions: doc.actions,
                ghosts: doc.ghost.into_iter().collect(),
            },
            None => Due::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "Mara climbed the stairs of the lighthouse.";
    const ADDED: &str = " The lamp was cold, and somewhere below a door banged twice in the wind \
                         before the house fell silent again.";

    #[test]
    fn the_share_kept_tells_kept_from_undone() {
        let kept = format!("{ORIGINAL}{ADDED} She waited.");
        let lightly_edited = format!(
            "{ORIGINAL} The lamp was cold, and far below a door banged in the wind before the \
             whole house fell silent. She waited."
        );
        let mostly_deleted = format!("{ORIGINAL} The lamp was cold. She waited.");
        let undone = format!("{ORIGINAL} She waited.");
        // (region now, replaced, expected kept?, share range)
        let cases: &[(&str, &str, bool, (f64, f64))] = &[
            (&kept, "", true, (1.0, 1.0)),
            (&lightly_edited, "", true, (0.75, 0.99)),
            (&mostly_deleted, "", false, (0.1, 0.3)),
            (&undone, "", false, (0.0, 0.1)),
            ("", "", false, (0.0, 0.0)),
        ];
        for (region, replaced, expected, (low, high)) in cases {
            let share = kept_share(ADDED, replaced, region);
            assert!(
                (*low..=*high).contains(&share),
                "{share} not in {low}..={high} for {region:?}"
            );
            assert_eq!(is_kept(share), *expected, "{region:?}");
        }
    }

    #[test]
    fn an_undone_rewrite_is_not_kept_although_it_shares_words_with_the_original() {
        let original = "Close the door, Wren, before the wind takes the candles.";
        let rewrite = "Shut that door now, Wren, or the gale will snuff every candle we have.";
        // Undo: the original is back. Most rewrites share words with it.
        let after_undo = format!("She said: \"{original}\" and turned.");
        let share = kept_share(rewrite, original, &after_undo);
        assert!(!is_kept(share), "{share}");
        let after_keep = format!("She said: \"{rewrite}\" and turned.");
        assert_eq!(kept_share(rewrite, original, &after_keep), 1.0);
    }

    #[test]
    fn words_are_compared_without_case_and_punctuation_and_in_order() {
        assert_eq!(kept_share("The Lamp, cold.", "", "the lamp cold"), 1.0);
        // Same words, reversed: only one of three in order.
        let share = kept_share("one two three", "", "three two one");
        assert!((share - 1.0 / 3.0).abs() < 1e-9, "{share}");
        assert_eq!(kept_share("Мара поднялась.", "", "мара поднялась"), 1.0);
    }

    fn t() -> TemplateRef {
        TemplateRef {
            name: "continue_scene".into(),
            version: 1,
        }
    }

    fn insert(text: &mut Rope, at: usize, s: &str) {
        text.insert(at, s);
    }

    #[test]
    fn an_action_is_judged_after_twenty_edits_or_at_save() {
        let tracker = AcceptanceTracker::default();
        let mut text = Rope::from_str(&format!("{ORIGINAL}{ADDED}"));
        let start = ORIGINAL.chars().count();
        tracker.action_applied("u", t(), ADDED, "", start, &text);
        for i in 0..EDITS_BEFORE_JUDGING - 1 {
            insert(&mut text, 0, "x");
            assert!(tracker.edited("u", &text).is_empty(), "edit {i}");
        }
        insert(&mut text, 0, "x");
        let due = tracker.edited("u", &text);
        assert_eq!(due.actions.len(), 1);
        assert!(is_kept(due.actions[0].judge(&text)));
        assert!(tracker.settle("u").is_empty());

        // Undone at once, then saved: not kept.
        let text = Rope::from_str(&format!("{ORIGINAL}{ADDED}"));
        tracker.action_applied("u", t(), ADDED, "", start, &text);
        let undone = Rope::from_str(ORIGINAL);
        assert!(tracker.edited("u", &undone).is_empty());
        let due = tracker.settle("u");
        assert_eq!(due.actions.len(), 1);
        assert!(!is_kept(due.actions[0].judge(&undone)));
    }

    #[test]
    fn the_actions_own_edit_arriving_after_apply_is_not_an_edit_of_the_author() {
        let tracker = AcceptanceTracker::default();
        let mut text = Rope::from_str(ORIGINAL);
        let start = ORIGINAL.chars().count();
        tracker.action_applied("u", t(), ADDED, "", start, &text);
        insert(&mut text, start, ADDED);
        // The first is the action's own edit; then nineteen of the author's.
        for _ in 0..EDITS_BEFORE_JUDGING {
            assert!(tracker.edited("u", &text).is_empty());
        }
        assert_eq!(tracker.edited("u", &text).actions.len(), 1);
    }

    #[test]
    fn a_ghost_suggestion_follows_prefix_inserts_and_ends_at_anything_else() {
        let tracker = AcceptanceTracker::default();
        let before = "The door opened.";
        let suggestion = " Wren stepped inside and shook the rain from her coat.";
        let mut text = Rope::from_str(before);
        let start = before.chars().count();
        assert!(
            tracker
                .ghost_shown("u", "s-1", t(), suggestion, start, &text)
                .is_none()
        );
        // Word accept: " Wren", then " stepped".
        insert(&mut text, start, " Wren");
        assert!(tracker.edited("u", &text).is_empty());
        insert(&mut text, start + 5, " stepped");
        assert!(tracker.edited("u", &text).is_empty());
        // The same suggestion served again from the cache goes on.
        assert!(
            tracker
                .ghost_shown("u", "s-1", t(), suggestion, start, &text)
                .is_none()
        );
        // The author types something else: the suggestion is over, 13 chars accepted.
        insert(&mut text, start + 13, " out");
        let due = tracker.edited("u", &text);
        let [ghost] = due.ghosts.as_slice() else {
            panic!("{due:?}");
        };
        assert_eq!(ghost.accepted_chars(), 13);
        let share = ghost.partial_share().unwrap();
        assert!((share - 13.0 / suggestion.chars().count() as f64).abs() < 1e-9);
    }

    #[test]
    fn a_ghost_not_taken_or_taken_whole_has_no_partial_share() {
        let tracker = AcceptanceTracker::default();
        let suggestion = " and left.";
        let mut text = Rope::from_str("She stood");
        tracker.ghost_shown("u", "a", t(), suggestion, 9, &text);
        insert(&mut text, 0, "Then ");
        let due = tracker.edited("u", &text);
        assert_eq!(due.ghosts[0].partial_share(), None);

        let mut text = Rope::from_str("She stood");
        tracker.ghost_shown("u", "b", t(), suggestion, 9, &text);
        insert(&mut text, 9, suggestion);
        assert!(tracker.edited("u", &text).is_empty());
        let over = tracker
            .ghost_shown("u", "c", t(), " again", 19, &text)
            .unwrap();
        assert_eq!(over.accepted_chars(), suggestion.chars().count());
        assert_eq!(over.partial_share(), None, "a full accept is feedback's");
    }

    #[test]
    fn prefixes_extend_only_from_where_the_last_stopped() {
        let s: Vec<char> = " Wren stepped".chars().collect();
        let c = |t: &str| t.chars().collect::<Vec<_>>();
        assert_eq!(extends_prefix(&s, 0, &c(" Wren")), Some(5));
        assert_eq!(extends_prefix(&s, 5, &c(" stepped")), Some(13));
        assert_eq!(extends_prefix(&s, 5, &c(" Wren")), None);
        assert_eq!(extends_prefix(&s, 0, &c("")), None);
        assert_eq!(extends_prefix(&s, 20, &c("x")), None);
    }
}
