//! The protocol core, free of HTTP types: metadata, keys, ID tokens, PKCE, redirect URI matching,
//! the authorization request and its login and consent decisions, client authentication, the
//! token-endpoint grants, revocation, introspection and RP-initiated logout checks. Everything
//! here takes a `Provider` (the repositories, clock, keys and settings it uses) and returns a
//! `ProtocolError` on failure.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod clients;
pub mod codes;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod introspection;
pub mod keys;
pub mod logout;
pub mod metadata;
pub mod pkce;
pub mod redirect;
pub mod revocation;

pub use error::{OAuthError, ProtocolError, ProtocolResult};

use crate::clock::{Clock, UnixTime};
use crate::config::Lifetimes;
use crate::crypto::SealingKey;
use crate::store::{Auditor, ClientRepo, ConsentRepo, GroupRepo, TokenRepo, UserRepo};
use std::sync::Arc;

/// What the protocol core reads and writes: the narrow sub-state of the application.
pub struct Provider {
    /// No trailing slash.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    /// Seconds a rotated refresh token may be presented again (see `grants::refresh`).
    pub refresh_reuse_grace: i64,
    pub clock: Arc<dyn Clock>,
    pub keys: keys::Keys,
    /// Seals authorization codes.
    pub code_key: SealingKey,
    pub clients: Arc<dyn ClientRepo>,
    pub users: Arc<dyn UserRepo>,
    pub groups: Arc<dyn GroupRepo>,
    pub tokens: Arc<dyn TokenRepo>,
    pub consents: Arc<dyn ConsentRepo>,
    pub audit: Auditor,
    /// Failed client authentications per client id and per IP.
    pub throttles: crate::throttle::Throttles,
}

impl Provider {
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}
