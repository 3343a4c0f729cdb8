//! Operator actions shared by the CLI and the admin UI: users, clients, signing keys and
//! invitations. Each validates its input, writes an audit event naming who acted, and
//! keeps the rules no caller may skip, such as never leaving Keyway without an active
//! administrator.

mod accounts;
mod audit;
mod clients;
mod groups;
mod invitations;
mod keys;
mod users;

pub use accounts::{RECOVERY_LINK_TTL, recovery_url};
pub use invitations::{CreateInvitation, invitation_url};
pub use users::{CreateUser, Field, UserChanges};

use crate::auth::password::Passwords;
use crate::clock::{Clock, UnixTime};
use crate::domain::AuditEvent;
use crate::store::{Auditor, Repos, StoreError};
use std::sync::Arc;

/// Who performs an action, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The `keyway` command line, run by whoever holds the database.
    Cli,
    /// An administrator signed in to the admin UI.
    Admin { user_id: String },
    /// The server itself, on a schedule the configuration set (`keys.rotate_every`).
    Schedule,
}

impl Actor {
    fn describe(&self) -> String {
        match self {
            Actor::Cli => "by cli".into(),
            Actor::Admin { user_id } => format!("by admin {user_id}"),
            Actor::Schedule => "automatically".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The input cannot be used; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// Refused by a rule (the last administrator).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => OpsError::Conflict(what),
            StoreError::NotFound(what) => OpsError::NotFound(what),
            StoreError::Unavailable(e) => {
                OpsError::Internal(e.context("the database is busy or unavailable; try again"))
            }
            StoreError::Backend(e) => OpsError::Internal(e.context("database")),
        }
    }
}

pub type OpsResult<T> = Result<T, OpsError>;

/// The operator actions over one store, performed by `actor`.
pub struct Operator {
    repos: Repos,
    clock: Arc<dyn Clock>,
    hasher: Passwords,
    audit: Auditor,
    actor: Actor,
    /// Where invitations are sent from, and the issuer their links are built on.
    mail: Option<(Arc<crate::mail::Mail>, String)>,
}

impl Operator {
    pub fn new(repos: Repos, clock: Arc<dyn Clock>, hasher: Passwords, actor: Actor) -> Self {
        let audit = Auditor(repos.audit.clone());
        Self {
            repos,
            clock,
            hasher,
            audit,
            actor,
            mail: None,
        }
    }

    /// Lets the operator send mail (invitations), with links on `issuer`.
    pub fn with_mail(mut self, mail: Arc<crate::mail::Mail>, issuer: &str) -> Self {
        self.mail = Some((mail, issuer.to_owned()));
        self
    }

    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Audits a completed action on a user and/or client.
    async fn record(&self, event: &str, user_id: Option<&str>, client_id: Option<&str>) {
        self.audit
            .record(AuditEvent {
                at: self.now(),
                event: event.into(),
                user_id: user_id.map(str::to_owned),
                client_id: client_id.map(str::to_owned),
                ip: None,
                user_agent: None,
                outcome: "success".into(),
                detail: Some(self.actor.describe()),
            })
            .await;
    }
}
