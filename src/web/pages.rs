//! Shared page rendering: the error page and a helper that renders any template to a response.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// Renders a template with a status; a rendering failure becomes a plain 500.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// 400 for a form shown again with an error, else 200.
pub fn status_for(error: Option<&str>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str, request_id: &str) -> Response {
    render(
        status,
        &ErrorPage {
            title,
            message,
            request_id,
        },
    )
}

/// A time for people: `2026-12-01 19:05 UTC`.
pub fn when(t: crate::clock::UnixTime) -> String {
    crate::clock::for_people(t)
}
