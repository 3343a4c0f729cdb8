//! People who sign in.

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable, never reassigned: the OIDC `sub`.
    pub id: String,
    /// Also the `preferred_username` claim.
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The other standard claims of OIDC Core §5.1.
    pub profile: Profile,
    pub is_admin: bool,
    pub disabled: bool,
    /// Security notices by email (on unless the user turned them off).
    pub security_notices: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// The standard claims of OIDC Core §5.1 beyond name, username and email. Every field may be
/// absent; a relying party gets only those its scopes (or claims request) release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// URL of the user's profile page (the `profile` claim).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// URL of the user's picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// `YYYY-MM-DD`, `0000-MM-DD` (year withheld) or `YYYY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// An IANA time zone, e.g. `Europe/Paris`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// A BCP 47 language tag, e.g. `en-US`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// E.164 is recommended, e.g. `+1 (425) 555-1212`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// The `address` claim (OIDC Core §5.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self == &Address::default()
    }
}

/// Longest value a profile field may hold.
pub const MAX_FIELD_CHARS: usize = 256;

fn check_text(name: &str, v: &Option<String>) -> Result<(), String> {
    match v {
        Some(s) if s.trim().is_empty() => Err(format!("{name} must not be blank")),
        Some(s) if s.chars().count() > MAX_FIELD_CHARS => Err(format!(
            "{name} must be at most {MAX_FIELD_CHARS} characters"
        )),
        Some(s) if s.chars().any(char::is_control) => {
            Err(format!("{name} must not contain control characters"))
        }
        _ => Ok(()),
    }
}

fn check_url(name: &str, v: &Option<String>) -> Result<(), String> {
    check_text(name, v)?;
    if let Some(s) = v {
        let ok = url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
        if !ok {
            return Err(format!("{name} {s:?} must be an http(s) URL"));
        }
    }
    Ok(())
}

fn check_birthdate(v: &Option<String>) -> Result<(), String> {
    let Some(s) = v else { return Ok(()) };
    let digits = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_digit());
    let parts: Vec<&str> = s.split('-').collect();
    let ok = match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && (1..=12).contains(&m.parse::<u8>().unwrap_or(0))
                && (1..=31).contains(&d.parse::<u8>().unwrap_or(0))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "birthdate {s:?} must be YYYY-MM-DD, 0000-MM-DD or YYYY"
        ))
    }
}

impl Profile {
    /// A readable reason a field cannot be stored, or Ok.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("middle_name", &self.middle_name),
            ("nickname", &self.nickname),
            ("gender", &self.gender),
            ("zoneinfo", &self.zoneinfo),
            ("locale", &self.locale),
            ("phone_number", &self.phone_number),
        ] {
            check_text(name, v)?;
        }
        for (name, v) in [
            ("profile", &self.profile),
            ("picture", &self.picture),
            ("website", &self.website),
        ] {
            check_url(name, v)?;
        }
        check_birthdate(&self.birthdate)?;
        if let Some(a) = &self.address {
            for (name, v) in [
                ("address formatted", &a.formatted),
                ("street_address", &a.street_address),
                ("locality", &a.locality),
                ("region", &a.region),
                ("postal_code", &a.postal_code),
                ("country", &a.country),
            ] {
                check_text(name, v)?;
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_validation_names_the_field() {
        assert!(Profile::default().validate().is_ok());
        let ok = Profile {
            birthdate: Some("0000-04-30".into()),
            website: Some("https://example.com/".into()),
            ..Profile::default()
        };
        assert!(ok.validate().is_ok());
        for (p, field) in [
            (
                Profile {
                    birthdate: Some("1990-13-01".into()),
                    ..Profile::default()
                },
                "birthdate",
            ),
            (
                Profile {
                    picture: Some("javascript:alert(1)".into()),
                    ..Profile::default()
                },
                "picture",
            ),
            (
                Profile {
                    given_name: Some(" ".into()),
                    ..Profile::default()
                },
                "given_name",
            ),
        ] {
            let e = p.validate().unwrap_err();
            assert!(e.contains(field), "{e}");
        }
    }
}
