//! The token endpoint (RFC 6749 §3.2): which grant a request uses, and minting the tokens every
//! grant ends in. Each grant is one file; a new grant (the device grant) is one more.

mod authorization_code;
mod client_credentials;
mod refresh;

use crate::crypto::{ordered_token, token_hash};
use crate::domain::{
    AuditEvent, Client, Grant, GrantType, RequestMeta, SigningAlg, StoredToken, TokenKind, User,
    join_scope,
};
use crate::oidc::{ProtocolError, ProtocolResult, Provider, claims, id_token};
use crate::store::Issued;
use serde::Serialize;

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

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Answers an authenticated client's token request.
pub async fn token(
    p: &Provider,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> ProtocolResult<TokenResponse> {
    let grant_type = req
        .grant_type
        .as_deref()
        .ok_or_else(|| ProtocolError::invalid_request("grant_type is required"))?;
    let grant = GrantType::parse(grant_type)
        .ok_or_else(|| ProtocolError::oauth("unsupported_grant_type", "unsupported grant_type"))?;
    if !client.allows(grant) {
        return Err(ProtocolError::oauth(
            "unauthorized_client",
            "this client may not use this grant type",
        ));
    }
    let answer = match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(p, client, req, meta).await,
        GrantType::RefreshToken => refresh::rotate(p, client, req, meta).await,
        GrantType::ClientCredentials => client_credentials::issue(p, client, req, meta).await,
    };
    if answer.is_ok() {
        crate::telemetry::token_issued(grant.as_str());
    }
    answer
}

pub(crate) fn audit_event(
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
    p: &Provider,
    client: &Client,
    meta: &RequestMeta,
    now: i64,
    replay: Replay<'_>,
) -> ProtocolResult<TokenResponse> {
    if let Some(g) = replay.grant_id {
        p.tokens.revoke_grant(g, now).await?;
    }
    p.audit
        .record(audit_event(
            replay.event,
            replay.user_id,
            &client.id,
            "failure",
            meta,
            now,
            Some("grant revoked"),
        ))
        .await;
    Err(ProtocolError::invalid_grant(replay.refusal))
}

async fn active_user(p: &Provider, user_id: &str) -> ProtocolResult<User> {
    match p.users.by_id(user_id).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(ProtocolError::invalid_grant("the user is not active")),
    }
}

/// What a user grant's token response is for.
struct UserGrant<'a> {
    client: &'a Client,
    user: &'a User,
    grant: &'a Grant,
    /// The grant is new (a code exchange) and is written with the tokens.
    new: bool,
    scopes: &'a [String],
    nonce: Option<&'a str>,
    grant_type: &'a str,
    /// For a rotation: the hash of the refresh token the new one replaces.
    parent: Option<String>,
}

/// A client's token lifetimes in seconds: its own where it has them, else the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    pub access_token: i64,
    /// Never longer than the server's: retired keys stay published only that long.
    pub id_token: i64,
    /// How long a new refresh chain may live.
    pub refresh_token: i64,
}

impl Ttls {
    pub fn of(server: &crate::config::Lifetimes, client: &Client) -> Self {
        let own = client.lifetimes;
        let pick = |own: Option<u32>, server: u64| own.map_or(server, u64::from) as i64;
        Self {
            access_token: pick(own.access_token, server.access_token),
            id_token: pick(own.id_token, server.id_token).min(server.id_token as i64),
            refresh_token: pick(own.refresh_token, server.refresh_token_absolute),
        }
    }
}

pub(super) fn access_ttl(p: &Provider, client: &Client) -> i64 {
    Ttls::of(&p.lifetimes, client).access_token
}

pub(super) fn refresh_ttl(p: &Provider, client: &Client) -> i64 {
    Ttls::of(&p.lifetimes, client).refresh_token
}

/// Mints access (+ refresh) (+ ID) tokens for a grant: the response, and the rows to write with
/// the grant (when new) and the audit event.
async fn mint(
    p: &Provider,
    g: UserGrant<'_>,
    now: i64,
    meta: &RequestMeta,
) -> ProtocolResult<(TokenResponse, Issued)> {
    let lt = &p.lifetimes;
    let (client, user, grant, scopes) = (g.client, g.user, g.grant, g.scopes);
    let access = ordered_token(now)?;
    let mut rows = vec![StoredToken {
        token_hash: token_hash(&access),
        kind: TokenKind::Access,
        grant_id: Some(grant.id.clone()),
        client_id: client.id.clone(),
        user_id: Some(user.id.clone()),
        scope: join_scope(scopes),
        created_at: now,
        expires_at: now + access_ttl(p, client),
        consumed_at: None,
        revoked_at: None,
        claims: grant.claims.clone(),
        parent: None,
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
            claims: None,
            parent: g.parent.clone(),
        });
        Some(token)
    } else {
        None
    };
    let id_token = if scopes.iter().any(|s| s == "openid") {
        Some(sign_id_token(p, &g, &access, now).await?)
    } else {
        None
    };
    let issued = Issued {
        grant: g.new.then(|| grant.clone()),
        tokens: rows,
        audit: Some(audit_event(
            "token",
            Some(&user.id),
            &client.id,
            "success",
            meta,
            now,
            Some(g.grant_type),
        )),
    };
    let response = TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: access_ttl(p, client),
        scope: join_scope(scopes),
        refresh_token: refresh,
        id_token,
    };
    Ok((response, issued))
}

/// Mints the tokens of a new grant and writes them in one commit with the grant and the audit
/// event. A grant id that exists already is `StoreError::Conflict` (see
/// `TokenRepo::save_issued`).
async fn issue(
    p: &Provider,
    g: UserGrant<'_>,
    now: i64,
    meta: &RequestMeta,
) -> ProtocolResult<TokenResponse> {
    let (client_id, user_id, cap) = (
        g.client.id.clone(),
        g.user.id.clone(),
        g.client.refresh_token_cap,
    );
    let new = g.new;
    let (response, issued) = mint(p, g, now, meta).await?;
    p.tokens.save_issued(issued).await?;
    // Only a new grant can push a user past the cap: rotation keeps the grant.
    if new && response.refresh_token.is_some() {
        p.tokens
            .cap_refresh_grants(&client_id, &user_id, cap, now)
            .await?;
    }
    Ok(response)
}

async fn sign_id_token(
    p: &Provider,
    g: &UserGrant<'_>,
    access: &str,
    now: i64,
) -> ProtocolResult<String> {
    // Scope claims go to UserInfo (OIDC Core §5.4): an access token is always issued with this
    // ID token. Only claims requested for the ID token itself are added here.
    let asked: &[String] = g.grant.claims.as_ref().map_or(&[], |c| &c.id_token);
    let names = || asked.iter().map(String::as_str);
    let groups = if claims::wants_groups(names()) {
        p.groups.names_for_user(&g.user.id).await?
    } else {
        Vec::new()
    };
    let alg = g.client.id_token_alg;
    let claims = id_token::claims(id_token::IdTokenInput {
        issuer: &p.issuer,
        sub: &g.user.id,
        client_id: &g.client.id,
        alg,
        nonce: g.nonce,
        auth_time: g.grant.auth_time,
        amr: &g.grant.amr,
        sid: &g.grant.sid,
        access_token: Some(access),
        user_claims: claims::values(g.user, &groups, names()),
        now,
        ttl: Ttls::of(&p.lifetimes, g.client).id_token,
    });
    let keys = p.keys.snapshot();
    // RSA signing costs most of a millisecond: it goes to the blocking pool so the async
    // workers keep serving. ES256 and EdDSA cost tens of microseconds, less than the two
    // thread switches of that hand-off: they are signed inline (measured with the writer on
    // the shared runtime: SSO ES256 2,562 -> 2,897 round trips/s, 445 -> 411 us CPU each).
    let jwt = if alg == SigningAlg::RS256 {
        tokio::task::spawn_blocking(move || keys.sign(alg, &claims, now))
            .await
            .map_err(anyhow::Error::from)??
    } else {
        keys.sign(alg, &claims, now)?
    };
    Ok(jwt)
}
