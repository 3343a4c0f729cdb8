//! Users: create (optionally with a password), list, update their email, name and standard
//! claims, disable.

use super::{Operator, OpsError, OpsResult};
use crate::auth::password;
use crate::domain::{Address, NewUser, Profile, User};

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

    /// Lets a disabled user sign in again.
    pub async fn enable_user(&self, username: &str) -> OpsResult<User> {
        let user = self.user_by_name(username).await?;
        self.repos
            .users
            .set_disabled(&user.id, false, self.now())
            .await?;
        self.record("user.enable", Some(&user.id), None).await;
        Ok(User {
            disabled: false,
            ..user
        })
    }

    /// Disables a user: they can no longer sign in, their sessions end and their grants (refresh
    /// and access tokens) are revoked at once. The last active administrator cannot be disabled.
    pub async fn disable_user(&self, username: &str) -> OpsResult<User> {
        let user = self.user_by_name(username).await?;
        if !self
            .repos
            .users
            .disable_keeping_an_admin(&user.id, self.now())
            .await?
        {
            return Err(super::accounts::last_admin(username));
        }
        self.repos.sessions.delete_all_for_user(&user.id).await?;
        self.repos
            .tokens
            .revoke_user_grants(&user.id, self.now())
            .await?;
        self.record("user.disable", Some(&user.id), None).await;
        Ok(self.repos.users.by_id(&user.id).await?.unwrap_or(User {
            disabled: true,
            ..user
        }))
    }
}

/// A user field an operator can set: the email, the name, and the standard claims of OIDC Core
/// §5.1 (`preferred_username` is the username and `updated_at` is kept by the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Name,
    GivenName,
    FamilyName,
    MiddleName,
    Nickname,
    Profile,
    Picture,
    Website,
    Gender,
    Birthdate,
    Zoneinfo,
    Locale,
    PhoneNumber,
    PhoneNumberVerified,
    AddressFormatted,
    StreetAddress,
    Locality,
    Region,
    PostalCode,
    Country,
}

/// Changes to a user: each field set to a value, or cleared with `None` (an empty value clears
/// too).
#[derive(Debug, Clone, Default)]
pub struct UserChanges(pub Vec<(Field, Option<String>)>);

fn flag(value: Option<String>) -> OpsResult<bool> {
    match value.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(OpsError::Invalid(format!(
            "phone_number_verified must be true or false, not {other:?}"
        ))),
    }
}

fn address(p: &mut Profile) -> &mut Address {
    p.address.get_or_insert_with(Address::default)
}

/// Applies the changes to `user`; a changed email is no longer verified.
fn apply(user: &mut User, changes: UserChanges) -> OpsResult<()> {
    for (field, value) in changes.0 {
        let value = value.filter(|v| !v.is_empty());
        let p = &mut user.profile;
        match field {
            Field::Email => {
                if value != user.email {
                    user.email_verified = false;
                }
                user.email = value;
            }
            Field::Name => user.name = value,
            Field::GivenName => p.given_name = value,
            Field::FamilyName => p.family_name = value,
            Field::MiddleName => p.middle_name = value,
            Field::Nickname => p.nickname = value,
            Field::Profile => p.profile = value,
            Field::Picture => p.picture = value,
            Field::Website => p.website = value,
            Field::Gender => p.gender = value,
            Field::Birthdate => p.birthdate = value,
            Field::Zoneinfo => p.zoneinfo = value,
            Field::Locale => p.locale = value,
            Field::PhoneNumber => p.phone_number = value,
            Field::PhoneNumberVerified => p.phone_number_verified = flag(value)?,
            Field::AddressFormatted => address(p).formatted = value,
            Field::StreetAddress => address(p).street_address = value,
            Field::Locality => address(p).locality = value,
            Field::Region => address(p).region = value,
            Field::PostalCode => address(p).postal_code = value,
            Field::Country => address(p).country = value,
        }
    }
    if user.profile.address.as_ref().is_some_and(|a| a.is_empty()) {
        user.profile.address = None;
    }
    Ok(())
}

impl Operator {
    /// Sets or clears a user's email, name and standard claims, after checking every value.
    pub async fn update_user(&self, username: &str, changes: UserChanges) -> OpsResult<User> {
        let mut user = self.user_by_name(username).await?;
        apply(&mut user, changes)?;
        let check = NewUser {
            username: user.username.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            is_admin: user.is_admin,
        };
        check.validate().map_err(OpsError::Invalid)?;
        user.profile.validate().map_err(OpsError::Invalid)?;
        let user = self.repos.users.update(&user, self.now()).await?;
        self.record("user.update", Some(&user.id), None).await;
        Ok(user)
    }
}
