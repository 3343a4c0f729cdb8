//! Credential checks and signed-in sessions. Every sign-in method (password today; passkey and
//! magic link next) checks its credential here and returns an `Authenticated`; `session::start`
//! turns any `Authenticated` into a signed-in browser session. No HTTP types and no pages here.

pub mod account;
pub mod email;
pub mod invitation;
pub mod magic;
pub mod notices;
pub mod passkey;
pub mod password;
pub mod session;

use crate::clock::{Clock, UnixTime};
use crate::domain::{AuditEvent, AuthMethod, RequestMeta, User};
use crate::store::{
    Auditor, InvitationRepo, MagicLinkRepo, PasskeyRepo, PasswordRepo, SessionRepo, StoreError,
    TokenRepo, UserRepo,
};
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
    pub passkeys: Arc<dyn PasskeyRepo>,
    pub invitations: Arc<dyn InvitationRepo>,
    /// A user's sessions, for the account page.
    pub sessions: Arc<dyn SessionRepo>,
    /// For "sign out everywhere", which also revokes the user's tokens.
    pub tokens: Arc<dyn TokenRepo>,
    pub hasher: password::Passwords,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
    /// No browser session outlives this many seconds.
    pub session_absolute: i64,
    /// Derives each session's CSRF token from its id.
    pub csrf_key: crate::crypto::MacKey,
    pub throttles: crate::throttle::Throttles,
    /// The passkey relying party; None when the issuer cannot have one (an IP address).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    pub magic_links: Arc<dyn MagicLinkRepo>,
    pub email_tokens: Arc<dyn crate::store::EmailTokenRepo>,
    /// Seconds a recovery link waits before it opens.
    pub recovery_delay: i64,
    /// Where sign-in links and notices go out.
    pub mail: Arc<crate::mail::Mail>,
    /// For links in messages.
    pub issuer: String,
    /// Seconds an emailed sign-in link works.
    pub magic_link_ttl: i64,
    /// `auth.passwords = "optional"`.
    pub passwords_on: bool,
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
            ip: crate::throttle::ip_key(meta.ip.as_deref()),
        }
    }
}

impl Authenticator {
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Counts the attempt against its account (from this IP, and from anywhere) and its IP
    /// before any credential is checked; refuses it when one of them has none left. The first
    /// refusal of a block is audited.
    pub(crate) async fn guard(
        &self,
        method: AuthMethod,
        attempt: &Attempt,
        meta: &RequestMeta,
    ) -> CredentialResult<()> {
        self.guard_ip(method, attempt, meta).await?;
        self.guard_account(method, attempt, meta).await
    }

    /// Counts the attempt against its IP alone: a passkey sign-in counts here before Keyway
    /// knows which account its credential names.
    pub(crate) async fn guard_ip(
        &self,
        method: AuthMethod,
        attempt: &Attempt,
        meta: &RequestMeta,
    ) -> CredentialResult<()> {
        match self.throttles.signin_ip.attempt(&attempt.ip) {
            Ok(()) => Ok(()),
            Err(r) => self.limited(method, r, "address", meta).await,
        }
    }

    /// Counts the attempt against its account, from this IP and from anywhere.
    pub(crate) async fn guard_account(
        &self,
        method: AuthMethod,
        attempt: &Attempt,
        meta: &RequestMeta,
    ) -> CredentialResult<()> {
        let t = &self.throttles;
        let by_pair = format!("{}|{}", attempt.account, attempt.ip);
        match (
            t.account_ip.attempt(&by_pair),
            t.account.attempt(&attempt.account),
        ) {
            (Err(r), _) => {
                self.limited(method, r, "account from this address", meta)
                    .await
            }
            (_, Err(r)) => self.limited(method, r, "account", meta).await,
            _ => Ok(()),
        }
    }

    async fn limited(
        &self,
        method: AuthMethod,
        r: crate::throttle::Refusal,
        which: &str,
        meta: &RequestMeta,
    ) -> CredentialResult<()> {
        crate::telemetry::signin(Some(method), "limited");
        if r.newly {
            self.audit
                .record(AuditEvent {
                    at: self.now(),
                    event: "signin".into(),
                    user_id: None,
                    client_id: None,
                    ip: meta.ip.clone(),
                    user_agent: meta.user_agent.clone(),
                    outcome: "limited".into(),
                    detail: Some(format!(
                        "{}: too many attempts for this {which}; blocked {} s",
                        method.name(),
                        r.retry_after
                    )),
                })
                .await;
        }
        Err(CredentialError::Limited {
            retry_after: r.retry_after,
        })
    }

    /// Audits a refused sign-in; `why` is for the audit log only, never for the user.
    pub(crate) async fn refused(
        &self,
        method: AuthMethod,
        user: Option<&User>,
        why: &str,
        meta: &RequestMeta,
    ) {
        crate::telemetry::signin(Some(method), "failure");
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
