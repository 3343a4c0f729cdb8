//! The sign-in page: passkeys (autofill, a button, or username first; see `passkey`) and the
//! password form. Unknown user, wrong password and disabled account all get the same page, after
//! the same amount of work (see `auth::password`).

mod email;
mod passkey;

pub use passkey::script_error;

use crate::auth::{CredentialError, session};
use crate::domain::RequestMeta;
use crate::oidc::authorize::AuthRequest;
use crate::state::AppState;
use crate::web::error::AppResult;
use crate::web::extract::CsrfForm;
use crate::web::{pages, see_other, urls};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(urls::SIGNIN, get(show).post(submit))
        .route(urls::SIGNIN_PASSKEY_OPTIONS, post(passkey::options))
        .route(urls::SIGNIN_PASSKEY, post(passkey::submit))
        .route(urls::SIGNIN_EMAIL, post(email::request))
        .route(urls::SIGNIN_EMAIL_CODE, post(email::code))
        .route(
            "/signin/email/{token}",
            get(email::open).post(email::confirm),
        )
}

#[derive(Template)]
#[template(path = "pages/signin.html")]
struct SigninPage<'a> {
    csrf: &'a str,
    req: &'a str,
    next: &'a str,
    username: &'a str,
    client_name: Option<String>,
    client_logo: Option<String>,
    error: Option<&'a str>,
    /// Seconds to wait, when too many attempts failed.
    retry_after: Option<u64>,
    /// Passkeys work for this issuer (not an IP address).
    passkeys: bool,
    /// The waiting request accepts only a passkey: the password form is not shown.
    passkey_only: bool,
    /// Passwords are allowed on this server.
    passwords: bool,
    /// The email form: the waiting application (if any) accepts sign-in links.
    magic_links: bool,
    /// Someone is signed in already (re-authentication or step-up).
    signed_in_as: Option<String>,
    /// The signed-in user has no passkey yet, and one is needed.
    needs_a_passkey: bool,
}

#[derive(Deserialize)]
pub struct SigninQuery {
    req: Option<String>,
    next: Option<String>,
}

/// The same words whatever was wrong, so the page does not reveal which accounts exist.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";
/// A passkey that did not sign anyone in, whatever the reason (the audit log has it).
pub const PASSKEY_FAILED: &str =
    "That passkey could not sign you in. Try again, or use another passkey.";

/// Where the browser may be sent after signing in: only our own account page (never a URL
/// from the query, which would make the sign-in page an open redirect).
fn safe_next(next: &str) -> &'static str {
    if next == urls::ACCOUNT {
        urls::ACCOUNT
    } else {
        ""
    }
}

/// What the page says and offers, for the waiting request (if any) and whoever is signed in.
struct Context {
    client_name: Option<String>,
    client_logo: Option<String>,
    magic_links: bool,
    hint: Option<String>,
    passkey_only: bool,
    signed_in_as: Option<String>,
    needs_a_passkey: bool,
}

async fn context(state: &AppState, session: &Session, req: &str) -> AppResult<Context> {
    let waiting: Option<AuthRequest> = if req.is_empty() {
        None
    } else {
        session::parked(session, req).await?
    };
    let client = match &waiting {
        Some(r) => state.repos.clients.get(&r.client_id).await?,
        None => None,
    };
    let magic_links = client.as_ref().is_none_or(|c| c.allow_magic_link);
    let (client_name, client_logo) = client.map(|c| (c.name, c.logo_uri)).unzip();
    let passkey_only = waiting.as_ref().is_some_and(|r| r.require_phr);
    let current = session::current(session, &state.auth).await?;
    let needs_a_passkey = match (&current, passkey_only) {
        (Some((_, user)), true) => state
            .repos
            .passkeys
            .list_for_user(&user.id)
            .await?
            .is_empty(),
        _ => false,
    };
    Ok(Context {
        client_name,
        client_logo: client_logo.flatten(),
        magic_links: magic_links && !passkey_only,
        hint: waiting.and_then(|r| r.login_hint),
        passkey_only,
        signed_in_as: current.map(|(_, u)| u.username),
        needs_a_passkey,
    })
}

/// What to show besides the context: the fields to keep and the error, if any.
#[derive(Clone, Copy)]
struct Shown<'a> {
    req: &'a str,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    retry_after: Option<u64>,
}

async fn render(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    shown: Shown<'_>,
) -> AppResult<Response> {
    let csrf = session::csrf_token(session, &state.auth).await?;
    let cx = context(state, session, shown.req).await?;
    let username = match (shown.username, &cx.hint) {
        ("", Some(h)) => h.as_str(),
        (u, _) => u,
    };
    let mut res = pages::render(
        status,
        &SigninPage {
            csrf: &csrf,
            req: shown.req,
            next: safe_next(shown.next),
            username,
            client_name: cx.client_name,
            client_logo: cx.client_logo,
            error: shown.error,
            retry_after: shown.retry_after,
            passkeys: state.auth.webauthn.is_some(),
            passkey_only: cx.passkey_only,
            magic_links: cx.magic_links,
            passwords: state.auth.passwords_on,
            signed_in_as: cx.signed_in_as,
            needs_a_passkey: cx.needs_a_passkey,
        },
    );
    if let Some(wait) = shown.retry_after {
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(wait),
        );
    }
    Ok(res)
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SigninQuery>,
) -> AppResult<Response> {
    let req = q.req.unwrap_or_default();
    let next = q.next.unwrap_or_default();
    let shown = Shown {
        req: &req,
        next: &next,
        username: "",
        error: None,
        retry_after: None,
    };
    render(&state, &session, StatusCode::OK, shown).await
}

#[derive(Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The sign-in page again with `error`; when too many attempts failed, a 429 with Retry-After
/// and a line saying how long to wait.
async fn refused(state: &AppState, session: &Session, shown: Shown<'_>) -> AppResult<Response> {
    let status = match shown.retry_after {
        Some(_) => StatusCode::TOO_MANY_REQUESTS,
        None => StatusCode::UNAUTHORIZED,
    };
    render(state, session, status, shown).await
}

/// After any successful sign-in: back to the waiting request, or the account page when that
/// is where the user came from, or home.
async fn signed_in(session: &Session, req: &str, next: &str) -> AppResult<Response> {
    if !req.is_empty() && session::mark_login_done(session, req).await? {
        return Ok(see_other(&format!("{}?req={req}", urls::AUTHORIZE_RESUME)));
    }
    Ok(see_other(match safe_next(next) {
        "" => urls::HOME,
        next => next,
    }))
}

/// Where a sign-in attempt ends, whatever the method: signed in and on to the waiting request
/// (or the account page, or home), or the sign-in page again with `shown.error` (429 with
/// Retry-After when limited).
async fn conclude(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    result: crate::auth::CredentialResult<crate::auth::Authenticated>,
    shown: Shown<'_>,
) -> AppResult<Response> {
    match result {
        Ok(who) => {
            session::start(session, &state.auth, &who, meta).await?;
            signed_in(session, shown.req, shown.next).await
        }
        Err(CredentialError::Refused) => refused(state, session, shown).await,
        Err(CredentialError::Limited { retry_after }) => {
            let shown = Shown {
                retry_after: Some(retry_after),
                ..shown
            };
            refused(state, session, shown).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    CsrfForm { form, session }: CsrfForm<SigninForm>,
) -> AppResult<Response> {
    let result = state
        .auth
        .password(&form.username, &form.password, &meta)
        .await;
    let shown = Shown {
        req: &form.req,
        next: &form.next,
        username: &form.username,
        error: Some(BAD_CREDENTIALS),
        retry_after: None,
    };
    conclude(&state, &session, &meta, result, shown).await
}
