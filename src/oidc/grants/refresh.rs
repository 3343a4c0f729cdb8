//! The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2).
//!
//! The rule, exactly:
//! - Everything that can refuse a refresh (unknown or expired token, another client's, inactive
//!   user, a wider `scope`) is checked before the token is touched, and the exchange of the old
//!   token for the new pair is one commit: a refusal or a failed write uses nothing up, and the
//!   client's retry with the same token works.
//! - A token presented again within `refresh.reuse_grace` seconds of its rotation, while no
//!   token issued from it has been used yet, gets a new token pair of the same grant (two tabs
//!   refreshing at once, a retry after a lost response); earlier pairs stay valid.
//! - Presented again later, or after a successor has been used, or once revoked: a replay, and
//!   the whole grant is revoked.
//! - Of the pairs handed out within the grace, an honest client keeps using one; when a second
//!   one is used too, the family has forked (a thief holds a branch): a replay, as above.

use super::{Replay, TokenRequest, TokenResponse, UserGrant, active_user, mint, refuse_replay};
use crate::crypto::token_hash;
use crate::domain::{Client, RequestMeta, parse_scope};
use crate::oidc::{ProtocolError, ProtocolResult, Provider};
use crate::store::RefreshRotation;

fn invalid() -> ProtocolError {
    ProtocolError::invalid_grant("the refresh token is invalid")
}

pub(super) async fn rotate(
    p: &Provider,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> ProtocolResult<TokenResponse> {
    let now = p.now();
    let presented = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| ProtocolError::invalid_request("refresh_token is required"))?;
    let hash = token_hash(presented);
    let (token, grant) = p
        .tokens
        .refresh_token(&hash)
        .await?
        .filter(|(t, _)| t.client_id == client.id)
        .ok_or_else(invalid)?;
    // Revoked (its grant ended): nothing to mint, and not news for the audit log.
    if token.revoked_at.is_some() || grant.revoked_at.is_some() || grant.expires_at <= now {
        return Err(invalid());
    }
    if token.expires_at <= now {
        return Err(ProtocolError::invalid_grant(
            "the refresh token has expired",
        ));
    }
    let user = match active_user(p, &grant.user_id).await {
        Ok(u) => u,
        Err(e) => {
            p.tokens.revoke_grant(&grant.id, now).await?;
            return Err(e);
        }
    };
    let granted = parse_scope(&token.scope);
    let scopes = match &req.scope {
        None => granted,
        Some(s) => {
            let asked = parse_scope(s);
            if !asked.iter().all(|a| granted.contains(a)) {
                return Err(ProtocolError::oauth(
                    "invalid_scope",
                    "scope exceeds the original grant",
                ));
            }
            asked
        }
    };
    // A narrower refresh keeps offline_access only if asked; without it the chain would end,
    // which is the client's choice to make.
    let (response, issued) = mint(
        p,
        UserGrant {
            client,
            user: &user,
            grant: &grant,
            new: false,
            scopes: &scopes,
            nonce: None,
            grant_type: "refresh_token",
            parent: Some(hash.clone()),
        },
        now,
        meta,
    )
    .await?;
    let grace = p.refresh_reuse_grace;
    match p
        .tokens
        .rotate_refresh(&hash, &client.id, now, grace, issued)
        .await?
    {
        RefreshRotation::Rotated { .. } => Ok(response),
        RefreshRotation::Unknown => Err(invalid()),
        RefreshRotation::Replayed(t) => {
            let replay = Replay {
                event: "refresh_replay",
                grant_id: t.grant_id.as_deref(),
                user_id: t.user_id.as_deref(),
                refusal: "the refresh token was already used",
            };
            refuse_replay(p, client, meta, now, replay).await
        }
    }
}
