//! What administrators do to existing accounts beyond enabling and disabling: the admin flag,
//! groups, deletion (never of the last administrator), and a recovery link bound to the account.

use super::{Actor, Operator, OpsError, OpsResult};
use crate::domain::{EmailPurpose, StoredPasskey, User};
use crate::store::PasskeyRemoval;

/// How long a recovery link made by an administrator works.
pub const RECOVERY_LINK_TTL: i64 = 72 * 3600;

/// Where a recovery link points: the same page as the self-service recovery link.
pub fn recovery_url(issuer: &str, secret: &str) -> String {
    format!("{issuer}{}/{secret}", crate::auth::email::RECOVER_PATH)
}

impl Operator {
    /// Makes a user an administrator or not. The last active administrator cannot be demoted.
    pub async fn set_admin(&self, username: &str, is_admin: bool) -> OpsResult<User> {
        let user = self.user_by_name(username).await?;
        if !self
            .repos
            .users
            .set_admin(&user.id, is_admin, self.now())
            .await?
        {
            return Err(last_admin(username));
        }
        let event = if is_admin {
            "user.admin_grant"
        } else {
            "user.admin_revoke"
        };
        self.record(event, Some(&user.id), None).await;
        Ok(User { is_admin, ..user })
    }

    /// Deletes a user with their sessions, tokens, passkeys and memberships. The last active
    /// administrator cannot be deleted. Their audit events stay.
    pub async fn delete_user(&self, username: &str) -> OpsResult<()> {
        let user = self.user_by_name(username).await?;
        if !self.repos.users.delete(&user.id).await? {
            return Err(last_admin(username));
        }
        self.record("user.delete", Some(&user.id), None).await;
        Ok(())
    }

    /// Puts a user in exactly these groups (ids).
    pub async fn set_user_groups(&self, username: &str, group_ids: &[String]) -> OpsResult<()> {
        let user = self.user_by_name(username).await?;
        self.known_groups(group_ids).await?;
        let current = self.repos.groups.ids_for_user(&user.id).await?;
        for g in group_ids.iter().filter(|g| !current.contains(g)) {
            self.repos.groups.add_member(g, &user.id).await?;
        }
        for g in current.iter().filter(|g| !group_ids.contains(g)) {
            self.repos.groups.remove_member(g, &user.id).await?;
        }
        self.record("user.groups", Some(&user.id), None).await;
        Ok(())
    }

    /// A single-use link bound to the account that lets its owner register a new passkey and
    /// sign in (no cooling-off: an administrator vouches for it), valid 72 hours. Returned to
    /// be shown, or with `send` emailed to the account's address. Disabled accounts get none.
    pub async fn recovery_link(&self, username: &str, send: bool) -> OpsResult<String> {
        let user = self.user_by_name(username).await?;
        if user.disabled {
            return Err(OpsError::Refused(format!(
                "{username:?} is disabled; enable the account first"
            )));
        }
        let to = match (&user.email, send, &self.mail) {
            (_, false, _) => None,
            (None, true, _) => {
                return Err(OpsError::Invalid(format!(
                    "{username:?} has no email address to send the link to"
                )));
            }
            (Some(_), true, None) => {
                return Err(OpsError::Invalid("mail is not set up here".into()));
            }
            (Some(email), true, Some(mail)) => Some((email.clone(), mail)),
        };
        let (token, secret) = crate::auth::email::issue(
            self.repos.email_tokens.as_ref(),
            &user,
            EmailPurpose::Recovery,
            user.email.as_deref().unwrap_or_default(),
            (self.now(), 0, RECOVERY_LINK_TTL),
        )
        .await?;
        self.record("user.recovery_link", Some(&user.id), None)
            .await;
        if let Some((address, (mail, issuer))) = to {
            let who = match &self.actor {
                Actor::Admin { .. } => "An administrator of Keyway",
                Actor::Cli | Actor::Schedule => "An administrator",
            };
            let link = recovery_url(issuer, &secret);
            let message = crate::mail::messages::Action {
                issuer: issuer.clone(),
                subject: "A link to get back into your account".into(),
                heading: "Get back into your account".into(),
                lead: format!(
                    "{who} made this link so that you can register a new passkey for the account {} and sign in.",
                    user.username
                ),
                button: "Register a new passkey".into(),
                cancel: Some(format!("{link}/cancel")),
                link,
                notes: vec![format!(
                    "It works once, until {}.",
                    crate::clock::for_people(token.expires_at)
                )],
            }
            .render()?;
            mail.queue(&address, message, "recovery", Some(&user.id))
                .await?;
        }
        Ok(secret)
    }
}

impl Operator {
    /// The user's passkeys, oldest first.
    pub async fn user_passkeys(&self, username: &str) -> OpsResult<Vec<StoredPasskey>> {
        let user = self.user_by_name(username).await?;
        Ok(self.repos.passkeys.list_for_user(&user.id).await?)
    }

    /// Removes one of the user's passkeys, never their last way to sign in.
    pub async fn remove_user_passkey(&self, username: &str, passkey_id: &str) -> OpsResult<()> {
        let user = self.user_by_name(username).await?;
        match self.repos.passkeys.remove(&user.id, passkey_id).await? {
            PasskeyRemoval::Removed => {
                self.record("passkey.remove", Some(&user.id), None).await;
                Ok(())
            }
            PasskeyRemoval::Last => Err(OpsError::Refused(format!(
                "this is {username:?}'s only way to sign in; give them another first (a sign-in link)"
            ))),
        }
    }

    /// Ends every session of the user (their tokens stay; disabling revokes those too).
    pub async fn sign_out_user(&self, username: &str) -> OpsResult<u64> {
        let user = self.user_by_name(username).await?;
        let ended = self.repos.sessions.delete_all_for_user(&user.id).await?;
        self.record("user.signout", Some(&user.id), None).await;
        Ok(ended)
    }
}

pub(super) fn last_admin(username: &str) -> OpsError {
    OpsError::Refused(format!(
        "{username:?} is the last active administrator; make another administrator first"
    ))
}
