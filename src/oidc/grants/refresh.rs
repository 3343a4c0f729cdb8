//! The refresh token grant (RFC 6749 §6) with rotation; a replayed refresh token revokes its
//! grant (RFC 9700 §4.14.2).

use super::{Replay, TokenRequest, TokenResponse, UserGrant, active_user, issue, refuse_replay};
use crate::crypto::token_hash;
use crate::domain::{Client, RequestMeta, parse_scope};
use crate::oidc::{ProtocolError, ProtocolResult, Provider};
use crate::store::RefreshRotation;

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
    let (token, grant) = match p.tokens.rotate_refresh(&hash, &client.id, now).await? {
        RefreshRotation::Unknown => {
            return Err(ProtocolError::invalid_grant("the refresh token is invalid"));
        }
        RefreshRotation::Replayed(t) => {
            let replay = Replay {
                event: "refresh_replay",
                grant_id: t.grant_id.as_deref(),
                user_id: t.user_id.as_deref(),
                refusal: "the refresh token was already used",
            };
            return refuse_replay(p, client, meta, now, replay).await;
        }
        RefreshRotation::Rotated(t, g) => (t, g),
    };
    if token.expires_at <= now {
        return Err(ProtocolError::invalid_grant(
            "the refresh token has expired",
        ));
    }
    let grant = match grant {
        Some(g) if g.revoked_at.is_none() && g.expires_at > now => *g,
        _ => return Err(ProtocolError::invalid_grant("the refresh token is invalid")),
    };
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
    issue(
        p,
        UserGrant {
            client,
            user: &user,
            grant: &grant,
            new: false,
            scopes: &scopes,
            nonce: None,
            grant_type: "refresh_token",
        },
        now,
        meta,
    )
    .await
}
