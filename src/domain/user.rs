//! People who sign in.

use crate::clock::UnixTime;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable, never reassigned: the OIDC `sub`.
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub is_admin: bool,
}

impl NewUser {
    /// Usernames: 1–64 characters of letters, digits and `._-@`; a clear message otherwise.
    pub fn validate(&self) -> Result<(), String> {
        let u = &self.username;
        if u.is_empty() || u.len() > 64 {
            return Err("username must be 1 to 64 characters".into());
        }
        if !u
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err("username may contain only letters, digits and . _ - @".into());
        }
        if let Some(e) = &self.email {
            let ok = e.len() <= 254
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
                && !e.chars().any(|c| c.is_whitespace());
            if !ok {
                return Err(format!("email {e:?} is not a valid address"));
            }
        }
        Ok(())
    }
}
