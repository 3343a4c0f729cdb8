//! `Cached`: the user, client, token and session repositories of any backend, with reads served
//! from memory while the `ChangeFeed` says nothing changed.

use super::{ChangeFeed, Generations, KINDS, Kind, TtlCache};
use crate::clock::{Clock, UnixTime};
use crate::domain::{Client, Grant, NewClient, NewUser, StoredToken, TokenKind, User};
use crate::store::{
    ClientRepo, Issued, RefreshRotation, SessionRepo, StoreResult, TokenRepo, UserRepo,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How long an unused entry holds memory. Staleness is the feed's job, not the TTL's.
const TTL: i64 = 60;

pub struct Cached {
    users: Arc<dyn UserRepo>,
    clients: Arc<dyn ClientRepo>,
    tokens: Arc<dyn TokenRepo>,
    sessions: Arc<dyn SessionRepo>,
    feed: Arc<dyn ChangeFeed>,
    /// The generations this process last acted on.
    seen: [AtomicU64; KINDS],
    user_cache: TtlCache<User>,
    client_cache: TtlCache<Client>,
    token_cache: TtlCache<StoredToken>,
    session_cache: TtlCache<(Vec<u8>, UnixTime)>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").finish_non_exhaustive()
    }
}

impl Cached {
    pub fn new(
        users: Arc<dyn UserRepo>,
        clients: Arc<dyn ClientRepo>,
        tokens: Arc<dyn TokenRepo>,
        sessions: Arc<dyn SessionRepo>,
        feed: Arc<dyn ChangeFeed>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let start: Generations = feed.current().unwrap_or_default();
        Self {
            users,
            clients,
            tokens,
            sessions,
            feed,
            seen: start.map(AtomicU64::new),
            // Sized for the hot set (clients, active users, sessions in use, tokens just
            // issued), not for every row: memory stays flat under load.
            user_cache: TtlCache::new(TTL, 4096, clock.clone()),
            client_cache: TtlCache::new(TTL, 1024, clock.clone()),
            token_cache: TtlCache::new(TTL, 2048, clock.clone()),
            session_cache: TtlCache::new(TTL, 2048, clock),
        }
    }

    fn clear(&self, kind: Kind) {
        match kind {
            Kind::Users => self.user_cache.clear(),
            Kind::Clients => self.client_cache.clear(),
            Kind::Tokens => self.token_cache.clear(),
            Kind::Sessions => self.session_cache.clear(),
        }
    }

    /// Drops `kind`'s entries if any process changed such rows since this one last looked.
    fn sync(&self, kind: Kind) {
        let i = kind as usize;
        match self.feed.current() {
            Some(g) => {
                if self.seen[i].swap(g[i], Ordering::SeqCst) != g[i] {
                    self.clear(kind);
                }
            }
            None => self.clear(kind),
        }
    }

    /// After a committed write that makes cached rows of `kind` stale.
    fn changed(&self, kind: Kind) {
        self.clear(kind);
        self.feed.publish(kind);
    }
}

#[async_trait]
impl UserRepo for Cached {
    async fn create(&self, user: &NewUser, now: UnixTime) -> StoreResult<User> {
        // Only found users are cached, so a new one makes nothing stale.
        self.users.create(user, now).await
    }

    async fn by_id(&self, id: &str) -> StoreResult<Option<User>> {
        self.sync(Kind::Users);
        if let Some(user) = self.user_cache.get(id) {
            return Ok(Some(user));
        }
        let epoch = self.user_cache.epoch();
        let user = self.users.by_id(id).await?;
        if let Some(u) = &user {
            self.user_cache.put_read(id, u.clone(), epoch);
        }
        Ok(user)
    }

    async fn by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.users.by_username(username).await
    }

    async fn by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.users.by_email(email).await
    }

    async fn list(&self) -> StoreResult<Vec<User>> {
        self.users.list().await
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: UnixTime) -> StoreResult<()> {
        let result = self.users.set_disabled(id, disabled, now).await;
        self.changed(Kind::Users);
        result
    }

    async fn update(&self, user: &User, now: UnixTime) -> StoreResult<User> {
        let result = self.users.update(user, now).await;
        self.changed(Kind::Users);
        result
    }

    async fn set_admin(&self, id: &str, is_admin: bool, now: UnixTime) -> StoreResult<bool> {
        let result = self.users.set_admin(id, is_admin, now).await;
        self.changed(Kind::Users);
        result
    }

    async fn disable_keeping_an_admin(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let result = self.users.disable_keeping_an_admin(id, now).await;
        self.changed(Kind::Users);
        result
    }

    async fn delete(&self, id: &str) -> StoreResult<bool> {
        let result = self.users.delete(id).await;
        for kind in [Kind::Users, Kind::Tokens, Kind::Sessions] {
            self.changed(kind);
        }
        result
    }

    async fn count_active_admins(&self) -> StoreResult<u64> {
        self.users.count_active_admins().await
    }
}

#[async_trait]
impl ClientRepo for Cached {
    async fn set_allowed_groups(&self, id: &str, group_ids: &[String]) -> StoreResult<()> {
        let result = self.clients.set_allowed_groups(id, group_ids).await;
        self.changed(Kind::Clients);
        result
    }

    async fn create(&self, client: &NewClient, now: UnixTime) -> StoreResult<Client> {
        self.clients.create(client, now).await
    }

    async fn update(&self, client: &Client) -> StoreResult<()> {
        let result = self.clients.update(client).await;
        self.changed(Kind::Clients);
        result
    }

    async fn set_secret(
        &self,
        id: &str,
        expected: Option<&str>,
        secret_hash: Option<&str>,
        previous: Option<(String, UnixTime)>,
    ) -> StoreResult<bool> {
        let result = self
            .clients
            .set_secret(id, expected, secret_hash, previous)
            .await;
        self.changed(Kind::Clients);
        result
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Client>> {
        self.sync(Kind::Clients);
        if let Some(client) = self.client_cache.get(id) {
            return Ok(Some(client));
        }
        let epoch = self.client_cache.epoch();
        let client = self.clients.get(id).await?;
        if let Some(c) = &client {
            self.client_cache.put_read(id, c.clone(), epoch);
        }
        Ok(client)
    }

    async fn list(&self) -> StoreResult<Vec<Client>> {
        self.clients.list().await
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let result = self.clients.delete(id).await;
        self.changed(Kind::Clients);
        self.changed(Kind::Tokens);
        result
    }
}

#[async_trait]
impl TokenRepo for Cached {
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()> {
        self.tokens.create_grant(grant).await
    }

    async fn save_issued(&self, issued: Issued) -> StoreResult<()> {
        // Access tokens for users are looked up right away (UserInfo): keep them at hand.
        let keep: Vec<StoredToken> = issued
            .tokens
            .iter()
            .filter(|t| t.kind == TokenKind::Access && t.user_id.is_some())
            .cloned()
            .collect();
        let epoch = self.token_cache.epoch();
        self.tokens.save_issued(issued).await?;
        for t in keep {
            self.token_cache.put_read(&t.token_hash.clone(), t, epoch);
        }
        Ok(())
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        self.tokens.grant(id).await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<(StoredToken, Grant)>> {
        self.tokens.refresh_token(token_hash).await
    }

    async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let result = self.tokens.revoke_grant(id, now).await;
        self.changed(Kind::Tokens);
        result
    }

    async fn insert_tokens(&self, tokens: &[StoredToken]) -> StoreResult<()> {
        self.tokens.insert_tokens(tokens).await
    }

    async fn token(&self, token_hash: &str) -> StoreResult<Option<StoredToken>> {
        self.sync(Kind::Tokens);
        if let Some(t) = self.token_cache.get(token_hash) {
            return Ok(Some(t));
        }
        let epoch = self.token_cache.epoch();
        let token = self.tokens.token(token_hash).await?;
        if let Some(t) = &token {
            self.token_cache.put_read(token_hash, t.clone(), epoch);
        }
        Ok(token)
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
        now: UnixTime,
        grace: i64,
        issued: Issued,
    ) -> StoreResult<RefreshRotation> {
        // The rotation itself reads the database; what changes is the token's consumed_at,
        // which another process's copy (introspection) must not miss.
        let result = self
            .tokens
            .rotate_refresh(token_hash, client_id, now, grace, issued)
            .await;
        if matches!(result, Ok(RefreshRotation::Rotated { .. })) {
            self.changed(Kind::Tokens);
        }
        result
    }

    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
        let result = self.tokens.revoke_token(token_hash, now).await;
        self.changed(Kind::Tokens);
        result
    }

    async fn revoke_user_grants(&self, user_id: &str, now: UnixTime) -> StoreResult<u64> {
        let result = self.tokens.revoke_user_grants(user_id, now).await;
        self.changed(Kind::Tokens);
        result
    }

    async fn cap_refresh_grants(
        &self,
        client_id: &str,
        user_id: &str,
        cap: u32,
        now: UnixTime,
    ) -> StoreResult<()> {
        let result = self
            .tokens
            .cap_refresh_grants(client_id, user_id, cap, now)
            .await;
        self.changed(Kind::Tokens);
        result
    }
}

#[async_trait]
impl SessionRepo for Cached {
    async fn create(
        &self,
        id: &str,
        user_id: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        let epoch = self.session_cache.epoch();
        let created = self.sessions.create(id, user_id, data, expires_at).await?;
        if created {
            self.session_cache
                .put_read(id, (data.to_vec(), expires_at), epoch);
        }
        Ok(created)
    }

    async fn save(
        &self,
        id: &str,
        user_id: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        // Saves of one session are not ordered against each other here, so the entry is dropped
        // first and written only if nothing else touched the cache meanwhile.
        self.session_cache.forget(id);
        self.sessions.save(id, user_id, data, expires_at).await?;
        // Another process serving the same browser must not keep the old contents.
        self.changed(Kind::Sessions);
        Ok(())
    }

    async fn load(&self, id: &str, now: UnixTime) -> StoreResult<Option<(Vec<u8>, UnixTime)>> {
        self.sync(Kind::Sessions);
        if let Some((data, expires_at)) = self.session_cache.get(id) {
            return Ok((expires_at > now).then_some((data, expires_at)));
        }
        let epoch = self.session_cache.epoch();
        let row = self.sessions.load(id, now).await?;
        if let Some(r) = &row {
            self.session_cache.put_read(id, r.clone(), epoch);
        }
        Ok(row)
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let result = self.sessions.delete(id).await;
        self.changed(Kind::Sessions);
        result
    }

    async fn list_for_user(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.sessions.list_for_user(user_id, now).await
    }

    async fn delete_for_user(&self, user_id: &str, id: &str) -> StoreResult<()> {
        let result = self.sessions.delete_for_user(user_id, id).await;
        self.changed(Kind::Sessions);
        result
    }

    async fn delete_all_for_user(&self, user_id: &str) -> StoreResult<u64> {
        let result = self.sessions.delete_all_for_user(user_id).await;
        self.changed(Kind::Sessions);
        result
    }

    async fn count_signed_in(&self, now: UnixTime) -> StoreResult<u64> {
        self.sessions.count_signed_in(now).await
    }
}
