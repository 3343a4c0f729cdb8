//! Shared application state handed to every handler.

use crate::auth::password::Passwords;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::AuditEvent;
use crate::oidc::keys::Keys;
use crate::store::Repos;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub repos: Repos,
    pub clock: Arc<dyn Clock>,
    pub keys: Keys,
    pub passwords: Passwords,
    /// Seals authorization codes (derived from the key that seals private keys at rest).
    pub code_key: crate::crypto::SealingKey,
    /// The discovery document, rendered once.
    pub discovery: bytes::Bytes,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Records an audit event; a failure to record is logged, never shown to the user.
    pub async fn audit(&self, event: AuditEvent) {
        if let Err(e) = self.repos.audit.record(&event).await {
            tracing::error!(error = %e, event = %event.event, "cannot write audit event");
        }
    }
}
