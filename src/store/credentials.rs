//! The repositories of what lets people in besides passwords: passkeys, invitations, emailed
//! links and codes, and the outbox that carries them.

use super::StoreResult;
use crate::clock::UnixTime;
use crate::domain::{
    EmailToken, Invitation, MagicLink, NewUser, OutboxMessage, PasskeyUse, StoredPasskey, User,
};
use async_trait::async_trait;

/// What removing a passkey came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    /// Refused: it is the user's last way to sign in (no other passkey, no password).
    Last,
}

#[async_trait]
pub trait PasskeyRepo: Send + Sync {
    /// The user's passkeys, oldest first.
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<StoredPasskey>>;
    async fn by_credential_id(&self, credential_id: &[u8]) -> StoreResult<Option<StoredPasskey>>;
    /// Stores a new passkey; `Conflict` when its credential id is registered (to anyone).
    async fn add(&self, passkey: &StoredPasskey) -> StoreResult<()>;
    /// Records a sign-in; false (and nothing written) when the stored counter is no longer
    /// `previous_count` or the passkey is gone.
    async fn record_use(&self, u: &PasskeyUse) -> StoreResult<bool>;
    /// `NotFound` unless the user has this passkey.
    async fn rename(&self, user_id: &str, id: &str, name: &str) -> StoreResult<()>;
    /// Removes it unless it is the user's last way to sign in, decided in the same write.
    async fn remove(&self, user_id: &str, id: &str) -> StoreResult<PasskeyRemoval>;
    /// The user's WebAuthn user handle, if they have one.
    async fn user_handle(&self, user_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Gives the user `candidate` as handle unless they have one; returns the handle they have.
    async fn ensure_user_handle(&self, user_id: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
    /// The id of the user with this handle.
    async fn user_for_handle(&self, handle: &[u8]) -> StoreResult<Option<String>>;
}

#[async_trait]
pub trait InvitationRepo: Send + Sync {
    /// Stores an invitation with the hash of its token; `Conflict` when the id or hash exists.
    async fn create(&self, invitation: &Invitation, token_hash: &str) -> StoreResult<()>;
    async fn get(&self, id: &str) -> StoreResult<Option<Invitation>>;
    /// The invitation a link's token stands for (by the token's hash).
    async fn by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Invitation>>;
    /// Newest first.
    async fn list(&self) -> StoreResult<Vec<Invitation>>;
    /// Revokes it (an earlier revocation time is kept); `NotFound` when there is none.
    async fn revoke(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    /// Gives a pending invitation a new token (the old link stops working) and records whether
    /// the new link goes out by email. `Ok(false)` (nothing written) when it is not pending
    /// (expired, revoked, used up); `NotFound` when there is no such invitation.
    async fn reissue(
        &self,
        id: &str,
        token_hash: &str,
        emailed: bool,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Revokes every unrevoked invitation made by `created_by`; returns how many.
    async fn revoke_created_by(&self, created_by: &str, now: UnixTime) -> StoreResult<u64>;
    /// Creates the invitee's account in one write: consumes one use of the pending invitation
    /// whose token hashes to `token_hash`, creates the user with their WebAuthn handle, joins
    /// the invitation's groups (created when missing) and stores their first passkey. `None`
    /// (and nothing written) when the invitation is not pending (expired, revoked, used up,
    /// unknown); `Conflict` (and nothing written) when the username, email or credential is
    /// taken.
    async fn redeem(
        &self,
        token_hash: &str,
        r: &Redemption,
        now: UnixTime,
    ) -> StoreResult<Option<User>>;
}

/// The account an invitation creates.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub user: NewUser,
    pub email_verified: bool,
    pub groups: Vec<String>,
    pub user_handle: Vec<u8>,
    /// Its `user_id` is ignored: the new user's id is used.
    pub passkey: StoredPasskey,
}

/// Links sent by email for one account (verify, change, recovery).
#[async_trait]
pub trait EmailTokenRepo: Send + Sync {
    async fn create(&self, token: &EmailToken) -> StoreResult<()>;
    async fn by_token_hash(&self, token_hash: &str) -> StoreResult<Option<EmailToken>>;
    /// Uses it up: true for exactly one caller, while it is live and open (`not_before` passed).
    async fn consume(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Cancels it unless used; true when it was live.
    async fn cancel(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
}

/// Emailed sign-in links.
#[async_trait]
pub trait MagicLinkRepo: Send + Sync {
    async fn create(&self, link: &MagicLink) -> StoreResult<()>;
    async fn by_token_hash(&self, token_hash: &str) -> StoreResult<Option<MagicLink>>;
    /// Gives the link a (new) one-time code.
    async fn set_code(&self, id: &str, code_hash: &str) -> StoreResult<()>;
    /// Uses the link up: true for exactly one caller, while it is unused and unexpired.
    async fn consume(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Unused, unexpired links requested from the browser with this binding that have a code,
    /// newest first.
    async fn with_code(&self, binding_hash: &str, now: UnixTime) -> StoreResult<Vec<MagicLink>>;
    /// Counts a wrong code; at `max_tries` the link dies. Returns the tries so far.
    async fn wrong_code(&self, id: &str, max_tries: u32, now: UnixTime) -> StoreResult<u32>;
}

/// The mail outbox.
#[async_trait]
pub trait OutboxRepo: Send + Sync {
    async fn enqueue(&self, message: &OutboxMessage) -> StoreResult<()>;
    /// Messages due at `now` (not sent, not given up), oldest first.
    async fn due(&self, now: UnixTime, limit: u32) -> StoreResult<Vec<OutboxMessage>>;
    /// Marks it sent and drops its body.
    async fn sent(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    /// Records a failed attempt; `give_up` marks it failed for good (and drops its body),
    /// otherwise it is tried again at `next_attempt_at`.
    async fn failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: UnixTime,
        give_up: bool,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Messages waiting to be sent.
    async fn depth(&self) -> StoreResult<u64>;
}
