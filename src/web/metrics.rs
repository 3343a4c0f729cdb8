//! /metrics in the Prometheus text format, when configured: on an address of its own
//! (`metrics.listen`), or on the main one behind a bearer token (`metrics.token`; required on
//! both when set). Also the layer that counts and times every routed request.

use crate::clock::Stopwatch;
use crate::state::AppState;
use crate::telemetry;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

pub const PATH: &str = "/metrics";

/// The route, for the main router (token set) or the metrics listener.
pub fn router(state: AppState) -> Router {
    Router::new().route(PATH, get(scrape)).with_state(state)
}

/// Counts and times a routed request under its route pattern (never the raw path, whose ids
/// would make a series per user).
pub async fn measure(req: Request, next: Next) -> Response {
    let started = Stopwatch::start();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // Any token is a method to HTTP; only the known ones become labels.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!(telemetry::REQUEST_SECONDS, "route" => route.clone(), "method" => method)
        .record(seconds);
    metrics::counter!(telemetry::REQUESTS, "route" => route, "method" => method, "status" => status)
        .increment(1);
    res
}

fn authorized(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    crate::crypto::constant_time_eq(presented.as_bytes(), expected.as_bytes())
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(handle) = state.metrics.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !authorized(state.config.metrics.token.as_deref(), &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need Authorization: Bearer <metrics.token>\n",
        )
            .into_response();
    }
    sample(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(handle),
    )
        .into_response()
}

fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

/// The gauges are read at scrape time: what is waiting, open or signed in now.
async fn sample(state: &AppState) {
    let now = state.now();
    match state.repos.sessions.count_signed_in(now).await {
        Ok(n) => metrics::gauge!(telemetry::SESSIONS).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count sessions"),
    }
    match state.mail.depth().await {
        Ok(n) => metrics::gauge!(telemetry::OUTBOX).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox"),
    }
    let (waiting, running) = state.auth.hasher.queue();
    metrics::gauge!(telemetry::HASH_WAITING).set(waiting as f64);
    metrics::gauge!(telemetry::HASH_RUNNING).set(running as f64);
    let db = state.repos.maintenance.stats();
    metrics::gauge!(telemetry::DB_CONNECTIONS).set(f64::from(db.read_connections));
    metrics::gauge!(telemetry::DB_IDLE).set(db.read_idle as f64);
    metrics::gauge!(telemetry::DB_WRITE_QUEUE).set(db.write_queue as f64);
}
