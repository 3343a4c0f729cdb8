//! The token endpoint's grants (RFC 6749 §4.1.3, §6, §4.4), client authentication (§2.3),
//! revocation (RFC 7009) and introspection (RFC 7662). Plain inputs in, plain outputs out.

use crate::crypto::{b64url, constant_time_eq, ordered_id, ordered_token, token_hash};
use crate::domain::{
    AuditEvent, AuthCode, Client, ClientKind, Grant, GrantType, StoredToken, TokenKind, User,
    join_scope, parse_scope,
};
use crate::error::{AppError, AppResult};
use crate::oidc::{id_token, pkce};
use crate::state::AppState;
use crate::store::{Issued, RefreshRotation, StoreError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};

/// How the client presented itself at the token, revocation or introspection endpoint.
#[derive(Default)]
pub struct ClientCredentials {
    /// From the Authorization: Basic header.
    pub basic: Option<(String, String)>,
    /// Sent an Authorization header that was not valid Basic.
    pub malformed_header: bool,
    pub form_id: Option<String>,
    pub form_secret: Option<String>,
}

/// Authenticates the client (client_secret_basic, client_secret_post, or none for public clients).
pub async fn authenticate_client(
    state: &AppState,
    creds: &ClientCredentials,
    allow_public: bool,
) -> AppResult<Client> {
    let basic = creds.basic.is_some();
    if creds.malformed_header {
        return Err(AppError::invalid_client(true));
    }
    if basic && creds.form_secret.is_some() {
        return Err(AppError::oauth(
            "invalid_request",
            "use one client authentication method",
        ));
    }
    let (id, secret) = match (&creds.basic, &creds.form_id, &creds.form_secret) {
        (Some((id, secret)), form_id, _) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err(AppError::oauth(
                    "invalid_request",
                    "client_id does not match the authenticated client",
                ));
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id), secret) => (id.clone(), secret.clone()),
        (None, None, _) => return Err(AppError::invalid_client(false)),
    };
    let client = state.repos.clients.get(&id).await?;
    let Some(client) = client else {
        // Spend the same hash as a real check so timing does not reveal which ids exist.
        let _ = token_hash(secret.as_deref().unwrap_or(""));
        return Err(AppError::invalid_client(basic));
    };
    match (client.kind(), secret) {
        (ClientKind::Confidential, Some(secret)) => {
            let expected = client.secret_hash.as_deref().unwrap_or("");
            if constant_time_eq(token_hash(&secret).as_bytes(), expected.as_bytes()) {
                Ok(client)
            } else {
                Err(AppError::invalid_client(basic))
            }
        }
        (ClientKind::Public, None) if allow_public => Ok(client),
        _ => Err(AppError::invalid_client(basic)),
    }
}

#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Everything a client sent to the token endpoint besides its credentials.
#[derive(Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn audit(
    event: &str,
    user: Option<&str>,
    client: &str,
    outcome: &str,
    meta: &RequestMeta,
    now: i64,
    detail: Option<&str>,
) -> AuditEvent {
    AuditEvent {
        at: now,
        event: event.into(),
        user_id: user.map(str::to_owned),
        client_id: Some(client.to_owned()),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        outcome: outcome.into(),
        detail: detail.map(str::to_owned),
    }
}

fn invalid_grant(description: &str) -> AppError {
    AppError::oauth("invalid_grant", description)
}

pub async fn token(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    let grant_type = req
        .grant_type
        .as_deref()
        .ok_or_else(|| AppError::oauth("invalid_request", "grant_type is required"))?;
    let grant = GrantType::parse(grant_type)
        .ok_or_else(|| AppError::oauth("unsupported_grant_type", "unsupported grant_type"))?;
    if !client.allows(grant) {
        return Err(AppError::oauth(
            "unauthorized_client",
            "this client may not use this grant type",
        ));
    }
    match grant {
        GrantType::AuthorizationCode => exchange_code(state, client, req, meta).await,
        GrantType::RefreshToken => refresh(state, client, req, meta).await,
        GrantType::ClientCredentials => client_credentials(state, client, req, meta).await,
    }
}

async fn exchange_code(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    let now = state.now();
    let code = req
        .code
        .as_deref()
        .ok_or_else(|| AppError::oauth("invalid_request", "code is required"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| AppError::oauth("invalid_request", "redirect_uri is required"))?;
    let Some(code) = open_code(state, code) else {
        return Err(invalid_grant("the authorization code is invalid"));
    };
    if code.client_id != client.id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.expires_at <= now {
        return Err(invalid_grant("the authorization code has expired"));
    }
    if code.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&code.code_challenge, &req.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify(verifier, challenge) {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier sent but no code_challenge was in the authorization request",
            ));
        }
        (None, None) => {}
    }
    let user = active_user(state, &code.user_id).await?;
    let scopes = parse_scope(&code.scope);
    let grant = Grant {
        id: code.grant_id.clone(),
        user_id: user.id.clone(),
        client_id: client.id.clone(),
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        amr: code.amr.clone(),
        sid: code.sid.clone(),
        created_at: now,
        expires_at: now + state.config.lifetimes.refresh_token_absolute as i64,
        revoked_at: None,
    };
    let nonce = code.nonce.as_deref();
    let issued = issue(
        state,
        client,
        &user,
        &grant,
        true,
        &scopes,
        nonce,
        now,
        meta,
        "authorization_code",
    )
    .await;
    match issued {
        // The grant this code carries exists already: the code was redeemed before. RFC 6749
        // §4.1.2: a replayed code revokes everything issued from it.
        Err(AppError::Internal(e)) if matches!(e.downcast_ref(), Some(StoreError::Conflict(_))) => {
            let replay = Replay {
                event: "code_replay",
                grant_id: Some(&code.grant_id),
                user_id: Some(&code.user_id),
                refusal: "the authorization code was already used",
            };
            refuse_replay(state, client, meta, now, replay).await
        }
        other => other,
    }
}

/// A code or refresh token presented again after its first use.
struct Replay<'a> {
    /// The audit event to record.
    event: &'a str,
    grant_id: Option<&'a str>,
    user_id: Option<&'a str>,
    /// The invalid_grant description.
    refusal: &'a str,
}

/// Revokes the replayed grant (everything issued under it), audits the replay and refuses.
async fn refuse_replay(
    state: &AppState,
    client: &Client,
    meta: &RequestMeta,
    now: i64,
    replay: Replay<'_>,
) -> AppResult<TokenResponse> {
    if let Some(g) = replay.grant_id {
        state.repos.tokens.revoke_grant(g, now).await?;
    }
    state
        .audit(audit(
            replay.event,
            replay.user_id,
            &client.id,
            "failure",
            meta,
            now,
            Some("grant revoked"),
        ))
        .await;
    Err(invalid_grant(replay.refusal))
}

async fn active_user(state: &AppState, user_id: &str) -> AppResult<User> {
    match state.repos.users.by_id(user_id).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(invalid_grant("the user is not active")),
    }
}

/// Mints access (+ refresh) (+ ID) tokens for a grant and writes them in one commit, with the
/// grant when it is `new` and the audit event for `grant_type`.
#[allow(clippy::too_many_arguments)]
async fn issue(
    state: &AppState,
    client: &Client,
    user: &User,
    grant: &Grant,
    new: bool,
    scopes: &[String],
    nonce: Option<&str>,
    now: i64,
    meta: &RequestMeta,
    grant_type: &str,
) -> AppResult<TokenResponse> {
    let lt = &state.config.lifetimes;
    let access = ordered_token(now)?;
    let mut rows = vec![StoredToken {
        token_hash: token_hash(&access),
        kind: TokenKind::Access,
        grant_id: Some(grant.id.clone()),
        client_id: client.id.clone(),
        user_id: Some(user.id.clone()),
        scope: join_scope(scopes),
        created_at: now,
        expires_at: now + lt.access_token as i64,
        consumed_at: None,
        revoked_at: None,
    }];
    // OIDC Core §11: offline_access asks for a refresh token; a client may be set to always get one.
    let wants_refresh = client.allows(GrantType::RefreshToken)
        && (client.refresh_always || scopes.iter().any(|s| s == "offline_access"));
    let refresh = if wants_refresh {
        let token = ordered_token(now)?;
        rows.push(StoredToken {
            token_hash: token_hash(&token),
            kind: TokenKind::Refresh,
            grant_id: Some(grant.id.clone()),
            client_id: client.id.clone(),
            user_id: Some(user.id.clone()),
            scope: join_scope(scopes),
            created_at: now,
            expires_at: (now + lt.refresh_token_idle as i64).min(grant.expires_at),
            consumed_at: None,
            revoked_at: None,
        });
        Some(token)
    } else {
        None
    };
    let id_token = if scopes.iter().any(|s| s == "openid") {
        let groups = if scopes.iter().any(|s| s == "groups") {
            state.repos.groups.names_for_user(&user.id).await?
        } else {
            Vec::new()
        };
        let claims = id_token::claims(&id_token::IdTokenInput {
            issuer: &state.config.issuer,
            user,
            client_id: &client.id,
            alg: client.id_token_alg,
            nonce,
            auth_time: grant.auth_time,
            amr: &grant.amr,
            sid: &grant.sid,
            access_token: Some(&access),
            scopes,
            groups: &groups,
            now,
            ttl: lt.id_token as i64,
        });
        let keys = state.keys.snapshot();
        let alg = client.id_token_alg;
        // RSA signing costs most of a millisecond: it goes to the blocking pool so the async
        // workers keep serving. ES256 and EdDSA cost tens of microseconds, less than the two
        // thread switches of that hand-off: they are signed inline (measured with the writer on
        // the shared runtime: SSO ES256 2,562 -> 2,897 round trips/s, 445 -> 411 us CPU each).
        let jwt = if alg == crate::domain::SigningAlg::RS256 {
            tokio::task::spawn_blocking(move || keys.sign(alg, &claims))
                .await
                .map_err(anyhow::Error::from)??
        } else {
            keys.sign(alg, &claims)?
        };
        Some(jwt)
    } else {
        None
    };
    state
        .repos
        .tokens
        .save_issued(Issued {
            grant: new.then(|| grant.clone()),
            tokens: rows,
            audit: Some(audit(
                "token",
                Some(&user.id),
                &client.id,
                "success",
                meta,
                now,
                Some(grant_type),
            )),
        })
        .await?;
    // Only a new grant can push a user past the cap: rotation keeps one refresh token per grant.
    if new && refresh.is_some() {
        state
            .repos
            .tokens
            .cap_refresh_grants(&client.id, &user.id, client.refresh_token_cap, now)
            .await?;
    }
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: lt.access_token as i64,
        scope: join_scope(scopes),
        refresh_token: refresh,
        id_token,
    })
}

async fn refresh(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    let now = state.now();
    let presented = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| AppError::oauth("invalid_request", "refresh_token is required"))?;
    let hash = token_hash(presented);
    let (token, grant) = match state
        .repos
        .tokens
        .rotate_refresh(&hash, &client.id, now)
        .await?
    {
        RefreshRotation::Unknown => return Err(invalid_grant("the refresh token is invalid")),
        RefreshRotation::Replayed(t) => {
            // RFC 9700 §4.14.2: reuse of a rotated refresh token revokes the whole grant.
            let replay = Replay {
                event: "refresh_replay",
                grant_id: t.grant_id.as_deref(),
                user_id: t.user_id.as_deref(),
                refusal: "the refresh token was already used",
            };
            return refuse_replay(state, client, meta, now, replay).await;
        }
        RefreshRotation::Rotated(t, g) => (t, g),
    };
    if token.expires_at <= now {
        return Err(invalid_grant("the refresh token has expired"));
    }
    let grant = match grant {
        Some(g) if g.revoked_at.is_none() && g.expires_at > now => g,
        _ => return Err(invalid_grant("the refresh token is invalid")),
    };
    let user = match active_user(state, &grant.user_id).await {
        Ok(u) => u,
        Err(e) => {
            state.repos.tokens.revoke_grant(&grant.id, now).await?;
            return Err(e);
        }
    };
    let granted = parse_scope(&token.scope);
    let scopes = match &req.scope {
        None => granted,
        Some(s) => {
            let asked = parse_scope(s);
            if !asked.iter().all(|a| granted.contains(a)) {
                return Err(AppError::oauth(
                    "invalid_scope",
                    "scope exceeds the original grant",
                ));
            }
            asked
        }
    };
    // A narrower refresh keeps offline_access only if asked; without it the chain would end,
    // which is the client's choice to make.
    issue(
        state,
        client,
        &user,
        &grant,
        false,
        &scopes,
        None,
        now,
        meta,
        "refresh_token",
    )
    .await
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    if client.kind() != ClientKind::Confidential {
        return Err(AppError::oauth(
            "unauthorized_client",
            "public clients cannot use client_credentials",
        ));
    }
    let now = state.now();
    // User-related scopes mean nothing without a user.
    let allowed: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !crate::domain::OIDC_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let scopes = match &req.scope {
        None => allowed,
        Some(s) => {
            let asked = parse_scope(s);
            if let Some(bad) = asked.iter().find(|a| !allowed.contains(a)) {
                return Err(AppError::oauth(
                    "invalid_scope",
                    format!("scope {bad} is not allowed for this client"),
                ));
            }
            asked
        }
    };
    let access = ordered_token(now)?;
    let ttl = state.config.lifetimes.access_token as i64;
    state
        .repos
        .tokens
        .save_issued(Issued {
            grant: None,
            tokens: vec![StoredToken {
                token_hash: token_hash(&access),
                kind: TokenKind::Access,
                grant_id: None,
                client_id: client.id.clone(),
                user_id: None,
                scope: join_scope(&scopes),
                created_at: now,
                expires_at: now + ttl,
                consumed_at: None,
                revoked_at: None,
            }],
            audit: Some(audit(
                "token",
                None,
                &client.id,
                "success",
                meta,
                now,
                Some("client_credentials"),
            )),
        })
        .await?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ttl,
        scope: join_scope(&scopes),
        refresh_token: None,
        id_token: None,
    })
}

/// RFC 7009: revokes the token if it belongs to `client`; unknown tokens are not an error.
/// Revoking a refresh token ends its whole grant.
pub async fn revoke(state: &AppState, client: &Client, token: &str) -> AppResult<()> {
    let now = state.now();
    let hash = token_hash(token);
    let Some(t) = state.repos.tokens.token(&hash).await? else {
        return Ok(());
    };
    if t.client_id != client.id {
        return Ok(());
    }
    match (t.kind, &t.grant_id) {
        (TokenKind::Refresh, Some(g)) => state.repos.tokens.revoke_grant(g, now).await?,
        _ => state.repos.tokens.revoke_token(&hash, now).await?,
    }
    Ok(())
}

/// A live access token and what it grants.
pub struct BearerContext {
    pub token: StoredToken,
    pub user: Option<User>,
}

/// Looks up an access token for UserInfo: live, its grant live, its user active.
pub async fn bearer(state: &AppState, token: &str) -> AppResult<Option<BearerContext>> {
    let now = state.now();
    let Some(t) = state.repos.tokens.token(&token_hash(token)).await? else {
        return Ok(None);
    };
    if t.kind != TokenKind::Access || !t.is_active(now) {
        return Ok(None);
    }
    let user = match &t.user_id {
        Some(id) => match state.repos.users.by_id(id).await? {
            Some(u) if !u.disabled => Some(u),
            _ => return Ok(None),
        },
        None => None,
    };
    Ok(Some(BearerContext { token: t, user }))
}

/// RFC 7662. Only the client a token was issued to learns anything about it.
pub async fn introspect(state: &AppState, client: &Client, token: &str) -> AppResult<Value> {
    let now = state.now();
    let inactive = json!({"active": false});
    let Some(t) = state.repos.tokens.token(&token_hash(token)).await? else {
        return Ok(inactive);
    };
    if t.client_id != client.id || !t.is_active(now) {
        return Ok(inactive);
    }
    let mut user = None;
    if let Some(id) = &t.user_id {
        match state.repos.users.by_id(id).await? {
            Some(u) if !u.disabled => user = Some(u),
            _ => return Ok(inactive),
        }
    }
    let mut v = json!({
        "active": true,
        "scope": t.scope,
        "client_id": t.client_id,
        "token_type": match t.kind { TokenKind::Access => "Bearer", TokenKind::Refresh => "refresh_token" },
        "exp": t.expires_at,
        "iat": t.created_at,
        "iss": state.config.issuer,
        "aud": t.client_id,
    });
    if let (Some(u), Some(obj)) = (user, v.as_object_mut()) {
        obj.insert("sub".into(), json!(u.id));
        obj.insert("username".into(), json!(u.username));
    }
    Ok(v)
}

/// Purpose bound into every sealed code, so no other sealed blob can pass for one.
const CODE_AAD: &[u8] = b"keyway authorization code";

/// Creates a code for a signed-in user's approved request. The code is the request's outcome
/// sealed with AES-256-GCM under a server key, so issuing one writes nothing; single use comes
/// from the grant id it carries (see `exchange_code`).
#[allow(clippy::too_many_arguments)]
pub async fn create_code(
    state: &AppState,
    req: &crate::oidc::authorize::AuthRequest,
    user_id: &str,
    auth_time: i64,
    amr: &str,
    sid: &str,
) -> AppResult<String> {
    let now = state.now();
    let code = AuthCode {
        grant_id: ordered_id(now)?,
        client_id: req.client_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: req.redirect_uri.clone(),
        scope: join_scope(&req.scopes),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time,
        amr: amr.to_owned(),
        sid: sid.to_owned(),
        expires_at: now + state.config.lifetimes.authorization_code as i64,
        created_at: now,
    };
    let json = serde_json::to_vec(&code).map_err(anyhow::Error::from)?;
    Ok(b64url(&state.code_key.seal(&json, CODE_AAD)?))
}

/// The request a code stands for, if the server sealed it (whatever its age).
fn open_code(state: &AppState, code: &str) -> Option<AuthCode> {
    let sealed = URL_SAFE_NO_PAD.decode(code).ok()?;
    let json = state.code_key.open(&sealed, CODE_AAD).ok()?;
    serde_json::from_slice(&json).ok()
}
