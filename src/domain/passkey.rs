//! Passkeys as stored: a WebAuthn credential registered to one user.

use crate::clock::UnixTime;

#[derive(Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: String,
    pub user_id: String,
    /// The WebAuthn credential id, unique across all users.
    pub credential_id: Vec<u8>,
    /// Shown on the account page; the user may change it.
    pub name: String,
    /// The authenticator model's AAGUID (hex), when it told us one.
    pub aaguid: Option<String>,
    /// The verified credential (public key, counter, flags) as the WebAuthn library keeps it.
    pub passkey_json: String,
    /// The signature counter last seen (0 for authenticators without one).
    pub sign_count: u32,
    /// The credential may be synced to other devices (WebAuthn BE flag).
    pub backup_eligible: bool,
    /// The credential is backed up now (WebAuthn BS flag).
    pub backup_state: bool,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl std::fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("sign_count", &self.sign_count)
            .finish_non_exhaustive()
    }
}

/// What one successful passkey sign-in changes on the stored credential.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    pub id: String,
    /// The counter the sign-in verified against: the update applies only if it is still stored
    /// (two sign-ins racing with one counter value cannot both win).
    pub previous_count: u32,
    pub sign_count: u32,
    pub backup_state: bool,
    pub passkey_json: String,
    pub at: UnixTime,
}

/// Longest passkey name.
pub const MAX_PASSKEY_NAME: usize = 64;

/// A passkey name as given by a user: trimmed, non-empty, no control characters, at most
/// `MAX_PASSKEY_NAME` characters.
pub fn clean_passkey_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the passkey a name.".into());
    }
    if name.chars().count() > MAX_PASSKEY_NAME {
        return Err(format!(
            "A passkey name has at most {MAX_PASSKEY_NAME} characters."
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("A passkey name cannot contain control characters.".into());
    }
    Ok(name.to_owned())
}
