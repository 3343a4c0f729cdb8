//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1): validation and the response
//! parameters. Errors before the redirect URI is trusted are shown as a page; after, they go back
//! to the client (§4.1.2.1).

use crate::domain::{
    Client, ClientKind, GrantType, OIDC_SCOPES, RequestedClaims, SigningAlg, join_scope,
    parse_scope,
};
use crate::oidc::{ProtocolResult, Provider, keys::KeySet, pkce, redirect};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Long enough for any real client's state; short enough that it cannot bloat sessions.
pub const MAX_STATE_LEN: usize = 2048;
pub const MAX_NONCE_LEN: usize = 512;
/// A claims request naming every standard claim twice fits in far less.
pub const MAX_CLAIMS_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// A validated authorization request, kept in the session while the user signs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    /// Granted scopes: requested ∩ supported ∩ allowed for the client, sorted.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid id_token_hint: the user the client expects.
    pub hint_sub: Option<String>,
    /// The claims request parameter, reduced to what the client may have.
    #[serde(default)]
    pub claims: Option<RequestedClaims>,
    pub created_at: i64,
    /// The user signed in after this request was made (satisfies prompt=login and max_age).
    #[serde(default)]
    pub login_done: bool,
    /// The user answered the consent page for this request (satisfies prompt=consent).
    #[serde(default)]
    pub consent_done: bool,
    /// Only a phishing-resistant sign-in (acr `phr`: a passkey) will do, because the client
    /// asked with acr_values or is configured so.
    #[serde(default)]
    pub require_phr: bool,
}

/// Where an error or a code goes back to.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user; never redirected (unknown client, bad redirect_uri).
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect {
        reply: ReplyTo,
        error: &'static str,
        description: String,
    },
}

/// Parameters as sent; duplicates are kept so they can be refused (RFC 6749 §3.1).
pub fn collect(pairs: Vec<(String, String)>) -> (HashMap<String, String>, Vec<String>) {
    let mut map = HashMap::new();
    let mut dups = Vec::new();
    for (k, v) in pairs {
        match map.entry(k) {
            std::collections::hash_map::Entry::Occupied(e) => dups.push(e.key().clone()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
    (map, dups)
}

/// Checks client_id and redirect_uri: the parameters that must be right before we redirect anywhere.
pub fn check_client_and_redirect<'a>(
    params: &'a HashMap<String, String>,
    dups: &[String],
    client: Option<&Client>,
) -> Result<&'a str, AuthorizeError> {
    if dups.iter().any(|d| d == "client_id" || d == "redirect_uri") {
        return Err(AuthorizeError::Page(
            "The request repeats client_id or redirect_uri.".into(),
        ));
    }
    let Some(client) = client else {
        return Err(AuthorizeError::Page(
            match params.get("client_id") {
                None => "The request has no client_id.",
                Some(_) => "The application that sent you here is not registered with this server.",
            }
            .into(),
        ));
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err(AuthorizeError::Page(
            "The request has no redirect_uri.".into(),
        ));
    };
    if !redirect::matches_registered(redirect_uri, &client.redirect_uris) {
        return Err(AuthorizeError::Page(
            "The redirect_uri does not match any address registered for this application.".into(),
        ));
    }
    Ok(redirect_uri.as_str())
}

/// Validates everything else; `client` and `redirect_uri` come from `check_client_and_redirect`.
pub fn validate(
    params: &HashMap<String, String>,
    dups: &[String],
    client: &Client,
    redirect_uri: &str,
    keys: &KeySet,
    issuer: &str,
    now: i64,
) -> Result<AuthRequest, AuthorizeError> {
    let state = params.get("state").cloned();
    let mode = match params.get("response_mode").map(String::as_str) {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(()),
    };
    let reply = ReplyTo {
        redirect_uri: redirect_uri.to_owned(),
        response_mode: mode.unwrap_or(ResponseMode::Query),
        state: state.clone().filter(|s| s.len() <= MAX_STATE_LEN),
    };
    let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
        reply: reply.clone(),
        error,
        description: description.to_owned(),
    };
    if let Some(d) = dups.first() {
        return Err(fail(
            "invalid_request",
            &format!("parameter {d} is repeated"),
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(fail("invalid_request", "state is too long"));
    }
    let response_mode = mode.map_err(|_| {
        fail(
            "invalid_request",
            "response_mode must be query or form_post",
        )
    })?;
    if params.contains_key("request") {
        return Err(fail(
            "request_not_supported",
            "the request parameter is not supported",
        ));
    }
    if params.contains_key("request_uri") {
        return Err(fail(
            "request_uri_not_supported",
            "the request_uri parameter is not supported",
        ));
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let requested =
        crate::domain::parse_scope(params.get("scope").map(String::as_str).unwrap_or(""));
    let scopes: Vec<String> = requested
        .into_iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()) && client.scopes.contains(s))
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail("invalid_scope", "the openid scope is required"));
    }
    let nonce = params.get("nonce").cloned();
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(fail("invalid_request", "nonce is too long"));
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (Some(c), Some("S256")) => Some(c.clone()),
        (Some(_), None | Some("plain")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(fail("invalid_request", "unsupported code_challenge_method"));
        }
    };
    if let Some(c) = &code_challenge
        && !pkce::is_well_formed(c)
    {
        return Err(fail("invalid_request", "code_challenge is malformed"));
    }
    if code_challenge.is_none() && client.kind() == ClientKind::Public {
        return Err(fail(
            "invalid_request",
            "PKCE (code_challenge with S256) is required for public clients",
        ));
    }
    let prompts: Vec<&str> = params
        .get("prompt")
        .map(|p| p.split_ascii_whitespace().collect())
        .unwrap_or_default();
    for p in &prompts {
        if !matches!(*p, "none" | "login" | "consent" | "select_account") {
            return Err(fail("invalid_request", "unsupported prompt value"));
        }
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age =
        match params.get("max_age") {
            None => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                fail("invalid_request", "max_age must be a non-negative integer")
            })?),
        };
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(t) => {
            let claims = keys
                .verify(t)
                .filter(|c| c.get("iss").and_then(|v| v.as_str()) == Some(issuer))
                .ok_or_else(|| {
                    fail(
                        "invalid_request",
                        "id_token_hint is not a valid ID token from this server",
                    )
                })?;
            claims
                .get("sub")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        }
    };
    let login_hint = params.get("login_hint").filter(|h| h.len() <= 256).cloned();
    let claims = match params.get("claims") {
        None => None,
        Some(raw) if raw.len() > MAX_CLAIMS_LEN => {
            return Err(fail("invalid_request", "the claims parameter is too long"));
        }
        Some(raw) => Some(
            crate::oidc::claims::parse_request(raw, &client.scopes)
                .map_err(|why| fail("invalid_request", &why))?,
        )
        .filter(|c| !c.is_empty()),
    };
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        response_mode,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        prompt_none,
        max_age,
        login_hint,
        hint_sub,
        claims,
        created_at: now,
        login_done: false,
        consent_done: false,
        require_phr: client.require_passkey || acr_asks_phr(params.get("acr_values")),
    })
}

/// Whether `acr_values` leaves only `phr` acceptable: every value Keyway knows in it is `phr`
/// (values it does not know are ignored, as OIDC Core lets a voluntary request be).
fn acr_asks_phr(acr_values: Option<&String>) -> bool {
    use crate::domain::{ACR_BASIC, ACR_PHR};
    let known: Vec<&str> = acr_values
        .map(|v| v.split_ascii_whitespace())
        .into_iter()
        .flatten()
        .filter(|v| [ACR_PHR, ACR_BASIC].contains(v))
        .collect();
    !known.is_empty() && known.iter().all(|v| *v == ACR_PHR)
}

impl AuthRequest {
    /// What the user consents to: the granted scopes, and the scopes that would release each
    /// claim asked for with the claims parameter (asking for `email` alone needs the same
    /// consent as the `email` scope). In the order of `OIDC_SCOPES`, for the consent page.
    pub fn consent_scopes(&self) -> Vec<String> {
        let mut all = self.scopes.clone();
        if let Some(c) = &self.claims {
            for name in c.userinfo.iter().chain(&c.id_token) {
                if let Some(scope) = crate::oidc::claims::scope_of(name) {
                    all.push(scope.to_owned());
                }
            }
        }
        all.sort_by_key(|s| OIDC_SCOPES.iter().position(|x| x == s));
        all.dedup();
        all
    }

    pub fn reply(&self) -> ReplyTo {
        ReplyTo {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
            state: self.state.clone(),
        }
    }
}

/// Response parameters: `code` or `error`/`error_description`, then `state` and `iss` (RFC 9207).
pub fn response_params(
    reply: &ReplyTo,
    issuer: &str,
    body: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let mut p = body;
    if let Some(s) = &reply.state {
        p.push(("state", s.clone()));
    }
    p.push(("iss", issuer.to_owned()));
    p
}

/// The redirect URL for response_mode=query, keeping any query the registered URI already has.
pub fn query_redirect(redirect_uri: &str, params: &[(&'static str, String)]) -> String {
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("{redirect_uri}{sep}{q}")
}

pub fn id_token_alg(client: &Client) -> SigningAlg {
    client.id_token_alg
}

/// The browser's signed-in session, as the authorization endpoint sees it.
#[derive(Debug, Clone, Copy)]
pub struct SessionLogin<'a> {
    pub user_id: &'a str,
    /// When the user last actively authenticated.
    pub auth_time: i64,
    /// How (space-separated `amr` values).
    pub amr: &'a str,
}

/// What an authorization request needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SignIn,
    Consent,
    /// Everything is in place: issue the code.
    Issue,
    /// The client is restricted to groups the user is in none of: a page says so, and the
    /// client gets access_denied.
    Denied,
    /// prompt=none and the user would have to act: answer the client with this error.
    Refuse(&'static str, &'static str),
}

/// Decides the next step of a request for the browser's current login (OIDC Core §3.1.2.1,
/// §3.1.2.3): sign-in when nobody (or the wrong user) is signed in or prompt=login / max_age
/// ask for a fresh one; then, when only `phr` will do and the login was not a passkey, a
/// passkey sign-in (step-up); consent unless the client is first-party or the user granted
/// every scope before; with prompt=none a refusal instead of any page.
pub async fn next_step(
    p: &Provider,
    client: &Client,
    req: &AuthRequest,
    login: Option<SessionLogin<'_>>,
    now: i64,
) -> ProtocolResult<Step> {
    let Some(login) = login.filter(|l| !needs_login(req, *l, now)) else {
        return Ok(if req.prompt_none {
            Step::Refuse("login_required", "the user must sign in")
        } else {
            Step::SignIn
        });
    };
    // A client that refuses emailed links does not take a session that began with one.
    let refused_method = !client.allow_magic_link && crate::domain::by_email(login.amr);
    if refused_method
        || (req.require_phr && crate::domain::acr_for(login.amr) != crate::domain::ACR_PHR)
    {
        return Ok(if req.prompt_none {
            Step::Refuse("login_required", "a passkey sign-in is required")
        } else {
            Step::SignIn
        });
    }
    if !client.allowed_groups.is_empty() {
        let mine = p.groups.ids_for_user(login.user_id).await?;
        if !mine.iter().any(|g| client.allowed_groups.contains(g)) {
            return Ok(if req.prompt_none {
                Step::Refuse("access_denied", "the user may not use this client")
            } else {
                Step::Denied
            });
        }
    }
    if needs_consent(p, client, req, login.user_id).await? {
        return Ok(if req.prompt_none {
            Step::Refuse("consent_required", "the user must approve this application")
        } else {
            Step::Consent
        });
    }
    Ok(Step::Issue)
}

fn needs_login(req: &AuthRequest, login: SessionLogin<'_>, now: i64) -> bool {
    if req.hint_sub.as_deref().is_some_and(|s| s != login.user_id) {
        return true;
    }
    if req.login_done {
        return false;
    }
    // max_age=0 means "sign in again now", like prompt=login (OIDC Core §3.1.2.1).
    req.prompt_login
        || req
            .max_age
            .is_some_and(|m| m == 0 || now - login.auth_time > m)
}

async fn needs_consent(
    p: &Provider,
    client: &Client,
    req: &AuthRequest,
    user_id: &str,
) -> ProtocolResult<bool> {
    if client.first_party || req.consent_done {
        return Ok(false);
    }
    if req.prompt_consent {
        return Ok(true);
    }
    let granted = p.consents.get(user_id, &client.id).await?;
    let granted = parse_scope(granted.as_deref().unwrap_or(""));
    Ok(!req.consent_scopes().iter().all(|s| granted.contains(s)))
}

/// Remembers that the user allowed these scopes for this client, added to what they allowed before.
pub async fn record_consent(
    p: &Provider,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
) -> ProtocolResult<()> {
    let previous = p.consents.get(user_id, client_id).await?;
    let mut all = parse_scope(previous.as_deref().unwrap_or(""));
    all.extend(scopes.iter().cloned());
    all.sort();
    all.dedup();
    p.consents
        .put(user_id, client_id, &join_scope(&all), p.now())
        .await?;
    Ok(())
}
