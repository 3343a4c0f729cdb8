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
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &KeysPage {
            csrf: &csrf,
            name: &admin.user.username,
            rows,
            prepublish_hours: state.config.keys.prepublish / 3600,
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
    let sealing =
        crate::oidc::keys::sealing_key(state.config.secret_key.as_deref(), &state.config.data_dir)
            .map_err(AppError::Internal)?;
    operator(&state, &admin)
        .rotate_keys(&sealing, state.config.keys.prepublish as i64)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    // Publish them now rather than at the next reload.
    state
        .keys()
        .reload(state.now())
        .await
        .map_err(AppError::Internal)?;
    Ok(see_other("/admin/keys"))
}
