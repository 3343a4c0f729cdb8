//! Credential checks and signed-in sessions. Every sign-in method (password today; passkey and
//! magic link next) checks its credential here and returns an `Authenticated`; `session::start`
//! turns any `Authenticated` into a signed-in browser session. No HTTP types and no pages here.

pub mod password;
pub mod session;

use crate::clock::{Clock, UnixTime};
use crate::domain::{AuditEvent, AuthMethod, RequestMeta, User};
use crate::store::{Auditor, PasswordRepo, StoreError, UserRepo};
use std::sync::Arc;

/// A user who has just proved who they are.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    /// How (the OIDC `amr` values).
    pub amr: Vec<AuthMethod>,
    /// When (the OIDC `auth_time`).
    pub auth_time: UnixTime,
}

impl Authenticated {
    /// Space-separated `amr` values.
    pub fn amr_string(&self) -> String {
        self.amr
            .iter()
            .map(|m| m.amr())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The auth layer's error: a refused credential, or a failure underneath.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The credential was not accepted. Deliberately one case for unknown user, wrong secret
    /// and disabled account, so that no caller can tell them apart.
    #[error("credential refused")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<tower_sessions::session::Error> for CredentialError {
    fn from(e: tower_sessions::session::Error) -> Self {
        let message = format!("session: {e}");
        if message.contains(session::UNAVAILABLE) {
            CredentialError::Store(StoreError::Unavailable(anyhow::anyhow!(message)))
        } else {
            CredentialError::Internal(anyhow::anyhow!(message))
        }
    }
}

pub type CredentialResult<T> = Result<T, CredentialError>;

/// What the credential checks and the session read and write.
pub struct Authenticator {
    pub users: Arc<dyn UserRepo>,
    pub passwords: Arc<dyn PasswordRepo>,
    pub hasher: password::Passwords,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
    /// No browser session outlives this many seconds.
    pub session_absolute: i64,
    /// Derives each session's CSRF token from its id.
    pub csrf_key: crate::crypto::MacKey,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Audits a refused sign-in; `why` is for the audit log only, never for the user.
    async fn refused(
        &self,
        method: AuthMethod,
        user: Option<&User>,
        why: &str,
        meta: &RequestMeta,
    ) {
        self.audit
            .record(AuditEvent {
                at: self.now(),
                event: "signin".into(),
                user_id: user.map(|u| u.id.clone()),
                client_id: None,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                outcome: "failure".into(),
                detail: Some(format!("{}: {why}", method.name())),
            })
            .await;
    }
}
