//! Groups: list and create; a group's page renames it, deletes it, and adds or removes members.

use super::{Admin, operator, refusal};
use crate::auth::session;
use crate::ops::OpsError;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
use crate::web::{pages, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/groups", get(list).post(create))
        .route("/admin/groups/{id}", get(show))
        .route("/admin/groups/{id}/rename", post(rename))
        .route("/admin/groups/{id}/delete", post(delete))
        .route("/admin/groups/{id}/members", post(add_member))
        .route("/admin/groups/{id}/members/remove", post(remove_member))
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct ListPage<'a> {
    csrf: &'a str,
    name: &'a str,
    groups: Vec<crate::store::GroupInfo>,
    error: Option<&'a str>,
}

async fn render_list(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    error: Option<&str>,
) -> AppResult<Response> {
    let groups = state.repos.groups.list().await?;
    let csrf = session::csrf_token(session, &state.auth).await?;
    Ok(pages::render(
        pages::status_for(error),
        &ListPage {
            csrf: &csrf,
            name: &admin.user.username,
            groups,
            error,
        },
    ))
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    render_list(&state, &session, &admin, None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

async fn create(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm { form, session }: CsrfForm<NameForm>,
) -> AppResult<Response> {
    match operator(&state, &admin).create_group(&form.name).await {
        Ok(id) => Ok(see_other(&format!("/admin/groups/{id}"))),
        Err(e) => render_list(&state, &session, &admin, Some(&refusal(e)?)).await,
    }
}

struct Member {
    id: String,
    username: String,
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupPage<'a> {
    csrf: &'a str,
    name: &'a str,
    group: crate::store::GroupInfo,
    members: Vec<Member>,
    error: Option<&'a str>,
}

async fn render_group(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    id: &str,
    error: Option<&str>,
) -> AppResult<Response> {
    let group = state
        .repos
        .groups
        .get(id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let mut members = Vec::new();
    for uid in state.repos.groups.member_ids(id).await? {
        if let Some(u) = state.repos.users.by_id(&uid).await? {
            members.push(Member {
                id: u.id,
                username: u.username,
            });
        }
    }
    members.sort_by(|a, b| a.username.cmp(&b.username));
    let csrf = session::csrf_token(session, &state.auth).await?;
    Ok(pages::render(
        pages::status_for(error),
        &GroupPage {
            csrf: &csrf,
            name: &admin.user.username,
            group,
            members,
            error,
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    render_group(&state, &session, &admin, &id, None).await
}

/// Back to the group's page, or the page again with the refusal.
async fn after(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    id: &str,
    result: Result<(), OpsError>,
) -> AppResult<Response> {
    match result {
        Ok(()) => Ok(see_other(&format!("/admin/groups/{id}"))),
        Err(e) => render_group(state, session, admin, id, Some(&refusal(e)?)).await,
    }
}

async fn rename(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<NameForm>,
) -> AppResult<Response> {
    let result = operator(&state, &admin).rename_group(&id, &form.name).await;
    after(&state, &session, &admin, &id, result).await
}

async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    match operator(&state, &admin).delete_group(&id).await {
        Ok(()) => Ok(see_other("/admin/groups")),
        Err(OpsError::NotFound(_)) => Err(AppError::not_found()),
        Err(e) => Err(AppError::Internal(anyhow::anyhow!("{e}"))),
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    user: String,
}

async fn add_member(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<MemberForm>,
) -> AppResult<Response> {
    let result = match operator(&state, &admin)
        .add_member(&id, &form.username)
        .await
    {
        Err(OpsError::NotFound(what)) if what.starts_with("user") => Err(OpsError::Invalid(
            format!("nobody is called {:?}", form.username.trim()),
        )),
        other => other,
    };
    after(&state, &session, &admin, &id, result).await
}

async fn remove_member(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<MemberForm>,
) -> AppResult<Response> {
    let result = operator(&state, &admin)
        .remove_member(&id, &form.user)
        .await;
    after(&state, &session, &admin, &id, result).await
}
