//! Emailed sign-in links.

use crate::clock::UnixTime;

/// A sign-in link as stored: only hashes of its token, of the requesting browser's binding
/// value and of its one-time code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicLink {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    /// SHA-256 of the random value in the requesting browser's cookie.
    pub binding_hash: String,
    /// The authorization request waiting in the requesting browser, if any.
    pub request_id: Option<String>,
    /// MAC of the one-time code shown when the link is opened in another browser.
    pub code_hash: Option<String>,
    pub code_tries: u32,
    pub requested_ip: Option<String>,
    pub requested_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

impl MagicLink {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}
