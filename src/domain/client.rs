//! Relying parties (OAuth clients).

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Holds a secret (client_secret_basic / client_secret_post).
    Confidential,
    /// Cannot keep a secret: PKCE required, no client authentication.
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A client's own token lifetimes in seconds; `None`: the server's (`lifetimes.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLifetimes {
    pub access_token: Option<u32>,
    /// Never longer than the server's `lifetimes.id_token`: retired keys stay published that long.
    pub id_token: Option<u32>,
    /// How long a refresh chain may live (the server's `lifetimes.refresh_token_absolute`).
    pub refresh_token: Option<u32>,
}

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the secret; `None` for public clients.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes this client may ask for.
    pub scopes: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub id_token_alg: SigningAlg,
    /// Most live refresh tokens one user may hold for this client; the oldest is revoked past it.
    pub refresh_token_cap: u32,
    /// Issue a refresh token even when the request did not ask for offline_access.
    pub refresh_always: bool,
    /// Accept only a passkey sign-in (acr `phr`) for this client's users.
    pub require_passkey: bool,
    /// Accept sign-ins by emailed link (or its code).
    pub allow_magic_link: bool,
    /// Ids of the groups whose members may sign in; empty: everyone.
    pub allowed_groups: Vec<String>,
    /// Shown on the sign-in and consent pages.
    pub logo_uri: Option<String>,
    pub lifetimes: ClientLifetimes,
    /// The secret being rotated out, and until when it still works.
    #[serde(skip)]
    pub previous_secret: Option<(String, UnixTime)>,
    pub created_at: UnixTime,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("public", &self.secret_hash.is_none())
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn kind(&self) -> ClientKind {
        if self.secret_hash.is_some() {
            ClientKind::Confidential
        } else {
            ClientKind::Public
        }
    }
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
    /// The hashes of the secrets that authenticate this client at `now`: the current one and,
    /// during a rotation's overlap, the previous one.
    pub fn secret_hashes(&self, now: UnixTime) -> impl Iterator<Item = &str> {
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(h, _)| h.as_str());
        self.secret_hash.as_deref().into_iter().chain(previous)
    }
    /// Until when the secret being rotated out still works, if it still does at `now`.
    pub fn previous_secret_until(&self, now: UnixTime) -> Option<UnixTime> {
        self.previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
    }
}

/// What `client create` and the admin UI supply; the store adds id and timestamps.
#[derive(Clone)]
pub struct NewClient {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub id_token_alg: SigningAlg,
    pub refresh_token_cap: u32,
    pub refresh_always: bool,
    pub require_passkey: bool,
    pub allow_magic_link: bool,
    pub logo_uri: Option<String>,
    pub lifetimes: ClientLifetimes,
}
