//! Changing people: create an account, edit its profile and groups, the admin flag, a recovery
//! link (shown or emailed), delete after a confirmation. Each is an operator action (the CLI has
//! the same), audited with the administrator as actor; the admin flag and deletion need a fresh
//! sign-in, and never leave Keyway without an administrator.

use super::users::{Flash, done, render_user, username_of};
use super::{Admin, fresh_sign_in, operator, refusal};
use crate::auth::session;
use crate::domain::NewUser;
use crate::ops::{CreateUser, Field, UserChanges, recovery_url};
use crate::state::AppState;
use crate::web::error::AppResult;
use crate::web::extract::CsrfForm;
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
        .route("/admin/users", post(create))
        .route("/admin/users/new", get(new_form))
        .route("/admin/users/{id}/profile", post(profile))
        .route("/admin/users/{id}/groups", post(groups))
        .route("/admin/users/{id}/admin", post(set_admin))
        .route("/admin/users/{id}/recovery", post(recovery))
        .route("/admin/users/{id}/delete", get(confirm_delete).post(delete))
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage<'a> {
    csrf: &'a str,
    name: &'a str,
    form: NewForm,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NewForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    admin: Option<String>,
}

async fn render_new(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    form: NewForm,
    error: Option<String>,
) -> AppResult<Response> {
    let csrf = session::csrf_token(session, &state.auth).await?;
    let status = pages::status_for(error.as_deref());
    Ok(pages::render(
        status,
        &NewPage {
            csrf: &csrf,
            name: &admin.user.username,
            form,
            error,
        },
    ))
}

async fn new_form(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    render_new(&state, &session, &admin, NewForm::default(), None).await
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Creates the account; its page then offers the link that lets its owner in.
async fn create(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm { form, session }: CsrfForm<NewForm>,
) -> AppResult<Response> {
    let is_admin = form.admin.is_some();
    if is_admin && let Some(again) = fresh_sign_in(&state, &admin, "/admin/users/new") {
        return Ok(again);
    }
    let req = CreateUser {
        user: NewUser {
            username: form.username.trim().to_owned(),
            email: optional(&form.email),
            name: optional(&form.full_name),
            is_admin,
        },
        password: None,
    };
    match operator(&state, &admin).create_user(req).await {
        Ok(user) => Ok(see_other(&format!("/admin/users/{}?created=1", user.id))),
        Err(e) => {
            let why = refusal(e)?;
            render_new(&state, &session, &admin, form, Some(why)).await
        }
    }
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
}

async fn profile(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<ProfileForm>,
) -> AppResult<Response> {
    let username = username_of(&state, &id).await?;
    let changes = UserChanges(vec![
        (Field::Name, optional(&form.full_name)),
        (Field::Email, optional(&form.email)),
    ]);
    let result = operator(&state, &admin)
        .update_user(&username, changes)
        .await
        .map(|_| ());
    done(&state, &session, &admin, &id, result).await
}

/// The form posts `group` once per ticked box: read as pairs.
async fn groups(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let username = username_of(&state, &id).await?;
    let ids = super::ticked_groups(form);
    let result = operator(&state, &admin)
        .set_user_groups(&username, &ids)
        .await;
    done(&state, &session, &admin, &id, result).await
}

#[derive(Deserialize)]
pub struct AdminForm {
    #[serde(default)]
    admin: String,
}

async fn set_admin(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<AdminForm>,
) -> AppResult<Response> {
    let username = username_of(&state, &id).await?;
    if let Some(again) = fresh_sign_in(&state, &admin, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    let result = operator(&state, &admin)
        .set_admin(&username, form.admin == "yes")
        .await
        .map(|_| ());
    done(&state, &session, &admin, &id, result).await
}

#[derive(Deserialize)]
pub struct RecoveryForm {
    #[serde(default)]
    send: Option<String>,
}

/// A recovery link for the account: on the page this once, or emailed to its address. For an
/// administrator's account, only after a fresh sign-in.
async fn recovery(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<RecoveryForm>,
) -> AppResult<Response> {
    let target = state
        .repos
        .users
        .by_id(&id)
        .await?
        .ok_or_else(crate::web::error::AppError::not_found)?;
    // A link into an administrator's account is as strong as making an administrator.
    if target.is_admin
        && let Some(again) = fresh_sign_in(&state, &admin, &format!("/admin/users/{id}"))
    {
        return Ok(again);
    }
    let username = target.username;
    let send = form.send.is_some();
    let flash = match operator(&state, &admin)
        .recovery_link(&username, send)
        .await
    {
        Ok(_) if send => Flash::Notice("The link is on its way to their email address.".into()),
        Ok(secret) => Flash::Link(recovery_url(&state.config.issuer, &secret)),
        Err(e) => Flash::Error(refusal(e)?),
    };
    render_user(&state, &session, &admin, &id, flash).await
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeletePage<'a> {
    csrf: &'a str,
    name: &'a str,
    id: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

async fn render_delete(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    id: &str,
    error: Option<&str>,
) -> AppResult<Response> {
    let username = username_of(state, id).await?;
    let csrf = session::csrf_token(session, &state.auth).await?;
    let status = pages::status_for(error);
    Ok(pages::render(
        status,
        &DeletePage {
            csrf: &csrf,
            name: &admin.user.username,
            id,
            username: &username,
            error,
        },
    ))
}

async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    render_delete(&state, &session, &admin, &id, None).await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// Deletes the account once its username is typed, after a fresh sign-in.
async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, session }: CsrfForm<DeleteForm>,
) -> AppResult<Response> {
    let username = username_of(&state, &id).await?;
    if !form.confirm.trim().eq_ignore_ascii_case(&username) {
        let why = "Type the username exactly to confirm.";
        return render_delete(&state, &session, &admin, &id, Some(why)).await;
    }
    if let Some(again) = fresh_sign_in(&state, &admin, &format!("/admin/users/{id}/delete")) {
        return Ok(again);
    }
    match operator(&state, &admin).delete_user(&username).await {
        Ok(()) => Ok(see_other("/admin/users")),
        Err(e) => {
            let why = refusal(e)?;
            render_delete(&state, &session, &admin, &id, Some(&why)).await
        }
    }
}
