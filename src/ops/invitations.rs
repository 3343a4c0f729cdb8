//! Invitations: create (the token is returned once, only its hash is kept), list, revoke.

use super::{Actor, Operator, OpsError, OpsResult};
use crate::domain::{Invitation, NewUser};

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct CreateInvitation {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub is_admin: bool,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Accounts it may create.
    pub uses: u32,
    /// Email the link to `email` (through the outbox).
    pub send: bool,
}

/// The link an invitation's token makes, from the configured issuer (never a request's Host).
pub fn invitation_url(issuer: &str, token: &str) -> String {
    format!("{issuer}/invite/{token}")
}

/// Longest an invitation may live: 90 days.
pub const MAX_EXPIRY: i64 = 90 * 86400;

impl Operator {
    /// Creates an invitation; returns it with its token, which exists nowhere else.
    pub async fn create_invitation(
        &self,
        req: CreateInvitation,
    ) -> OpsResult<(Invitation, String)> {
        if req.send && req.email.is_none() {
            return Err(OpsError::Invalid(
                "--send needs --email: the address to send the invitation to".into(),
            ));
        }
        if req.send && self.mail.is_none() {
            return Err(OpsError::Invalid("mail is not set up here".into()));
        }
        if req.uses == 0 || req.uses > 10_000 {
            return Err(OpsError::Invalid("uses must be between 1 and 10000".into()));
        }
        if req.expires_in <= 0 || req.expires_in > MAX_EXPIRY {
            return Err(OpsError::Invalid(
                "expires must be more than 0 and at most 90 days".into(),
            ));
        }
        // The same rules as an account's: checked now, not when someone redeems it.
        NewUser {
            username: req.username.clone().unwrap_or_else(|| "invitee".into()),
            email: req.email.clone(),
            name: req.name.clone(),
            is_admin: req.is_admin,
        }
        .validate()
        .map_err(OpsError::Invalid)?;
        if let Some(g) = req
            .groups
            .iter()
            .find(|g| g.trim().is_empty() || g.len() > 64)
        {
            return Err(OpsError::Invalid(format!(
                "group {g:?} must be 1 to 64 characters"
            )));
        }
        if req
            .groups
            .iter()
            .any(|g| g.trim().eq_ignore_ascii_case(crate::domain::ADMIN_GROUP))
        {
            return Err(OpsError::Invalid(format!(
                "group {:?} is reserved for administrators: use --admin",
                crate::domain::ADMIN_GROUP
            )));
        }
        let now = self.now();
        let token = crate::crypto::random_token()?;
        let invitation = Invitation {
            id: crate::crypto::random_id()?,
            username: req.username,
            email: req.email,
            name: req.name,
            groups: req.groups,
            is_admin: req.is_admin,
            uses: req.uses,
            used: 0,
            created_by: match &self.actor {
                Actor::Cli | Actor::Schedule => "cli".into(),
                Actor::Admin { user_id } => user_id.clone(),
            },
            created_at: now,
            expires_at: now + req.expires_in,
            revoked_at: None,
            emailed: req.send,
        };
        self.repos
            .invitations
            .create(&invitation, &crate::crypto::token_hash(&token))
            .await?;
        self.record("invitation.create", None, None).await;
        if invitation.emailed {
            self.send_invitation(&invitation, &token).await?;
        }
        Ok((invitation, token))
    }

    /// A new link for a pending invitation (the old one stops working), shown this once or,
    /// with `send`, emailed to the invitation's address.
    pub async fn reissue_invitation(
        &self,
        id: &str,
        send: bool,
    ) -> OpsResult<(Invitation, String)> {
        let mut invitation = self
            .repos
            .invitations
            .get(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("invitation {id:?}")))?;
        if send && invitation.email.is_none() {
            return Err(OpsError::Invalid(
                "this invitation has no email address to send the link to".into(),
            ));
        }
        if send && self.mail.is_none() {
            return Err(OpsError::Invalid("mail is not set up here".into()));
        }
        let token = crate::crypto::random_token()?;
        let hash = crate::crypto::token_hash(&token);
        if !self
            .repos
            .invitations
            .reissue(id, &hash, send, self.now())
            .await?
        {
            return Err(OpsError::Refused(
                "the invitation is no longer pending (expired, revoked or used up)".into(),
            ));
        }
        invitation.emailed = send;
        self.record("invitation.reissue", None, None).await;
        if send {
            self.send_invitation(&invitation, &token).await?;
        }
        Ok((invitation, token))
    }

    /// Emails the invitation's link to its address.
    async fn send_invitation(&self, invitation: &Invitation, token: &str) -> OpsResult<()> {
        let (Some((mail, issuer)), Some(to)) = (&self.mail, &invitation.email) else {
            return Ok(());
        };
        let inviter = match &self.actor {
            Actor::Cli | Actor::Schedule => "An administrator".to_owned(),
            Actor::Admin { user_id } => self
                .repos
                .users
                .by_id(user_id)
                .await?
                .map(|u| u.name.unwrap_or(u.username))
                .unwrap_or_else(|| "An administrator".into()),
        };
        let message = crate::mail::messages::Invitation {
            issuer: issuer.clone(),
            inviter,
            link: invitation_url(issuer, token),
            is_admin: invitation.is_admin,
            expires: crate::clock::for_people(invitation.expires_at),
        }
        .render()?;
        mail.queue(to, message, "invitation", None).await?;
        self.record("invitation.send", None, None).await;
        Ok(())
    }

    pub async fn list_invitations(&self) -> OpsResult<Vec<Invitation>> {
        Ok(self.repos.invitations.list().await?)
    }

    pub async fn revoke_invitation(&self, id: &str) -> OpsResult<Invitation> {
        self.repos.invitations.revoke(id, self.now()).await?;
        self.record("invitation.revoke", None, None).await;
        self.repos
            .invitations
            .get(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("invitation {id:?}")))
    }
}
