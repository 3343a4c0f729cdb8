//! Token endpoint, UserInfo, revocation and introspection handlers: HTTP parsing only; the
//! protocol work is in `crate::oidc::tokens`.

use crate::error::{AppError, AppResult};
use crate::oidc::tokens::{ClientCredentials, RequestMeta, TokenRequest};
use crate::oidc::{id_token, tokens};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::HashMap;

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
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut form = form(&headers, &body)?;
    let creds = credentials(&headers, &mut form);
    let client = tokens::authenticate_client(&state, &creds, true).await?;
    let req = TokenRequest {
        grant_type: form.remove("grant_type"),
        code: form.remove("code"),
        redirect_uri: form.remove("redirect_uri"),
        code_verifier: form.remove("code_verifier"),
        refresh_token: form.remove("refresh_token"),
        scope: form.remove("scope"),
    };
    let response = tokens::token(&state, &client, req, &meta).await?;
    Ok(no_store(axum::Json(response).into_response()))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut form = form(&headers, &body)?;
    let creds = credentials(&headers, &mut form);
    let client = tokens::authenticate_client(&state, &creds, false).await?;
    let token = form
        .get("token")
        .ok_or_else(|| AppError::oauth("invalid_request", "token is required"))?;
    tokens::revoke(&state, &client, token).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut form = form(&headers, &body)?;
    let creds = credentials(&headers, &mut form);
    let client = tokens::authenticate_client(&state, &creds, false).await?;
    let token = form
        .get("token")
        .ok_or_else(|| AppError::oauth("invalid_request", "token is required"))?;
    let answer = tokens::introspect(&state, &client, token).await?;
    Ok(no_store(axum::Json(answer).into_response()))
}

fn bearer_error(
    status: StatusCode,
    error: Option<&'static str>,
    description: &'static str,
) -> AppError {
    AppError::Bearer {
        status,
        error,
        description,
    }
}

/// UserInfo (OIDC Core §5.3): the token in the Authorization header or, for POST, the form body.
pub async fn userinfo(
    State(state): State<AppState>,
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
                        StatusCode::BAD_REQUEST,
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
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "send the token only once",
            ));
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(bearer_error(StatusCode::UNAUTHORIZED, None, "")),
    };
    let Some(ctx) = tokens::bearer(&state, &token).await? else {
        return Err(bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is invalid, expired or revoked",
        ));
    };
    let scopes = crate::domain::parse_scope(&ctx.token.scope);
    let (Some(user), true) = (ctx.user, scopes.iter().any(|s| s == "openid")) else {
        return Err(bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not issued with the openid scope",
        ));
    };
    let groups = if scopes.iter().any(|s| s == "groups") {
        state.repos.groups.names_for_user(&user.id).await?
    } else {
        Vec::new()
    };
    let claims = id_token::scope_claims(&user, &scopes, &groups);
    Ok(no_store(axum::Json(claims).into_response()))
}
