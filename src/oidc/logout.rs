//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which application asks, where
//! to send the browser afterwards, and whether the user must confirm first.

use crate::domain::Client;
use crate::oidc::{ProtocolError, ProtocolResult, Provider, authorize::query_redirect};
use serde_json::Value;
use std::collections::HashMap;

/// A checked logout request.
#[derive(Debug)]
pub struct LogoutRequest {
    pub client: Option<Client>,
    /// A registered post_logout_redirect_uri.
    pub redirect: Option<String>,
    pub state: Option<String>,
    /// `sub` of a valid id_token_hint issued here.
    pub hint_sub: Option<String>,
}

fn refuse(message: &str) -> ProtocolError {
    ProtocolError::invalid_request(message)
}

/// Checks the parameters: the id_token_hint (signed here, for this issuer), client_id agreeing
/// with it, and post_logout_redirect_uri registered for that client. A refusal is an
/// `invalid_request` whose description is meant for the user.
pub async fn check(
    p: &Provider,
    params: &HashMap<String, String>,
) -> ProtocolResult<LogoutRequest> {
    let hint = params.get("id_token_hint").and_then(|t| {
        p.keys
            .snapshot()
            .verify(t)
            .filter(|c| c.get("iss").and_then(Value::as_str) == Some(p.issuer.as_str()))
    });
    let hint_aud = hint.as_ref().and_then(|c| match c.get("aud") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    let hint_sub = hint
        .as_ref()
        .and_then(|c| c.get("sub").and_then(Value::as_str).map(str::to_owned));
    let client_id = match (params.get("client_id"), &hint_aud) {
        (Some(a), Some(b)) if a != b => {
            return Err(refuse("client_id does not match the id_token_hint."));
        }
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    let client = match &client_id {
        Some(id) => Some(
            p.clients
                .get(id)
                .await?
                .ok_or_else(|| refuse("The application is not registered."))?,
        ),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(c) = &client else {
                return Err(refuse(
                    "post_logout_redirect_uri needs client_id or id_token_hint.",
                ));
            };
            if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(refuse(
                    "post_logout_redirect_uri is not registered for this application.",
                ));
            }
            Some(uri.clone())
        }
    };
    Ok(LogoutRequest {
        client,
        redirect,
        state: params.get("state").cloned(),
        hint_sub,
    })
}

impl LogoutRequest {
    /// The user confirms on a page unless the id_token_hint names the signed-in user (or nobody
    /// is signed in, so there is nothing to end).
    pub fn needs_confirmation(&self, signed_in_user: Option<&str>) -> bool {
        match (&self.hint_sub, signed_in_user) {
            (_, None) => false,
            (Some(sub), Some(user)) => sub != user,
            (None, Some(_)) => true,
        }
    }

    /// Where the browser goes once signed out: the client's URI with `state`, or `fallback`.
    pub fn target(&self, fallback: &str) -> String {
        match (&self.redirect, &self.state) {
            (Some(uri), Some(s)) => query_redirect(uri, &[("state", s.clone())]),
            (Some(uri), None) => uri.clone(),
            (None, _) => fallback.to_owned(),
        }
    }
}
