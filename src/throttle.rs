//! Throttling of credential guessing, on the injected clock: failed checks per key (an account,
//! a client, an IP) are counted by a governor GCRA limiter (`failures` allowed per `window`,
//! replenished evenly), and a key whose failure is refused stays blocked until the limiter
//! would take another one. Blocked keys are refused before their credential is even looked at,
//! and the block lifts by itself: no one can lock an account out for longer than that.
//!
//! Memory stays bounded under a spray of distinct keys: `prune` (every minute, and whenever
//! the table passes `MAX_KEYS`) drops keys that are back to a fresh state, and past the bound
//! counting starts over.

use crate::clock::{Clock, UnixTime};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keys tracked at most per throttle.
pub const MAX_KEYS: usize = 50_000;

/// What a refused key is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds until the key may try again.
    pub retry_after: u64,
    /// The first refusal of this block: the one to audit.
    pub newly: bool,
}

/// Keys as stored: long ones (a client id of any length, an account name) by their hash, so
/// memory per key stays small.
fn bounded(key: &str) -> String {
    if key.len() <= 64 {
        key.to_owned()
    } else {
        crate::crypto::token_hash(key)
    }
}

/// The key an address is throttled under: itself, or its /64 for IPv6 (one subscriber's
/// network, where a client can pick any address).
pub fn ip_key(ip: Option<&str>) -> String {
    match ip.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(v4) => v4.to_string(),
        None => ip.unwrap_or_default().to_owned(),
    }
}

/// The injected clock as governor reads time: the duration since the Unix epoch.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_secs(self.0.now().max(0) as u64)
    }
}

type Limiter = RateLimiter<
    String,
    HashMapStateStore<String>,
    LimiterClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

fn new_limiter(quota: Quota, clock: &Arc<dyn Clock>) -> Limiter {
    RateLimiter::new(
        quota,
        HashMapStateStore::default(),
        LimiterClock(clock.clone()),
    )
}

/// Counts failures per key; see the module doc.
pub struct Throttle {
    quota: Quota,
    /// Replaced whole when a spray passes the bound.
    limiter: Mutex<Limiter>,
    /// Keys refused until the given time.
    blocked: Mutex<HashMap<String, UnixTime>>,
    clock: Arc<dyn Clock>,
    max_keys: usize,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

impl Throttle {
    /// `failures` allowed per `window` seconds (both at least 1).
    pub fn new(failures: u32, window: u64, clock: Arc<dyn Clock>) -> Self {
        Self::with_max_keys(failures, window, clock, MAX_KEYS)
    }

    pub fn with_max_keys(failures: u32, window: u64, clock: Arc<dyn Clock>, max: usize) -> Self {
        let burst = NonZeroU32::new(failures.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(Duration::from_secs(window.max(1)) / burst.get())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            quota,
            limiter: Mutex::new(new_limiter(quota, &clock)),
            blocked: Mutex::new(HashMap::new()),
            clock,
            max_keys: max,
        }
    }

    /// Counts an attempt for `key` before its credential is checked: every attempt counts,
    /// so guesses sent at once cannot outrun the count. Refused when none is left.
    pub fn attempt(&self, key: &str) -> Result<(), Refusal> {
        let key = bounded(key);
        match self.check(&key) {
            None => Ok(()),
            Some(wait) => Err(self.refuse(key, wait)),
        }
    }

    /// Seconds until `key` may try again, if a counted failure blocked it.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        let now = self.clock.now();
        let mut blocked = self.blocked.lock().ok()?;
        if blocked.is_empty() {
            return None;
        }
        let key = bounded(key);
        match blocked.get(&key) {
            Some(until) if *until > now => Some((*until - now) as u64),
            Some(_) => {
                blocked.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Counts a failed check for `key`; a refusal when this failure was one too many (the key
    /// is blocked until `retry_after`, and `blocked` says so).
    pub fn failed(&self, key: &str) -> Option<Refusal> {
        let key = bounded(key);
        let wait = self.check(&key)?;
        Some(self.refuse(key, wait))
    }

    /// Takes a cell for `key`; the seconds to wait (rounded up) when there is none.
    fn check(&self, key: &str) -> Option<u64> {
        if self.len() >= self.max_keys {
            self.prune();
        }
        let refused = self.limiter.lock().ok()?.check_key(&key.to_owned()).err()?;
        let now = Duration::from_secs(self.clock.now().max(0) as u64);
        let wait = refused.wait_time_from(now);
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).map(|s| s.max(1))
    }

    /// Records the block; `newly` for the first refusal of a block (audit that one).
    fn refuse(&self, key: String, wait: u64) -> Refusal {
        let now = self.clock.now();
        let mut newly = true;
        if let Ok(mut blocked) = self.blocked.lock() {
            newly = blocked.get(&key).is_none_or(|until| *until <= now);
            if blocked.len() >= self.max_keys {
                blocked.retain(|_, until| *until > now);
            }
            if blocked.len() < self.max_keys {
                blocked.insert(key, now + wait as i64);
            }
        }
        Refusal {
            retry_after: wait,
            newly,
        }
    }

    /// Drops keys back to a fresh state and lifted blocks; starts over past the bound.
    pub fn prune(&self) {
        if let Ok(mut limiter) = self.limiter.lock() {
            limiter.retain_recent();
            if limiter.len() >= self.max_keys {
                // A spray wider than the bound: counting starts over rather than growing.
                *limiter = new_limiter(self.quota, &self.clock);
            }
            limiter.shrink_to_fit();
        }
        let now = self.clock.now();
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.retain(|_, until| *until > now);
            blocked.shrink_to_fit();
        }
    }

    /// Keys tracked now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.limiter.lock().map_or(0, |l| l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything throttled, by what it counts.
#[derive(Debug, Clone)]
pub struct Throttles {
    /// Sign-in attempts per account and IP: the strict limit, which no one else's guessing
    /// uses up.
    pub account_ip: Arc<Throttle>,
    /// Sign-in attempts per account from anywhere: five times looser, against guessing from
    /// many addresses (an attacker can make the owner wait, never for good).
    pub account: Arc<Throttle>,
    /// Sign-in attempts per client IP.
    pub signin_ip: Arc<Throttle>,
    /// Failed client authentications per client and IP (never per client alone: client ids
    /// are public, and anyone could keep a client out).
    pub client: Arc<Throttle>,
    /// Failed client authentications per client IP.
    pub client_ip: Arc<Throttle>,
    /// Sign-in links sent per address (per 15 minutes).
    pub magic_address: Arc<Throttle>,
    /// Sign-in links asked for per client IP (per hour).
    pub magic_ip: Arc<Throttle>,
}

impl Throttles {
    pub fn new(
        settings: &crate::config::ThrottleSettings,
        auth: &crate::config::AuthSettings,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        let t = |failures| Arc::new(Throttle::new(failures, settings.window, clock.clone()));
        Self {
            account_ip: t(settings.account_attempts),
            account: t(settings.account_attempts.saturating_mul(5)),
            signin_ip: t(settings.ip_attempts),
            client: t(settings.client_failures),
            client_ip: t(settings.client_ip_failures),
            magic_address: Arc::new(Throttle::new(
                auth.magic_links_per_address,
                15 * 60,
                clock.clone(),
            )),
            magic_ip: Arc::new(Throttle::new(auth.magic_links_per_ip, 3600, clock.clone())),
        }
    }

    pub fn prune(&self) {
        for t in [
            &self.account_ip,
            &self.magic_address,
            &self.magic_ip,
            &self.account,
            &self.signin_ip,
            &self.client,
            &self.client_ip,
        ] {
            t.prune();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn blocks_after_the_allowed_failures_and_lifts_by_itself() {
        let clock = ManualClock::default();
        let t = Throttle::new(3, 60, Arc::new(clock.clone()));
        for _ in 0..3 {
            assert_eq!(t.failed("alice"), None);
        }
        assert_eq!(t.blocked("alice"), None, "three failures are allowed");
        let refusal = t.failed("alice").expect("the fourth is one too many");
        assert!(refusal.newly);
        let wait = refusal.retry_after;
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(t.blocked("alice"), Some(wait));
        assert!(!t.failed("alice").unwrap().newly, "one block, audited once");
        assert_eq!(t.blocked("bob"), None, "per key");
        clock.advance(60);
        assert_eq!(t.blocked("alice"), None, "lifted after its time");
        for _ in 0..3 {
            assert_eq!(t.failed("alice"), None, "a full window later, fresh again");
        }
    }

    #[test]
    fn attempts_count_before_the_check_and_waits_round_up() {
        let clock = ManualClock::default();
        // 7 per 300 s: a cell every 42.86 s.
        let t = Throttle::new(7, 300, Arc::new(clock.clone()));
        for _ in 0..7 {
            assert!(t.attempt("k").is_ok());
        }
        let refusal = t.attempt("k").unwrap_err();
        assert_eq!(refusal.retry_after, 43, "rounded up, never early");
        clock.advance(42);
        assert!(t.attempt("k").is_err());
        clock.advance(1);
        assert!(t.attempt("k").is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            ip_key(Some("2001:db8:1:2:aaaa::1")),
            ip_key(Some("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            ip_key(Some("2001:db8:1:2::1")),
            ip_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(ip_key(Some("203.0.113.7")), "203.0.113.7");
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_keys() {
        let clock = ManualClock::default();
        let t = Throttle::with_max_keys(5, 300, Arc::new(clock.clone()), 1_000);
        for i in 0..20_000 {
            t.failed(&format!("user{i}"));
            assert!(t.len() <= 1_000, "{} keys after {i}", t.len());
        }
        clock.advance(301);
        t.prune();
        assert!(t.is_empty());
    }
}
