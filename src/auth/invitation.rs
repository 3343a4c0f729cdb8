//! Redeeming an invitation: the invitee picks a username, registers a passkey, and their account
//! is created in the same write that uses up one use of the invitation (`InvitationRepo::redeem`),
//! so a failed or abandoned ceremony creates nothing and uses nothing.

use super::passkey::{self, RegistrationFor};
use super::{Authenticated, Authenticator, CredentialError, CredentialResult};
use crate::crypto::token_hash;
use crate::domain::{AuthMethod, Invitation, InvitationStatus, NewUser, RequestMeta};
use crate::store::{Redemption, StoreError};
use serde_json::Value;
use tower_sessions::Session;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

/// Why an invitation cannot be used, in words for its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Expired, revoked, used up, or no such link (`None`).
    Closed(Option<InvitationStatus>),
    /// Something the invitee can fix on the form.
    Invalid(String),
}

/// The pending invitation a link's token stands for.
pub async fn pending(
    auth: &Authenticator,
    token: &str,
) -> CredentialResult<Result<Invitation, Problem>> {
    let found = auth.invitations.by_token_hash(&token_hash(token)).await?;
    Ok(match found {
        None => Err(Problem::Closed(None)),
        Some(i) => match i.status(auth.now()) {
            InvitationStatus::Pending => Ok(i),
            other => Err(Problem::Closed(Some(other))),
        },
    })
}

/// The account an invitee asks for, checked: a valid, free username and a sensible name.
async fn check_account(
    auth: &Authenticator,
    invitation: &Invitation,
    username: &str,
    name: &str,
) -> CredentialResult<Result<NewUser, Problem>> {
    let name = name.trim();
    let user = NewUser {
        username: username.trim().to_owned(),
        email: invitation.email.clone(),
        name: (!name.is_empty()).then(|| name.to_owned()),
        is_admin: invitation.is_admin,
    };
    if let Err(why) = user.validate() {
        return Ok(Err(Problem::Invalid(capitalise(&why))));
    }
    if name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Ok(Err(Problem::Invalid(
            "The display name must be at most 256 characters, without control characters.".into(),
        )));
    }
    if auth.users.by_username(&user.username).await?.is_some() {
        return Ok(Err(Problem::Invalid(taken(&user.username))));
    }
    Ok(Ok(user))
}

fn taken(username: &str) -> String {
    format!("The username {username:?} is taken. Choose another one.")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str().trim_end_matches('.')),
        None => String::new(),
    }
}

/// Starts the passkey registration that will create the account: the options for the browser.
pub async fn start(
    auth: &Authenticator,
    session: &Session,
    token: &str,
    username: &str,
    name: &str,
) -> CredentialResult<Result<Value, Problem>> {
    let invitation = match pending(auth, token).await? {
        Ok(i) => i,
        Err(p) => return Ok(Err(p)),
    };
    let user = match check_account(auth, &invitation, username, name).await? {
        Ok(u) => u,
        Err(p) => return Ok(Err(p)),
    };
    let purpose = RegistrationFor::Invitation {
        token_hash: token_hash(token),
        username: user.username,
        name: user.name,
    };
    Ok(Ok(
        passkey::start_registration(auth, session, purpose).await?
    ))
}

/// Verifies the passkey and creates the account with it, signed in. Refused when the
/// registration was not started for this invitation in this browser.
pub async fn finish(
    auth: &Authenticator,
    session: &Session,
    token: &str,
    credential: &RegisterPublicKeyCredential,
    meta: &RequestMeta,
) -> CredentialResult<Result<Authenticated, Problem>> {
    let new = passkey::finish_registration(auth, session, credential, meta).await?;
    let RegistrationFor::Invitation {
        token_hash: hash,
        username,
        name,
    } = &new.purpose
    else {
        return Err(CredentialError::Refused);
    };
    if *hash != token_hash(token) {
        return Err(CredentialError::Refused);
    }
    let invitation = match pending(auth, token).await? {
        Ok(i) => i,
        Err(p) => return Ok(Err(p)),
    };
    let redemption = Redemption {
        user: NewUser {
            username: username.clone(),
            email: invitation.email.clone(),
            name: name.clone(),
            is_admin: invitation.is_admin,
        },
        // Redeeming a link that went out by email proves the address; a printed link does not.
        email_verified: invitation.emailed,
        groups: invitation.groups.clone(),
        user_handle: new.user_handle.clone(),
        passkey: new.passkey.clone(),
    };
    let user = match auth.invitations.redeem(hash, &redemption, auth.now()).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Ok(Err(pending(auth, token)
                .await?
                .err()
                .unwrap_or(Problem::Closed(None))));
        }
        Err(StoreError::Conflict(what)) if what.starts_with("passkey") => {
            return Ok(Err(Problem::Invalid(
                "This passkey is registered to another account already.".into(),
            )));
        }
        Err(StoreError::Conflict(what)) if what.starts_with("email") => {
            return Ok(Err(Problem::Invalid(
                "An account with this email address exists already. Sign in to it, or ask for \
                 another invitation."
                    .into(),
            )));
        }
        Err(StoreError::Conflict(_)) => return Ok(Err(Problem::Invalid(taken(username)))),
        Err(e) => return Err(e.into()),
    };
    let detail = format!("invitation {}", invitation.id);
    auth.record(
        "invitation.redeem",
        Some(user.id.clone()),
        "success",
        &detail,
        meta,
    )
    .await;
    auth.record(
        "passkey.register",
        Some(user.id.clone()),
        "success",
        &new.passkey.name,
        meta,
    )
    .await;
    let kind = if new.passkey.backup_eligible {
        AuthMethod::Swk
    } else {
        AuthMethod::Hwk
    };
    Ok(Ok(Authenticated {
        user,
        amr: vec![kind, AuthMethod::User],
        auth_time: auth.now(),
    }))
}
