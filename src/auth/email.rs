//! The account's email address: verification, change (effective only when the new address
//! confirms; the old one is told), security notices, and recovery for someone who lost every
//! passkey (a link that opens after a cooling-off period, with an immediate notice to cancel).

use super::account::Change;
use super::{Authenticator, CredentialResult};
use crate::clock::{UnixTime, for_people};
use crate::crypto::{random_token, token_hash};
use crate::domain::{EmailPurpose, EmailToken, NewUser, RequestMeta, User};
use crate::mail::messages::Action;
use crate::store::StoreError;

/// How long verification and change links work.
const LINK_TTL: i64 = 24 * 3600;
/// How long a recovery link works once open.
const RECOVERY_TTL: i64 = 24 * 3600;

fn from_where(meta: &RequestMeta, now: UnixTime) -> String {
    format!(
        "from the address {} on {}",
        meta.ip.as_deref().unwrap_or("unknown"),
        for_people(now)
    )
}

/// Makes a token for `user` and returns it with its link.
async fn token(
    auth: &Authenticator,
    user: &User,
    purpose: EmailPurpose,
    email: &str,
    delay: i64,
    ttl: i64,
) -> CredentialResult<(EmailToken, String)> {
    let when = (auth.now(), delay, ttl);
    Ok(issue(auth.email_tokens.as_ref(), user, purpose, email, when).await?)
}

/// Stores a new link of `purpose` for `user`, made at `now`, opening `delay` seconds later and
/// working `ttl` seconds from then; returns it with its secret (only the hash is stored). The
/// administrator's sign-in link is one of these too.
pub async fn issue(
    tokens: &dyn crate::store::EmailTokenRepo,
    user: &User,
    purpose: EmailPurpose,
    email: &str,
    (now, delay, ttl): (UnixTime, i64, i64),
) -> Result<(EmailToken, String), StoreError> {
    let secret = random_token().map_err(StoreError::Backend)?;
    let t = EmailToken {
        id: crate::crypto::random_id().map_err(StoreError::Backend)?,
        token_hash: token_hash(&secret),
        purpose,
        user_id: user.id.clone(),
        email: email.to_owned(),
        created_at: now,
        not_before: now + delay,
        expires_at: now + delay + ttl,
        used_at: None,
        cancelled_at: None,
    };
    tokens.create(&t).await?;
    Ok((t, secret))
}

fn link(auth: &Authenticator, path: &str, secret: &str) -> String {
    format!("{}{path}/{secret}", auth.issuer)
}

/// Sends a link that verifies the account's current address.
pub async fn send_verification(
    auth: &Authenticator,
    user: &User,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    let Some(email) = user.email.clone().filter(|_| !user.email_verified) else {
        return Ok(Change::Refused(
            "There is no unverified address to verify.".into(),
        ));
    };
    let (_, secret) = token(auth, user, EmailPurpose::Verify, &email, 0, LINK_TTL).await?;
    let message = Action {
        issuer: auth.issuer.clone(),
        subject: "Confirm your email address".into(),
        heading: "Confirm your email address".into(),
        lead: format!(
            "{} asked to confirm that this address is theirs, {}.",
            user.username,
            from_where(meta, auth.now())
        ),
        button: "Confirm this address".into(),
        link: link(auth, CONFIRM_PATH, &secret),
        notes: vec!["The link works for 24 hours.".into()],
        cancel: None,
    }
    .render()?;
    auth.mail
        .queue(&email, message, "verify_email", Some(&user.id))
        .await?;
    auth.record(
        "email.verify_sent",
        Some(user.id.clone()),
        "success",
        &email,
        meta,
    )
    .await;
    Ok(Change::Done)
}

/// Sends a link to `new_email`; the account moves to it only when the link is opened.
pub async fn request_change(
    auth: &Authenticator,
    user: &User,
    new_email: &str,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    let new_email = new_email.trim().to_owned();
    let check = NewUser {
        username: user.username.clone(),
        email: Some(new_email.clone()),
        name: None,
        is_admin: false,
    };
    if check.validate().is_err() || new_email.is_empty() {
        return Ok(Change::Refused(format!(
            "{new_email:?} is not an email address."
        )));
    }
    if user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(&new_email))
    {
        return Ok(Change::Refused("That is your address already.".into()));
    }
    if auth.users.by_email(&new_email).await?.is_some() {
        return Ok(Change::Refused(
            "That address belongs to another account.".into(),
        ));
    }
    let (_, secret) = token(auth, user, EmailPurpose::Change, &new_email, 0, LINK_TTL).await?;
    let message = Action {
        issuer: auth.issuer.clone(),
        subject: "Confirm your new email address".into(),
        heading: "Confirm your new email address".into(),
        lead: format!(
            "{} asked to use this address for their account, {}.",
            user.username,
            from_where(meta, auth.now())
        ),
        button: "Use this address".into(),
        link: link(auth, CONFIRM_PATH, &secret),
        notes: vec!["Nothing changes until you open the link; it works for 24 hours.".into()],
        cancel: None,
    }
    .render()?;
    auth.mail
        .queue(&new_email, message, "change_email", Some(&user.id))
        .await?;
    auth.record(
        "email.change_requested",
        Some(user.id.clone()),
        "success",
        &new_email,
        meta,
    )
    .await;
    Ok(Change::Done)
}

/// Where verification and change links point.
pub const CONFIRM_PATH: &str = "/email/confirm";
/// Where recovery links point.
pub const RECOVER_PATH: &str = "/recover";

/// The live token a link stands for.
pub async fn find(auth: &Authenticator, secret: &str) -> CredentialResult<Option<EmailToken>> {
    let t = auth.email_tokens.by_token_hash(&token_hash(secret)).await?;
    Ok(t.filter(|t| t.is_live(auth.now())))
}

/// Opens a verification or change link: the address is verified, or the account moves to the
/// new address (verified) and the old address is told. `Err` words for the page.
pub async fn confirm(
    auth: &Authenticator,
    secret: &str,
    meta: &RequestMeta,
) -> CredentialResult<Result<(EmailPurpose, String), String>> {
    const GONE: &str = "This link has expired or was used already.";
    let Some(t) = find(auth, secret).await? else {
        return Ok(Err(GONE.into()));
    };
    if t.purpose == EmailPurpose::Recovery {
        return Ok(Err(GONE.into()));
    }
    let Some(user) = auth.users.by_id(&t.user_id).await? else {
        return Ok(Err(GONE.into()));
    };
    if !auth.email_tokens.consume(&t.id, auth.now()).await? {
        return Ok(Err(GONE.into()));
    }
    let old = user.email.clone();
    let mut updated = user.clone();
    match t.purpose {
        EmailPurpose::Verify if old.as_deref() == Some(t.email.as_str()) => {
            updated.email_verified = true;
        }
        EmailPurpose::Verify => {
            return Ok(Err(
                "The account's address has changed since this link was sent.".into(),
            ));
        }
        _ => {
            updated.email = Some(t.email.clone());
            updated.email_verified = true;
        }
    }
    match auth.users.update(&updated, auth.now()).await {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            return Ok(Err("That address belongs to another account now.".into()));
        }
        Err(e) => return Err(e.into()),
    }
    let event = match t.purpose {
        EmailPurpose::Verify => "email.verified",
        _ => "email.changed",
    };
    auth.record(event, Some(user.id.clone()), "success", &t.email, meta)
        .await;
    if t.purpose == EmailPurpose::Change
        && let Some(old) = old
    {
        // The old address always hears of it, notices on or off: it may be the owner's only
        // way to learn that someone took the account.
        let what = format!(
            "The account {} now uses the address {}.",
            user.username, t.email
        );
        super::notices::send(auth, &user, &old, "your email address changed", &what, meta).await?;
    }
    Ok(Ok((t.purpose, t.email)))
}

/// Turns the user's security notices on or off.
pub async fn set_notices(
    auth: &Authenticator,
    user: &User,
    on: bool,
    meta: &RequestMeta,
) -> CredentialResult<Change> {
    let mut u = user.clone();
    u.security_notices = on;
    auth.users.update(&u, auth.now()).await?;
    let detail = if on { "on" } else { "off" };
    auth.record(
        "email.notices",
        Some(user.id.clone()),
        "success",
        detail,
        meta,
    )
    .await;
    Ok(Change::Done)
}

/// "Lost your passkey?": a recovery link to the account's verified address, opening after
/// `delay` seconds, and in the same message a link to cancel it. Limited like sign-in links; the
/// same answer whatever the address.
pub async fn request_recovery(
    auth: &std::sync::Arc<Authenticator>,
    email: &str,
    delay: i64,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    let address = email.trim().to_lowercase();
    let ip = crate::throttle::ip_key(meta.ip.as_deref());
    if auth.throttles.magic_ip.attempt(&ip).is_err()
        || auth.throttles.magic_address.attempt(&address).is_err()
    {
        auth.record(
            "recovery.request",
            None,
            "limited",
            "too many requests",
            meta,
        )
        .await;
        return Ok(());
    }
    let user = match auth.users.by_email(&address).await? {
        Some(u) if !u.disabled && u.email_verified && !address.is_empty() => u,
        _ => {
            auth.record(
                "recovery.request",
                None,
                "failure",
                "no active account with that verified address",
                meta,
            )
            .await;
            return Ok(());
        }
    };
    // The same work before the answer as for an unknown address: one read, one audit write;
    // the link is made and queued after it.
    auth.record(
        "recovery.request",
        Some(user.id.clone()),
        "success",
        "sent",
        meta,
    )
    .await;
    let (auth, meta) = (auth.clone(), meta.clone());
    tokio::spawn(async move {
        if let Err(e) = send_recovery(&auth, &user, &address, delay, &meta).await {
            tracing::warn!(error = %e, "cannot send a recovery link");
        }
    });
    Ok(())
}

async fn send_recovery(
    auth: &Authenticator,
    user: &User,
    address: &str,
    delay: i64,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    let (t, secret) = token(
        auth,
        user,
        EmailPurpose::Recovery,
        address,
        delay,
        RECOVERY_TTL,
    )
    .await?;
    let opens = if delay > 0 {
        format!(
            "The link opens on {}, not before: the wait gives you time to cancel if this was not you.",
            for_people(t.not_before)
        )
    } else {
        "The link works now.".into()
    };
    let message = Action {
        issuer: auth.issuer.clone(),
        subject: "Recover your account".into(),
        heading: "Recover your account".into(),
        lead: format!(
            "Someone asked to recover the account {} because its passkeys are lost, {}.",
            user.username,
            from_where(meta, auth.now())
        ),
        button: "Register a new passkey".into(),
        link: link(auth, RECOVER_PATH, &secret),
        notes: vec![opens, "It works for 24 hours after it opens.".into()],
        cancel: Some(format!("{}/cancel", link(auth, RECOVER_PATH, &secret))),
    }
    .render()?;
    auth.mail
        .queue(address, message, "recovery", Some(&user.id))
        .await?;
    Ok(())
}

/// Cancels a recovery link; true when there was one to cancel.
pub async fn cancel_recovery(
    auth: &Authenticator,
    secret: &str,
    meta: &RequestMeta,
) -> CredentialResult<bool> {
    let Some(t) = find(auth, secret).await? else {
        return Ok(false);
    };
    if t.purpose != EmailPurpose::Recovery || !auth.email_tokens.cancel(&t.id, auth.now()).await? {
        return Ok(false);
    }
    auth.record(
        "recovery.cancel",
        Some(t.user_id),
        "success",
        "cancelled by link",
        meta,
    )
    .await;
    Ok(true)
}

/// Where a recovery link stands.
#[derive(Debug)]
pub enum Recovery {
    /// Expired, used, cancelled or unknown.
    Gone,
    /// Waiting out its cooling-off period until this time.
    Waiting(UnixTime),
    /// Open: the user may register a new passkey.
    Open { username: String },
}

pub async fn recovery(auth: &Authenticator, secret: &str) -> CredentialResult<Recovery> {
    let Some(t) = find(auth, secret)
        .await?
        .filter(|t| t.purpose == EmailPurpose::Recovery)
    else {
        return Ok(Recovery::Gone);
    };
    if t.not_before > auth.now() {
        return Ok(Recovery::Waiting(t.not_before));
    }
    Ok(match auth.users.by_id(&t.user_id).await? {
        Some(u) if !u.disabled => Recovery::Open {
            username: u.username,
        },
        _ => Recovery::Gone,
    })
}

/// Starts registering the new passkey of an open recovery link.
pub async fn start_recovery(
    auth: &Authenticator,
    session: &tower_sessions::Session,
    secret: &str,
) -> CredentialResult<Option<serde_json::Value>> {
    let Recovery::Open { .. } = recovery(auth, secret).await? else {
        return Ok(None);
    };
    let Some(t) = find(auth, secret).await? else {
        return Ok(None);
    };
    let purpose = super::passkey::RegistrationFor::Recovery {
        token_hash: t.token_hash,
        user_id: t.user_id,
    };
    Ok(Some(
        super::passkey::start_registration(auth, session, purpose).await?,
    ))
}

/// Finishes it: the link is used up, the passkey added, and the person signed in (amr `email`:
/// what let them in was the emailed link).
pub async fn finish_recovery(
    auth: &Authenticator,
    session: &tower_sessions::Session,
    secret: &str,
    credential: &webauthn_rs::prelude::RegisterPublicKeyCredential,
    meta: &RequestMeta,
) -> CredentialResult<Option<super::Authenticated>> {
    let new = super::passkey::finish_registration(auth, session, credential, meta).await?;
    let super::passkey::RegistrationFor::Recovery {
        token_hash: hash,
        user_id,
    } = new.purpose.clone()
    else {
        return Err(super::CredentialError::Refused);
    };
    let Some(t) = find(auth, secret).await? else {
        return Ok(None);
    };
    if t.token_hash != hash || t.user_id != user_id {
        return Err(super::CredentialError::Refused);
    }
    if !auth.email_tokens.consume(&t.id, auth.now()).await? {
        return Ok(None);
    }
    if let Change::Refused(why) = super::account::add_passkey(auth, &user_id, new, meta).await? {
        auth.record("recovery.complete", Some(user_id), "failure", &why, meta)
            .await;
        return Ok(None);
    }
    auth.record(
        "recovery.complete",
        Some(user_id.clone()),
        "success",
        "new passkey",
        meta,
    )
    .await;
    let Some(user) = auth.users.by_id(&user_id).await?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    Ok(Some(super::Authenticated {
        user,
        amr: vec![crate::domain::AuthMethod::Email],
        auth_time: auth.now(),
    }))
}
