//! Sign-in by emailed link (see `auth::magic`): ask for a link, open it, confirm; or type the
//! code it shows elsewhere into the browser that asked.

use super::signed_in;
use crate::auth::magic::{self, Opened};
use crate::auth::{CredentialError, session};
use crate::domain::RequestMeta;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::CsrfForm;
use crate::web::pages;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

pub const MAGIC_COOKIE: &str = "keyway_magic";
/// On https: Secure, Path=/ and no Domain, enforced by the browser.
pub const SECURE_MAGIC_COOKIE: &str = "__Host-keyway_magic";

fn cookie_name(state: &AppState) -> &'static str {
    if state.config.is_https() {
        SECURE_MAGIC_COOKIE
    } else {
        MAGIC_COOKIE
    }
}

/// The browser's binding value, from its cookie.
fn binding(state: &AppState, headers: &HeaderMap) -> Option<String> {
    crate::web::extract::cookie(headers, cookie_name(state))
}

fn set_binding(state: &AppState, res: &mut Response, value: &str) {
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        cookie_name(state),
        state.config.auth.magic_link_ttl
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(Template)]
#[template(path = "pages/email_sent.html")]
struct SentPage<'a> {
    csrf: &'a str,
    req: &'a str,
    email: &'a str,
    minutes: u64,
    error: Option<&'a str>,
    retry_after: Option<u64>,
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    email: String,
}

/// The same page whatever the address: a link was sent if it belongs to an account.
pub async fn request(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    CsrfForm { form, session }: CsrfForm<RequestForm>,
) -> AppResult<Response> {
    let waiting = match form.req.as_str() {
        "" => None,
        id => session::parked(&session, id).await?,
    };
    let client = match &waiting {
        Some(r) => state.repos.clients.get(&r.client_id).await?,
        None => None,
    };
    if client.as_ref().is_some_and(|c| !c.allow_magic_link) {
        return Err(AppError::bad_request(
            "Sign-in links are not accepted here",
            "This application asks you to sign in another way. Go back and use a passkey.",
        ));
    }
    let requested = magic::request(
        &state.auth,
        &form.email,
        binding(&state, &headers).as_deref(),
        waiting.as_ref().map(|_| form.req.as_str()),
        client.map(|c| c.name),
        &meta,
    )
    .await?;
    let csrf = session::csrf_token(&session, &state.auth).await?;
    let mut res = pages::render(
        StatusCode::OK,
        &SentPage {
            csrf: &csrf,
            req: &form.req,
            email: form.email.trim(),
            minutes: state.config.auth.magic_link_ttl.div_ceil(60),
            error: None,
            retry_after: None,
        },
    );
    set_binding(&state, &mut res, &requested.binding);
    Ok(res)
}

#[derive(Template)]
#[template(path = "pages/email_link.html")]
struct LinkPage<'a> {
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    /// Opened in another browser: the code, and where and when the link was asked for.
    code: Option<String>,
    requested_ip: &'a str,
    requested_at: String,
}

fn gone() -> AppError {
    AppError::page(
        StatusCode::GONE,
        "This sign-in link no longer works",
        "It has expired, was used already, or was replaced. Ask for a new one on the sign-in page.",
    )
}

/// The link's page: a button in the browser that asked; the code and a guarded "sign in here"
/// elsewhere. Shows, never signs in.
pub async fn open(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let opened = magic::open(&state.auth, &token, binding(&state, &headers).as_deref()).await?;
    let csrf = session::csrf_token(&session, &state.auth).await?;
    let page = match opened {
        Opened::Gone => return Err(gone()),
        Opened::SameBrowser { username } => LinkPage {
            csrf: &csrf,
            token: &token,
            username: &username,
            code: None,
            requested_ip: "",
            requested_at: String::new(),
        }
        .render_to(),
        Opened::Elsewhere {
            username,
            code,
            requested_ip,
            requested_at,
        } => LinkPage {
            csrf: &csrf,
            token: &token,
            username: &username,
            code: Some(format!("{} {}", &code[..3], &code[3..])),
            requested_ip: &requested_ip,
            requested_at: pages::when(requested_at),
        }
        .render_to(),
    };
    Ok(page)
}

impl LinkPage<'_> {
    fn render_to(&self) -> Response {
        pages::render(StatusCode::OK, self)
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    /// "I asked for this link from that address at that time" (another browser).
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn confirm(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(token): Path<String>,
    CsrfForm { form, session }: CsrfForm<ConfirmForm>,
) -> AppResult<Response> {
    let result = magic::sign_in(
        &state.auth,
        &token,
        binding(&state, &headers).as_deref(),
        form.confirm.is_some(),
        &meta,
    )
    .await;
    let (who, request) = match result {
        Ok(ok) => ok,
        Err(CredentialError::Refused) => return Err(gone()),
        Err(e) => return Err(e.into()),
    };
    session::start(&session, &state.auth, &who, &meta).await?;
    signed_in(&session, request.as_deref().unwrap_or(""), "").await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    code: String,
}

/// The code from the link's page, typed into the browser that asked.
pub async fn code(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    CsrfForm { form, session }: CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let result = magic::sign_in_with_code(
        &state.auth,
        binding(&state, &headers).as_deref(),
        &form.code,
        &meta,
    )
    .await;
    let (status, retry_after) = match result {
        Ok(who) => {
            session::start(&session, &state.auth, &who, &meta).await?;
            return signed_in(&session, &form.req, "").await;
        }
        Err(CredentialError::Refused) => (StatusCode::UNAUTHORIZED, None),
        Err(CredentialError::Limited { retry_after }) => {
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after))
        }
        Err(e) => return Err(e.into()),
    };
    let csrf = session::csrf_token(&session, &state.auth).await?;
    let mut res = pages::render(
        status,
        &SentPage {
            csrf: &csrf,
            req: &form.req,
            email: "",
            minutes: state.config.auth.magic_link_ttl.div_ceil(60),
            error: Some(WRONG_CODE),
            retry_after,
        },
    );
    if let Some(wait) = retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    Ok(res)
}

/// The same words for a wrong, used or expired code.
pub const WRONG_CODE: &str = "That code did not work. Check it, or ask for a new link.";
