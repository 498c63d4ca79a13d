//! Which prompt version produced which suggestion, so that an accepted suggestion
//! (`storyteller.feedback`) counts as a success of that version.
//!
//! A bounded, in-memory map: the oldest entries are forgotten first. A suggestion is shown within
//! seconds of being generated and accepted (or not) soon after; the bound only stops a long
//! session from growing without end.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A prompt template version, as the registry names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateRef {
    pub name: String,
    pub version: u32,
}

/// The default number of suggestions remembered.
pub const DEFAULT_CAPACITY: usize = 1_024;

pub struct SuggestionLedger {
    capacity: usize,
    /// A per-session prefix: ids of two sessions (two editor windows) never collide in a log.
    prefix: String,
    next: AtomicU64,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<String, TemplateRef>,
    order: VecDeque<String>,
}

impl Default for SuggestionLedger {
    fn default() -> Self {
        SuggestionLedger::new(DEFAULT_CAPACITY)
    }
}

impl SuggestionLedger {
    pub fn new(capacity: usize) -> Self {
        let prefix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        SuggestionLedger {
            capacity: capacity.max(1),
            prefix,
            next: AtomicU64::new(1),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// A fresh suggestion id for `template`, remembered until taken or pushed out.
    pub fn issue(&self, template: TemplateRef) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.prefix);
        let mut entries = self.lock();
        while entries.order.len() >= self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.by_id.remove(&oldest);
            }
        }
        entries.order.push_back(id.clone());
        entries.by_id.insert(id.clone(), template);
        id
    }

    /// The template of `id`, forgetting it: feedback on one suggestion counts once.
    pub fn take(&self, id: &str) -> Option<TemplateRef> {
        let mut entries = self.lock();
        let template = entries.by_id.remove(id)?;
        entries.order.retain(|other| other != id);
        Some(template)
    }

    /// The template of `id` without forgetting it.
    pub fn get(&self, id: &str) -> Option<TemplateRef> {
        self.lock().by_id.get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Entries are replaced whole; a panic elsewhere cannot leave them half-written.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(version: u32) -> TemplateRef {
        TemplateRef {
            name: "inline_continuation".into(),
            version,
        }
    }

    #[test]
    fn feedback_finds_the_template_once() {
        let ledger = SuggestionLedger::new(8);
        let a = ledger.issue(t(1));
        let b = ledger.issue(t(2));
        assert_ne!(a, b);
        assert_eq!(ledger.take(&b), Some(t(2)));
        assert_eq!(ledger.take(&b), None, "a second acceptance does not count");
        assert_eq!(ledger.get(&a), Some(t(1)));
        assert_eq!(ledger.take("unknown"), None);
    }

    #[test]
    fn the_oldest_suggestions_are_forgotten_beyond_the_bound() {
        let ledger = SuggestionLedger::new(3);
        let ids: Vec<String> = (0..5).map(|v| ledger.issue(t(v))).collect();
        assert_eq!(ledger.len(), 3);
        assert_eq!(ledger.get(&ids[0]), None);
        assert_eq!(ledger.get(&ids[1]), None);
        assert_eq!(ledger.get(&ids[4]), Some(t(4)));
    }
}
