//! The sign-in page: username and password in a plain HTML form. Unknown user, wrong password and
//! disabled account all get the same page, after the same amount of work.

use crate::auth::session;
use crate::domain::{AuditEvent, AuthMethod};
use crate::error::AppResult;
use crate::oidc::tokens::RequestMeta;
use crate::state::AppState;
use crate::web::{pages, urls};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new().route(urls::SIGNIN, get(show).post(submit))
}

#[derive(Template)]
#[template(path = "pages/signin.html")]
struct SigninPage<'a> {
    csrf: &'a str,
    req: &'a str,
    username: &'a str,
    client_name: Option<String>,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct SigninQuery {
    req: Option<String>,
}

/// The same words whatever was wrong, so the page does not reveal which accounts exist.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

async fn client_name(
    state: &AppState,
    session: &Session,
    req: &str,
) -> AppResult<(Option<String>, Option<String>)> {
    if req.is_empty() {
        return Ok((None, None));
    }
    let Some(r) = session::parked(session, req).await? else {
        return Ok((None, None));
    };
    let name = state.repos.clients.get(&r.client_id).await?.map(|c| c.name);
    Ok((name, r.login_hint))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SigninQuery>,
) -> AppResult<Response> {
    let req = q.req.unwrap_or_default();
    let csrf = session::csrf_token(&session).await?;
    let (client_name, hint) = client_name(&state, &session, &req).await?;
    Ok(pages::render(
        StatusCode::OK,
        &SigninPage {
            csrf: &csrf,
            req: &req,
            username: hint.as_deref().unwrap_or(""),
            client_name,
            error: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct SigninForm {
    csrf: Option<String>,
    #[serde(default)]
    req: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    axum::Form(form): axum::Form<SigninForm>,
) -> AppResult<Response> {
    session::check_csrf(&session, form.csrf.as_deref()).await?;
    let now = state.now();
    let username = form.username.trim();
    let user = if username.is_empty() || username.len() > 256 {
        None
    } else {
        state.repos.users.by_username(username).await?
    };
    let phc = match &user {
        Some(u) => state.repos.passwords.get(&u.id).await?,
        None => None,
    };
    let password_ok = state.passwords.verify(phc, &form.password).await?;
    let accepted = match &user {
        Some(u) if password_ok && !u.disabled => Some(u.clone()),
        _ => None,
    };
    let Some(user) = accepted else {
        state
            .audit(AuditEvent {
                at: now,
                event: "signin".into(),
                user_id: user.as_ref().map(|u| u.id.clone()),
                client_id: None,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                outcome: "failure".into(),
                detail: Some(
                    match (&user, password_ok) {
                        (None, _) => "unknown user",
                        (Some(u), true) if u.disabled => "account disabled",
                        _ => "wrong password",
                    }
                    .into(),
                ),
            })
            .await;
        let csrf = session::csrf_token(&session).await?;
        let (client_name, _) = client_name(&state, &session, &form.req).await?;
        return Ok(pages::render(
            StatusCode::UNAUTHORIZED,
            &SigninPage {
                csrf: &csrf,
                req: &form.req,
                username: &form.username,
                client_name,
                error: Some(BAD_CREDENTIALS),
            },
        ));
    };
    session::sign_in(&session, &user, AuthMethod::Pwd.amr(), now).await?;
    state
        .audit(AuditEvent {
            at: now,
            event: "signin".into(),
            user_id: Some(user.id.clone()),
            client_id: None,
            ip: meta.ip,
            user_agent: meta.user_agent,
            outcome: "success".into(),
            detail: Some("password".into()),
        })
        .await;
    if !form.req.is_empty() && session::parked(&session, &form.req).await?.is_some() {
        session::mark_login_done(&session, &form.req).await?;
        return Ok(
            Redirect::to(&format!("{}?req={}", urls::AUTHORIZE_RESUME, form.req)).into_response(),
        );
    }
    Ok(Redirect::to(urls::HOME).into_response())
}
