//! Plain domain types shared by the store, protocol and web layers. No I/O here.

mod client;
mod email_token;
mod grant;
mod invitation;
mod magic_link;
mod mail;
mod passkey;
mod user;

pub use client::{Client, ClientKind, ClientLifetimes, GrantType, NewClient, SigningAlg};
pub use email_token::{EmailPurpose, EmailToken};
pub use grant::{
    AccessToken, AuditEvent, AuthCode, Grant, RequestedClaims, StoredToken, TokenKind,
};
pub use invitation::{Invitation, InvitationStatus};
pub use magic_link::MagicLink;
pub use mail::OutboxMessage;
pub use passkey::{MAX_PASSKEY_NAME, PasskeyUse, StoredPasskey, clean_passkey_name};
pub use user::{Address, NewUser, Profile, User};

/// The built-in group of administrators, in the `groups` claim: a reserved group name.
pub const ADMIN_GROUP: &str = "admin";
/// The admin UI's own client (a public client made at start; see web::admin::rp).
pub const ADMIN_CLIENT_ID: &str = "keyway-admin";

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

/// `acr` of a phishing-resistant sign-in (OpenID EAP ACR Values): a passkey.
pub const ACR_PHR: &str = "phr";
/// `acr` of every other sign-in (a password today): Keyway's documented lower level.
pub const ACR_BASIC: &str = "1";

/// The `acr` that a sign-in with these `amr` values (space-separated) reached.
pub fn acr_for(amr: &str) -> &'static str {
    let phr = amr
        .split_ascii_whitespace()
        .any(|m| matches!(m, "hwk" | "swk"));
    if phr { ACR_PHR } else { ACR_BASIC }
}

/// Whether a sign-in with these `amr` values came by emailed link (or its code).
pub fn by_email(amr: &str) -> bool {
    amr.split_ascii_whitespace()
        .any(|m| matches!(m, "email" | "otp"))
}

/// How a user proved who they are, as OIDC `amr` values (RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// Password (`pwd`).
    Pwd,
    /// A passkey kept in hardware, bound to one device (`hwk`).
    Hwk,
    /// A passkey kept in software, synced between devices (`swk`).
    Swk,
    /// The authenticator verified the user, by PIN or biometrics (`user`).
    User,
    /// An emailed sign-in link (`email`: RFC 8176 has no value for it; documented).
    Email,
    /// The one-time code shown when that link was opened elsewhere (`otp`).
    Otp,
}

impl AuthMethod {
    pub fn amr(self) -> &'static str {
        match self {
            AuthMethod::Pwd => "pwd",
            AuthMethod::Hwk => "hwk",
            AuthMethod::Swk => "swk",
            AuthMethod::User => "user",
            AuthMethod::Email => "email",
            AuthMethod::Otp => "otp",
        }
    }

    /// The method's name in audit records.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Pwd => "password",
            AuthMethod::Hwk | AuthMethod::Swk => "passkey",
            AuthMethod::User => "user verification",
            AuthMethod::Email => "email link",
            AuthMethod::Otp => "one-time code",
        }
    }

    /// Whether this method resists phishing (a passkey is bound to its relying party).
    pub fn phishing_resistant(self) -> bool {
        matches!(self, AuthMethod::Hwk | AuthMethod::Swk)
    }
}
