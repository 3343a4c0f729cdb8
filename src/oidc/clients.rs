//! Client registration: checks what an operator asks for (CLI now, admin UI later), mints the
//! client id and, for confidential clients, a secret that is returned once and stored hashed.

use crate::clock::UnixTime;
use crate::domain::{Client, ClientLifetimes, GrantType, NewClient, OIDC_SCOPES, SigningAlg};
use crate::store::{ClientRepo, StoreError};
use url::{Host, Url};

/// Most live refresh tokens one user may hold per client.
pub const DEFAULT_REFRESH_TOKEN_CAP: u32 = 10;
pub const MAX_NAME_CHARS: usize = 100;

/// What the operator asks for. Empty `grant_types` / `scopes` mean the defaults.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub id_token_alg: SigningAlg,
    /// Issue refresh tokens without offline_access (needs the refresh_token grant).
    pub refresh_always: bool,
    /// Accept only a passkey sign-in (acr `phr`).
    pub require_passkey: bool,
    /// Accept sign-ins by emailed link.
    pub allow_magic_link: bool,
    /// https (or http on loopback); shown on the sign-in and consent pages.
    pub logo_uri: Option<String>,
    pub lifetimes: ClientLifetimes,
}

impl Default for ClientSpec {
    fn default() -> Self {
        Self {
            name: String::new(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            public: false,
            grant_types: Vec::new(),
            scopes: Vec::new(),
            first_party: false,
            id_token_alg: SigningAlg::RS256,
            refresh_always: false,
            require_passkey: false,
            allow_magic_link: true,
            logo_uri: None,
            lifetimes: ClientLifetimes::default(),
        }
    }
}

impl ClientSpec {
    /// The settings `client` has now, to change some of them.
    pub fn of(client: &Client) -> Self {
        Self {
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            public: client.secret_hash.is_none(),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
            first_party: client.first_party,
            id_token_alg: client.id_token_alg,
            refresh_always: client.refresh_always,
            require_passkey: client.require_passkey,
            allow_magic_link: client.allow_magic_link,
            logo_uri: client.logo_uri.clone(),
            lifetimes: client.lifetimes,
        }
    }
}

/// Bounds of a client's own lifetimes, in seconds: (what, least, most).
pub const LIFETIME_BOUNDS: [(&str, u32, u32); 3] = [
    ("access token", 60, 86_400),
    ("ID token", 60, 86_400),
    ("refresh token", 300, 365 * 86_400),
];

/// The longest overlap of a secret rotation: both secrets work this long at most.
pub const MAX_SECRET_OVERLAP: i64 = 30 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `uri` may be registered as a redirect URI. Allowed: https; http only on a loopback
/// host (RFC 8252 §7.3); a private-use scheme in reverse-domain form such as
/// `com.example.app:/cb` (RFC 8252 §7.1). Never a fragment or userinfo.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("redirect URI must not be empty".into());
    }
    // The url crate silently trims surrounding spaces; the stored string must match exactly.
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("redirect URI {uri:?} must not contain whitespace"));
    }
    let url = Url::parse(uri)
        .map_err(|e| format!("redirect URI {uri:?} is not an absolute URL ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not contain a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "redirect URI {uri:?} must not contain user credentials"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "redirect URI {uri:?} uses http on a non-loopback host; use https \
                     (http is allowed only on localhost, 127.0.0.0/8 or [::1])"
                ))
            }
        }
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "redirect URI {uri:?} has scheme {scheme:?}; use https, http on a loopback host, \
             or a reverse-domain private-use scheme such as com.example.app:/callback"
        )),
    }
}

/// A logo is fetched by every visitor's browser (the pages allow images from https only).
fn validate_logo_uri(uri: &str) -> Result<String, String> {
    if uri.len() > 2000 {
        return Err("logo URL must be at most 2000 characters".into());
    }
    let url =
        Url::parse(uri).map_err(|e| format!("logo URL {uri:?} is not an absolute URL ({e})"))?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(format!("logo URL {uri:?} must be an https URL"));
    }
    Ok(url.to_string())
}

/// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

fn dedup_in_order<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn invalid(msg: impl Into<String>) -> RegisterError {
    RegisterError::Invalid(msg.into())
}

/// The spec with defaults applied, or the first reason it cannot be registered.
fn normalize(spec: ClientSpec) -> Result<ClientSpec, RegisterError> {
    let name = spec.name.trim().to_owned();
    if name.is_empty() {
        return Err(invalid("client name must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "client name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("client name must not contain control characters"));
    }
    let grant_types = if spec.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        dedup_in_order(&spec.grant_types)
    };
    if spec.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid(
            "a public client cannot use client_credentials (it has no secret to authenticate with)",
        ));
    }
    if grant_types.contains(&GrantType::RefreshToken)
        && !grant_types.contains(&GrantType::AuthorizationCode)
    {
        return Err(invalid(
            "refresh_token needs authorization_code, which is how refresh tokens are issued",
        ));
    }
    let redirect_uris = dedup_in_order(&spec.redirect_uris);
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(invalid(
            "at least one redirect URI is required for authorization_code",
        ));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri).map_err(invalid)?;
    }
    let post_logout_redirect_uris = dedup_in_order(&spec.post_logout_redirect_uris);
    for uri in &post_logout_redirect_uris {
        validate_redirect_uri(uri).map_err(|e| invalid(format!("post-logout {e}")))?;
    }
    let scopes = if spec.scopes.is_empty() {
        OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        dedup_in_order(&spec.scopes)
    };
    if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(invalid(format!(
            "scope {bad:?} is not a valid scope token (printable ASCII, no spaces or quotes)"
        )));
    }
    let logo_uri = match spec.logo_uri.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(uri) => Some(validate_logo_uri(uri).map_err(invalid)?),
    };
    let l = spec.lifetimes;
    for ((what, least, most), value) in
        LIFETIME_BOUNDS
            .iter()
            .zip([l.access_token, l.id_token, l.refresh_token])
    {
        if let Some(v) = value.filter(|v| !(*least..=*most).contains(v)) {
            return Err(invalid(format!(
                "the {what} lifetime must be between {least} and {most} seconds (got {v})"
            )));
        }
    }
    Ok(ClientSpec {
        logo_uri,
        lifetimes: l,
        name,
        redirect_uris,
        post_logout_redirect_uris,
        public: spec.public,
        grant_types,
        scopes,
        first_party: spec.first_party,
        id_token_alg: spec.id_token_alg,
        refresh_always: spec.refresh_always,
        require_passkey: spec.require_passkey,
        allow_magic_link: spec.allow_magic_link,
    })
}

/// Validates and stores a client. Returns it with the plain secret for confidential clients:
/// the only time the secret exists outside the caller's hands, as only its hash is kept.
pub async fn register(
    repo: &dyn ClientRepo,
    spec: ClientSpec,
    now: UnixTime,
) -> Result<(Client, Option<String>), RegisterError> {
    let spec = normalize(spec)?;
    let id = crate::crypto::random_id().map_err(StoreError::Backend)?;
    let (secret, secret_hash) = if spec.public {
        (None, None)
    } else {
        let (plain, hash) = new_secret()?;
        (Some(plain), Some(hash))
    };
    let new = NewClient {
        id,
        name: spec.name,
        secret_hash,
        redirect_uris: spec.redirect_uris,
        post_logout_redirect_uris: spec.post_logout_redirect_uris,
        grant_types: spec.grant_types,
        scopes: spec.scopes,
        first_party: spec.first_party,
        id_token_alg: spec.id_token_alg,
        refresh_token_cap: DEFAULT_REFRESH_TOKEN_CAP,
        refresh_always: spec.refresh_always,
        require_passkey: spec.require_passkey,
        allow_magic_link: spec.allow_magic_link,
        logo_uri: spec.logo_uri,
        lifetimes: spec.lifetimes,
    };
    let client = repo.create(&new, now).await?;
    Ok((client, secret))
}

fn new_secret() -> Result<(String, String), RegisterError> {
    let secret = crate::crypto::random_token().map_err(StoreError::Backend)?;
    let hash = crate::crypto::token_hash(&secret);
    Ok((secret, hash))
}

/// Changes every setting of client `id` to `spec`. A public client made confidential gets a
/// secret, returned this once; a confidential one made public loses its secrets.
pub async fn update(
    repo: &dyn ClientRepo,
    id: &str,
    spec: ClientSpec,
) -> Result<(Client, Option<String>), RegisterError> {
    let spec = normalize(spec)?;
    let mut client = repo
        .get(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("client {id:?}")))?;
    let expected = client.secret_hash.clone();
    // The kind decides the secrets: made public, they go; made confidential, a new one.
    let secret = match (spec.public, &expected) {
        (true, Some(_)) => Some(None),
        (false, None) => Some(Some(new_secret()?)),
        _ => None,
    };
    client.name = spec.name;
    client.redirect_uris = spec.redirect_uris;
    client.post_logout_redirect_uris = spec.post_logout_redirect_uris;
    client.grant_types = spec.grant_types;
    client.scopes = spec.scopes;
    client.first_party = spec.first_party;
    client.id_token_alg = spec.id_token_alg;
    client.refresh_always = spec.refresh_always;
    client.require_passkey = spec.require_passkey;
    client.allow_magic_link = spec.allow_magic_link;
    client.logo_uri = spec.logo_uri;
    client.lifetimes = spec.lifetimes;
    repo.update(&client).await?;
    let Some(secret) = secret else {
        return Ok((client, None));
    };
    let hash = secret.as_ref().map(|(_, hash)| hash.as_str());
    if !repo
        .set_secret(&client.id, expected.as_deref(), hash, None)
        .await?
    {
        return Err(changed_meanwhile());
    }
    client.secret_hash = hash.map(str::to_owned);
    client.previous_secret = None;
    Ok((client, secret.map(|(plain, _)| plain)))
}

fn changed_meanwhile() -> RegisterError {
    RegisterError::Store(StoreError::Conflict(
        "a newer change to the application's secret (reload it and try again)".into(),
    ))
}

/// Gives a confidential client a new secret (returned this once). The old one keeps working for
/// `overlap` seconds, so its deployments can move over without an outage; 0 ends it at once.
pub async fn rotate_secret(
    repo: &dyn ClientRepo,
    id: &str,
    overlap: i64,
    now: UnixTime,
) -> Result<(Client, String), RegisterError> {
    if !(0..=MAX_SECRET_OVERLAP).contains(&overlap) {
        return Err(invalid(format!(
            "the overlap must be between 0 and {} days",
            MAX_SECRET_OVERLAP / 86_400
        )));
    }
    let mut client = repo
        .get(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("client {id:?}")))?;
    let Some(current) = client.secret_hash.take() else {
        return Err(invalid("a public client has no secret to rotate"));
    };
    let (plain, hash) = new_secret()?;
    let previous = (overlap > 0).then(|| (current.clone(), now + overlap));
    if !repo
        .set_secret(&client.id, Some(&current), Some(&hash), previous.clone())
        .await?
    {
        return Err(changed_meanwhile());
    }
    client.secret_hash = Some(hash);
    client.previous_secret = previous;
    Ok((client, plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_loopback_http_and_private_use_schemes() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost/cb",
            "http://LOCALHOST:3000/cb",
            "http://127.0.0.1:8080/cb",
            "http://127.9.9.9/cb",
            "http://[::1]:9000/cb",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
        ] {
            assert!(
                validate_redirect_uri(ok).is_ok(),
                "{ok}: {:?}",
                validate_redirect_uri(ok)
            );
        }
    }

    #[test]
    fn rejects_with_a_message_naming_the_uri() {
        for (bad, why) in [
            ("http://example.com/cb", "loopback"),
            ("http://10.0.0.1/cb", "loopback"),
            ("http://localhost.example.com/cb", "loopback"),
            ("https://app.example.com/cb#frag", "fragment"),
            ("https://user:pw@app.example.com/cb", "credentials"),
            ("https://user@app.example.com/cb", "credentials"),
            ("/relative/cb", "absolute"),
            ("myapp:/cb", "scheme"),
            ("javascript:alert(1)", "scheme"),
            ("ftp://example.com/cb", "scheme"),
            (" https://app.example.com/cb", "whitespace"),
            ("", "empty"),
        ] {
            let e = validate_redirect_uri(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            if !bad.is_empty() {
                assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
            }
        }
    }

    fn spec() -> ClientSpec {
        ClientSpec {
            name: "App".into(),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec![],
            public: false,
            grant_types: vec![],
            scopes: vec![],
            first_party: false,
            id_token_alg: SigningAlg::RS256,
            refresh_always: false,
            require_passkey: false,
            allow_magic_link: true,
            ..ClientSpec::default()
        }
    }

    #[test]
    fn defaults_and_rules() {
        let s = normalize(spec()).unwrap();
        assert_eq!(
            s.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(s.scopes, OIDC_SCOPES);

        let e = |s: ClientSpec| normalize(s).unwrap_err().to_string();
        assert!(
            e(ClientSpec {
                name: " ".into(),
                ..spec()
            })
            .contains("name")
        );
        assert!(
            e(ClientSpec {
                name: "x".repeat(101),
                ..spec()
            })
            .contains("100")
        );
        assert!(
            e(ClientSpec {
                redirect_uris: vec![],
                ..spec()
            })
            .contains("redirect URI")
        );
        assert!(
            e(ClientSpec {
                public: true,
                grant_types: vec![GrantType::ClientCredentials],
                redirect_uris: vec![],
                ..spec()
            })
            .contains("public")
        );
        assert!(
            e(ClientSpec {
                scopes: vec!["open id".into()],
                ..spec()
            })
            .contains("scope")
        );
        assert!(
            e(ClientSpec {
                post_logout_redirect_uris: vec!["http://example.com/".into()],
                ..spec()
            })
            .contains("post-logout")
        );
        assert!(
            e(ClientSpec {
                logo_uri: Some("http://example.com/logo.png".into()),
                ..spec()
            })
            .contains("logo")
        );
        assert!(
            e(ClientSpec {
                lifetimes: ClientLifetimes {
                    access_token: Some(10),
                    ..Default::default()
                },
                ..spec()
            })
            .contains("access token lifetime")
        );
        // A machine client needs no redirect URI.
        assert!(
            normalize(ClientSpec {
                grant_types: vec![GrantType::ClientCredentials],
                redirect_uris: vec![],
                ..spec()
            })
            .is_ok()
        );
    }
}
