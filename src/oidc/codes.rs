//! Authorization codes: the approved request's outcome sealed with AES-256-GCM under a server
//! key, so issuing one writes nothing. Single use comes from the grant id a code carries: the
//! exchange inserts that grant, and a second insert of the same id is refused by the store.

use crate::crypto::{b64url, ordered_id};
use crate::domain::{AuthCode, join_scope};
use crate::oidc::authorize::AuthRequest;
use crate::oidc::{ProtocolResult, Provider};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Purpose bound into every sealed code, so no other sealed blob can pass for one.
const CODE_AAD: &[u8] = b"keyway authorization code";

/// Who signed in for the request, and how (recorded in the grant and the ID token).
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub user_id: &'a str,
    pub auth_time: i64,
    pub amr: &'a str,
    pub sid: &'a str,
}

/// Creates a code for a signed-in user's approved request.
pub fn create(p: &Provider, req: &AuthRequest, login: Login<'_>) -> ProtocolResult<String> {
    let now = p.now();
    let code = AuthCode {
        grant_id: ordered_id(now)?,
        client_id: req.client_id.clone(),
        user_id: login.user_id.to_owned(),
        redirect_uri: req.redirect_uri.clone(),
        scope: join_scope(&req.scopes),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: login.auth_time,
        amr: login.amr.to_owned(),
        sid: login.sid.to_owned(),
        expires_at: now + p.lifetimes.authorization_code as i64,
        created_at: now,
        claims: req.claims.clone(),
    };
    let json = serde_json::to_vec(&code).map_err(anyhow::Error::from)?;
    Ok(b64url(&p.code_key.seal(&json, CODE_AAD)?))
}

/// The request a code stands for, if the server sealed it (whatever its age).
pub fn open(p: &Provider, code: &str) -> Option<AuthCode> {
    let sealed = URL_SAFE_NO_PAD.decode(code).ok()?;
    let json = p.code_key.open(&sealed, CODE_AAD).ok()?;
    serde_json::from_slice(&json).ok()
}
