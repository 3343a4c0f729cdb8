//! The audit log: filter by person, application, event, outcome and dates; page back in time;
//! export what the filter matches as CSV.

use super::Admin;
use crate::auth::session;
use crate::domain::AuditEvent;
use crate::state::AppState;
use crate::store::AuditFilter;
use crate::web::error::AppResult;
use crate::web::pages;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(list))
        .route("/admin/audit.csv", get(export))
}

const PAGE: u32 = 50;

#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    outcome: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    from: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: Option<i64>,
}

/// Midnight UTC of a YYYY-MM-DD date.
fn day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The filter a query asks for; `Err` words when it names someone who does not exist.
async fn filter(state: &AppState, q: &AuditQuery) -> AppResult<Result<AuditFilter, String>> {
    let user_id = match some(&q.user) {
        Some(name) => match state.repos.users.by_username(&name).await? {
            Some(u) => Some(u.id),
            None => return Ok(Err(format!("Nobody is called {name:?}."))),
        },
        None => None,
    };
    Ok(Ok(AuditFilter {
        user_id,
        client_id: some(&q.client),
        event: some(&q.event),
        outcome: some(&q.outcome),
        from: day(&q.from),
        until: day(&q.to).map(|d| d + 86400),
    }))
}

struct Row {
    at: String,
    event: String,
    outcome: String,
    who: String,
    client: String,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    csrf: &'a str,
    name: &'a str,
    q: &'a AuditQuery,
    rows: Vec<Row>,
    /// The query string of the next (older) page, if there is one.
    older: Option<String>,
    export: String,
    error: Option<String>,
}

fn query_string(q: &AuditQuery, before: Option<i64>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("user", &q.user),
        ("client", &q.client),
        ("event", &q.event),
        ("outcome", &q.outcome),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if !v.trim().is_empty() {
            s.append_pair(k, v.trim());
        }
    }
    if let Some(b) = before {
        s.append_pair("before", &b.to_string());
    }
    s.finish()
}

async fn usernames(state: &AppState) -> AppResult<std::collections::HashMap<String, String>> {
    Ok(state
        .repos
        .users
        .list()
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

fn row(e: AuditEvent, names: &std::collections::HashMap<String, String>) -> Row {
    Row {
        at: pages::when(e.at),
        who: e
            .user_id
            .as_ref()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
            .unwrap_or_default(),
        client: e.client_id.unwrap_or_default(),
        ip: e.ip.unwrap_or_default(),
        detail: e.detail.unwrap_or_default(),
        event: e.event,
        outcome: e.outcome,
    }
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let csrf = session::csrf_token(&session, &state.auth).await?;
    let (rows, older, error) = match filter(&state, &q).await? {
        Ok(f) => {
            let found = state.repos.audit.search(&f, q.before, PAGE).await?;
            let older = (found.len() == PAGE as usize)
                .then(|| found.last().map(|(id, _)| query_string(&q, Some(*id))))
                .flatten();
            let names = usernames(&state).await?;
            let rows = found.into_iter().map(|(_, e)| row(e, &names)).collect();
            (rows, older, None)
        }
        Err(why) => (Vec::new(), None, Some(why)),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(pages::render(
        status,
        &AuditPage {
            csrf: &csrf,
            name: &admin.user.username,
            export: query_string(&q, None),
            q: &q,
            rows,
            older,
            error,
        },
    ))
}

async fn export(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let f = match filter(&state, &q).await? {
        Ok(f) => f,
        Err(why) => return Ok((StatusCode::BAD_REQUEST, why).into_response()),
    };
    let csv = super::operator(&state, &admin).audit_csv(&f).await?;
    let mut res = (StatusCode::OK, csv).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"keyway-audit.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
