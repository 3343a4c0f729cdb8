//! The client credentials grant (RFC 6749 §4.4): confidential clients only, no user, no
//! refresh token.

use super::{TokenRequest, TokenResponse, audit_event};
use crate::crypto::{ordered_token, token_hash};
use crate::domain::{Client, ClientKind, RequestMeta, StoredToken, TokenKind, join_scope};
use crate::domain::{OIDC_SCOPES, parse_scope};
use crate::oidc::{ProtocolError, ProtocolResult, Provider};
use crate::store::Issued;

pub(super) async fn issue(
    p: &Provider,
    client: &Client,
    req: TokenRequest,
    meta: &RequestMeta,
) -> ProtocolResult<TokenResponse> {
    if client.kind() != ClientKind::Confidential {
        return Err(ProtocolError::oauth(
            "unauthorized_client",
            "public clients cannot use client_credentials",
        ));
    }
    let now = p.now();
    // User-related scopes mean nothing without a user.
    let allowed: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !OIDC_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let scopes = match &req.scope {
        None => allowed,
        Some(s) => {
            let asked = parse_scope(s);
            if let Some(bad) = asked.iter().find(|a| !allowed.contains(a)) {
                return Err(ProtocolError::oauth(
                    "invalid_scope",
                    format!("scope {bad} is not allowed for this client"),
                ));
            }
            asked
        }
    };
    let access = ordered_token(now)?;
    let ttl = super::access_ttl(p, client);
    p.tokens
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
                claims: None,
                parent: None,
            }],
            audit: Some(audit_event(
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
