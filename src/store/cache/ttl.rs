//! A small bounded map with per-entry expiry on the injected clock, and an epoch that keeps a
//! read which raced an invalidation from storing what it read.

use crate::clock::{Clock, UnixTime};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct TtlCache<V> {
    /// Seconds an entry is served.
    ttl: i64,
    /// Entries kept at most; past it the cache starts over rather than growing with the load.
    max_entries: usize,
    entries: Mutex<HashMap<String, (V, UnixTime)>>,
    /// Bumped by every invalidation, so a read that began before one cannot store what it read.
    epoch: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: i64, max_entries: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            clock,
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
            entries.insert(key.to_owned(), (value, self.clock.now()));
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let now = self.clock.now();
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, at)| now - at < self.ttl && *at <= now)
            .map(|(v, _)| v.clone())
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
    use crate::clock::ManualClock;

    #[test]
    fn expires_on_the_injected_clock_and_forgets() {
        let clock = ManualClock::default();
        let c = TtlCache::new(60, 16, Arc::new(clock.clone()));
        c.put_read("a", 1, c.epoch());
        assert_eq!(c.get("a"), Some(1));
        clock.advance(59);
        assert_eq!(c.get("a"), Some(1));
        clock.advance(1);
        assert_eq!(c.get("a"), None, "expired after ttl seconds of the clock");
        c.put_read("a", 1, c.epoch());
        c.forget("a");
        assert_eq!(c.get("a"), None);
        // A read that began before an invalidation is not stored.
        let epoch = c.epoch();
        c.forget("b");
        c.put_read("a", 2, epoch);
        assert_eq!(c.get("a"), None);
        c.put_read("a", 3, c.epoch());
        assert_eq!(c.get("a"), Some(3));
        let epoch = c.epoch();
        c.clear();
        assert_eq!(c.get("a"), None);
        c.put_read("a", 4, epoch);
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn stays_within_its_bound() {
        let c = TtlCache::new(60, 4, Arc::new(ManualClock::default()));
        for i in 0..100 {
            c.put_read(&i.to_string(), i, c.epoch());
        }
        assert!(c.entries.lock().unwrap().len() <= 4);
    }
}
