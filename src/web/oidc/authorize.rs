//! The authorization endpoint (GET and POST), the resume step after sign-in, and the consent form.

use crate::auth::session;
use crate::domain::{AuditEvent, Client, RequestMeta};
use crate::oidc::authorize::{
    self, AuthRequest, AuthorizeError, ReplyTo, ResponseMode, SessionLogin, Step,
};
use crate::oidc::codes;
use crate::oidc::error::sanitize_description;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::CsrfForm;
use crate::web::{pages, see_other, urls};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> AppResult<Response> {
    let pairs = parse_pairs(query.as_deref().unwrap_or("").as_bytes());
    start(&state, &session, pairs).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> AppResult<Response> {
    start(&state, &session, parse_pairs(&body)).await
}

fn parse_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn start(
    state: &AppState,
    session: &Session,
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
    let keys = state.keys().snapshot();
    match authorize::validate(
        &params,
        &dups,
        &client,
        redirect_uri,
        &keys,
        &state.config.issuer,
        state.now(),
    ) {
        Ok(req) => decide(state, session, &client, req, None).await,
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
            ("error_description", sanitize_description(description)),
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

/// Moves the request on to its next step: sign-in, consent, or a code. `parked` is the id under
/// which the request already waits in the session.
async fn decide(
    state: &AppState,
    session: &Session,
    client: &Client,
    req: AuthRequest,
    parked: Option<String>,
) -> AppResult<Response> {
    let current = session::current(session, &state.auth).await?;
    let login = current.as_ref().map(|(s, _)| SessionLogin {
        user_id: &s.user_id,
        auth_time: s.auth_time,
        amr: &s.amr,
    });
    let step = authorize::next_step(&state.oidc, client, &req, login, state.now()).await?;
    let park = async |req: &AuthRequest| -> AppResult<String> {
        Ok(match &parked {
            Some(id) => id.clone(),
            None => session::park(session, req).await?,
        })
    };
    match (step, current) {
        (Step::Refuse(error, description), _) => {
            Ok(reply_error(state, &req.reply(), error, description))
        }
        (Step::Denied, Some((_, user))) => {
            if let Some(id) = &parked {
                session::unpark(session, id).await?;
            }
            Ok(denied(state, client, &req, &user.username))
        }
        (Step::SignIn, _) | (_, None) => {
            let id = park(&req).await?;
            Ok(crate::web::found(&format!("{}?req={id}", urls::SIGNIN)))
        }
        (Step::Consent, Some((_, user))) => {
            let id = park(&req).await?;
            let csrf = session::csrf_token(session, &state.auth).await?;
            Ok(pages::render(
                StatusCode::OK,
                &ConsentPage {
                    client_name: &client.name,
                    client_logo: client.logo_uri.as_deref(),
                    username: &user.username,
                    scopes: req
                        .consent_scopes()
                        .iter()
                        .filter_map(|s| describe_scope(s))
                        .collect(),
                    csrf: &csrf,
                    req: &id,
                },
            ))
        }
        (Step::Issue, Some((signed_in, _))) => {
            if let Some(id) = &parked {
                session::unpark(session, id).await?;
            }
            let code = codes::create(
                &state.oidc,
                &req,
                codes::Login {
                    user_id: &signed_in.user_id,
                    auth_time: signed_in.auth_time,
                    amr: &signed_in.amr,
                    sid: &signed_in.sid,
                },
            )?;
            let params = authorize::response_params(
                &req.reply(),
                &state.config.issuer,
                vec![("code", code)],
            );
            Ok(respond(&req.reply(), params))
        }
    }
}

#[derive(Template)]
#[template(path = "pages/denied.html")]
struct DeniedPage<'a> {
    client_name: &'a str,
    username: &'a str,
    /// Back to the client with access_denied: a link (query) or a form (form_post).
    back_url: String,
    form_post: bool,
    fields: Vec<(&'static str, String)>,
}

/// The page for someone the client is not for: it says why, and its button takes the browser
/// back to the client with access_denied.
fn denied(state: &AppState, client: &Client, req: &AuthRequest, username: &str) -> Response {
    let reply = req.reply();
    let params = authorize::response_params(
        &reply,
        &state.config.issuer,
        vec![
            ("error", "access_denied".to_owned()),
            (
                "error_description",
                "the user is not in a group allowed to use this client".to_owned(),
            ),
        ],
    );
    let form_post = reply.response_mode == ResponseMode::FormPost;
    let back_url = if form_post {
        reply.redirect_uri.clone()
    } else {
        authorize::query_redirect(&reply.redirect_uri, &params)
    };
    pages::render(
        StatusCode::FORBIDDEN,
        &DeniedPage {
            client_name: &client.name,
            username,
            back_url,
            form_post,
            fields: params,
        },
    )
}

/// What a scope lets the application do, in plain words; `openid` (every sign-in asks for it)
/// is left out.
fn describe_scope(s: &str) -> Option<&'static str> {
    Some(match s {
        "openid" => return None,
        "profile" => "See your name, username and profile details",
        "email" => "See your email address",
        "phone" => "See your phone number",
        "address" => "See your postal address",
        "groups" => "See the groups you belong to",
        "offline_access" => "Stay signed in when you are away",
        _ => "Other access to your account",
    })
}

#[derive(Template)]
#[template(path = "pages/consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    client_logo: Option<&'a str>,
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
    Query(q): Query<ResumeQuery>,
) -> AppResult<Response> {
    let (req, client) = load_parked(&state, &session, &q.req).await?;
    decide(&state, &session, &client, req, Some(q.req)).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    req: String,
    decision: String,
}

pub async fn consent(
    State(state): State<AppState>,
    meta: RequestMeta,
    CsrfForm { form, session }: CsrfForm<ConsentForm>,
) -> AppResult<Response> {
    let (mut req, client) = load_parked(&state, &session, &form.req).await?;
    let Some((_, user)) = session::current(&session, &state.auth).await? else {
        return Ok(see_other(&format!("{}?req={}", urls::SIGNIN, form.req)));
    };
    let allow = form.decision == "allow";
    state
        .oidc
        .audit
        .record(AuditEvent {
            at: state.now(),
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
    authorize::record_consent(&state.oidc, &user.id, &client.id, &req.consent_scopes()).await?;
    req.consent_done = true;
    decide(&state, &session, &client, req, Some(form.req)).await
}
