//! Token endpoint, UserInfo, revocation and introspection handlers: HTTP parsing only; the
//! protocol work is in `crate::oidc` (client_auth, grants, revocation, introspection).

use crate::domain::RequestMeta;
use crate::oidc::client_auth::{self, ClientCredentials};
use crate::oidc::grants::{self, TokenRequest};
use crate::oidc::{ProtocolError, Provider, introspection, revocation};
use crate::web::error::{AppError, AppResult};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::HashMap;
use std::sync::Arc;

/// Parses an application/x-www-form-urlencoded body, refusing repeated parameters (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> AppResult<HashMap<String, String>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.split(';').next().is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }) {
        return Err(AppError::oauth(
            "invalid_request",
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(AppError::oauth(
                "invalid_request",
                format!("parameter {k} is repeated"),
            ));
        }
    }
    Ok(map)
}

fn form_decode(s: &str) -> String {
    let mut input = String::from("v=");
    input.push_str(s);
    url::form_urlencoded::parse(input.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Client credentials from `Authorization: Basic` (form-encoded id and secret, RFC 6749 §2.3.1)
/// and from the body.
fn credentials(headers: &HeaderMap, form: &mut HashMap<String, String>) -> ClientCredentials {
    let mut creds = ClientCredentials {
        form_id: form.remove("client_id"),
        form_secret: form.remove("client_secret"),
        ..Default::default()
    };
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let parsed = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
            })
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (id, secret) = pair.split_once(':')?;
                Some((form_decode(id), form_decode(secret)))
            });
        match parsed {
            Some(pair) => creds.basic = Some(pair),
            None => creds.malformed_header = true,
        }
    }
    creds
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

pub async fn token(
    State(p): State<Arc<Provider>>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut form = form(&headers, &body)?;
    let creds = credentials(&headers, &mut form);
    let client = client_auth::authenticate(&p, &creds, true, &meta).await?;
    let req = TokenRequest {
        grant_type: form.remove("grant_type"),
        code: form.remove("code"),
        redirect_uri: form.remove("redirect_uri"),
        code_verifier: form.remove("code_verifier"),
        refresh_token: form.remove("refresh_token"),
        scope: form.remove("scope"),
    };
    let response = grants::token(&p, &client, req, &meta).await?;
    Ok(no_store(axum::Json(response).into_response()))
}

pub async fn revoke(
    State(p): State<Arc<Provider>>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut form = form(&headers, &body)?;
    let creds = credentials(&headers, &mut form);
    let client = client_auth::authenticate(&p, &creds, false, &meta).await?;
    let token = form
        .get("token")
        .ok_or_else(|| AppError::oauth("invalid_request", "token is required"))?;
    revocation::revoke(&p, &client, token).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

pub async fn introspect(
    State(p): State<Arc<Provider>>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut form = form(&headers, &body)?;
    let creds = credentials(&headers, &mut form);
    let client = client_auth::authenticate(&p, &creds, false, &meta).await?;
    let token = form
        .get("token")
        .ok_or_else(|| AppError::oauth("invalid_request", "token is required"))?;
    let answer = introspection::introspect(&p, &client, token).await?;
    Ok(no_store(axum::Json(answer).into_response()))
}

fn bearer_error(status: u16, error: Option<&'static str>, description: &'static str) -> AppError {
    ProtocolError::bearer(status, error, description).into()
}

/// UserInfo (OIDC Core §5.3): the token in the Authorization header or, for POST, the form body.
pub async fn userinfo(
    State(p): State<Arc<Provider>>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            match v.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Some(token.trim().to_owned())
                }
                _ => {
                    return Err(bearer_error(
                        400,
                        Some("invalid_request"),
                        "malformed Authorization header",
                    ));
                }
            }
        }
    };
    let from_body = if body.is_empty() {
        None
    } else {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return Err(bearer_error(
                400,
                Some("invalid_request"),
                "send the token only once",
            ));
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(bearer_error(401, None, "")),
    };
    let claims = introspection::userinfo(&p, &token).await?;
    Ok(no_store(axum::Json(claims).into_response()))
}
