//! The management UI at /admin: a relying party of this very server (see `rp`), with its own
//! session cookie. Every page needs an administrator: anyone else is sent to sign in, and a
//! signed-in non-administrator gets a 403 page.

mod apps;
mod audit;
mod cookie;
mod groups;
mod invitations;
mod keys;
mod people;
pub mod rp;
mod users;

use crate::auth::session;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
use crate::web::{found, pages, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rp::{AdminSession, LoginState};
use serde::Deserialize;
use tower_sessions::Session;

const SESSION_COOKIE: &str = "keyway_admin";
const LOGIN_COOKIE: &str = "keyway_admin_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/login", get(login))
        .route(rp::CALLBACK, get(callback))
        .route("/admin/logout", post(logout))
        .route(rp::SIGNED_OUT, get(signed_out))
        .merge(users::router())
        .merge(people::router())
        .merge(invitations::router())
        .merge(audit::router())
        .merge(keys::router())
        .merge(groups::router())
        .merge(apps::router())
}

/// How recent the administrator's sign-in must be for a dangerous action, in seconds.
pub const FRESH: i64 = 300;

/// For a dangerous action without a recent sign-in: through Keyway again with max_age=0, then
/// back to `back` (where the action can be repeated).
pub fn fresh_sign_in(state: &AppState, admin: &Admin, back: &str) -> Option<Response> {
    (state.now() - admin.session.auth_time > FRESH).then(|| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", back)
            .append_pair("fresh", "1")
            .finish();
        see_other(&format!("/admin/login?{q}"))
    })
}

/// The ticked `group` boxes of a posted form (read as pairs: one `group` per box).
pub fn ticked_groups(form: Vec<(String, String)>) -> Vec<String> {
    form.into_iter()
        .filter(|(k, _)| k == "group")
        .map(|(_, v)| v)
        .collect()
}

/// The words of an operator's refusal, for the page to show again with them; any other error as
/// an error page.
pub fn refusal(e: crate::ops::OpsError) -> AppResult<String> {
    use crate::ops::OpsError;
    match e {
        OpsError::Invalid(why) | OpsError::Refused(why) => Ok(format!("{why}.")),
        OpsError::Conflict(what) => Ok(format!("A {what} exists already.")),
        OpsError::NotFound(_) => Err(AppError::not_found()),
        OpsError::Internal(e) => Err(AppError::Internal(e)),
    }
}

/// The operator actions, performed by this administrator (audited as such).
pub fn operator(state: &AppState, admin: &Admin) -> crate::ops::Operator {
    crate::ops::Operator::new(
        state.repos.clone(),
        state.clock.clone(),
        state.auth.hasher.clone(),
        crate::ops::Actor::Admin {
            user_id: admin.user.id.clone(),
        },
    )
    .with_mail(state.mail.clone(), &state.config.issuer)
}

/// An administrator signed in to the admin UI: the session the relying party keeps, checked
/// against the account as it is now (disabled or demoted administrators are out at once).
pub struct Admin {
    pub session: AdminSession,
    pub user: crate::domain::User,
}

pub enum NotAdmin {
    /// To sign in, then back to this path.
    SignIn(String),
    Forbidden,
    Error(AppError),
}

impl IntoResponse for NotAdmin {
    fn into_response(self) -> Response {
        match self {
            NotAdmin::SignIn(next) => {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                see_other(&format!("/admin/login?{q}"))
            }
            NotAdmin::Forbidden => AppError::page(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "You are signed in, but this account is not an administrator of Keyway.",
            )
            .into_response(),
            NotAdmin::Error(e) => e.into_response(),
        }
    }
}

fn session_of(state: &AppState, headers: &HeaderMap) -> Option<AdminSession> {
    let name = cookie::name(SESSION_COOKIE, state.config.is_https());
    let s: AdminSession = cookie::open(
        &state.admin_key,
        &name,
        &crate::web::extract::cookie(headers, &name)?,
    )?;
    (s.expires_at > state.now()).then_some(s)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = NotAdmin;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NotAdmin> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/admin".to_owned(), |p| p.to_string());
        let back = if parts.method == axum::http::Method::GET {
            path
        } else {
            "/admin".to_owned()
        };
        let Some(session) = session_of(state, &parts.headers) else {
            return Err(NotAdmin::SignIn(back));
        };
        let user = state
            .repos
            .users
            .by_id(&session.sub)
            .await
            .map_err(|e| NotAdmin::Error(e.into()))?;
        match user {
            Some(u)
                if !u.disabled
                    && u.is_admin
                    && session
                        .groups
                        .iter()
                        .any(|g| g == crate::domain::ADMIN_GROUP) =>
            {
                Ok(Admin { session, user: u })
            }
            Some(u) if !u.disabled => Err(NotAdmin::Forbidden),
            _ => Err(NotAdmin::SignIn(back)),
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    /// Ask for a fresh sign-in (dangerous actions).
    #[serde(default)]
    fresh: Option<String>,
}

/// Only admin paths: never somewhere else.
fn admin_path(next: &str) -> String {
    if next.starts_with("/admin") && !next.starts_with("/admin/login") && !next.contains("//") {
        next.to_owned()
    } else {
        "/admin".to_owned()
    }
}

async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> AppResult<Response> {
    let max_age = q.fresh.as_ref().map(|_| 0);
    let (url, pending) = rp::login(&state, &admin_path(&q.next), max_age)
        .await
        .map_err(|e| AppError::Internal(e.context("admin sign-in")))?;
    let name = cookie::name(LOGIN_COOKIE, state.config.is_https());
    let value = cookie::seal(&state.admin_key, &name, &pending)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("cannot seal the login state")))?;
    let mut res = found(&url);
    cookie::set(&mut res, &name, &value, 600, state.config.is_https());
    Ok(res)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> AppResult<Response> {
    let https = state.config.is_https();
    let login_name = cookie::name(LOGIN_COOKIE, https);
    let pending: Option<LoginState> = crate::web::extract::cookie(&headers, &login_name)
        .and_then(|v| cookie::open(&state.admin_key, &login_name, &v))
        .filter(|p: &LoginState| p.expires_at > state.now());
    let failed = |why: String| {
        AppError::page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in to the admin UI",
            why,
        )
    };
    let Some(pending) = pending else {
        return Err(failed(
            "This sign-in started too long ago or in another browser. Start again from /admin."
                .into(),
        ));
    };
    if q.state.as_deref() != Some(pending.state.as_str()) {
        return Err(failed(
            "The answer does not belong to this sign-in. Start again from /admin.".into(),
        ));
    }
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        return Err(failed(format!("Keyway answered: {why}.")));
    }
    let next = pending.next.clone();
    let code = q.code.unwrap_or_default();
    let session = match rp::finish(&state, pending, &code)
        .await
        .map_err(|e| AppError::Internal(e.context("admin sign-in")))?
    {
        Ok(s) => s,
        Err(why) => return Err(failed(format!("The sign-in could not be verified: {why}."))),
    };
    let name = cookie::name(SESSION_COOKIE, https);
    let value = cookie::seal(&state.admin_key, &name, &session)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("cannot seal the admin session")))?;
    let mut res = see_other(&admin_path(&next));
    cookie::set(&mut res, &name, &value, rp::SESSION_TTL, https);
    cookie::set(&mut res, &login_name, "", 0, https);
    Ok(res)
}

/// Out of the admin UI, and through Keyway's end_session endpoint with the ID token as hint.
async fn logout(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &admin.session.id_token)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}{}", state.config.issuer, rp::SIGNED_OUT),
        )
        .finish();
    let mut res = see_other(&format!("{}?{q}", crate::web::urls::END_SESSION));
    let https = state.config.is_https();
    cookie::set(&mut res, &cookie::name(SESSION_COOKIE, https), "", 0, https);
    Ok(res)
}

async fn signed_out(State(state): State<AppState>, session: Session) -> AppResult<Response> {
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(crate::web::email::MessagePage {
        title: "Signed out of the admin UI",
        paragraphs: vec![
            "You are signed out of the admin UI, and of Keyway in this browser.".into(),
        ],
        csrf: &csrf,
        action: None,
        button: "",
        secondary: false,
        link: Some(("/admin", "Sign in again")),
    }
    .render_page(StatusCode::OK))
}

struct Count {
    label: &'static str,
    value: usize,
}

struct EventRow {
    at: String,
    event: String,
    outcome: String,
    who: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard<'a> {
    csrf: &'a str,
    name: &'a str,
    counts: Vec<Count>,
    /// Sign-ins of the last 24 hours by method, and failed attempts.
    signins: Vec<String>,
    failures: usize,
    warnings: Vec<String>,
    events: Vec<EventRow>,
}

async fn dashboard(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    let repos = &state.repos;
    let users = repos.users.list().await?;
    let now = state.now();
    let pending = repos
        .invitations
        .list()
        .await?
        .iter()
        .filter(|i| i.status(now) == crate::domain::InvitationStatus::Pending)
        .count();
    let counts = vec![
        Count {
            label: "People",
            value: users.len(),
        },
        Count {
            label: "Applications",
            value: repos.clients.list().await?.len(),
        },
        Count {
            label: "Signed-in sessions",
            value: repos.sessions.count_signed_in(now).await? as usize,
        },
        Count {
            label: "Pending invitations",
            value: pending,
        },
        Count {
            label: "Messages waiting",
            value: state.mail.depth().await? as usize,
        },
    ];
    // Sign-ins of the last 24 hours, by method, and the failures.
    let day = crate::store::AuditFilter {
        event: Some("signin".into()),
        from: Some(now - 86_400),
        ..Default::default()
    };
    let mut by_method: std::collections::BTreeMap<String, usize> = Default::default();
    let mut failures = 0;
    for (_, e) in repos.audit.search(&day, None, 100_000).await? {
        match e.outcome.as_str() {
            "success" => {
                let method = match e.detail.as_deref().unwrap_or("") {
                    d if d.contains("passkey") => "passkey",
                    d if d.contains("password") => "password",
                    d if d.contains("email link") => "email link",
                    d if d.contains("one-time code") => "email code",
                    _ => "other",
                };
                *by_method.entry(method.to_owned()).or_default() += 1;
            }
            _ => failures += 1,
        }
    }
    let signins: Vec<String> = by_method
        .iter()
        .map(|(m, n)| format!("{n} by {m}"))
        .collect();
    let mut warnings = Vec::new();
    if let Some(w) = state.config.email_warning() {
        warnings.push(w.to_owned());
    }
    if let Some(w) = keys::key_warning(&state).await? {
        warnings.push(w);
    }
    if repos.users.count_active_admins().await? < 2 {
        warnings.push("There is one administrator: invite a second, so that losing one account does not lock everyone out.".into());
    }
    let names: std::collections::HashMap<&str, &str> = users
        .iter()
        .map(|u| (u.id.as_str(), u.username.as_str()))
        .collect();
    let events = repos
        .audit
        .recent(15)
        .await?
        .into_iter()
        .map(|e| EventRow {
            at: pages::when(e.at),
            who: e
                .user_id
                .as_deref()
                .and_then(|id| names.get(id).copied())
                .unwrap_or("")
                .to_owned(),
            event: e.event,
            outcome: e.outcome,
        })
        .collect();
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &Dashboard {
            csrf: &csrf,
            name: &admin.user.username,
            counts,
            signins,
            failures,
            warnings,
            events,
        },
    ))
}
