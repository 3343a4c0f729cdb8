//! The admin UI as an ordinary OpenID Connect relying party of this server, driven by the
//! `openidconnect` crate: discovery, authorization code with PKCE, state and nonce, the ID token
//! verified against the JWKS. It reaches the token endpoint and the JWKS at
//! `admin.internal_url` (the public issuer may not be reachable from the server itself); what it
//! verifies is still the public issuer's ID token.

use crate::state::AppState;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};

/// The admin UI's client id, created at start when missing.
pub const CLIENT_ID: &str = crate::domain::ADMIN_CLIENT_ID;
pub const CALLBACK: &str = "/admin/callback";
pub const SIGNED_OUT: &str = "/admin/signed-out";

/// A login on its way: what the callback must find again.
#[derive(Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go after signing in (an /admin path).
    pub next: String,
    pub max_age: Option<u64>,
    pub expires_at: i64,
}

/// What the relying party learnt from the ID token.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct AdminSession {
    pub sub: String,
    pub name: String,
    pub auth_time: i64,
    pub groups: Vec<String>,
    pub expires_at: i64,
    /// For the logout's id_token_hint.
    pub id_token: String,
}

fn http() -> anyhow::Result<reqwest::Client> {
    // No redirects: the endpoints are this server's own, and a redirect would be an error.
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()?)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
) -> anyhow::Result<T> {
    let res = http.get(&url).send().await?;
    anyhow::ensure!(res.status().is_success(), "{url}: HTTP {}", res.status());
    Ok(serde_json::from_slice(&res.bytes().await?)?)
}

/// The provider's metadata and keys, fetched at the internal URL.
async fn metadata(
    state: &AppState,
    http: &reqwest::Client,
) -> anyhow::Result<CoreProviderMetadata> {
    let internal = state
        .config
        .admin_internal_url
        .as_str()
        .trim_end_matches('/');
    let discovery: CoreProviderMetadata =
        get_json(http, format!("{internal}/.well-known/openid-configuration")).await?;
    anyhow::ensure!(
        discovery.issuer().as_str() == state.config.issuer,
        "discovery at {internal} names another issuer"
    );
    let jwks: CoreJsonWebKeySet = get_json(http, format!("{internal}/jwks")).await?;
    Ok(discovery.set_jwks(jwks))
}

fn redirect(state: &AppState) -> anyhow::Result<RedirectUrl> {
    Ok(RedirectUrl::new(format!(
        "{}{CALLBACK}",
        state.config.issuer
    ))?)
}

/// The authorization URL to send the browser to, and what the callback will need. `max_age`
/// asks for a fresh sign-in (dangerous actions).
pub async fn login(
    state: &AppState,
    next: &str,
    max_age: Option<u64>,
) -> anyhow::Result<(String, LoginState)> {
    let http = http()?;
    let client = CoreClient::from_provider_metadata(
        metadata(state, &http).await?,
        ClientId::new(CLIENT_ID.into()),
        None,
    )
    .set_redirect_uri(redirect(state)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("groups".into()))
        // The role travels in the ID token: ask for the groups claim there.
        .add_extra_param(
            "claims",
            r#"{"id_token":{"groups":null,"preferred_username":null}}"#,
        )
        .set_pkce_challenge(challenge);
    if let Some(m) = max_age {
        req = req.add_extra_param("max_age", m.to_string());
    }
    let (url, csrf, nonce) = req.url();
    Ok((
        url.to_string(),
        LoginState {
            state: csrf.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: next.to_owned(),
            max_age,
            expires_at: state.now() + 600,
        },
    ))
}

/// Exchanges the code (at the internal token endpoint), verifies the ID token (signature from
/// the JWKS, issuer, audience, nonce, expiry, and auth_time against max_age) and returns what
/// the session keeps. `Err` words for the page.
pub async fn finish(
    state: &AppState,
    login: LoginState,
    code: &str,
) -> anyhow::Result<Result<AdminSession, String>> {
    let http = http()?;
    let internal = state
        .config
        .admin_internal_url
        .as_str()
        .trim_end_matches('/');
    let client = CoreClient::from_provider_metadata(
        metadata(state, &http).await?,
        ClientId::new(CLIENT_ID.into()),
        None,
    )
    .set_redirect_uri(redirect(state)?)
    .set_token_uri(TokenUrl::new(format!("{internal}/token"))?);
    let tokens = match client
        .exchange_code(AuthorizationCode::new(code.into()))
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier))
        .request_async(&http)
        .await
    {
        Ok(t) => t,
        Err(e) => return Ok(Err(format!("the code could not be exchanged ({e})"))),
    };
    let Some(id_token) = tokens.id_token() else {
        return Ok(Err("no ID token came back".into()));
    };
    let verifier = client.id_token_verifier();
    let claims = match id_token.claims(&verifier, &Nonce::new(login.nonce)) {
        Ok(c) => c.clone(),
        Err(e) => return Ok(Err(format!("the ID token did not verify ({e})"))),
    };
    let auth_time = claims.auth_time().map_or(0, |t| t.timestamp());
    if let Some(m) = login.max_age
        && state.now() - auth_time > m as i64 + 60
    {
        return Ok(Err("the sign-in is not fresh enough".into()));
    }
    // The groups claim, read from the payload whose signature was just verified.
    let groups = verified_payload(&id_token.to_string())
        .and_then(|p| p.get("groups").cloned())
        .and_then(|g| serde_json::from_value::<Vec<String>>(g).ok())
        .unwrap_or_default();
    let name = claims
        .preferred_username()
        .map(|n| n.to_string())
        .unwrap_or_else(|| claims.subject().to_string());
    let _ = tokens.access_token();
    Ok(Ok(AdminSession {
        sub: claims.subject().to_string(),
        name,
        auth_time,
        groups,
        expires_at: state.now() + SESSION_TTL,
        id_token: id_token.to_string(),
    }))
}

/// How long an admin session lasts.
pub const SESSION_TTL: i64 = 8 * 3600;

fn verified_payload(jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
