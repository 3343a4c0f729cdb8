//! The authorization endpoint (GET and POST), the resume step after sign-in, and the consent form.

use crate::auth::session::{self, SignedIn};
use crate::domain::{AuditEvent, Client, User};
use crate::error::{AppError, AppResult};
use crate::oidc::authorize::{self, AuthRequest, AuthorizeError, ReplyTo, ResponseMode};
use crate::oidc::tokens::{self, RequestMeta};
use crate::state::AppState;
use crate::web::{pages, urls};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    RawQuery(query): RawQuery,
) -> AppResult<Response> {
    let pairs = parse_pairs(query.as_deref().unwrap_or("").as_bytes());
    start(&state, &session, &meta, pairs).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    body: Bytes,
) -> AppResult<Response> {
    start(&state, &session, &meta, parse_pairs(&body)).await
}

fn parse_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn start(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    pairs: Vec<(String, String)>,
) -> AppResult<Response> {
    let (params, dups) = authorize::collect(pairs);
    let client = match params.get("client_id") {
        Some(id) => state.repos.clients.get(id).await?,
        None => None,
    };
    let checked = authorize::check_client_and_redirect(&params, &dups, client.as_ref())
        .map_err(|e| to_app_error(state, e));
    let redirect_uri = match checked {
        Ok(r) => r,
        Err(Ok(page)) => return Ok(page),
        Err(Err(e)) => return Err(e),
    };
    let Some(client) = client else {
        return Err(AppError::bad_request("Cannot continue", "Unknown client."));
    };
    let keys = state.keys.snapshot();
    match authorize::validate(
        &params,
        &dups,
        &client,
        redirect_uri,
        &keys,
        &state.config.issuer,
        state.now(),
    ) {
        Ok(req) => decide(state, session, meta, &client, req, None).await,
        Err(e) => match to_app_error(state, e) {
            Ok(res) => Ok(res),
            Err(e) => Err(e),
        },
    }
}

/// A page error becomes an error page; a redirectable error goes back to the client.
fn to_app_error(state: &AppState, e: AuthorizeError) -> Result<Response, AppError> {
    match e {
        AuthorizeError::Page(msg) => Err(AppError::bad_request("Cannot continue sign-in", msg)),
        AuthorizeError::Redirect {
            reply,
            error,
            description,
        } => Ok(reply_error(state, &reply, error, &description)),
    }
}

fn reply_error(
    state: &AppState,
    reply: &ReplyTo,
    error: &'static str,
    description: &str,
) -> Response {
    let params = authorize::response_params(
        reply,
        &state.config.issuer,
        vec![
            ("error", error.to_owned()),
            (
                "error_description",
                crate::error::sanitize_description(description),
            ),
        ],
    );
    respond(reply, params)
}

/// Sends the response to the client: a redirect (query) or an auto-submitting form (form_post).
fn respond(reply: &ReplyTo, params: Vec<(&'static str, String)>) -> Response {
    match reply.response_mode {
        ResponseMode::Query => {
            crate::web::found(&authorize::query_redirect(&reply.redirect_uri, &params))
        }
        ResponseMode::FormPost => form_post(&reply.redirect_uri, params),
    }
}

#[derive(Template)]
#[template(path = "pages/form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    fields: Vec<(&'static str, String)>,
    nonce: String,
}

fn form_post(action: &str, fields: Vec<(&'static str, String)>) -> Response {
    let nonce = crate::crypto::random_token().unwrap_or_default();
    let mut res = pages::render(
        StatusCode::OK,
        &FormPost {
            action,
            fields,
            nonce: nonce.clone(),
        },
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// Sign-in needed before this request can be answered?
fn needs_login(req: &AuthRequest, current: Option<&(SignedIn, User)>, now: i64) -> bool {
    let Some((auth, user)) = current else {
        return true;
    };
    if req.hint_sub.as_ref().is_some_and(|s| s != &user.id) {
        return true;
    }
    if req.login_done {
        return false;
    }
    // max_age=0 means "sign in again now", like prompt=login (OIDC Core §3.1.2.1).
    req.prompt_login
        || req
            .max_age
            .is_some_and(|m| m == 0 || now - auth.auth_time > m)
}

async fn needs_consent(
    state: &AppState,
    client: &Client,
    req: &AuthRequest,
    user: &User,
) -> AppResult<bool> {
    if client.first_party {
        return Ok(false);
    }
    if req.consent_done {
        return Ok(false);
    }
    if req.prompt_consent {
        return Ok(true);
    }
    let granted = state.repos.consents.get(&user.id, &client.id).await?;
    let granted = crate::domain::parse_scope(granted.as_deref().unwrap_or(""));
    Ok(!req.scopes.iter().all(|s| granted.contains(s)))
}

/// Decides what the request needs next: sign-in, consent, or a code. `parked` is the id under
/// which the request already waits in the session.
async fn decide(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    client: &Client,
    req: AuthRequest,
    parked: Option<String>,
) -> AppResult<Response> {
    let now = state.now();
    let current = session::current(session, state).await?;
    if needs_login(&req, current.as_ref(), now) {
        if req.prompt_none {
            return Ok(reply_error(
                state,
                &req.reply(),
                "login_required",
                "the user must sign in",
            ));
        }
        let id = match parked {
            Some(id) => id,
            None => session::park(session, &req).await?,
        };
        return Ok(crate::web::found(&format!("{}?req={id}", urls::SIGNIN)));
    }
    let Some((auth, user)) = current else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "signed-in state vanished"
        )));
    };
    if needs_consent(state, client, &req, &user).await? {
        if req.prompt_none {
            return Ok(reply_error(
                state,
                &req.reply(),
                "consent_required",
                "the user must approve this application",
            ));
        }
        let id = match parked {
            Some(id) => id,
            None => session::park(session, &req).await?,
        };
        let csrf = session::csrf_token(session).await?;
        return Ok(pages::render(
            StatusCode::OK,
            &ConsentPage {
                client_name: &client.name,
                username: &user.username,
                scopes: req.scopes.iter().map(|s| describe_scope(s)).collect(),
                csrf: &csrf,
                req: &id,
            },
        ));
    }
    if let Some(id) = parked {
        session::unpark(session, &id).await?;
    }
    let code =
        tokens::create_code(state, &req, &user.id, auth.auth_time, &auth.amr, &auth.sid).await?;
    let _ = meta;
    let params =
        authorize::response_params(&req.reply(), &state.config.issuer, vec![("code", code)]);
    Ok(respond(&req.reply(), params))
}

fn describe_scope(s: &str) -> &'static str {
    match s {
        "openid" => "Know who you are (your account identifier)",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "groups" => "See the groups you belong to",
        "offline_access" => "Stay signed in when you are away (refresh tokens)",
        _ => "Other access",
    }
}

#[derive(Template)]
#[template(path = "pages/consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    username: &'a str,
    scopes: Vec<&'static str>,
    csrf: &'a str,
    req: &'a str,
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
}

fn expired_request() -> AppError {
    AppError::bad_request(
        "Sign-in request expired",
        "This sign-in request is no longer waiting. Go back to the application and start again.",
    )
}

async fn load_parked(
    state: &AppState,
    session: &Session,
    id: &str,
) -> AppResult<(AuthRequest, Client)> {
    let req = session::parked(session, id)
        .await?
        .ok_or_else(expired_request)?;
    let client = state
        .repos
        .clients
        .get(&req.client_id)
        .await?
        .ok_or_else(expired_request)?;
    // The client may have changed since: re-check the redirect URI before using it.
    if !crate::oidc::redirect::matches_registered(&req.redirect_uri, &client.redirect_uris) {
        return Err(expired_request());
    }
    Ok((req, client))
}

/// Where the sign-in page sends the browser back to.
pub async fn resume(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Query(q): Query<ResumeQuery>,
) -> AppResult<Response> {
    let (req, client) = load_parked(&state, &session, &q.req).await?;
    decide(&state, &session, &meta, &client, req, Some(q.req)).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf: Option<String>,
    req: String,
    decision: String,
}

pub async fn consent(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    axum::Form(form): axum::Form<ConsentForm>,
) -> AppResult<Response> {
    session::check_csrf(&session, form.csrf.as_deref()).await?;
    let (mut req, client) = load_parked(&state, &session, &form.req).await?;
    let Some((_, user)) = session::current(&session, &state).await? else {
        return Ok(Redirect::to(&format!("{}?req={}", urls::SIGNIN, form.req)).into_response());
    };
    let now = state.now();
    let allow = form.decision == "allow";
    state
        .audit(AuditEvent {
            at: now,
            event: "consent".into(),
            user_id: Some(user.id.clone()),
            client_id: Some(client.id.clone()),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            outcome: if allow { "success" } else { "failure" }.into(),
            detail: Some(if allow { "allowed" } else { "denied" }.into()),
        })
        .await;
    if !allow {
        session::unpark(&session, &form.req).await?;
        return Ok(reply_error(
            &state,
            &req.reply(),
            "access_denied",
            "the user denied access",
        ));
    }
    let previous = state.repos.consents.get(&user.id, &client.id).await?;
    let mut scopes = crate::domain::parse_scope(previous.as_deref().unwrap_or(""));
    scopes.extend(req.scopes.iter().cloned());
    scopes.sort();
    scopes.dedup();
    state
        .repos
        .consents
        .put(
            &user.id,
            &client.id,
            &crate::domain::join_scope(&scopes),
            now,
        )
        .await?;
    req.consent_done = true;
    decide(&state, &session, &meta, &client, req, Some(form.req)).await
}
