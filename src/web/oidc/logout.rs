//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): with a valid id_token_hint for the
//! signed-in user the session ends at once; otherwise the user confirms on a page first.

use crate::auth::session;
use crate::domain::AuditEvent;
use crate::error::{AppError, AppResult};
use crate::oidc::tokens::RequestMeta;
use crate::state::AppState;
use crate::web::{pages, urls};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "pages/logout_confirm.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    client_name: Option<&'a str>,
    client_id: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    logout_state: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "pages/signed_out.html")]
struct SignedOutPage;

pub async fn signed_out() -> Response {
    pages::render(StatusCode::OK, &SignedOutPage)
}

fn params(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub async fn logout_get(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    RawQuery(q): RawQuery,
) -> AppResult<Response> {
    handle(
        &state,
        &session,
        &meta,
        params(q.unwrap_or_default().as_bytes()),
        false,
    )
    .await
}

pub async fn logout_post(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    body: Bytes,
) -> AppResult<Response> {
    let p = params(&body);
    let confirmed = p.get("confirm").is_some_and(|c| c == "yes");
    if confirmed {
        session::check_csrf(&session, p.get("csrf").map(String::as_str)).await?;
    }
    handle(&state, &session, &meta, p, confirmed).await
}

fn bad(message: &str) -> AppError {
    AppError::bad_request("Cannot sign out", message.to_owned())
}

async fn handle(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    p: HashMap<String, String>,
    confirmed: bool,
) -> AppResult<Response> {
    let hint =
        p.get("id_token_hint").and_then(|t| {
            state.keys.snapshot().verify(t).filter(|c| {
                c.get("iss").and_then(|v| v.as_str()) == Some(state.config.issuer.as_str())
            })
        });
    let hint_aud = hint.as_ref().and_then(|c| match c.get("aud") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(a)) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    });
    let hint_sub = hint
        .as_ref()
        .and_then(|c| c.get("sub").and_then(|v| v.as_str()).map(str::to_owned));
    let client_id = match (p.get("client_id"), &hint_aud) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad("client_id does not match the id_token_hint."));
        }
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    let client = match &client_id {
        Some(id) => Some(
            state
                .repos
                .clients
                .get(id)
                .await?
                .ok_or_else(|| bad("The application is not registered."))?,
        ),
        None => None,
    };
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(c) = &client else {
                return Err(bad(
                    "post_logout_redirect_uri needs client_id or id_token_hint.",
                ));
            };
            if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(bad(
                    "post_logout_redirect_uri is not registered for this application.",
                ));
            }
            Some(uri.clone())
        }
    };
    let logout_state = p.get("state").cloned();
    let current = session::current(session, state).await?;
    let hint_matches = match (&hint_sub, &current) {
        (Some(sub), Some((_, user))) => sub == &user.id,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if current.is_some() && !confirmed && !hint_matches {
        let csrf = session::csrf_token(session).await?;
        return Ok(pages::render(
            StatusCode::OK,
            &ConfirmPage {
                csrf: &csrf,
                client_name: client.as_ref().map(|c| c.name.as_str()),
                client_id: client.as_ref().map(|c| c.id.as_str()),
                post_logout_redirect_uri: redirect.as_deref(),
                logout_state: logout_state.as_deref(),
            },
        ));
    }
    if let Some((_, user)) = &current {
        state
            .audit(AuditEvent {
                at: state.now(),
                event: "logout".into(),
                user_id: Some(user.id.clone()),
                client_id: client.as_ref().map(|c| c.id.clone()),
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                outcome: "success".into(),
                detail: None,
            })
            .await;
    }
    session::sign_out(session).await?;
    let target = match redirect {
        Some(uri) => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(s) = logout_state {
                q.push(("state", s));
            }
            if q.is_empty() {
                uri
            } else {
                crate::oidc::authorize::query_redirect(&uri, &q)
            }
        }
        None => urls::SIGNOUT_DONE.to_owned(),
    };
    Ok(Redirect::to(&target).into_response())
}
