//! Users: create (optionally with a password), list, disable.

use super::{Operator, OpsError, OpsResult};
use crate::auth::password;
use crate::domain::{NewUser, User};

/// A user to create; the password, if any, is checked against the policy before anything is
/// written.
#[derive(Clone)]
pub struct CreateUser {
    pub user: NewUser,
    pub password: Option<String>,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Operator {
    pub async fn create_user(&self, req: CreateUser) -> OpsResult<User> {
        req.user.validate().map_err(OpsError::Invalid)?;
        let phc = match &req.password {
            Some(pw) => {
                password::check_policy(pw).map_err(OpsError::Invalid)?;
                Some(self.hasher.hash(pw).await?)
            }
            None => None,
        };
        let now = self.now();
        let user = self.repos.users.create(&req.user, now).await?;
        if let Some(phc) = &phc {
            self.repos
                .passwords
                .set(&user.id, phc, now)
                .await
                .map_err(|e| {
                    OpsError::Internal(anyhow::anyhow!(
                        "user {:?} was created but its password was not saved: {e}",
                        user.username
                    ))
                })?;
        }
        self.record("user.create", Some(&user.id), None).await;
        Ok(user)
    }

    pub async fn list_users(&self) -> OpsResult<Vec<User>> {
        Ok(self.repos.users.list().await?)
    }

    pub async fn user_by_name(&self, username: &str) -> OpsResult<User> {
        self.repos
            .users
            .by_username(username)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("user {username:?}")))
    }

    /// Disables a user: they can no longer sign in, and their sessions and tokens stop working
    /// on the next request. The last active administrator cannot be disabled.
    pub async fn disable_user(&self, username: &str) -> OpsResult<User> {
        let user = self.user_by_name(username).await?;
        if user.is_admin && !user.disabled && self.repos.users.count_active_admins().await? <= 1 {
            return Err(OpsError::Refused(format!(
                "{username:?} is the last active administrator; make another administrator first"
            )));
        }
        self.repos
            .users
            .set_disabled(&user.id, true, self.now())
            .await?;
        self.record("user.disable", Some(&user.id), None).await;
        Ok(self.repos.users.by_id(&user.id).await?.unwrap_or(User {
            disabled: true,
            ..user
        }))
    }
}
