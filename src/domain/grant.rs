//! Authorization codes, grants (one user's authorization of one client) and the tokens issued
//! under them, plus audit events.

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};

/// What an authorization code stands for. Nothing is stored: the code is this, sealed
/// (AES-256-GCM) under a key only the server holds; see `oidc::codes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    /// The grant the code's tokens will belong to, fixed at issue so that a replayed code can
    /// revoke everything issued from its first use.
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: UnixTime,
    /// Space-separated `amr` values.
    pub amr: String,
    pub sid: String,
    pub expires_at: UnixTime,
    pub created_at: UnixTime,
    /// What the `claims` request parameter asked for (codes sealed before it existed lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<RequestedClaims>,
}

/// Individual claims a client asked for with the `claims` request parameter (OIDC Core §5.5),
/// kept with the grant: those it may have, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedClaims {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token: Vec<String>,
}

impl RequestedClaims {
    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty()
    }
}

/// One user's authorization of one client, created when a code is redeemed.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: UnixTime,
    pub amr: String,
    pub sid: String,
    pub created_at: UnixTime,
    /// The refresh chain ends here whatever the idle lifetime says.
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// Claims asked for with the `claims` request parameter, for every token of the grant.
    pub claims: Option<RequestedClaims>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(Self::Access),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// An access or refresh token as stored: only its hash.
#[derive(Clone)]
pub struct StoredToken {
    pub token_hash: String,
    pub kind: TokenKind,
    /// `None` for client_credentials tokens, which belong to no user.
    pub grant_id: Option<String>,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Set when a refresh token has been exchanged (rotated).
    pub consumed_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    /// An access token's grant's requested claims (UserInfo reads them without the grant).
    pub claims: Option<RequestedClaims>,
    /// For a refresh token issued by rotation: the hash of the refresh token it replaced.
    pub parent: Option<String>,
}

/// The hash is left out: with it, a copy of a log would find the row.
impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("kind", &self.kind)
            .field("grant_id", &self.grant_id)
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("consumed_at", &self.consumed_at)
            .field("revoked_at", &self.revoked_at)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl StoredToken {
    pub fn is_active(&self, now: UnixTime) -> bool {
        self.expires_at > now && self.consumed_at.is_none() && self.revoked_at.is_none()
    }
}

/// A freshly minted access token, returned once to the client.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub at: UnixTime,
    /// e.g. `signin`, `signin_failed`, `consent`, `token`, `refresh_replay`, `logout`.
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token_hash() {
        let t = StoredToken {
            token_hash: "secret-hash-value".into(),
            kind: TokenKind::Access,
            grant_id: None,
            client_id: "c".into(),
            user_id: None,
            scope: "openid".into(),
            created_at: 1,
            expires_at: 2,
            consumed_at: None,
            revoked_at: None,
            claims: None,
            parent: None,
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret-hash-value"), "{shown}");
        assert!(shown.contains("openid"), "{shown}");
    }
}
