//! OpenID Connect and OAuth endpoints: metadata and keys, the authorization endpoint, the token
//! endpoint, UserInfo, revocation, introspection and RP-initiated logout.

mod authorize;
mod logout;
mod token;

use crate::state::AppState;
use crate::web::urls;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub fn api_router() -> Router<AppState> {
    Router::new()
        .route(urls::DISCOVERY, get(discovery))
        .route(urls::AS_METADATA, get(discovery))
        .route(urls::JWKS, get(jwks))
        .route(urls::HEALTHZ, get(healthz))
        .route(urls::READYZ, get(readyz))
        .route(urls::TOKEN, post(token::token))
        .route(urls::USERINFO, get(token::userinfo).post(token::userinfo))
        .route(urls::REVOKE, post(token::revoke))
        .route(urls::INTROSPECT, post(token::introspect))
}

pub fn browser_router() -> Router<AppState> {
    Router::new()
        .route(
            urls::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(urls::AUTHORIZE_RESUME, get(authorize::resume))
        .route(urls::CONSENT, post(authorize::consent))
        .route(
            urls::END_SESSION,
            get(logout::logout_get).post(logout::logout_post),
        )
        .route(urls::SIGN_OUT, post(logout::confirmed))
        .route(urls::SIGNOUT_DONE, get(logout::signed_out))
}

/// A pre-rendered JSON document; `Bytes` clones share the buffer, so nothing is copied per request.
fn json_static(body: bytes::Bytes, max_age: &'static str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(max_age));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

async fn discovery(State(state): State<AppState>) -> Response {
    json_static(state.discovery.clone(), "public, max-age=3600")
}

/// Must match `config::JWKS_MAX_AGE`, which bounds `keys.prepublish` from below.
const JWKS_CACHE: &str = "public, max-age=300";

async fn jwks(State(state): State<AppState>) -> Response {
    // Short cache: after a rotation clients should see the new key soon.
    json_static(state.keys().snapshot().jwks_json(), JWKS_CACHE)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.repos.maintenance.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                axum::Json(serde_json::json!({"status": "database unavailable"})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_jwks_cache_lifetime_is_the_one_prepublication_outlasts() {
        assert_eq!(
            super::JWKS_CACHE,
            format!("public, max-age={}", crate::config::JWKS_MAX_AGE)
        );
    }
}
