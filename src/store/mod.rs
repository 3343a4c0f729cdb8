//! Repository traits, one per aggregate, used everywhere as `Arc<dyn ...>`. SQL lives only in the
//! backends below (`sqlite` today; PostgreSQL later, without touching other layers).

pub mod cache;
#[cfg(test)]
mod contract;
mod credentials;
pub mod sqlite;

pub use credentials::{
    EmailTokenRepo, InvitationRepo, MagicLinkRepo, OutboxRepo, PasskeyRemoval, PasskeyRepo,
    Redemption,
};

use crate::clock::{Clock, UnixTime};
use crate::domain::{AuditEvent, Client, Grant, NewClient, NewUser, StoredToken, User};
use async_trait::async_trait;
use std::sync::Arc;

/// The store's answers besides success. `Conflict` and `NotFound` are answers to the caller's
/// request (a taken username, a missing row), never failures of the database; only `Backend` is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint said no: the message names what already exists, with its value
    /// (e.g. `username "alice"`).
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The database cannot be reached or written right now (locked by another process beyond
    /// the busy timeout, disk full, read-only, I/O error): worth retrying soon.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    #[error("database error: {0}")]
    Backend(#[source] anyhow::Error),
}

/// The unique constraints of the schema, named alike by every backend, so that a conflict is
/// reported by what it is rather than by a database's message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    UserId,
    Username,
    Email,
    GroupId,
    GroupName,
    ClientId,
    GrantId,
    TokenHash,
    Kid,
    SessionId,
    CredentialId,
    UserHandle,
}

impl Unique {
    /// What the constraint keeps unique, for messages: `username "alice"`.
    pub fn noun(self) -> &'static str {
        match self {
            Unique::UserId => "user",
            Unique::Username => "username",
            Unique::Email => "email",
            Unique::GroupId => "group",
            Unique::GroupName => "group name",
            Unique::ClientId => "client",
            Unique::GrantId => "grant",
            Unique::TokenHash => "token",
            Unique::Kid => "signing key",
            Unique::SessionId => "session",
            Unique::CredentialId => "passkey",
            Unique::UserHandle => "passkey user handle",
        }
    }

    pub fn conflict(self, value: &str) -> StoreError {
        StoreError::Conflict(format!("{} {value:?}", self.noun()))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait UserRepo: Send + Sync {
    async fn create(&self, user: &NewUser, now: UnixTime) -> StoreResult<User>;
    async fn by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive.
    async fn by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive.
    async fn by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn list(&self) -> StoreResult<Vec<User>>;
    async fn set_disabled(&self, id: &str, disabled: bool, now: UnixTime) -> StoreResult<()>;
    /// Writes the user's email, email_verified, name, profile and security_notices (the rest is
    /// left alone) and
    /// sets `updated_at`; returns the user as stored. `Conflict` when the email is taken.
    async fn update(&self, user: &User, now: UnixTime) -> StoreResult<User>;
    async fn count_active_admins(&self) -> StoreResult<u64>;
    /// Sets or clears the admin flag. Clearing it is refused (`Ok(false)`, nothing written) when
    /// it would leave no active administrator, decided in the same statement; `NotFound` when
    /// there is no such user.
    async fn set_admin(&self, id: &str, is_admin: bool, now: UnixTime) -> StoreResult<bool>;
    /// Disables the user unless they are the last active administrator (`Ok(false)`, nothing
    /// written), decided in the same statement; `NotFound` when there is no such user.
    async fn disable_keeping_an_admin(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Deletes the user and everything of theirs (sessions, grants and tokens, passkeys,
    /// password, memberships, links); refused (`Ok(false)`) when they are the last active
    /// administrator; `NotFound` when there is no such user. Audit events stay.
    async fn delete(&self, id: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait PasswordRepo: Send + Sync {
    /// The argon2id PHC string for the user, if they have a password.
    async fn get(&self, user_id: &str) -> StoreResult<Option<String>>;
    async fn set(&self, user_id: &str, phc: &str, now: UnixTime) -> StoreResult<()>;
    /// Removes the user's password unless it is their last way to sign in (no passkey):
    /// decided in the same write. False when refused (or there was none).
    async fn remove_unless_last(&self, user_id: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait GroupRepo: Send + Sync {
    async fn create(&self, name: &str, now: UnixTime) -> StoreResult<String>;
    async fn add_member(&self, group_id: &str, user_id: &str) -> StoreResult<()>;
    /// Names of the user's groups, sorted.
    async fn names_for_user(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Ids of the user's groups.
    async fn ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Every group with its member count, by name.
    async fn list(&self) -> StoreResult<Vec<GroupInfo>>;
    async fn get(&self, id: &str) -> StoreResult<Option<GroupInfo>>;
    /// `Conflict` when the name is taken; `NotFound` when there is no such group.
    async fn rename(&self, id: &str, name: &str) -> StoreResult<()>;
    /// Deletes the group (its memberships go with it); `NotFound` when there is none.
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// The members' user ids.
    async fn member_ids(&self, id: &str) -> StoreResult<Vec<String>>;
    async fn remove_member(&self, group_id: &str, user_id: &str) -> StoreResult<()>;
}

/// A group and how many members it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
    pub members: u64,
}

#[async_trait]
pub trait ClientRepo: Send + Sync {
    async fn create(&self, client: &NewClient, now: UnixTime) -> StoreResult<Client>;
    async fn get(&self, id: &str) -> StoreResult<Option<Client>>;
    async fn list(&self) -> StoreResult<Vec<Client>>;
    /// Deleting a client deletes its grants, tokens and consents.
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// Restricts sign-ins to members of these groups (ids); empty: everyone.
    async fn set_allowed_groups(&self, id: &str, group_ids: &[String]) -> StoreResult<()>;
    /// Writes every setting of `client` (found by its id), but not its secrets (`set_secret`),
    /// its allowed groups (`set_allowed_groups`) nor its creation time.
    async fn update(&self, client: &Client) -> StoreResult<()>;
    /// Replaces the client's secret (hash; `None`: public) and the one being rotated out, if
    /// its current secret is still `expected`: `Ok(false)` (nothing written) when another
    /// change came first, so a secret just shown to someone is never silently overwritten.
    async fn set_secret(
        &self,
        id: &str,
        expected: Option<&str>,
        secret_hash: Option<&str>,
        previous: Option<(String, UnixTime)>,
    ) -> StoreResult<bool>;
}

/// What presenting a refresh token came to (see `TokenRepo::rotate_refresh`).
#[derive(Debug)]
pub enum RefreshRotation {
    /// The token pair was written: the presented token was live and is now consumed, or
    /// (`grace`) it had been rotated within the grace window and none of its successors has
    /// been used yet.
    Rotated { grace: bool },
    /// Presented again after its rotation outside the grace, or after a successor was used, or
    /// revoked, or a token whose sibling (same parent) was used: a replay.
    Replayed(Box<StoredToken>),
    /// No live refresh token of this hash for this client (unknown, expired, or another
    /// client's, which is left untouched).
    Unknown,
}

/// Everything one token response writes, committed together.
#[derive(Debug, Default)]
pub struct Issued {
    /// A new grant (code exchange); `None` when refreshing or for client credentials.
    pub grant: Option<Grant>,
    pub tokens: Vec<StoredToken>,
    pub audit: Option<AuditEvent>,
}

/// Grants and the tokens issued under them.
///
/// Contract (the store contract suite checks it for every backend): a second insert of a grant
/// id that exists already, alone or in `save_issued`, is `StoreError::Conflict` and writes
/// nothing of that request; this is what makes an authorization code single use.
#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Inserts a grant; `Conflict` when its id exists.
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()>;
    /// Writes a grant (if new), its tokens and the audit event atomically: all or nothing;
    /// `Conflict` when the grant id or a token hash exists.
    async fn save_issued(&self, issued: Issued) -> StoreResult<()>;
    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// A refresh token and its grant, read together from the database (never from a cache:
    /// the rotation itself decides on the stored state).
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<(StoredToken, Grant)>>;
    /// Revokes the grant and every token issued under it.
    async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    async fn insert_tokens(&self, tokens: &[StoredToken]) -> StoreResult<()>;
    async fn token(&self, token_hash: &str) -> StoreResult<Option<StoredToken>>;
    /// Exchanges a refresh token of `client_id` for the token pair in `issued`, in one commit:
    /// either the token is consumed and the pair written, or nothing is (a failed write uses up
    /// nothing, so the client's retry works). A token consumed at most `grace` seconds ago
    /// (`grace` > 0) whose children (tokens with it as `parent`) are all unused is exchanged
    /// again. A token whose sibling was already exchanged is a replay: the family forked.
    async fn rotate_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
        now: UnixTime,
        grace: i64,
        issued: Issued,
    ) -> StoreResult<RefreshRotation>;
    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()>;
    /// Revokes every grant of the user, with all their tokens; returns how many grants.
    async fn revoke_user_grants(&self, user_id: &str, now: UnixTime) -> StoreResult<u64>;
    /// Keeps at most `cap` grants with a live refresh token for this user and client, revoking
    /// the oldest grants beyond it.
    async fn cap_refresh_grants(
        &self,
        client_id: &str,
        user_id: &str,
        cap: u32,
        now: UnixTime,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait ConsentRepo: Send + Sync {
    /// The scopes this user has consented to for this client (space-separated), if any.
    async fn get(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>>;
    async fn put(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
}

/// A signing key as stored: the private half sealed with the instance's secret key.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: UnixTime,
    /// When it starts signing (published from `created_at`).
    pub activates_at: UnixTime,
    /// When it stops signing (published until the ID tokens it signed have expired).
    pub retired_at: Option<UnixTime>,
}

/// Where a key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signing.
    Current,
    /// No longer signing; published while its ID tokens may be alive.
    Retired,
}

impl StoredKey {
    pub fn state(&self, now: UnixTime) -> KeyState {
        if self.retired_at.is_some_and(|r| r <= now) {
            KeyState::Retired
        } else if self.activates_at > now {
            KeyState::Next
        } else {
            KeyState::Current
        }
    }
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retired => "retired",
        }
    }
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait KeyRepo: Send + Sync {
    /// All keys, oldest first.
    async fn list(&self) -> StoreResult<Vec<StoredKey>>;
    async fn insert(&self, key: &StoredKey) -> StoreResult<()>;
    /// Makes every key of `alg` except `keep_kid` stop signing by `at` (an earlier retirement
    /// is kept).
    async fn retire_others(&self, alg: &str, keep_kid: &str, at: UnixTime) -> StoreResult<()>;
    /// Deletes keys retired before `before`.
    async fn delete_retired_before(&self, before: UnixTime) -> StoreResult<u64>;
}

/// A session as the HTTP session layer stores it: opaque data plus its expiry.
///
/// `user_id` names the signed-in user, if any, so that a user's sessions can be listed and ended.
#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Inserts a new session; false if the id is taken.
    async fn create(
        &self,
        id: &str,
        user_id: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<bool>;
    async fn save(
        &self,
        id: &str,
        user_id: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<()>;
    /// The session's data and expiry; an expired session is `None`.
    async fn load(&self, id: &str, now: UnixTime) -> StoreResult<Option<(Vec<u8>, UnixTime)>>;
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// The user's unexpired sessions: (id, data).
    async fn list_for_user(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Deletes the user's session `id`; `NotFound` when the user has no such session.
    async fn delete_for_user(&self, user_id: &str, id: &str) -> StoreResult<()>;
    /// Deletes every session of the user; returns how many.
    async fn delete_all_for_user(&self, user_id: &str) -> StoreResult<u64>;
    /// How many unexpired sessions are signed in (belong to a user).
    async fn count_signed_in(&self, now: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait AuditRepo: Send + Sync {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first.
    async fn recent(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// The user's newest events of the kinds named in `events`, newest first.
    async fn recent_for_user(
        &self,
        user_id: &str,
        events: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// Events matching the filter, newest first, each with its position (for the next page:
    /// `before` = the last position seen).
    async fn search(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, AuditEvent)>>;
    /// Deletes the events older than `before`; returns how many.
    async fn purge_before(&self, before: UnixTime) -> StoreResult<u64>;
}

/// What the audit log is filtered by; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// An event name, or a family: `passkey` matches `passkey.register` too.
    pub event: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<UnixTime>,
    pub until: Option<UnixTime>,
}

/// Records audit events; a failure to record is logged, never shown to the user, and never
/// fails the action it describes.
#[derive(Clone)]
pub struct Auditor(pub Arc<dyn AuditRepo>);

impl Auditor {
    pub async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.0.record(&event).await {
            tracing::error!(error = %e, event = %event.event, "cannot write audit event");
        }
    }
}

#[async_trait]
pub trait MaintenanceRepo: Send + Sync {
    /// Deletes expired tokens, grants and sessions. Returns rows removed.
    async fn purge_expired(&self, now: UnixTime) -> StoreResult<u64>;
    /// Ok when the database can be written now (a small write that commits).
    async fn ping(&self) -> StoreResult<()>;
    async fn close(&self);
    /// The connections and the writer's queue now, for metrics.
    fn stats(&self) -> StoreStats;
}

/// How busy the database layer is (see `MaintenanceRepo::stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub read_connections: u32,
    pub read_idle: usize,
    /// Writes waiting for the one writer.
    pub write_queue: usize,
}

/// Every repository of one backend.
#[derive(Clone)]
pub struct Repos {
    pub users: Arc<dyn UserRepo>,
    pub passwords: Arc<dyn PasswordRepo>,
    pub groups: Arc<dyn GroupRepo>,
    pub clients: Arc<dyn ClientRepo>,
    pub tokens: Arc<dyn TokenRepo>,
    pub consents: Arc<dyn ConsentRepo>,
    pub keys: Arc<dyn KeyRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    pub audit: Arc<dyn AuditRepo>,
    pub invitations: Arc<dyn InvitationRepo>,
    pub passkeys: Arc<dyn PasskeyRepo>,
    pub outbox: Arc<dyn OutboxRepo>,
    pub magic_links: Arc<dyn MagicLinkRepo>,
    pub email_tokens: Arc<dyn EmailTokenRepo>,
    pub maintenance: Arc<dyn MaintenanceRepo>,
}

/// How a backend behaves under trouble.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// How long to wait for a database locked by someone else before `Unavailable`.
    pub busy_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: std::time::Duration::from_secs(1),
        }
    }
}

/// Whether the database named by `database_url` does not exist yet (or is empty).
pub fn is_missing_or_empty(database_url: &str) -> anyhow::Result<bool> {
    if database_url.starts_with("sqlite:") {
        sqlite::is_missing_or_empty(database_url)
    } else {
        anyhow::bail!("unsupported database (only sqlite: URLs are supported)")
    }
}

/// Opens the database named by `database_url`, creating and migrating it, with the cache layer
/// over the repositories read on every request. The only place that knows the backends.
pub async fn open(
    database_url: &str,
    clock: Arc<dyn Clock>,
    options: StoreOptions,
) -> anyhow::Result<Repos> {
    let (repos, feed) = backend(database_url, options).await?;
    let cached = Arc::new(cache::Cached::new(
        repos.users.clone(),
        repos.clients.clone(),
        repos.tokens.clone(),
        repos.sessions.clone(),
        feed,
        clock,
    ));
    Ok(Repos {
        users: cached.clone(),
        clients: cached.clone(),
        tokens: cached.clone(),
        sessions: cached,
        ..repos
    })
}

/// The backend's repositories alone, without the cache layer (the store contract suite).
pub async fn open_backend(database_url: &str, options: StoreOptions) -> anyhow::Result<Repos> {
    Ok(backend(database_url, options).await?.0)
}

async fn backend(
    database_url: &str,
    options: StoreOptions,
) -> anyhow::Result<(Repos, Arc<dyn cache::ChangeFeed>)> {
    if database_url.starts_with("sqlite:") {
        let store = Arc::new(sqlite::SqliteStore::open(database_url, options.busy_timeout).await?);
        let feed = Arc::new(store.change_feed());
        let repos = Repos {
            users: store.clone(),
            passwords: store.clone(),
            groups: store.clone(),
            clients: store.clone(),
            tokens: store.clone(),
            consents: store.clone(),
            keys: store.clone(),
            sessions: store.clone(),
            audit: store.clone(),
            invitations: store.clone(),
            passkeys: store.clone(),
            outbox: store.clone(),
            magic_links: store.clone(),
            email_tokens: store.clone(),
            maintenance: store,
        };
        Ok((repos, feed))
    } else {
        anyhow::bail!("unsupported database (only sqlite: URLs are supported)")
    }
}
