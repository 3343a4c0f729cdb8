//! Invitations: links that let someone create their account.

use crate::clock::UnixTime;
use serde::Serialize;

/// An invitation as stored (its token exists only in the link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub id: String,
    /// Proposed username (the invitee may change it unless the invitation fixes it).
    pub username: Option<String>,
    /// When set, the account gets this email, fixed.
    pub email: Option<String>,
    pub name: Option<String>,
    /// Names of the groups the new account joins.
    pub groups: Vec<String>,
    pub is_admin: bool,
    /// Accounts it may create.
    pub uses: u32,
    /// Accounts created with it so far.
    pub used: u32,
    /// `cli`, or the id of the administrator who made it.
    pub created_by: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// The link went out by email: redeeming it proves the address.
    pub emailed: bool,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    UsedUp,
    Expired,
    Revoked,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::UsedUp => "used up",
            InvitationStatus::Expired => "expired",
            InvitationStatus::Revoked => "revoked",
        }
    }
}

impl Invitation {
    pub fn status(&self, now: UnixTime) -> InvitationStatus {
        if self.revoked_at.is_some() {
            InvitationStatus::Revoked
        } else if self.used >= self.uses {
            InvitationStatus::UsedUp
        } else if self.expires_at <= now {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        }
    }

    pub fn uses_left(&self) -> u32 {
        self.uses.saturating_sub(self.used)
    }
}
