//! The HTTP layer: axum routers by feature, assembled with the cross-cutting layers.

pub mod account;
pub mod admin;
pub mod email;
pub mod error;
pub mod extract;
pub mod invite;
pub mod metrics;
pub mod middleware;
pub mod oidc;
pub mod pages;
pub mod signin;
pub mod urls;

use crate::auth::session::DbSessionStore;
use crate::state::AppState;
use axum::Router;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

/// 302 Found: the redirect authorization servers use on GET flows (RFC 6749 §4.1.2).
pub fn found(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut res = axum::response::Redirect::to(location).into_response();
    *res.status_mut() = axum::http::StatusCode::FOUND;
    res
}

/// 303 See Other: after a POST, the browser GETs the new location.
pub fn see_other(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::response::Redirect::to(location).into_response()
}

pub const SESSION_COOKIE: &str = "keyway_session";
/// On https the `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain, so no
/// sibling host can set or shadow the cookie.
pub const SECURE_SESSION_COOKIE: &str = "__Host-keyway_session";

pub fn router(state: AppState) -> Router {
    let https = state.config.is_https();
    let sessions = SessionManagerLayer::new(DbSessionStore::new(
        state.repos.sessions.clone(),
        state.clock.clone(),
        state.config.lifetimes.session_idle as i64,
    ))
    .with_name(if https {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    })
    .with_http_only(true)
    .with_same_site(SameSite::Lax)
    .with_secure(https)
    .with_path("/")
    .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
        state.config.lifetimes.session_idle as i64,
    )));
    let browser = Router::new()
        .merge(oidc::browser_router())
        .merge(signin::router())
        .merge(account::router())
        .merge(invite::router())
        .merge(email::router())
        .merge(admin::router())
        .layer(sessions);
    let mut routes = Router::new()
        .merge(oidc::api_router())
        .merge(browser)
        .route(urls::STYLESHEET, axum::routing::get(stylesheet))
        .route(urls::SCRIPT, axum::routing::get(script))
        .route(urls::ADMIN_SCRIPT, axum::routing::get(admin_script));
    // Metrics cost nothing unless configured: no route, no layer.
    if state.metrics.is_some() {
        routes = routes.route_layer(axum::middleware::from_fn(metrics::measure));
    }
    let m = &state.config.metrics;
    let on_main = state.metrics.is_some() && m.listen.is_none() && m.token.is_some();
    let mut app = routes
        .fallback(|| async { error::AppError::not_found() })
        .with_state(state.clone());
    if on_main {
        app = app.merge(metrics::router(state));
    }
    app.layer(axum::middleware::from_fn(move |req, next| {
        middleware::request_context(https, req, next)
    }))
}

/// The scripts are compiled in like the stylesheet.
fn javascript(source: &'static str) -> impl axum::response::IntoResponse {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
}

async fn script() -> impl axum::response::IntoResponse {
    javascript(include_str!("../../static/js/webauthn.js"))
}

async fn admin_script() -> impl axum::response::IntoResponse {
    javascript(include_str!("../../static/js/admin.js"))
}

/// The stylesheet is compiled in, so the binary is all there is to deploy.
async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/css/keyway.css"),
    )
}
