//! Invitation links: `/invite/{token}` shows the form (username, display name), the page's
//! script registers a passkey, and the answer creates the account, signed in. An expired,
//! revoked, used-up or unknown link gets a page that says which, and never a partial account.

use crate::auth::invitation::{self, Problem};
use crate::auth::{CredentialError, session};
use crate::domain::{Invitation, InvitationStatus, RequestMeta};
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::CsrfForm;
use crate::web::signin::script_error;
use crate::web::{pages, see_other, urls};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invite/{token}", get(show).post(submit))
        .route("/invite/{token}/options", post(options))
}

#[derive(Template)]
#[template(path = "pages/invite.html")]
struct InvitePage<'a> {
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    name: &'a str,
    email: Option<&'a str>,
    is_admin: bool,
    groups: String,
    passkeys: bool,
    error: Option<&'a str>,
}

/// The page for a link that cannot be used: which case, and what to do.
fn closed(problem: &Problem) -> AppError {
    let (status, title, message) = match problem {
        Problem::Closed(Some(InvitationStatus::Expired)) => (
            StatusCode::GONE,
            "This invitation has expired",
            "Invitation links work for a limited time. Ask the person who invited you for a new link.",
        ),
        Problem::Closed(Some(InvitationStatus::Revoked)) => (
            StatusCode::GONE,
            "This invitation was withdrawn",
            "Whoever sent it revoked it. Ask them for a new link if you still need an account.",
        ),
        Problem::Closed(Some(InvitationStatus::UsedUp)) => (
            StatusCode::GONE,
            "This invitation has been used",
            "Every account this link could create exists already. If one of them is yours, sign in; otherwise ask for a new link.",
        ),
        Problem::Closed(Some(InvitationStatus::Pending)) | Problem::Closed(None) => (
            StatusCode::NOT_FOUND,
            "This invitation link is not valid",
            "Check that you opened the whole link from your message, or ask for a new one.",
        ),
        Problem::Invalid(why) => (
            StatusCode::BAD_REQUEST,
            "Cannot create the account",
            why.as_str(),
        ),
    };
    AppError::page(status, title, message.to_owned())
}

async fn page(
    state: &AppState,
    session: &Session,
    token: &str,
    invitation: &Invitation,
    form: Option<&InviteForm>,
    error: Option<&str>,
) -> AppResult<Response> {
    let csrf = session::csrf_token(session, &state.auth).await?;
    let status = pages::status_for(error);
    Ok(pages::render(
        status,
        &InvitePage {
            csrf: &csrf,
            token,
            username: form
                .map(|f| f.username.as_str())
                .or(invitation.username.as_deref())
                .unwrap_or(""),
            name: form
                .map(|f| f.name.as_str())
                .or(invitation.name.as_deref())
                .unwrap_or(""),
            email: invitation.email.as_deref(),
            is_admin: invitation.is_admin,
            groups: invitation.groups.join(", "),
            passkeys: state.auth.webauthn.is_some(),
            error,
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(token): Path<String>,
) -> AppResult<Response> {
    match invitation::pending(&state.auth, &token).await? {
        Ok(i) => page(&state, &session, &token, &i, None, None).await,
        Err(p) => Err(closed(&p)),
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
    /// The browser's new credential, as JSON.
    #[serde(default)]
    credential: String,
}

async fn options(
    State(state): State<AppState>,
    Path(token): Path<String>,
    CsrfForm { form, session }: CsrfForm<InviteForm>,
) -> AppResult<Response> {
    if state.auth.webauthn.is_none() {
        return Err(AppError::not_found());
    }
    match invitation::start(&state.auth, &session, &token, &form.username, &form.name).await? {
        Ok(options) => Ok(Json(options).into_response()),
        Err(Problem::Invalid(why)) => Ok(script_error(StatusCode::BAD_REQUEST, &why)),
        Err(Problem::Closed(_)) => Ok(script_error(
            StatusCode::GONE,
            "This invitation can no longer be used. Reload the page to see why.",
        )),
    }
}

async fn submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    Path(token): Path<String>,
    CsrfForm { form, session }: CsrfForm<InviteForm>,
) -> AppResult<Response> {
    let invitation = match invitation::pending(&state.auth, &token).await? {
        Ok(i) => i,
        Err(p) => return Err(closed(&p)),
    };
    const FAILED: &str = "The passkey could not be registered. Try again.";
    let Ok(credential) = serde_json::from_str(&form.credential) else {
        return page(
            &state,
            &session,
            &token,
            &invitation,
            Some(&form),
            Some(FAILED),
        )
        .await;
    };
    let done = invitation::finish(&state.auth, &session, &token, &credential, &meta).await;
    let who = match done {
        Ok(Ok(who)) => who,
        Ok(Err(Problem::Invalid(why))) => {
            return page(
                &state,
                &session,
                &token,
                &invitation,
                Some(&form),
                Some(&why),
            )
            .await;
        }
        Ok(Err(p)) => return Err(closed(&p)),
        Err(CredentialError::Refused) => {
            return page(
                &state,
                &session,
                &token,
                &invitation,
                Some(&form),
                Some(FAILED),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    session::start(&session, &state.auth, &who, &meta).await?;
    Ok(see_other(&format!("{}?welcome=1", urls::ACCOUNT)))
}
