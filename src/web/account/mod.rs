//! The home page (who is signed in, a way to sign out) and the account page (`page`).

mod page;

use crate::auth::session;
use crate::state::AppState;
use crate::web::error::AppResult;
use crate::web::extract::MaybeUser;
use crate::web::{pages, urls};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(urls::HOME, get(home))
        .merge(page::router())
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage {
    username: Option<String>,
    csrf: String,
}

async fn home(
    State(state): State<AppState>,
    session: Session,
    MaybeUser(current): MaybeUser,
) -> AppResult<Response> {
    let csrf = match current {
        Some(_) => session::csrf_token(&session, &state.auth).await?,
        None => String::new(),
    };
    Ok(pages::render(
        StatusCode::OK,
        &HomePage {
            username: current.map(|(_, u)| u.username),
            csrf,
        },
    ))
}
