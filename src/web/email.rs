//! Links from email for one account: confirming an address (`/email/confirm/{token}`) and
//! recovering an account whose passkeys are lost (`/signin/recover`, `/recover/{token}`). Every
//! link's GET only shows a page with a button, so mail scanners that open links change nothing.

use crate::auth::email::{self, Recovery};
use crate::auth::{CredentialError, session};
use crate::domain::{EmailPurpose, RequestMeta};
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
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
        .route("/email/confirm/{token}", get(confirm_page).post(confirm))
        .route(urls::RECOVER, get(recover_page).post(recover_request))
        .route("/recover/{token}", get(recovery_page).post(recovery_finish))
        .route("/recover/{token}/options", post(recovery_options))
        .route("/recover/{token}/cancel", get(cancel_page).post(cancel))
}

#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub paragraphs: Vec<String>,
    pub csrf: &'a str,
    pub action: Option<String>,
    pub button: &'a str,
    pub secondary: bool,
    pub link: Option<(&'a str, &'a str)>,
}

impl MessagePage<'_> {
    fn respond(&self, status: StatusCode) -> Response {
        pages::render(status, self)
    }

    pub fn render_page(&self, status: StatusCode) -> Response {
        self.respond(status)
    }
}

fn gone() -> AppError {
    AppError::page(
        StatusCode::GONE,
        "This link no longer works",
        "It has expired, was used or cancelled already. Ask for a new one.",
    )
}

async fn confirm_page(
    State(state): State<AppState>,
    session: Session,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let Some(t) = email::find(&state.auth, &token).await? else {
        return Err(gone());
    };
    if t.purpose == EmailPurpose::Recovery {
        return Err(gone());
    }
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(MessagePage {
        title: "Confirm your email address",
        paragraphs: vec![format!("Confirm that {} is your address.", t.email)],
        csrf: &csrf,
        action: Some(format!("/email/confirm/{token}")),
        button: "Confirm",
        secondary: false,
        link: None,
    }
    .respond(StatusCode::OK))
}

async fn confirm(
    State(state): State<AppState>,
    meta: RequestMeta,
    Path(token): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    let done = email::confirm(&state.auth, &token, &meta).await?;
    let csrf = session::csrf_token(&session, &state.auth).await?;
    let (status, title, text) = match done {
        Ok((EmailPurpose::Change, address)) => (
            StatusCode::OK,
            "Email address changed",
            format!("Your account now uses {address}, and it is verified."),
        ),
        Ok((_, address)) => (
            StatusCode::OK,
            "Email address confirmed",
            format!("{address} is verified."),
        ),
        Err(why) => (StatusCode::GONE, "This link no longer works", why),
    };
    Ok(MessagePage {
        title,
        paragraphs: vec![text],
        csrf: &csrf,
        action: None,
        button: "",
        secondary: false,
        link: Some((urls::ACCOUNT, "Go to your account")),
    }
    .respond(status))
}

#[derive(Template)]
#[template(path = "pages/recover.html")]
struct RecoverPage<'a> {
    csrf: &'a str,
    sent: bool,
    delay_hours: i64,
}

async fn recover_page(State(state): State<AppState>, session: Session) -> AppResult<Response> {
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &RecoverPage {
            csrf: &csrf,
            sent: false,
            delay_hours: state.auth.recovery_delay / 3600,
        },
    ))
}

#[derive(Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    email: String,
}

/// The same page whatever the address.
async fn recover_request(
    State(state): State<AppState>,
    meta: RequestMeta,
    CsrfForm { form, session }: CsrfForm<RecoverForm>,
) -> AppResult<Response> {
    email::request_recovery(&state.auth, &form.email, state.auth.recovery_delay, &meta).await?;
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &RecoverPage {
            csrf: &csrf,
            sent: true,
            delay_hours: state.auth.recovery_delay / 3600,
        },
    ))
}

#[derive(Template)]
#[template(path = "pages/recover_link.html")]
struct RecoveryLinkPage<'a> {
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    passkeys: bool,
    error: Option<&'a str>,
}

async fn recovery_page(
    State(state): State<AppState>,
    session: Session,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let csrf = session::csrf_token(&session, &state.auth).await?;
    match email::recovery(&state.auth, &token).await? {
        Recovery::Gone => Err(gone()),
        Recovery::Waiting(at) => Ok(MessagePage {
            title: "Not yet",
            paragraphs: vec![
                format!(
                    "This recovery link opens on {}. The wait gives the account's owner time to cancel it if someone else asked.",
                    pages::when(at)
                ),
                "Did you not ask for it? Cancel it now.".into(),
            ],
            csrf: &csrf,
            action: Some(format!("/recover/{token}/cancel")),
            button: "Cancel this recovery",
            secondary: true,
            link: None,
        }
        .respond(StatusCode::OK)),
        Recovery::Open { username } => Ok(pages::render(
            StatusCode::OK,
            &RecoveryLinkPage {
                csrf: &csrf,
                token: &token,
                username: &username,
                passkeys: state.auth.webauthn.is_some(),
                error: None,
            },
        )),
    }
}

async fn recovery_options(
    State(state): State<AppState>,
    Path(token): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if state.auth.webauthn.is_none() {
        return Err(AppError::not_found());
    }
    match email::start_recovery(&state.auth, &session, &token).await? {
        Some(options) => Ok(Json(options).into_response()),
        None => Ok(script_error(
            StatusCode::GONE,
            "This recovery link does not work (any more). Reload the page to see why.",
        )),
    }
}

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    credential: String,
}

async fn recovery_finish(
    State(state): State<AppState>,
    meta: RequestMeta,
    Path(token): Path<String>,
    CsrfForm { form, session }: CsrfForm<CredentialForm>,
) -> AppResult<Response> {
    let failed = async |why: &str| -> AppResult<Response> {
        let csrf = session::csrf_token(&session, &state.auth).await?;
        let username = match email::recovery(&state.auth, &token).await? {
            Recovery::Open { username } => username,
            _ => return Err(gone()),
        };
        Ok(pages::render(
            StatusCode::BAD_REQUEST,
            &RecoveryLinkPage {
                csrf: &csrf,
                token: &token,
                username: &username,
                passkeys: state.auth.webauthn.is_some(),
                error: Some(why),
            },
        ))
    };
    const FAILED: &str = "The passkey could not be registered. Try again.";
    let Ok(credential) = serde_json::from_str(&form.credential) else {
        return failed(FAILED).await;
    };
    let who = match email::finish_recovery(&state.auth, &session, &token, &credential, &meta).await
    {
        Ok(Some(who)) => who,
        Ok(None) => return Err(gone()),
        Err(CredentialError::Refused) => return failed(FAILED).await,
        Err(e) => return Err(e.into()),
    };
    session::start(&session, &state.auth, &who, &meta).await?;
    Ok(see_other(&format!("{}?done=recovered", urls::ACCOUNT)))
}

async fn cancel_page(
    State(state): State<AppState>,
    session: Session,
    Path(token): Path<String>,
) -> AppResult<Response> {
    if matches!(email::recovery(&state.auth, &token).await?, Recovery::Gone) {
        return Err(gone());
    }
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(MessagePage {
        title: "Cancel the recovery?",
        paragraphs: vec![
            "Someone asked to recover your account with a link sent to your address. If it was not you, cancel it: nothing changes on your account.".into(),
        ],
        csrf: &csrf,
        action: Some(format!("/recover/{token}/cancel")),
        button: "Cancel the recovery",
        secondary: false,
        link: None,
    }
    .respond(StatusCode::OK))
}

async fn cancel(
    State(state): State<AppState>,
    meta: RequestMeta,
    Path(token): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if !email::cancel_recovery(&state.auth, &token, &meta).await? {
        return Err(gone());
    }
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(MessagePage {
        title: "Recovery cancelled",
        paragraphs: vec![
            "The recovery link no longer works. If you did not ask for it, someone knows your email address: consider adding a second passkey.".into(),
        ],
        csrf: &csrf,
        action: None,
        button: "",
        secondary: false,
        link: Some((urls::SIGNIN, "Sign in")),
    }
    .respond(StatusCode::OK))
}
