//! A small read-through cache for rows read on every request (clients, users, sessions, tokens).
//! Changes made by this process invalidate entries at once; changes from another process (the
//! CLI, which edits clients and users) are seen within `ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct TtlCache<V> {
    ttl: Duration,
    /// Entries kept at most; past it the cache starts over rather than growing with the load.
    max_entries: usize,
    entries: Mutex<HashMap<String, (V, Instant)>>,
    /// Bumped by every invalidation, so a read that began before one cannot store what it read.
    epoch: AtomicU64,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// Take before reading the database; pass to `put_read`.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Stores a value read from the database, unless an invalidation happened since `epoch`.
    pub fn put_read(&self, key: &str, value: V, epoch: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if self.epoch.load(Ordering::SeqCst) != epoch {
                return;
            }
            if entries.len() >= self.max_entries {
                entries.clear();
            }
            entries.insert(key.to_owned(), (value, Instant::now()));
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: &str, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max_entries {
                entries.clear();
            }
            entries.insert(key.to_owned(), (value, Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            entries.clear();
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            entries.remove(key);
        }
    }
}

impl<V> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_forgets() {
        let c = TtlCache::new(Duration::from_secs(60), 16);
        c.put("a", 1);
        assert_eq!(c.get("a"), Some(1));
        c.forget("a");
        assert_eq!(c.get("a"), None);
        // A read that began before an invalidation is not stored.
        let epoch = c.epoch();
        c.forget("b");
        c.put_read("a", 2, epoch);
        assert_eq!(c.get("a"), None);
        c.put_read("a", 3, c.epoch());
        assert_eq!(c.get("a"), Some(3));
        let c = TtlCache::new(Duration::ZERO, 16);
        c.put("a", 1);
        assert_eq!(c.get("a"), None);
    }
}
