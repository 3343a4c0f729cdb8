//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6).

use super::{Replay, TokenRequest, TokenResponse, UserGrant, active_user, issue, refuse_replay};
use crate::domain::{Client, Grant, RequestMeta, parse_scope};
use crate::oidc::{ProtocolError, ProtocolResult, Provider, codes, pkce};
use crate::store::StoreError;

pub(super) async fn exchange(
    p: &Provider,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> ProtocolResult<TokenResponse> {
    let now = p.now();
    let code = req
        .code
        .as_deref()
        .ok_or_else(|| ProtocolError::invalid_request("code is required"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| ProtocolError::invalid_request("redirect_uri is required"))?;
    let Some(code) = codes::open(p, code) else {
        return Err(ProtocolError::invalid_grant(
            "the authorization code is invalid",
        ));
    };
    if code.client_id != client.id {
        return Err(ProtocolError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.expires_at <= now {
        return Err(ProtocolError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(ProtocolError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    check_pkce(code.code_challenge.as_deref(), req.code_verifier.as_deref())?;
    let user = active_user(p, &code.user_id).await?;
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
        expires_at: now + super::refresh_ttl(p, client),
        revoked_at: None,
        claims: code.claims.clone(),
    };
    let issued = issue(
        p,
        UserGrant {
            client,
            user: &user,
            grant: &grant,
            new: true,
            scopes: &scopes,
            nonce: code.nonce.as_deref(),
            grant_type: "authorization_code",
            parent: None,
        },
        now,
        meta,
    )
    .await;
    match issued {
        // The grant this code carries exists already: the code was redeemed before. RFC 6749
        // §4.1.2: a replayed code revokes everything issued from it.
        Err(ProtocolError::Store(StoreError::Conflict(_))) => {
            let replay = Replay {
                event: "code_replay",
                grant_id: Some(&code.grant_id),
                user_id: Some(&code.user_id),
                refusal: "the authorization code was already used",
            };
            refuse_replay(p, client, meta, now, replay).await
        }
        other => other,
    }
}

fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> ProtocolResult<()> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(ProtocolError::invalid_grant(
            "code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(ProtocolError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => Err(ProtocolError::invalid_grant(
            "code_verifier sent but no code_challenge was in the authorization request",
        )),
        (None, None) => Ok(()),
    }
}
