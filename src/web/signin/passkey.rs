//! Passkey sign-in: the page's script asks for options (JSON), lets the browser sign the
//! challenge, and posts the answer as an ordinary form, so the browser follows the redirect.

use super::{PASSKEY_FAILED, Shown, conclude};
use crate::auth::passkey::{self, SigninMode};
use crate::domain::RequestMeta;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::CsrfForm;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// A JSON error for the page's script to show: `{"error": "..."}`.
pub fn script_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Deserialize)]
pub struct OptionsForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    username: String,
}

pub async fn options(
    State(state): State<AppState>,
    CsrfForm { form, session }: CsrfForm<OptionsForm>,
) -> AppResult<Response> {
    if state.auth.webauthn.is_none() {
        return Err(AppError::not_found());
    }
    let mode = match form.mode.as_str() {
        "autofill" => SigninMode::Autofill,
        "button" => SigninMode::Button,
        "username" if form.username.trim().is_empty() => {
            return Ok(script_error(
                StatusCode::BAD_REQUEST,
                "Enter your username first.",
            ));
        }
        "username" => SigninMode::Username(form.username.trim().chars().take(256).collect()),
        _ => {
            return Ok(script_error(
                StatusCode::BAD_REQUEST,
                "Unknown passkey mode.",
            ));
        }
    };
    let options = passkey::start_signin(&state.auth, &session, mode).await?;
    Ok(Json(options).into_response())
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    /// The browser's PublicKeyCredential, as JSON.
    #[serde(default)]
    credential: String,
}

pub async fn submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    CsrfForm { form, session }: CsrfForm<PasskeyForm>,
) -> AppResult<Response> {
    let result = passkey::finish_signin(&state.auth, &session, &form.credential, &meta).await;
    let shown = Shown {
        req: &form.req,
        next: &form.next,
        username: &form.username,
        error: Some(PASSKEY_FAILED),
        retry_after: None,
    };
    conclude(&state, &session, &meta, result, shown).await
}
