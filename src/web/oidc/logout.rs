//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): with a valid id_token_hint for the
//! signed-in user the session ends at once; otherwise the user confirms on a page first, whose
//! form (like the account page's "Sign out") posts to `SIGN_OUT` with a CSRF token.

use crate::auth::session;
use crate::domain::{AuditEvent, RequestMeta};
use crate::oidc::logout::{self, LogoutRequest};
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, MaybeUser};
use crate::web::{pages, see_other, urls};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
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
    current: MaybeUser,
    meta: RequestMeta,
    RawQuery(q): RawQuery,
) -> AppResult<Response> {
    let p = params(q.unwrap_or_default().as_bytes());
    handle(&state, &session, current, &meta, p, false).await
}

pub async fn logout_post(
    State(state): State<AppState>,
    session: Session,
    current: MaybeUser,
    meta: RequestMeta,
    body: Bytes,
) -> AppResult<Response> {
    handle(&state, &session, current, &meta, params(&body), false).await
}

/// The confirmation page's form and the account page's "Sign out" button.
pub async fn confirmed(
    State(state): State<AppState>,
    current: MaybeUser,
    meta: RequestMeta,
    CsrfForm { form, session }: CsrfForm<HashMap<String, String>>,
) -> AppResult<Response> {
    handle(&state, &session, current, &meta, form, true).await
}

async fn handle(
    state: &AppState,
    session: &Session,
    MaybeUser(current): MaybeUser,
    meta: &RequestMeta,
    p: HashMap<String, String>,
    confirmed: bool,
) -> AppResult<Response> {
    let req = logout::check(&state.oidc, &p)
        .await
        .map_err(|e| AppError::page_from("Cannot sign out", e))?;
    let user = current.as_ref().map(|(_, u)| u);
    if !confirmed && req.needs_confirmation(user.map(|u| u.id.as_str())) {
        return confirm_page(state, session, &req).await;
    }
    if let Some(user) = user {
        state
            .auth
            .audit
            .record(AuditEvent {
                at: state.now(),
                event: "logout".into(),
                user_id: Some(user.id.clone()),
                client_id: req.client.as_ref().map(|c| c.id.clone()),
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                outcome: "success".into(),
                detail: None,
            })
            .await;
    }
    session::end(session).await?;
    Ok(see_other(&req.target(urls::SIGNOUT_DONE)))
}

async fn confirm_page(
    state: &AppState,
    session: &Session,
    req: &LogoutRequest,
) -> AppResult<Response> {
    let csrf = session::csrf_token(session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &ConfirmPage {
            csrf: &csrf,
            client_name: req.client.as_ref().map(|c| c.name.as_str()),
            client_id: req.client.as_ref().map(|c| c.id.as_str()),
            post_logout_redirect_uri: req.redirect.as_deref(),
            logout_state: req.state.as_deref(),
        },
    ))
}
