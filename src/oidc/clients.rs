//! Client registration: checks what an operator asks for (CLI now, admin UI later), mints the
//! client id and, for confidential clients, a secret that is returned once and stored hashed.

use crate::clock::UnixTime;
use crate::domain::{Client, GrantType, NewClient, OIDC_SCOPES, SigningAlg};
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
}

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
    Ok(ClientSpec {
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
    let secret = if spec.public {
        None
    } else {
        Some(crate::crypto::random_token().map_err(StoreError::Backend)?)
    };
    let new = NewClient {
        id,
        name: spec.name,
        secret_hash: secret.as_deref().map(crate::crypto::token_hash),
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
    };
    let client = repo.create(&new, now).await?;
    Ok((client, secret))
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
