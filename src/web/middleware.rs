//! Cross-cutting layers: a request id with one log line per request, and security headers.

use crate::clock::Stopwatch;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

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

/// Request ids: a random per-process prefix and a counter. Unique within a run and across
/// restarts (in practice), and free of any system call on the hot path.
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        crate::crypto::random_bytes(4)
            .ok()
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    });
    format!(
        "{prefix:08x}{:08x}",
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff
    )
}

/// One layer for every request: an id (echoed in `X-Request-Id` and on error pages), security
/// headers, and one log line: method, path (never the query, which can carry codes and tokens),
/// status, latency.
pub async fn request_context(https: bool, req: Request, next: Next) -> Response {
    let started = Stopwatch::start();
    let id = next_request_id();
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
    security_headers(https, &mut res);
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

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Security headers on every response; a handler may set its own CSP (the form_post page does).
fn security_headers(https: bool, res: &mut Response) {
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
    // `same-origin`, not `no-referrer`: other sites never see our URLs (which can carry
    // codes), while our own form posts keep a real `Origin` (browsers send `Origin: null` under
    // `no-referrer`, which the CSRF check must refuse).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}
