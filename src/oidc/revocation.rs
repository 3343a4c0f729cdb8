//! Token revocation (RFC 7009).

use crate::crypto::token_hash;
use crate::domain::{Client, TokenKind};
use crate::oidc::{ProtocolResult, Provider};

/// Revokes the token if it belongs to `client`; unknown tokens are not an error (§2.2).
/// Revoking a refresh token ends its whole grant.
pub async fn revoke(p: &Provider, client: &Client, token: &str) -> ProtocolResult<()> {
    let now = p.now();
    let hash = token_hash(token);
    let Some(t) = p.tokens.token(&hash).await? else {
        return Ok(());
    };
    if t.client_id != client.id {
        return Ok(());
    }
    match (t.kind, &t.grant_id) {
        (TokenKind::Refresh, Some(g)) => p.tokens.revoke_grant(g, now).await?,
        _ => p.tokens.revoke_token(&hash, now).await?,
    }
    Ok(())
}
