//! Plain domain types shared by the store, protocol and web layers. No I/O here.

mod client;
mod grant;
mod invitation;
mod user;

pub use client::{Client, ClientKind, GrantType, NewClient, SigningAlg};
pub use grant::{
    AccessToken, AuditEvent, AuthCode, Grant, RequestedClaims, StoredToken, TokenKind,
};
pub use invitation::{Invitation, InvitationStatus};
pub use user::{Address, NewUser, Profile, User};

/// Scopes Keyway understands. Others in a request are ignored (RFC 6749 §3.3 lets us narrow).
pub const OIDC_SCOPES: [&str; 7] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "groups",
    "offline_access",
];

/// A space-separated scope string as a sorted, de-duplicated list.
pub fn parse_scope(scope: &str) -> Vec<String> {
    let mut v: Vec<String> = scope.split_ascii_whitespace().map(str::to_owned).collect();
    v.sort();
    v.dedup();
    v
}

pub fn join_scope(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// Who sent a request, for audit records: the client IP and the User-Agent (cut to 256 chars).
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// How a user proved who they are, as OIDC `amr` values (RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// Password (`pwd`).
    Pwd,
}

impl AuthMethod {
    pub fn amr(self) -> &'static str {
        match self {
            AuthMethod::Pwd => "pwd",
        }
    }

    /// The method's name in audit records.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Pwd => "password",
        }
    }
}
