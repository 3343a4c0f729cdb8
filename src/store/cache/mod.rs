//! The cache layer over the repository traits, for the rows read on nearly every request
//! (clients, users, sessions, tokens). Backend-neutral: it wraps any backend's repositories.
//!
//! It sees every process's changes on the very next read. A backend supplies a `ChangeFeed`:
//! every write that makes cached rows stale (disable a user, delete a client, revoke a token,
//! end a session) publishes a new generation for that kind of row, and every cached read first
//! compares the generations with the last ones it saw, dropping a kind's entries when its
//! generation moved. Entries expire on the injected clock; the limit only bounds memory.
//!
//! SQLite's feed is a small shared file (`sqlite/changes.rs`). PostgreSQL's will be
//! LISTEN/NOTIFY: `publish` sends a NOTIFY per kind after the commit, and a listening
//! connection bumps in-memory generations that `current` reads without a round trip.

mod repos;
mod ttl;

pub use repos::Cached;
pub use ttl::TtlCache;

/// The kinds of cached rows, each with its own generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users = 0,
    Clients = 1,
    Tokens = 2,
    Sessions = 3,
}

pub const KINDS: usize = 4;

/// One generation per kind. Values are opaque: only a change means something.
pub type Generations = [u64; KINDS];

/// How a backend tells every process that rows changed.
pub trait ChangeFeed: Send + Sync {
    /// The current generations. Called on every cached read, so it must be cheap. `None` when
    /// they cannot be read: the caller then trusts nothing it cached.
    fn current(&self) -> Option<Generations>;
    /// Announces that rows of `kind` changed (after the change is committed).
    fn publish(&self, kind: Kind);
}
