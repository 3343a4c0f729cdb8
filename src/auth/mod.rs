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
    /// Too many failures for this account or IP: not checked; try again after this many
    /// seconds.
    #[error("too many failed attempts")]
    Limited { retry_after: u64 },
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
    pub throttles: crate::throttle::Throttles,
}

/// The throttle keys of one sign-in attempt: the account it names and the client IP.
pub(crate) struct Attempt {
    account: String,
    ip: String,
}

impl Attempt {
    pub(crate) fn new(account: &str, meta: &RequestMeta) -> Self {
        Self {
            account: account
                .trim()
                .chars()
                .take(256)
                .collect::<String>()
                .to_lowercase(),
            ip: meta.ip.clone().unwrap_or_default(),
        }
    }
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

    /// Refuses an attempt whose account or IP is blocked, before any credential is checked.
    pub(crate) fn guard(&self, attempt: &Attempt) -> CredentialResult<()> {
        let t = &self.throttles;
        match t
            .account
            .blocked(&attempt.account)
            .or_else(|| t.signin_ip.blocked(&attempt.ip))
        {
            Some(retry_after) => Err(CredentialError::Limited { retry_after }),
            None => Ok(()),
        }
    }

    /// Records a failed attempt (audited with `why`, for the log only) and answers it: Refused,
    /// or Limited when this failure was one too many (audited once per block).
    pub(crate) async fn failure(
        &self,
        method: AuthMethod,
        attempt: &Attempt,
        user: Option<&User>,
        why: &str,
        meta: &RequestMeta,
    ) -> CredentialError {
        self.refused(method, user, why, meta).await;
        let t = &self.throttles;
        let by_account = t.account.failed(&attempt.account);
        let by_ip = t.signin_ip.failed(&attempt.ip);
        let Some(retry_after) = by_account.max(by_ip) else {
            return CredentialError::Refused;
        };
        let which = if by_account.is_some() {
            "account"
        } else {
            "ip"
        };
        self.audit
            .record(AuditEvent {
                at: self.now(),
                event: "signin".into(),
                user_id: user.map(|u| u.id.clone()),
                client_id: None,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                outcome: "limited".into(),
                detail: Some(format!(
                    "{}: too many failures for this {which}; blocked {retry_after} s",
                    method.name()
                )),
            })
            .await;
        CredentialError::Limited { retry_after }
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
