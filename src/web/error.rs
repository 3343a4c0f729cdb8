//! The web layer's one error type, with one `match` from error to response: OAuth JSON errors on
//! protocol endpoints (RFC 6749 §5.2, RFC 6750 §3), a rendered page in the browser. Each lower
//! layer's error (protocol, credential, store) converts into it here and nowhere else.

use crate::auth::CredentialError;
use crate::oidc::error::sanitize_description;
use crate::oidc::{OAuthError, ProtocolError};
use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A browser-facing problem the user can read about (bad link, unknown client...).
    #[error("{title}: {message}")]
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// An OAuth error answered as JSON.
    #[error("{error}: {description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
        /// Send `WWW-Authenticate: Basic` (client authentication failed using Basic).
        basic_challenge: bool,
    },
    /// A bearer-token error (RFC 6750): `error` is None when no token was sent at all.
    #[error("bearer token rejected")]
    Bearer {
        status: StatusCode,
        error: Option<&'static str>,
        description: &'static str,
    },
    /// Too many failed attempts: 429 with Retry-After.
    #[error("too many attempts")]
    Limited { retry_after: u64 },
    /// The database is busy or failing: 503 with Retry-After, worth a retry.
    #[error("service unavailable: {0}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Seconds a client is told to wait when the database is busy.
const RETRY_AFTER: u64 = 1;

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Store answers that reach a handler unhandled: a conflict or a missing row is the user's to
/// read about, never a 500.
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AppError::page(
                StatusCode::CONFLICT,
                "Already exists",
                format!("{what} already exists."),
            ),
            StoreError::NotFound(_) => AppError::not_found(),
            StoreError::Unavailable(e) => AppError::Unavailable(e),
            StoreError::Backend(e) => AppError::Internal(e.context("database")),
        }
    }
}

/// An operator action's refusal met outside a form that can show it: its words on a page.
impl From<crate::ops::OpsError> for AppError {
    fn from(e: crate::ops::OpsError) -> Self {
        use crate::ops::OpsError;
        match e {
            OpsError::Invalid(why) | OpsError::Refused(why) => {
                AppError::bad_request("That cannot be done", format!("{why}."))
            }
            OpsError::Conflict(what) => AppError::page(
                StatusCode::CONFLICT,
                "Already exists",
                format!("{what} already exists."),
            ),
            OpsError::NotFound(_) => AppError::not_found(),
            OpsError::Internal(e) => AppError::Internal(e),
        }
    }
}

impl From<ProtocolError> for AppError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::OAuth(OAuthError {
                status: code,
                error,
                description,
                basic_challenge,
            }) => AppError::OAuth {
                status: status(code),
                error,
                description,
                basic_challenge,
            },
            ProtocolError::Bearer {
                status: code,
                error,
                description,
            } => AppError::Bearer {
                status: status(code),
                error,
                description,
            },
            ProtocolError::Limited { retry_after } => AppError::Limited { retry_after },
            ProtocolError::Store(e) => e.into(),
            ProtocolError::Internal(e) => AppError::Internal(e),
        }
    }
}

impl From<CredentialError> for AppError {
    fn from(e: CredentialError) -> Self {
        match e {
            // Handlers answer a refused credential with their own page; one that gets here
            // still says nothing about which part was wrong.
            CredentialError::Refused => AppError::page(
                StatusCode::UNAUTHORIZED,
                "Sign-in refused",
                "The sign-in was not accepted. Go back and try again.",
            ),
            CredentialError::Limited { retry_after } => AppError::Limited { retry_after },
            CredentialError::Store(e) => e.into(),
            CredentialError::Internal(e) => AppError::Internal(e),
        }
    }
}

impl AppError {
    /// A protocol refusal met in the browser before the client can be told: its description on
    /// a page titled `title`; any other failure as usual.
    pub fn page_from(title: &'static str, e: ProtocolError) -> Self {
        match e {
            ProtocolError::OAuth(o) => AppError::bad_request(title, o.description),
            other => other.into(),
        }
    }
}

impl AppError {
    pub fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        AppError::Page {
            status,
            title,
            message: message.into(),
        }
    }
    pub fn bad_request(title: &'static str, message: impl Into<String>) -> Self {
        Self::page(StatusCode::BAD_REQUEST, title, message)
    }
    pub fn not_found() -> Self {
        Self::page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing at this address.",
        )
    }
    /// 400 with an RFC 6749 error code.
    pub fn oauth(error: &'static str, description: impl Into<String>) -> Self {
        AppError::OAuth {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }
}

/// An answer that asks to come back later: `status` with Retry-After, as a
/// temporarily_unavailable OAuth error on JSON endpoints and a page (title, message) otherwise.
fn try_later(
    ctx: &crate::web::middleware::RequestContext,
    status: StatusCode,
    retry_after: u64,
    description: &str,
    (title, message): (&str, &str),
) -> Response {
    let mut res = if ctx.json {
        let body = serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": description,
        });
        let mut res = (status, axum::Json(body)).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    } else {
        crate::web::pages::error_page(status, title, message, &ctx.id)
    };
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let ctx = crate::web::middleware::current_request();
        match self {
            // A JSON endpoint never answers with a page: a refusal there is an RFC 6749 error.
            AppError::Page {
                status, message, ..
            } if ctx.json => AppError::OAuth {
                status,
                error: "invalid_request",
                description: message,
                basic_challenge: false,
            }
            .into_response(),
            AppError::Page {
                status,
                title,
                message,
            } => crate::web::pages::error_page(status, title, &message, &ctx.id),
            AppError::OAuth {
                status,
                error,
                description,
                basic_challenge,
            } => {
                let body = serde_json::json!({
                    "error": error,
                    "error_description": sanitize_description(&description),
                });
                let mut res = (status, axum::Json(body)).into_response();
                let h = res.headers_mut();
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                if basic_challenge {
                    h.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"keyway\", charset=\"UTF-8\""),
                    );
                }
                res
            }
            AppError::Bearer {
                status,
                error,
                description,
            } => {
                let challenge = match error {
                    Some(code) => format!(
                        "Bearer realm=\"keyway\", error=\"{code}\", error_description=\"{description}\""
                    ),
                    None => "Bearer realm=\"keyway\"".to_owned(),
                };
                let mut res = match error {
                    Some(code) => (
                        status,
                        axum::Json(
                            serde_json::json!({"error": code, "error_description": description}),
                        ),
                    )
                        .into_response(),
                    None => status.into_response(),
                };
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res
            }
            AppError::Limited { retry_after } => try_later(
                &ctx,
                StatusCode::TOO_MANY_REQUESTS,
                retry_after,
                &format!("too many failed attempts; try again in {retry_after} seconds"),
                (
                    "Too many attempts",
                    &format!("Too many failed attempts. Try again in {retry_after} seconds."),
                ),
            ),
            AppError::Unavailable(e) => {
                tracing::warn!(request_id = %ctx.id, error = format!("{e:#}"), "database unavailable");
                try_later(
                    &ctx,
                    StatusCode::SERVICE_UNAVAILABLE,
                    RETRY_AFTER,
                    "the database is busy; try again shortly",
                    (
                        "Busy for a moment",
                        "Keyway cannot reach its database right now. Nothing was lost: wait a second and try again.",
                    ),
                )
            }
            AppError::Internal(e) => {
                tracing::error!(request_id = %ctx.id, error = format!("{e:#}"), "internal error");
                if ctx.json {
                    let body = serde_json::json!({
                        "error": "server_error",
                        "error_description": format!("internal error, request id {}", ctx.id),
                    });
                    let mut res =
                        (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
                    res.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    res
                } else {
                    crate::web::pages::error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong",
                        "Keyway could not finish this request. Try again; if it keeps happening, give your administrator the request id below.",
                        &ctx.id,
                    )
                }
            }
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
