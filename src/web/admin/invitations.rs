//! Invitations: list with status, create (the link is shown once, or emailed), revoke.

use super::{Admin, operator};
use crate::auth::session;
use crate::ops::{CreateInvitation, OpsError};
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
use crate::web::{pages, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/invitations", get(list).post(create))
        .route("/admin/invitations/{id}/revoke", post(revoke))
        .route("/admin/invitations/{id}/reissue", post(reissue))
}

struct Row {
    id: String,
    who: String,
    status: &'static str,
    uses_left: u32,
    expires: String,
    admin: bool,
    pending: bool,
    has_email: bool,
}

#[derive(Template)]
#[template(path = "admin/invitations.html")]
struct ListPage<'a> {
    csrf: &'a str,
    name: &'a str,
    rows: Vec<Row>,
    made: Made,
    error: Option<&'a str>,
}

/// What became of the link just made.
enum Made {
    Nothing,
    /// Shown this once.
    Link(String),
    /// Emailed to this address, and not shown: redeeming it then proves the address.
    Sent(String),
}

impl Made {
    fn of(state: &AppState, invitation: &crate::domain::Invitation, token: &str) -> Self {
        match (&invitation.email, invitation.emailed) {
            (Some(address), true) => Made::Sent(address.clone()),
            _ => Made::Link(crate::ops::invitation_url(&state.config.issuer, token)),
        }
    }
}

async fn render(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    made: Made,
    error: Option<&str>,
) -> AppResult<Response> {
    let now = state.now();
    let rows = state
        .repos
        .invitations
        .list()
        .await?
        .into_iter()
        .map(|i| {
            let status = i.status(now);
            Row {
                who: i
                    .email
                    .clone()
                    .or(i.username.clone())
                    .unwrap_or_else(|| "anyone with the link".into()),
                status: status.as_str(),
                uses_left: i.uses_left(),
                expires: pages::when(i.expires_at),
                admin: i.is_admin,
                pending: status == crate::domain::InvitationStatus::Pending,
                has_email: i.email.is_some(),
                id: i.id,
            }
        })
        .collect();
    let csrf = session::csrf_token(session, &state.auth).await?;
    let status = match made {
        Made::Nothing => pages::status_for(error),
        _ => StatusCode::CREATED,
    };
    Ok(pages::render(
        status,
        &ListPage {
            csrf: &csrf,
            name: &admin.user.username,
            rows,
            made,
            error,
        },
    ))
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    render(&state, &session, &admin, Made::Nothing, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// Comma-separated group names.
    #[serde(default)]
    groups: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    send: Option<String>,
    #[serde(default = "default_hours")]
    hours: i64,
    #[serde(default = "default_uses")]
    uses: u32,
}

fn default_hours() -> i64 {
    72
}

fn default_uses() -> u32 {
    1
}

fn blank_none(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

async fn create(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm { form, session }: CsrfForm<CreateForm>,
) -> AppResult<Response> {
    if form.admin.is_some()
        && let Some(again) = super::fresh_sign_in(&state, &admin, "/admin/invitations")
    {
        return Ok(again);
    }
    let req = CreateInvitation {
        username: blank_none(&form.username),
        email: blank_none(&form.email),
        name: blank_none(&form.name),
        groups: form.groups.split(',').filter_map(blank_none).collect(),
        is_admin: form.admin.is_some(),
        expires_in: form.hours.saturating_mul(3600),
        uses: form.uses,
        send: form.send.is_some(),
    };
    let done = operator(&state, &admin).create_invitation(req).await;
    shown(&state, &session, &admin, done).await
}

/// The list again with what became of the link, or with the refusal.
async fn shown(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    done: Result<(crate::domain::Invitation, String), OpsError>,
) -> AppResult<Response> {
    match done {
        Ok((invitation, token)) => {
            let made = Made::of(state, &invitation, &token);
            render(state, session, admin, made, None).await
        }
        Err(e) => {
            let why = super::refusal(e)?;
            render(state, session, admin, Made::Nothing, Some(&why)).await
        }
    }
}

#[derive(Deserialize)]
pub struct ReissueForm {
    #[serde(default)]
    send: Option<String>,
}

/// A new link for a pending invitation (the old one stops working): shown once, or emailed
/// when asked. An administrator's invitation needs a fresh sign-in, as making one does.
async fn reissue(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<ReissueForm>,
) -> AppResult<Response> {
    let invitation = state
        .repos
        .invitations
        .get(&id)
        .await?
        .ok_or_else(AppError::not_found)?;
    if invitation.is_admin
        && let Some(again) = super::fresh_sign_in(&state, &admin, "/admin/invitations")
    {
        return Ok(again);
    }
    let done = operator(&state, &admin)
        .reissue_invitation(&id, form.send.is_some())
        .await;
    shown(&state, &session, &admin, done).await
}

async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    operator(&state, &admin).revoke_invitation(&id).await?;
    Ok(see_other("/admin/invitations"))
}
