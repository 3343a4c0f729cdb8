//! What a presented token is worth: introspection (RFC 7662) for its client, and the bearer
//! check behind UserInfo (RFC 6750).

use crate::crypto::token_hash;
use crate::domain::{Client, StoredToken, TokenKind, User, parse_scope};
use crate::oidc::{ProtocolError, ProtocolResult, Provider, claims};
use serde_json::{Map, Value, json};

/// A live token and the active user it was issued for, if any.
async fn live(p: &Provider, token: &str) -> ProtocolResult<Option<(StoredToken, Option<User>)>> {
    let now = p.now();
    let Some(t) = p.tokens.token(&token_hash(token)).await? else {
        return Ok(None);
    };
    if !t.is_active(now) {
        return Ok(None);
    }
    let user = match &t.user_id {
        Some(id) => match p.users.by_id(id).await? {
            Some(u) if !u.disabled => Some(u),
            _ => return Ok(None),
        },
        None => None,
    };
    Ok(Some((t, user)))
}

/// RFC 7662. Only the client a token was issued to learns anything about it.
pub async fn introspect(p: &Provider, client: &Client, token: &str) -> ProtocolResult<Value> {
    let inactive = json!({"active": false});
    let Some((t, user)) = live(p, token).await? else {
        return Ok(inactive);
    };
    if t.client_id != client.id {
        return Ok(inactive);
    }
    let mut v = json!({
        "active": true,
        "scope": t.scope,
        "client_id": t.client_id,
        "token_type": match t.kind { TokenKind::Access => "Bearer", TokenKind::Refresh => "refresh_token" },
        "exp": t.expires_at,
        "iat": t.created_at,
        "iss": p.issuer,
        "aud": t.client_id,
    });
    if let (Some(u), Some(obj)) = (user, v.as_object_mut()) {
        obj.insert("sub".into(), json!(u.id));
        obj.insert("username".into(), json!(u.username));
    }
    Ok(v)
}

/// UserInfo claims (OIDC Core §5.3) for a bearer access token issued with `openid`.
pub async fn userinfo(p: &Provider, token: &str) -> ProtocolResult<Map<String, Value>> {
    let found = live(p, token).await?;
    let Some((t, user)) = found.filter(|(t, _)| t.kind == TokenKind::Access) else {
        return Err(ProtocolError::bearer(
            401,
            Some("invalid_token"),
            "the access token is invalid, expired or revoked",
        ));
    };
    let scopes = parse_scope(&t.scope);
    let (Some(user), true) = (user, scopes.iter().any(|s| s == "openid")) else {
        return Err(ProtocolError::bearer(
            403,
            Some("insufficient_scope"),
            "the access token was not issued with the openid scope",
        ));
    };
    let names = || claims::userinfo_names(&scopes, t.claims.as_ref());
    let groups = if claims::wants_groups(names()) {
        p.groups.names_for_user(&user.id).await?
    } else {
        Vec::new()
    };
    let mut released = claims::values(&user, &groups, names());
    released.insert("sub".into(), json!(user.id));
    Ok(released)
}
