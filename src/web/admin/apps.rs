//! Applications (OIDC clients): the list; an application's page with its discovery URL, client
//! id and a configuration snippet; which groups may use it; delete (revoking its tokens).

use super::{Admin, fresh_sign_in, operator};
use crate::auth::session;
use crate::domain::ClientKind;
use crate::ops::OpsError;
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
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/apps", get(list))
        .route("/admin/apps/{id}", get(show))
        .route("/admin/apps/{id}/groups", post(set_groups))
        .route("/admin/apps/{id}/delete", post(delete))
}

struct Row {
    id: String,
    name: String,
    public: bool,
    restricted: bool,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct ListPage<'a> {
    csrf: &'a str,
    name: &'a str,
    rows: Vec<Row>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    let rows = state
        .repos
        .clients
        .list()
        .await?
        .into_iter()
        .map(|c| Row {
            public: c.kind() == ClientKind::Public,
            restricted: !c.allowed_groups.is_empty(),
            id: c.id,
            name: c.name,
        })
        .collect();
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &ListPage {
            csrf: &csrf,
            name: &admin.user.username,
            rows,
        },
    ))
}

struct GroupChoice {
    id: String,
    name: String,
    allowed: bool,
}

#[derive(Template)]
#[template(path = "admin/app.html")]
struct AppPage<'a> {
    csrf: &'a str,
    name: &'a str,
    client: crate::domain::Client,
    discovery: String,
    snippet: String,
    groups: Vec<GroupChoice>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let client = state
        .repos
        .clients
        .get(&id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let issuer = &state.config.issuer;
    let discovery = format!("{issuer}{}", crate::web::urls::DISCOVERY);
    let secret = match client.kind() {
        ClientKind::Confidential => "client_secret = \"(shown once when it was created)\"\n",
        ClientKind::Public => "# public client: no secret; use PKCE (S256)\n",
    };
    let snippet = format!(
        "issuer = \"{issuer}\"\nclient_id = \"{}\"\n{secret}redirect_uri = \"{}\"\nscopes = \"{}\"\n",
        client.id,
        client.redirect_uris.first().cloned().unwrap_or_default(),
        client.scopes.join(" ")
    );
    let groups = state
        .repos
        .groups
        .list()
        .await?
        .into_iter()
        .map(|g| GroupChoice {
            allowed: client.allowed_groups.contains(&g.id),
            id: g.id,
            name: g.name,
        })
        .collect();
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &AppPage {
            csrf: &csrf,
            name: &admin.user.username,
            client,
            discovery,
            snippet,
            groups,
        },
    ))
}

/// The form posts `group` once per ticked box: read as pairs.
async fn set_groups(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, .. }: CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    if id == super::rp::CLIENT_ID {
        return Err(AppError::bad_request(
            "Cannot restrict the admin UI",
            "Administrators use the admin UI whatever their groups.",
        ));
    }
    let groups: Vec<String> = form
        .into_iter()
        .filter(|(k, _)| k == "group")
        .map(|(_, v)| v)
        .collect();
    match operator(&state, &admin)
        .set_client_groups(&id, groups)
        .await
    {
        Ok(()) => Ok(see_other(&format!("/admin/apps/{id}"))),
        Err(OpsError::NotFound(_)) => Err(AppError::not_found()),
        Err(e) => Err(AppError::Internal(anyhow::anyhow!("{e}"))),
    }
}

async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if id == super::rp::CLIENT_ID {
        return Err(AppError::bad_request(
            "Cannot delete the admin UI",
            "The admin UI signs in with this application.",
        ));
    }
    if let Some(again) = fresh_sign_in(&state, &admin, &format!("/admin/apps/{id}")) {
        return Ok(again);
    }
    match operator(&state, &admin).delete_client(&id).await {
        Ok(()) => Ok(see_other("/admin/apps")),
        Err(OpsError::NotFound(_)) => Err(AppError::not_found()),
        Err(e) => Err(AppError::Internal(anyhow::anyhow!("{e}"))),
    }
}
