//! Cross-cutting layers: a request id with one log line per request, and security headers.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub id: String,
    /// The endpoint answers JSON, so errors must be JSON too.
    pub json: bool,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The current request's context (empty outside a request).
pub fn current_request() -> RequestContext {
    CONTEXT.try_with(Clone::clone).unwrap_or_default()
}

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id (echoed in `X-Request-Id` and on error pages) and logs one line per
/// request: method, path (never the query, which can carry codes and tokens), status, latency.
pub async fn request_context(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = crate::crypto::random_bytes(8)
        .map(|b| crate::crypto::hex(&b))
        .unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ctx = RequestContext {
        id: id.clone(),
        json: crate::web::urls::is_json_endpoint(&path),
    };
    let mut res = CONTEXT.scope(ctx, next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    tracing::info!(
        request_id = %id,
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    res
}

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Security headers on every response; a handler may set its own CSP (the form_post page does).
pub async fn security_headers(https: bool, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}
