//! Security notices by email: something changed on the account (a passkey added, the address
//! changed, signed out everywhere). On unless the user turned them off; the old address hears
//! of an address change whatever the setting.

use super::{Authenticator, CredentialResult};
use crate::clock::for_people;
use crate::domain::{RequestMeta, User};
use crate::mail::messages::Notice;

/// Tells the user about a change to their account, unless they turned notices off.
pub async fn notify(
    auth: &Authenticator,
    user: &User,
    heading: &str,
    what: &str,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    match &user.email {
        Some(to) if user.security_notices => send(auth, user, to, heading, what, meta).await,
        _ => Ok(()),
    }
}

pub async fn send(
    auth: &Authenticator,
    user: &User,
    to: &str,
    heading: &str,
    what: &str,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    let message = Notice {
        issuer: auth.issuer.clone(),
        heading: heading.into(),
        what: what.into(),
        ip: meta.ip.clone().unwrap_or_else(|| "unknown".into()),
        when: for_people(auth.now()),
    }
    .render()?;
    auth.mail
        .queue(to, message, "notice", Some(&user.id))
        .await?;
    Ok(())
}
