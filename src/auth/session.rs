//! Browser sessions: the tower-sessions store over our `SessionRepo`, and what a session holds
//! (who signed in and how, authorization requests waiting for sign-in or consent).
//!
//! A copy of the database yields no live session: rows are keyed by the SHA-256 of the session
//! id (only the cookie holds the id), and the CSRF token is not stored at all but derived from
//! the id with a server key (HMAC), so neither can be read back from the file.

use super::{Authenticated, Authenticator, CredentialResult};
use crate::clock::Clock;
use crate::crypto::{constant_time_eq, random_token, token_hash};
use crate::domain::{AuditEvent, RequestMeta, User};
use crate::oidc::authorize::AuthRequest;
use crate::store::{SessionRepo, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower_sessions::Session;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Sessions expire `idle` seconds after their last save, measured on the injected clock (the
/// session layer's own expiry reads the wall clock, which tests cannot move).
#[derive(Clone)]
pub struct DbSessionStore {
    repo: Arc<dyn SessionRepo>,
    clock: Arc<dyn Clock>,
    idle: i64,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(repo: Arc<dyn SessionRepo>, clock: Arc<dyn Clock>, idle: i64) -> Self {
        Self { repo, clock, idle }
    }

    fn expires_at(&self) -> i64 {
        self.clock.now() + self.idle
    }
}

/// The row key of a session: never the id itself.
pub(crate) fn row_key(id: &Id) -> String {
    token_hash(&id.to_string())
}

/// The signed-in user a session record holds, for the store's per-user index.
fn user_of(record: &Record) -> Option<&str> {
    record.data.get(AUTH)?.get("user_id")?.as_str()
}

/// The session layer's errors are text: an unavailable database is marked so that
/// `CredentialError` can tell it apart again (and the user gets a 503, not a 500).
pub(crate) const UNAVAILABLE: &str = "database unavailable";

fn backend(e: StoreError) -> session_store::Error {
    match e {
        StoreError::Unavailable(e) => session_store::Error::Backend(format!("{UNAVAILABLE}: {e}")),
        other => session_store::Error::Backend(other.to_string()),
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = serde_json::to_vec(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // Ids are 128 random bits; a collision is practically impossible, but retrying is cheap.
        for _ in 0..4 {
            if self
                .repo
                .create(
                    &row_key(&record.id),
                    user_of(record),
                    &data,
                    self.expires_at(),
                )
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(
            "cannot allocate a session id".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_vec(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        self.repo
            .save(
                &row_key(&record.id),
                user_of(record),
                &data,
                self.expires_at(),
            )
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some((data, _)) = self
            .repo
            .load(&row_key(id), self.clock.now())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_slice(&data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        // The stored expiry is re-derived by the session layer on save; loading only needs it set.
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(self.clock.now() + 60)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.repo.delete(&row_key(id)).await.map_err(backend)
    }
}

/// Where a session keeps who is signed in.
pub(crate) const AUTH: &str = "auth";
/// When a session that has nothing else yet was created (it needs an id for its CSRF token).
const CREATED: &str = "created";
const PENDING: &str = "pending";
/// Authorization requests one browser may have waiting at once (several tabs); oldest dropped.
const MAX_PENDING: usize = 8;

/// Who is signed in to this browser session, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub user_id: String,
    /// When the user last actively authenticated (OIDC `auth_time`).
    pub auth_time: i64,
    /// Space-separated `amr` values.
    pub amr: String,
    /// The OIDC session id (`sid`), stable for the session's life.
    pub sid: String,
    /// When this session began, for the absolute lifetime.
    pub started_at: i64,
    /// Last time the session was seen in use; refreshed at most every `TOUCH_EVERY` seconds so
    /// an active session stays alive without a database write on every request.
    #[serde(default)]
    pub seen_at: i64,
    /// Where the sign-in came from, for the account page's list of sessions.
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

const TOUCH_EVERY: i64 = 60;

/// The signed-in user, if the session is within its absolute lifetime and the user is active.
pub async fn current(
    session: &Session,
    auth: &Authenticator,
) -> CredentialResult<Option<(SignedIn, User)>> {
    let Some(signed_in) = session.get::<SignedIn>(AUTH).await? else {
        return Ok(None);
    };
    let now = auth.now();
    if signed_in.started_at + auth.session_absolute <= now {
        session.remove_value(AUTH).await?;
        return Ok(None);
    }
    let signed_in = if now - signed_in.seen_at >= TOUCH_EVERY {
        let touched = SignedIn {
            seen_at: now,
            ..signed_in
        };
        session.insert(AUTH, &touched).await?;
        touched
    } else {
        signed_in
    };
    match auth.users.by_id(&signed_in.user_id).await? {
        Some(u) if !u.disabled => Ok(Some((signed_in, u))),
        _ => {
            session.remove_value(AUTH).await?;
            Ok(None)
        }
    }
}

/// Signs the browser session in as the authenticated user, whatever the method: a new session
/// id (against fixation, and with it a new CSRF token), `amr` and `auth_time` kept for the ID
/// token, and the sign-in audited.
pub async fn start(
    session: &Session,
    auth: &Authenticator,
    who: &Authenticated,
    meta: &RequestMeta,
) -> CredentialResult<SignedIn> {
    session.cycle_id().await?;
    let previous: Option<SignedIn> = session.get(AUTH).await?;
    let now = who.auth_time;
    // Re-authenticating the same user keeps the OIDC session (sid); a different user starts anew.
    let (sid, started_at) = match previous {
        Some(p) if p.user_id == who.user.id => (p.sid, p.started_at),
        _ => (random_token()?, now),
    };
    let signed_in = SignedIn {
        user_id: who.user.id.clone(),
        auth_time: now,
        amr: who.amr_string(),
        sid,
        started_at,
        seen_at: now,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
    };
    session.insert(AUTH, &signed_in).await?;
    let methods: Vec<&str> = who.amr.iter().map(|m| m.name()).collect();
    crate::telemetry::signin(who.amr.first().copied(), "success");
    auth.audit
        .record(AuditEvent {
            at: now,
            event: "signin".into(),
            user_id: Some(who.user.id.clone()),
            client_id: None,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            outcome: "success".into(),
            detail: Some(methods.join(" ")),
        })
        .await;
    Ok(signed_in)
}

/// Ends the session entirely (row deleted, cookie cleared).
pub async fn end(session: &Session) -> CredentialResult<()> {
    Ok(session.flush().await?)
}

/// This session's CSRF token: HMAC of the session id under a server key (a session is saved
/// first if it has no id yet). It changes whenever the id does, at sign-in for one.
pub async fn csrf_token(session: &Session, auth: &Authenticator) -> CredentialResult<String> {
    // Load the record first: a cookie naming an expired or unknown session still carries an id
    // until then, and a token bound to it would fail on the next post (the session layer gives
    // the browser a new id when it first saves).
    session.get::<i64>(CREATED).await?;
    let id = match session.id() {
        Some(id) => id,
        None => {
            // A value, so that the session layer also sends the cookie for this new session.
            session.insert(CREATED, auth.now()).await?;
            session.save().await?;
            session
                .id()
                .ok_or_else(|| anyhow::anyhow!("session: saved without an id"))?
        }
    };
    csrf_for(auth, &id)
}

/// The CSRF token of session `id`.
fn csrf_for(auth: &Authenticator, id: &Id) -> CredentialResult<String> {
    Ok(auth.csrf_key.tag(id.to_string().as_bytes())?)
}

/// True when `submitted` is this session's CSRF token.
pub async fn csrf_matches(
    session: &Session,
    auth: &Authenticator,
    submitted: Option<&str>,
) -> CredentialResult<bool> {
    session.get::<i64>(CREATED).await?;
    let (Some(id), Some(submitted)) = (session.id(), submitted) else {
        return Ok(false);
    };
    let expected = csrf_for(auth, &id)?;
    Ok(constant_time_eq(expected.as_bytes(), submitted.as_bytes()))
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Pending(BTreeMap<String, AuthRequest>);

async fn pending(session: &Session) -> CredentialResult<Pending> {
    Ok(session.get(PENDING).await?.unwrap_or_default())
}

/// Parks an authorization request while the user signs in or consents; returns its id.
pub async fn park(session: &Session, req: &AuthRequest) -> CredentialResult<String> {
    let mut waiting = pending(session).await?;
    while waiting.0.len() >= MAX_PENDING {
        let oldest = waiting
            .0
            .iter()
            .min_by_key(|(_, r)| r.created_at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                waiting.0.remove(&k);
            }
            None => break,
        }
    }
    let id = crate::crypto::random_id()?;
    waiting.0.insert(id.clone(), req.clone());
    session.insert(PENDING, &waiting).await?;
    Ok(id)
}

pub async fn parked(session: &Session, id: &str) -> CredentialResult<Option<AuthRequest>> {
    Ok(pending(session).await?.0.get(id).cloned())
}

pub async fn unpark(session: &Session, id: &str) -> CredentialResult<Option<AuthRequest>> {
    let mut waiting = pending(session).await?;
    let req = waiting.0.remove(id);
    session.insert(PENDING, &waiting).await?;
    Ok(req)
}

/// Records that the user signed in for this waiting request (satisfies prompt=login, max_age).
/// False when no such request waits.
pub async fn mark_login_done(session: &Session, id: &str) -> CredentialResult<bool> {
    let mut waiting = pending(session).await?;
    let Some(r) = waiting.0.get_mut(id) else {
        return Ok(false);
    };
    r.login_done = true;
    session.insert(PENDING, &waiting).await?;
    Ok(true)
}
