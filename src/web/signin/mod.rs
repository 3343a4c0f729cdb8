//! The sign-in page: username and password in a plain HTML form. Unknown user, wrong password and
//! disabled account all get the same page, after the same amount of work (see `auth::password`).

use crate::auth::{CredentialError, session};
use crate::domain::RequestMeta;
use crate::state::AppState;
use crate::web::error::AppResult;
use crate::web::extract::CsrfForm;
use crate::web::{pages, see_other, urls};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new().route(urls::SIGNIN, get(show).post(submit))
}

#[derive(Template)]
#[template(path = "pages/signin.html")]
struct SigninPage<'a> {
    csrf: &'a str,
    req: &'a str,
    username: &'a str,
    client_name: Option<String>,
    error: Option<&'a str>,
    /// Seconds to wait, when too many attempts failed.
    retry_after: Option<u64>,
}

#[derive(Deserialize)]
pub struct SigninQuery {
    req: Option<String>,
}

/// The same words whatever was wrong, so the page does not reveal which accounts exist.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

/// The application asking (for the page's heading) and its login_hint, if a request waits.
async fn waiting_request(
    state: &AppState,
    session: &Session,
    req: &str,
) -> AppResult<(Option<String>, Option<String>)> {
    if req.is_empty() {
        return Ok((None, None));
    }
    let Some(r) = session::parked(session, req).await? else {
        return Ok((None, None));
    };
    let name = state.repos.clients.get(&r.client_id).await?.map(|c| c.name);
    Ok((name, r.login_hint))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SigninQuery>,
) -> AppResult<Response> {
    let req = q.req.unwrap_or_default();
    let csrf = session::csrf_token(&session, &state.auth).await?;
    let (client_name, hint) = waiting_request(&state, &session, &req).await?;
    Ok(pages::render(
        StatusCode::OK,
        &SigninPage {
            csrf: &csrf,
            req: &req,
            username: hint.as_deref().unwrap_or(""),
            client_name,
            error: None,
            retry_after: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The sign-in page again, with the same words whatever was wrong; when too many attempts
/// failed, a 429 with Retry-After and a line saying how long to wait.
async fn refused(
    state: &AppState,
    session: &Session,
    form: &SigninForm,
    retry_after: Option<u64>,
) -> AppResult<Response> {
    let csrf = session::csrf_token(session, &state.auth).await?;
    let (client_name, _) = waiting_request(state, session, &form.req).await?;
    let status = match retry_after {
        Some(_) => StatusCode::TOO_MANY_REQUESTS,
        None => StatusCode::UNAUTHORIZED,
    };
    let mut res = pages::render(
        status,
        &SigninPage {
            csrf: &csrf,
            req: &form.req,
            username: &form.username,
            client_name,
            error: Some(BAD_CREDENTIALS),
            retry_after,
        },
    );
    if let Some(wait) = retry_after {
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(wait),
        );
    }
    Ok(res)
}

async fn submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    CsrfForm { form, session }: CsrfForm<SigninForm>,
) -> AppResult<Response> {
    let who = match state
        .auth
        .password(&form.username, &form.password, &meta)
        .await
    {
        Ok(who) => who,
        Err(CredentialError::Refused) => {
            return refused(&state, &session, &form, None).await;
        }
        Err(CredentialError::Limited { retry_after }) => {
            return refused(&state, &session, &form, Some(retry_after)).await;
        }
        Err(e) => return Err(e.into()),
    };
    session::start(&session, &state.auth, &who, &meta).await?;
    if !form.req.is_empty() && session::mark_login_done(&session, &form.req).await? {
        return Ok(see_other(&format!(
            "{}?req={}",
            urls::AUTHORIZE_RESUME,
            form.req
        )));
    }
    Ok(see_other(urls::HOME))
}
