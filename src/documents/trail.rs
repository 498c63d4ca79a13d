//! Where the last edits of one open document fell: enough for a reader that kept something it
//! worked out from an earlier text to learn whether the text before some offset is still the
//! same, without reading it.
//!
//! Why: ghost text asks at every pause, and remembers what it found above the cursor (the
//! heading). Comparing the text it relied on, up to 64 K chars, on every request was a tenth of
//! the server's work per completion; while an author types, every edit falls at or after the
//! cursor's line, and the trail says so in a few comparisons.
//!
//! Each text an open document has had gets a mark no other text (of any document, in any
//! opening) has had; the trail keeps, for its last [`TRAIL_LEN`] change sets, the mark before
//! each and the lowest char offset it changed. A change set changes nothing before its lowest
//! offset, and does not move what is before it: if every change set since a mark had its lowest
//! offset at or after `offset`, the text before `offset` is the one of that mark.
//!
//! Must never: answer "unchanged" for a mark it cannot trace back to (another document, an
//! earlier opening, or more change sets ago than it keeps).

use std::sync::atomic::{AtomicU64, Ordering};

/// How many change sets the trail goes back.
const TRAIL_LEN: usize = 16;

/// Marks handed out so far: a process-wide count, so no two texts share one.
static MARKS: AtomicU64 = AtomicU64::new(1);

/// One text of an open document: what a reader keeps to ask the trail about later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditMark(u64);

/// See the module documentation. Copied into every snapshot (a few hundred bytes, no heap).
#[derive(Debug, Clone, Copy)]
pub struct EditTrail {
    /// This text's mark.
    mark: u64,
    /// A ring of the last change sets: the mark before each, and the lowest char it changed.
    recent: [(u64, usize); TRAIL_LEN],
    /// How many entries of `recent` are filled, and where the next one goes.
    filled: usize,
    next: usize,
}

impl Default for EditTrail {
    fn default() -> Self {
        EditTrail::new()
    }
}

impl EditTrail {
    /// The trail of a freshly opened text: nothing before it can be traced.
    pub fn new() -> Self {
        EditTrail {
            mark: MARKS.fetch_add(1, Ordering::Relaxed),
            recent: [(0, 0); TRAIL_LEN],
            filled: 0,
            next: 0,
        }
    }

    /// The current text's mark.
    pub fn mark(&self) -> EditMark {
        EditMark(self.mark)
    }

    /// Records a change set that changed nothing before char `lowest` (0 for a whole new text):
    /// the text gets a new mark.
    pub fn record(&mut self, lowest: usize) {
        let before = self.mark;
        self.mark = MARKS.fetch_add(1, Ordering::Relaxed);
        self.recent[self.next] = (before, lowest);
        self.next = (self.next + 1) % TRAIL_LEN;
        self.filled = (self.filled + 1).min(TRAIL_LEN);
    }

    /// Whether the text before char `offset` is the text of `since`: `Some(true)` when no change
    /// set since reached before `offset`, `Some(false)` when one did, `None` when the trail does
    /// not lead back to `since`.
    pub fn unchanged_before(&self, since: EditMark, offset: usize) -> Option<bool> {
        if since.0 == self.mark {
            return Some(true);
        }
        let mut lowest = usize::MAX;
        for back in 1..=self.filled {
            let (before, changed) = self.recent[(self.next + TRAIL_LEN - back) % TRAIL_LEN];
            lowest = lowest.min(changed);
            if before == since.0 {
                return Some(lowest >= offset);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_at_or_after_an_offset_leave_the_text_before_it_unchanged() {
        let mut trail = EditTrail::new();
        let start = trail.mark();
        assert_eq!(trail.unchanged_before(start, usize::MAX), Some(true));
        trail.record(100);
        trail.record(120);
        assert_eq!(trail.unchanged_before(start, 100), Some(true));
        assert_eq!(trail.unchanged_before(start, 101), Some(false));
        let middle = trail.mark();
        trail.record(500);
        assert_eq!(trail.unchanged_before(middle, 500), Some(true));
        assert_eq!(trail.unchanged_before(start, 100), Some(true));
        trail.record(0);
        assert_eq!(trail.unchanged_before(middle, 1), Some(false));
        assert_eq!(trail.unchanged_before(middle, 0), Some(true));
    }

    #[test]
    fn a_mark_it_cannot_trace_is_not_answered() {
        let mut trail = EditTrail::new();
        let first = trail.mark();
        let other = EditTrail::new();
        assert_eq!(trail.unchanged_before(other.mark(), 0), None);
        assert_eq!(other.unchanged_before(first, 0), None);
        for _ in 0..TRAIL_LEN - 1 {
            trail.record(1_000);
        }
        assert_eq!(trail.unchanged_before(first, 1_000), Some(true));
        trail.record(1_000);
        assert_eq!(trail.unchanged_before(first, 1_000), Some(true));
        // One change set more than the trail keeps: the first mark is out of reach.
        trail.record(1_000);
        assert_eq!(trail.unchanged_before(first, 0), None);
    }
}
