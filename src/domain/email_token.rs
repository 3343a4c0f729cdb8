//! Links sent by email for one account.

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    /// Proves the account's address.
    Verify,
    /// Moves the account to a new address (the link went to the new one).
    Change,
    /// Lets someone who lost every passkey register a new one, after a cooling-off period.
    Recovery,
}

impl EmailPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailPurpose::Verify => "verify",
            EmailPurpose::Change => "change",
            EmailPurpose::Recovery => "recovery",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Verify, Self::Change, Self::Recovery]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailToken {
    pub id: String,
    pub token_hash: String,
    pub purpose: EmailPurpose,
    pub user_id: String,
    /// Where the link went (for a change, the new address).
    pub email: String,
    pub created_at: UnixTime,
    /// It opens no earlier than this.
    pub not_before: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
    pub cancelled_at: Option<UnixTime>,
}

impl EmailToken {
    /// Neither used, cancelled nor expired (it may still wait for `not_before`).
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.used_at.is_none() && self.cancelled_at.is_none() && self.expires_at > now
    }
}
