//! Browser sessions: the tower-sessions store over our `SessionRepo`, and what a session holds
//! (who signed in and how, the CSRF token, authorization requests waiting for sign-in or consent).

use crate::clock::Clock;
use crate::crypto::{constant_time_eq, random_token};
use crate::domain::User;
use crate::error::{AppError, AppResult};
use crate::oidc::authorize::AuthRequest;
use crate::state::AppState;
use crate::store::SessionRepo;
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

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
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
                .create(&record.id.to_string(), &data, self.expires_at())
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(backend("cannot allocate a session id"))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_vec(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        self.repo
            .save(&record.id.to_string(), &data, self.expires_at())
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self
            .repo
            .load(&id.to_string(), self.clock.now())
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
        self.repo.delete(&id.to_string()).await.map_err(backend)
    }
}

const AUTH: &str = "auth";
const CSRF: &str = "csrf";
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
}

const TOUCH_EVERY: i64 = 60;

fn session_err(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("session: {e}"))
}

/// The signed-in user, if the session is within its absolute lifetime and the user is active.
pub async fn current(session: &Session, state: &AppState) -> AppResult<Option<(SignedIn, User)>> {
    let Some(auth) = session.get::<SignedIn>(AUTH).await.map_err(session_err)? else {
        return Ok(None);
    };
    let now = state.now();
    if auth.started_at + state.config.lifetimes.session_absolute as i64 <= now {
        session.remove_value(AUTH).await.map_err(session_err)?;
        return Ok(None);
    }
    let auth = if now - auth.seen_at >= TOUCH_EVERY {
        let touched = SignedIn {
            seen_at: now,
            ..auth
        };
        session.insert(AUTH, &touched).await.map_err(session_err)?;
        touched
    } else {
        auth
    };
    match state.repos.users.by_id(&auth.user_id).await? {
        Some(u) if !u.disabled => Ok(Some((auth, u))),
        _ => {
            session.remove_value(AUTH).await.map_err(session_err)?;
            Ok(None)
        }
    }
}

/// Marks the session signed in, with a new session id (against fixation).
pub async fn sign_in(session: &Session, user: &User, amr: &str, now: i64) -> AppResult<SignedIn> {
    session.cycle_id().await.map_err(session_err)?;
    let previous: Option<SignedIn> = session.get(AUTH).await.map_err(session_err)?;
    // Re-authenticating the same user keeps the OIDC session (sid); a different user starts anew.
    let (sid, started_at) = match previous {
        Some(p) if p.user_id == user.id => (p.sid, p.started_at),
        _ => (random_token()?, now),
    };
    let auth = SignedIn {
        user_id: user.id.clone(),
        auth_time: now,
        amr: amr.to_owned(),
        sid,
        started_at,
        seen_at: now,
    };
    session.insert(AUTH, &auth).await.map_err(session_err)?;
    // A new CSRF token for the new identity.
    session
        .insert(CSRF, random_token()?)
        .await
        .map_err(session_err)?;
    Ok(auth)
}

/// Ends the session entirely (row deleted, cookie cleared).
pub async fn sign_out(session: &Session) -> AppResult<()> {
    session.flush().await.map_err(session_err)
}

/// This session's CSRF token, created on first use (synchronizer token pattern).
pub async fn csrf_token(session: &Session) -> AppResult<String> {
    if let Some(t) = session.get::<String>(CSRF).await.map_err(session_err)? {
        return Ok(t);
    }
    let t = random_token()?;
    session.insert(CSRF, &t).await.map_err(session_err)?;
    Ok(t)
}

pub async fn check_csrf(session: &Session, submitted: Option<&str>) -> AppResult<()> {
    let expected = session.get::<String>(CSRF).await.map_err(session_err)?;
    match (expected, submitted) {
        (Some(e), Some(s)) if constant_time_eq(e.as_bytes(), s.as_bytes()) => Ok(()),
        _ => Err(AppError::page(
            axum::http::StatusCode::FORBIDDEN,
            "Form expired",
            "This form is no longer valid (its security token is missing or out of date). Go back, reload the page and try again.",
        )),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Pending(BTreeMap<String, AuthRequest>);

/// Parks an authorization request while the user signs in or consents; returns its id.
pub async fn park(session: &Session, req: &AuthRequest) -> AppResult<String> {
    let mut pending: Pending = session
        .get(PENDING)
        .await
        .map_err(session_err)?
        .unwrap_or_default();
    while pending.0.len() >= MAX_PENDING {
        let oldest = pending
            .0
            .iter()
            .min_by_key(|(_, r)| r.created_at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                pending.0.remove(&k);
            }
            None => break,
        }
    }
    let id = crate::crypto::random_id()?;
    pending.0.insert(id.clone(), req.clone());
    session
        .insert(PENDING, &pending)
        .await
        .map_err(session_err)?;
    Ok(id)
}

pub async fn parked(session: &Session, id: &str) -> AppResult<Option<AuthRequest>> {
    let pending: Pending = session
        .get(PENDING)
        .await
        .map_err(session_err)?
        .unwrap_or_default();
    Ok(pending.0.get(id).cloned())
}

pub async fn unpark(session: &Session, id: &str) -> AppResult<Option<AuthRequest>> {
    let mut pending: Pending = session
        .get(PENDING)
        .await
        .map_err(session_err)?
        .unwrap_or_default();
    let req = pending.0.remove(id);
    session
        .insert(PENDING, &pending)
        .await
        .map_err(session_err)?;
    Ok(req)
}

/// Records that the user signed in for this waiting request (satisfies prompt=login, max_age).
pub async fn mark_login_done(session: &Session, id: &str) -> AppResult<()> {
    let mut pending: Pending = session
        .get(PENDING)
        .await
        .map_err(session_err)?
        .unwrap_or_default();
    if let Some(r) = pending.0.get_mut(id) {
        r.login_done = true;
        session
            .insert(PENDING, &pending)
            .await
            .map_err(session_err)?;
    }
    Ok(())
}
