//! Mail waiting in the outbox.

use crate::clock::UnixTime;

/// A message in the outbox. Its body is sealed with the instance's key while it waits (it can
/// hold a sign-in link) and dropped once sent.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Ordered by creation.
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub sealed_body: Vec<u8>,
    /// What it is, for logs and the audit (`magic_link`, `invitation`...).
    pub kind: String,
    pub user_id: Option<String>,
    pub created_at: UnixTime,
    /// Deliveries tried so far.
    pub attempts: u32,
    pub next_attempt_at: UnixTime,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}
