//! `/account`: the signed-in user's profile, passkeys, sessions and recent security events, and
//! the forms that change them. Removing a passkey and signing out everywhere need a sign-in
//! within the last five minutes: otherwise the user confirms it is them first and comes back.

use crate::auth::account::{self, Change};
use crate::auth::passkey::{self, RegistrationFor};
use crate::auth::{CredentialError, session};
use crate::domain::RequestMeta;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, CurrentUser, Empty};
use crate::web::{pages, see_other, urls};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(urls::ACCOUNT, get(show))
        .route(urls::ACCOUNT_PASSKEY_OPTIONS, post(passkey_options))
        .route(urls::ACCOUNT_PASSKEYS, post(add_passkey))
        .route(urls::ACCOUNT_PASSKEY_RENAME, post(rename_passkey))
        .route(urls::ACCOUNT_PASSKEY_REMOVE, post(remove_passkey))
        .route(urls::ACCOUNT_SESSION_END, post(end_session))
        .route(urls::ACCOUNT_SESSIONS_END_ALL, post(end_all))
        .route(urls::ACCOUNT_EMAIL, post(change_email))
        .route(urls::ACCOUNT_EMAIL_VERIFY, post(verify_email))
        .route(urls::ACCOUNT_NOTICES, post(notices))
        .route(urls::ACCOUNT_PASSWORD, post(set_password))
        .route(urls::ACCOUNT_PASSWORD_REMOVE, post(remove_password))
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    synced: bool,
}

struct SessionRow {
    key: String,
    browser: String,
    ip: String,
    started: String,
    seen: String,
    this_browser: bool,
}

struct EventRow {
    at: String,
    what: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "pages/account.html")]
struct AccountPage<'a> {
    csrf: &'a str,
    username: &'a str,
    name: &'a str,
    email: &'a str,
    email_verified: bool,
    security_notices: bool,
    /// Passwords are allowed here; and whether the user has one.
    passwords_on: bool,
    has_password: bool,
    passkeys_on: bool,
    passkeys: Vec<PasskeyRow>,
    sessions: Vec<SessionRow>,
    events: Vec<EventRow>,
    welcome: bool,
    /// A request waits for this user to add a passkey (step-up): the way back to it.
    req: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    #[serde(default)]
    welcome: Option<String>,
    #[serde(default)]
    req: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// Words for the outcome codes that a change redirects with (`?done=...`).
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "Passkey added.",
        "renamed" => "Passkey renamed.",
        "removed" => "Passkey removed.",
        "ended" => "That session is signed out.",
        "reauth" => "Thanks. You can make the change now.",
        "verify_sent" => "We sent a link to your address: open it to verify it.",
        "change_sent" => {
            "We sent a link to the new address: your address changes when you open it."
        }
        "notices" => "Security notices updated.",
        "password" => "Password saved.",
        "password_removed" => "Password removed.",
        "recovered" => {
            "Your new passkey is added and you are signed in. Remove the passkeys you lost below."
        }
        _ => return None,
    })
}

/// An audit event in words for its user.
fn describe_event(event: &str, outcome: &str, detail: Option<&str>) -> String {
    let detail = detail.unwrap_or("");
    let failed = outcome != "success";
    match event {
        "signin" if outcome == "limited" => "Sign-in attempts blocked for a while".into(),
        "signin" if failed => format!(
            "Failed sign-in ({})",
            detail.split(':').next().unwrap_or(detail)
        ),
        "signin" if detail.contains("passkey") => "Signed in with a passkey".into(),
        "signin" if detail.contains("password") => "Signed in with a password".into(),
        "signin" => "Signed in".into(),
        "passkey.register" if failed => "A passkey could not be added".into(),
        "passkey.register" => format!("Passkey added: {detail}"),
        "passkey.rename" => format!("Passkey renamed: {detail}"),
        "passkey.remove" => format!("Passkey removed: {detail}"),
        "passkey.counter_regression" => "A passkey looked copied and was refused".into(),
        "email.verified" => format!("Email address verified: {detail}"),
        "email.changed" => format!("Email address changed to {detail}"),
        "recovery.request" => "Account recovery asked for".into(),
        "recovery.cancel" => "Account recovery cancelled".into(),
        "recovery.complete" => "Account recovered with a new passkey".into(),
        "password.set" => "Password set".into(),
        "password.change" => "Password changed".into(),
        "password.remove" => "Password removed".into(),
        "session.end" => "A session was signed out".into(),
        "session.end_all" => "Signed out everywhere".into(),
        "invitation.redeem" => "Account created".into(),
        "logout" => "Signed out".into(),
        other => other.to_owned(),
    }
}

async fn render(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    q: &AccountQuery,
    error: Option<&str>,
) -> AppResult<Response> {
    let auth = &state.auth;
    let user = &current.user;
    let csrf = session::csrf_token(session, auth).await?;
    let this = session.id().map(|id| session::row_key(&id));
    let passkeys = account::passkeys(auth, &user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: pages::when(p.created_at),
            last_used: p.last_used_at.map_or("never".into(), pages::when),
            synced: p.backup_eligible,
        })
        .collect();
    let sessions = account::sessions(auth, &user.id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            this_browser: this.as_deref() == Some(s.key.as_str()),
            browser: s
                .user_agent
                .as_deref()
                .and_then(passkey::names::describe_user_agent)
                .unwrap_or_else(|| "Unknown browser".into()),
            ip: s.ip.unwrap_or_else(|| "unknown address".into()),
            started: pages::when(s.started_at),
            seen: pages::when(s.seen_at),
            key: s.key,
        })
        .collect();
    let events = account::recent_events(auth, &user.id)
        .await?
        .into_iter()
        .map(|e| EventRow {
            at: pages::when(e.at),
            what: describe_event(&e.event, &e.outcome, e.detail.as_deref()),
            ip: e.ip.unwrap_or_default(),
        })
        .collect();
    let status = pages::status_for(error);
    Ok(pages::render(
        status,
        &AccountPage {
            csrf: &csrf,
            username: &user.username,
            name: user.name.as_deref().unwrap_or(""),
            email: user.email.as_deref().unwrap_or(""),
            email_verified: user.email_verified,
            security_notices: user.security_notices,
            passwords_on: auth.passwords_on,
            has_password: account::has_password(auth, &user.id).await?,
            passkeys_on: auth.webauthn.is_some(),
            passkeys,
            sessions,
            events,
            welcome: q.welcome.is_some(),
            req: q.req.as_deref().unwrap_or(""),
            notice: q.done.as_deref().and_then(notice),
            error,
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    current: CurrentUser,
    Query(q): Query<AccountQuery>,
) -> AppResult<Response> {
    render(&state, &session, &current, &q, None).await
}

/// The account page again with a refusal, or back to it with what was done.
async fn answer(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    change: Change,
    done: &str,
) -> AppResult<Response> {
    match change {
        Change::Done => Ok(see_other(&format!("{}?done={done}", urls::ACCOUNT))),
        Change::Refused(why) => {
            render(
                state,
                session,
                current,
                &AccountQuery::default(),
                Some(&why),
            )
            .await
        }
    }
}

/// For a dangerous change without a recent sign-in: confirm it's you first, then come back.
fn needs_recent_sign_in(state: &AppState, current: &CurrentUser) -> Option<Response> {
    (!account::is_recent(&current.signed_in, state.now()))
        .then(|| see_other(&format!("{}?next={}", urls::SIGNIN, urls::ACCOUNT)))
}

async fn passkey_options(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if state.auth.webauthn.is_none() {
        return Err(AppError::not_found());
    }
    let purpose = RegistrationFor::Account {
        user_id: current.user.id.clone(),
    };
    let options = passkey::start_registration(&state.auth, &session, purpose).await?;
    Ok(Json(options).into_response())
}

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    credential: String,
}

async fn add_passkey(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<CredentialForm>,
) -> AppResult<Response> {
    const FAILED: &str = "The passkey could not be added. Try again.";
    let refused = Change::Refused(FAILED.into());
    let Ok(credential) = serde_json::from_str(&form.credential) else {
        return answer(&state, &session, &current, refused, "").await;
    };
    let new = match passkey::finish_registration(&state.auth, &session, &credential, &meta).await {
        Ok(new) => new,
        Err(CredentialError::Refused) => {
            return answer(&state, &session, &current, refused, "").await;
        }
        Err(e) => return Err(e.into()),
    };
    let change = account::add_passkey(&state.auth, &current.user.id, new, &meta).await?;
    answer(&state, &session, &current, change, "added").await
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    id: String,
    #[serde(default)]
    name: String,
}

async fn rename_passkey(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<PasskeyForm>,
) -> AppResult<Response> {
    let change =
        account::rename_passkey(&state.auth, &current.user.id, &form.id, &form.name, &meta).await?;
    answer(&state, &session, &current, change, "renamed").await
}

async fn remove_passkey(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<PasskeyForm>,
) -> AppResult<Response> {
    if let Some(reauth) = needs_recent_sign_in(&state, &current) {
        return Ok(reauth);
    }
    let change = account::remove_passkey(&state.auth, &current.user.id, &form.id, &meta).await?;
    answer(&state, &session, &current, change, "removed").await
}

#[derive(Deserialize)]
pub struct SessionForm {
    key: String,
}

async fn end_session(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<SessionForm>,
) -> AppResult<Response> {
    let this = session.id().map(|id| session::row_key(&id));
    if this.as_deref() == Some(form.key.as_str()) {
        // This browser: an ordinary sign-out.
        account::end_session(&state.auth, &current.user.id, &form.key, &meta).await?;
        session::end(&session).await?;
        return Ok(see_other(urls::SIGNOUT_DONE));
    }
    account::end_session(&state.auth, &current.user.id, &form.key, &meta).await?;
    answer(&state, &session, &current, Change::Done, "ended").await
}

async fn end_all(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if let Some(reauth) = needs_recent_sign_in(&state, &current) {
        return Ok(reauth);
    }
    account::sign_out_everywhere(&state.auth, &current.user.id, &meta).await?;
    session::end(&session).await?;
    Ok(see_other(urls::SIGNOUT_DONE))
}

async fn verify_email(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    let change = crate::auth::email::send_verification(&state.auth, &current.user, &meta).await?;
    answer(&state, &session, &current, change, "verify_sent").await
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

async fn change_email(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<EmailForm>,
) -> AppResult<Response> {
    if let Some(reauth) = needs_recent_sign_in(&state, &current) {
        return Ok(reauth);
    }
    let change =
        crate::auth::email::request_change(&state.auth, &current.user, &form.email, &meta).await?;
    answer(&state, &session, &current, change, "change_sent").await
}

#[derive(Deserialize)]
pub struct NoticesForm {
    #[serde(default)]
    on: Option<String>,
}

async fn notices(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<NoticesForm>,
) -> AppResult<Response> {
    let on = form.on.as_deref() == Some("yes");
    let change = crate::auth::email::set_notices(&state.auth, &current.user, on, &meta).await?;
    answer(&state, &session, &current, change, "notices").await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn set_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { form, session }: CsrfForm<PasswordForm>,
) -> AppResult<Response> {
    if let Some(reauth) = needs_recent_sign_in(&state, &current) {
        return Ok(reauth);
    }
    let change = account::set_password(
        &state.auth,
        &current.user.id,
        &form.password,
        &form.confirm,
        &meta,
    )
    .await?;
    answer(&state, &session, &current, change, "password").await
}

async fn remove_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    current: CurrentUser,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if let Some(reauth) = needs_recent_sign_in(&state, &current) {
        return Ok(reauth);
    }
    let change = account::remove_password(&state.auth, &current.user.id, &meta).await?;
    answer(&state, &session, &current, change, "password_removed").await
}
