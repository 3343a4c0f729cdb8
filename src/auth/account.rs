//! What a signed-in user manages on their account page: their passkeys and their sessions.
//! Every change is audited. Removing a passkey and signing out everywhere need a recent sign-in
//! (`RECENT_AUTH`); the web layer sends the user through sign-in first.

use super::passkey::{NewPasskey, RegistrationFor};
use super::session::SignedIn;
use super::{Authenticator, CredentialError, CredentialResult};
use crate::clock::UnixTime;
use crate::domain::{AuditEvent, RequestMeta, StoredPasskey, clean_passkey_name};
use crate::store::{PasskeyRemoval, StoreError};

/// How recent a sign-in must be for the dangerous changes, in seconds.
pub const RECENT_AUTH: i64 = 300;

/// Whether the session's sign-in is recent enough for a dangerous change.
pub fn is_recent(signed_in: &SignedIn, now: UnixTime) -> bool {
    now - signed_in.auth_time <= RECENT_AUTH
}

/// The answer to a change the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Done,
    /// Refused, with words for the page.
    Refused(String),
}

/// Stores a passkey the user just registered from their account page.
pub async fn add_passkey(
    auth: &Authenticator,
    user_id: &str,
    new: NewPasskey,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    match &new.purpose {
        RegistrationFor::Account { user_id: owner }
        | RegistrationFor::Recovery { user_id: owner, .. }
            if owner == user_id => {}
        _ => return Err(CredentialError::Refused),
    }
    let mut new = new;
    let names: Vec<String> = auth
        .passkeys
        .list_for_user(user_id)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    new.passkey.name = distinct_name(&new.passkey.name, &names);
    match auth.passkeys.add(&new.passkey).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Ok(Change::Refused(
                "This passkey is registered to an account already.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    auth.record(
        "passkey.register",
        Some(user_id.into()),
        "success",
        &new.passkey.name,
        meta,
    )
    .await;
    if let Some(user) = auth.users.by_id(user_id).await? {
        let what = format!(
            "A passkey named {:?} was added to the account {}.",
            new.passkey.name, user.username
        );
        super::notices::notify(auth, &user, "a passkey was added", &what, meta).await?;
    }
    Ok(Change::Done)
}

/// `name`, or `name 2`, `name 3`... when the user has a passkey called that already.
fn distinct_name(name: &str, taken: &[String]) -> String {
    let mut candidate = name.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name} {n}");
        n += 1;
    }
    candidate
}

pub async fn rename_passkey(
    auth: &Authenticator,
    user_id: &str,
    id: &str,
    name: &str,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    let name = match clean_passkey_name(name) {
        Ok(n) => n,
        Err(why) => return Ok(Change::Refused(why)),
    };
    auth.passkeys.rename(user_id, id, &name).await?;
    auth.record(
        "passkey.rename",
        Some(user_id.into()),
        "success",
        &name,
        meta,
    )
    .await;
    Ok(Change::Done)
}

pub async fn remove_passkey(
    auth: &Authenticator,
    user_id: &str,
    id: &str,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    let name = auth
        .passkeys
        .list_for_user(user_id)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name)
        .ok_or_else(|| StoreError::NotFound("passkey".into()))?;
    match auth.passkeys.remove(user_id, id).await? {
        PasskeyRemoval::Removed => {
            auth.record(
                "passkey.remove",
                Some(user_id.into()),
                "success",
                &name,
                meta,
            )
            .await;
            Ok(Change::Done)
        }
        PasskeyRemoval::Last => Ok(Change::Refused(
            "This is your only way to sign in. Add another passkey first, then remove this one."
                .into(),
        )),
    }
}

pub async fn passkeys(auth: &Authenticator, user_id: &str) -> CredentialResult<Vec<StoredPasskey>> {
    Ok(auth.passkeys.list_for_user(user_id).await?)
}

/// One of the user's browser sessions, for the account page.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session's row key (a hash of its id, never the id).
    pub key: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub started_at: UnixTime,
    pub seen_at: UnixTime,
}

/// The user's signed-in sessions, most recently seen first.
pub async fn sessions(auth: &Authenticator, user_id: &str) -> CredentialResult<Vec<SessionInfo>> {
    let rows = auth.sessions.list_for_user(user_id, auth.now()).await?;
    let mut out: Vec<SessionInfo> = rows
        .into_iter()
        .filter_map(|(key, data)| {
            let data: serde_json::Value = serde_json::from_slice(&data).ok()?;
            let s: SignedIn =
                serde_json::from_value(data.get(super::session::AUTH)?.clone()).ok()?;
            (s.user_id == user_id).then_some(SessionInfo {
                key,
                ip: s.ip,
                user_agent: s.user_agent,
                started_at: s.started_at,
                seen_at: s.seen_at,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.seen_at));
    Ok(out)
}

/// Signs one of the user's sessions out.
pub async fn end_session(
    auth: &Authenticator,
    user_id: &str,
    key: &str,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    auth.sessions.delete_for_user(user_id, key).await?;
    auth.record(
        "session.end",
        Some(user_id.into()),
        "success",
        "one session",
        meta,
    )
    .await;
    Ok(())
}

/// Signs every session of the user out and revokes their refresh and access tokens.
pub async fn sign_out_everywhere(
    auth: &Authenticator,
    user_id: &str,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    let sessions = auth.sessions.delete_all_for_user(user_id).await?;
    let grants = auth.tokens.revoke_user_grants(user_id, auth.now()).await?;
    let detail = format!("{sessions} sessions ended, {grants} grants revoked");
    auth.record(
        "session.end_all",
        Some(user_id.into()),
        "success",
        &detail,
        meta,
    )
    .await;
    if let Some(user) = auth.users.by_id(user_id).await? {
        let what = format!(
            "Every session of the account {} was signed out, and applications were disconnected.",
            user.username
        );
        super::notices::notify(auth, &user, "you were signed out everywhere", &what, meta).await?;
    }
    Ok(())
}

/// What the account page lists as security events (tokens issued to applications are not).
pub const SECURITY_EVENTS: &[&str] = &[
    "signin",
    "logout",
    "passkey.register",
    "passkey.rename",
    "passkey.remove",
    "passkey.counter_regression",
    "session.end",
    "session.end_all",
    "invitation.redeem",
    "email.verified",
    "email.changed",
    "recovery.request",
    "recovery.cancel",
    "recovery.complete",
    "password.set",
    "password.change",
    "password.remove",
];

/// The user's recent security events, newest first.
pub async fn recent_events(
    auth: &Authenticator,
    user_id: &str,
) -> CredentialResult<Vec<AuditEvent>> {
    Ok(auth
        .audit
        .0
        .recent_for_user(user_id, SECURITY_EVENTS, 20)
        .await?)
}

/// Whether the user has a password.
pub async fn has_password(auth: &Authenticator, user_id: &str) -> CredentialResult<bool> {
    Ok(auth.passwords.get(user_id).await?.is_some())
}

/// Sets or changes the user's password, under the policy (`password::check_policy`).
pub async fn set_password(
    auth: &Authenticator,
    user_id: &str,
    password: &str,
    confirm: &str,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    if !auth.passwords_on {
        return Ok(Change::Refused(
            "Passwords are turned off on this server.".into(),
        ));
    }
    if password != confirm {
        return Ok(Change::Refused("The two passwords differ.".into()));
    }
    if let Err(why) = super::password::check_policy(password) {
        let mut c = why.chars();
        let why = c
            .next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str());
        return Ok(Change::Refused(format!("{}.", why.unwrap_or_default())));
    }
    let had = has_password(auth, user_id).await?;
    let phc = auth.hasher.hash(password).await?;
    auth.passwords.set(user_id, &phc, auth.now()).await?;
    let event = if had {
        "password.change"
    } else {
        "password.set"
    };
    auth.record(event, Some(user_id.into()), "success", "", meta)
        .await;
    Ok(Change::Done)
}

/// Removes the user's password, unless it is their last way to sign in.
pub async fn remove_password(
    auth: &Authenticator,
    user_id: &str,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    if !auth.passwords.remove_unless_last(user_id).await? {
        return Ok(Change::Refused(
            "Add a passkey first: the password is your only way to sign in.".into(),
        ));
    }
    auth.record("password.remove", Some(user_id.into()), "success", "", meta)
        .await;
    Ok(Change::Done)
}
