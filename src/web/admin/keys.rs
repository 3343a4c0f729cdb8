//! Signing keys: every key with its algorithm, kid, state (next, current, retired) and when that
//! changes; rotation with pre-publication (the new key is in the JWKS before it signs).

use super::{Admin, fresh_sign_in, operator};
use crate::auth::session;
use crate::state::AppState;
use crate::store::KeyState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
use crate::web::{pages, see_other};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list))
        .route("/admin/keys/rotate", post(rotate))
}

struct Row {
    kid: String,
    alg: String,
    state: &'static str,
    created: String,
    /// What happens next to it, and when.
    next: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage<'a> {
    csrf: &'a str,
    name: &'a str,
    rows: Vec<Row>,
    prepublish_hours: u64,
    /// Automatic rotation: when next, or that it is off.
    schedule: String,
}

/// Keys older than this without automatic rotation get a warning on the dashboard.
const ROTATE_AFTER: i64 = 90 * 86400;

/// The automatic rotation as a sentence.
fn schedule(state: &AppState, keys: &[crate::store::StoredKey]) -> String {
    let every = state.config.keys.rotate_every as i64;
    match crate::oidc::keys::rotation_due(keys, every) {
        Some(due) if every > 0 => format!(
            "Automatic rotation every {} days (keys.rotate_every): next {}.",
            every / 86400,
            pages::when(due)
        ),
        _ => "Automatic rotation is off (keys.rotate_every); rotate at least every 90 days.".into(),
    }
}

/// A dashboard warning when the signing keys are due: old keys without automatic rotation, or
/// an automatic rotation that has not happened.
pub async fn key_warning(state: &AppState) -> AppResult<Option<String>> {
    let keys = state.repos.keys.list().await?;
    let every = state.config.keys.rotate_every as i64;
    let now = state.now();
    let warning = match crate::oidc::keys::rotation_due(&keys, every.max(ROTATE_AFTER)) {
        Some(due) if every == 0 && due <= now => Some(
            "The signing keys are more than 90 days old: rotate them on the Keys page, or set keys.rotate_every.",
        ),
        Some(due) if every > 0 && due + 86400 <= now => {
            Some("The automatic key rotation is more than a day late: see the server's log.")
        }
        _ => None,
    };
    Ok(warning.map(str::to_owned))
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    let now = state.now();
    let keys = operator(&state, &admin)
        .list_keys()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let mut rows: Vec<Row> = keys
        .iter()
        .map(|k| {
            let st = k.state(now);
            let next = match (st, k.retired_at) {
                (KeyState::Next, _) => format!("starts signing {}", pages::when(k.activates_at)),
                (KeyState::Current, Some(r)) => format!("stops signing {}", pages::when(r)),
                (KeyState::Current, None) => "signs until the next rotation".into(),
                (KeyState::Retired, _) => "published while its tokens may live".into(),
            };
            Row {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                state: st.as_str(),
                created: pages::when(k.created_at),
                next,
            }
        })
        .collect();
    rows.reverse();
    let schedule = schedule(&state, &keys);
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &KeysPage {
            csrf: &csrf,
            name: &admin.user.username,
            rows,
            prepublish_hours: state.config.keys.prepublish / 3600,
            schedule,
        },
    ))
}

async fn rotate(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if let Some(again) = fresh_sign_in(&state, &admin, "/admin/keys") {
        return Ok(again);
    }
    operator(&state, &admin)
        .rotate_keys(state.keys().sealing(), state.config.keys.prepublish as i64)
        .await?;
    // Publish them now rather than at the next reload.
    state
        .keys()
        .reload(state.now())
        .await
        .map_err(AppError::Internal)?;
    Ok(see_other("/admin/keys"))
}
