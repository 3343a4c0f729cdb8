//! People: search and page through them, see one (passkeys, sessions), disable or enable, end a
//! session, remove a passkey. Changes go through the operator actions, as the CLI's do, audited
//! with the administrator as actor.

use super::{Admin, operator};
use crate::auth::session;
use crate::ops::OpsError;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
use crate::web::{pages, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/{id}", get(show))
        .route("/admin/users/{id}/disable", post(disable))
        .route("/admin/users/{id}/enable", post(enable))
        .route("/admin/users/{id}/sessions/end", post(end_session))
        .route("/admin/users/{id}/passkeys/remove", post(remove_passkey))
}

const PAGE: usize = 50;

struct Row {
    id: String,
    username: String,
    name: String,
    email: String,
    admin: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage<'a> {
    csrf: &'a str,
    name: &'a str,
    q: &'a str,
    rows: Vec<Row>,
    page: usize,
    pages: usize,
    total: usize,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let needle = query.q.trim().to_lowercase();
    let all: Vec<_> = state
        .repos
        .users
        .list()
        .await?
        .into_iter()
        .filter(|u| {
            needle.is_empty()
                || u.username.to_lowercase().contains(&needle)
                || u.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains(&needle))
                || u.name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
        })
        .collect();
    let pages = all.len().div_ceil(PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = all
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|u| Row {
            id: u.id.clone(),
            username: u.username.clone(),
            name: u.name.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            admin: u.is_admin,
            disabled: u.disabled,
        })
        .collect();
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &ListPage {
            csrf: &csrf,
            name: &admin.user.username,
            q: query.q.trim(),
            rows,
            page,
            pages,
            total: all.len(),
        },
    ))
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

struct SessionRow {
    key: String,
    browser: String,
    ip: String,
    seen: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage<'a> {
    csrf: &'a str,
    name: &'a str,
    user: &'a crate::domain::User,
    groups: Vec<GroupChoice>,
    passkeys: Vec<PasskeyRow>,
    sessions: Vec<SessionRow>,
    flash: Flash,
}

struct GroupChoice {
    id: String,
    name: String,
    member: bool,
}

/// What the user's page says on top, after an action.
#[derive(Default)]
pub enum Flash {
    #[default]
    Nothing,
    Error(String),
    /// A recovery link just made: shown this once.
    Link(String),
    Notice(String),
}

pub(super) async fn render_user(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    id: &str,
    flash: Flash,
) -> AppResult<Response> {
    let user = state
        .repos
        .users
        .by_id(id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let mine = state.repos.groups.ids_for_user(&user.id).await?;
    let groups = state
        .repos
        .groups
        .list()
        .await?
        .into_iter()
        .map(|g| GroupChoice {
            member: mine.contains(&g.id),
            id: g.id,
            name: g.name,
        })
        .collect();
    let passkeys = state
        .repos
        .passkeys
        .list_for_user(&user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: pages::when(p.created_at),
            last_used: p.last_used_at.map_or("never".into(), pages::when),
        })
        .collect();
    let sessions = crate::auth::account::sessions(&state.auth, &user.id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            browser: s
                .user_agent
                .as_deref()
                .and_then(crate::auth::passkey::names::describe_user_agent)
                .unwrap_or_else(|| "Unknown browser".into()),
            ip: s.ip.unwrap_or_default(),
            seen: pages::when(s.seen_at),
            key: s.key,
        })
        .collect();
    let csrf = session::csrf_token(session, &state.auth).await?;
    let status = match flash {
        Flash::Error(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    Ok(pages::render(
        status,
        &UserPage {
            csrf: &csrf,
            name: &admin.user.username,
            user: &user,
            groups,
            passkeys,
            sessions,
            flash,
        },
    ))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    created: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> AppResult<Response> {
    let flash = match q.created {
        Some(_) => Flash::Notice(
            "Account created. It has no way to sign in yet: make a link below and give it to \
             its owner, or email it, to let them register a passkey."
                .into(),
        ),
        None => Flash::Nothing,
    };
    render_user(&state, &session, &admin, &id, flash).await
}

pub(super) async fn username_of(state: &AppState, id: &str) -> AppResult<String> {
    Ok(state
        .repos
        .users
        .by_id(id)
        .await?
        .ok_or_else(AppError::not_found)?
        .username)
}

/// Back to the user's page, or the page again with the refusal.
pub(super) async fn done(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    id: &str,
    result: Result<(), OpsError>,
) -> AppResult<Response> {
    match result {
        Ok(()) => Ok(see_other(&format!("/admin/users/{id}"))),
        Err(e) => {
            let why = super::refusal(e)?;
            render_user(state, session, admin, id, Flash::Error(why)).await
        }
    }
}

async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    let name = username_of(&state, &id).await?;
    if let Some(again) = super::fresh_sign_in(&state, &admin, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    let result = operator(&state, &admin)
        .disable_user(&name)
        .await
        .map(|_| ());
    done(&state, &session, &admin, &id, result).await
}

async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    let name = username_of(&state, &id).await?;
    let result = operator(&state, &admin)
        .enable_user(&name)
        .await
        .map(|_| ());
    done(&state, &session, &admin, &id, result).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    key: String,
}

async fn end_session(
    State(state): State<AppState>,
    meta: crate::domain::RequestMeta,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<KeyForm>,
) -> AppResult<Response> {
    username_of(&state, &id).await?;
    crate::auth::account::end_session(&state.auth, &id, &form.key, &meta).await?;
    done(&state, &session, &admin, &id, Ok(())).await
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    passkey: String,
}

async fn remove_passkey(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<PasskeyForm>,
) -> AppResult<Response> {
    let username = username_of(&state, &id).await?;
    let result = operator(&state, &admin)
        .remove_user_passkey(&username, &form.passkey)
        .await;
    done(&state, &session, &admin, &id, result).await
}
