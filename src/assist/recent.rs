//! A small map of values worth reusing for a while: what a document's ghost-text requests would
//! otherwise compute or read again on every keystroke (its language, its previous chapter).
//! Entries older than the time to live are recomputed; past its size the map starts afresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each reused for `ttl`.
pub struct Recent<V> {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> Recent<V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Recent {
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key` if it was put less than the time to live ago.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.lock();
        let (value, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: &str, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_string(), (value, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (V, Instant)>> {
        // Entries are replaced whole: a poisoned lock still holds a consistent map.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_live_for_their_time_and_the_map_stays_bounded() {
        let recent = Recent::new(Duration::from_millis(50), 2);
        recent.put("a", 1);
        recent.put("b", 2);
        assert_eq!((recent.get("a"), recent.get("b")), (Some(1), Some(2)));
        recent.put("b", 3);
        assert_eq!(recent.get("b"), Some(3));
        // A third key starts afresh.
        recent.put("c", 4);
        assert_eq!((recent.get("a"), recent.get("c")), (None, Some(4)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(recent.get("c"), None);
    }
}
