//! Browser sessions that survive a hostile environment: a copy of the database yields no live
//! session and no CSRF token, the https cookie is `__Host-` prefixed, and a cross-site POST is
//! refused even with a valid CSRF token.

use crate::helpers::{PASSWORD, TestApp, hidden, location};
use reqwest::cookie::CookieStore;
use std::sync::Arc;

/// A browser whose cookie jar the test can read.
fn browser() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let page = app.page(browser, "/signin").await;
    let mut req = browser.post(app.url("/signin")).form(&[
        ("csrf", hidden(&page, "csrf")),
        ("username", "alice".into()),
        ("password", PASSWORD.into()),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    app.page(browser, "/").await.contains("signed in as")
}

#[tokio::test]
async fn a_copy_of_the_database_yields_no_live_session_and_no_csrf_token() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let (browser, jar) = browser();
    assert_eq!(sign_in(&app, &browser, &[]).await.status(), 303);
    assert!(signed_in(&app, &browser).await);
    let home = app.page(&browser, "/").await;
    let csrf = hidden(&home, "csrf");
    let cookie = jar
        .cookies(&app.issuer.parse().unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let id = cookie.trim_start_matches("keyway_session=").to_owned();

    // What a thief of the file would read.
    let db = sqlx::sqlite::SqlitePool::connect(&app.state.config.database_url)
        .await
        .unwrap();
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT id, data FROM sessions")
        .fetch_all(&db)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for (row_id, data) in &rows {
        assert_ne!(row_id, &id, "the session id is stored in clear");
        let data = String::from_utf8_lossy(data);
        assert!(!data.contains(&csrf), "the CSRF token is stored: {data}");
        // The row's key as a cookie opens nothing.
        let thief = reqwest::Client::new();
        let res = thief
            .get(app.url("/"))
            .header("cookie", format!("keyway_session={row_id}"))
            .send()
            .await
            .unwrap();
        assert!(!res.text().await.unwrap().contains("signed in as"));
    }
    db.close().await;
    // The browser itself is still signed in.
    assert!(signed_in(&app, &browser).await);
}

#[tokio::test]
async fn https_sessions_use_a_host_only_prefixed_cookie() {
    let app = TestApp::spawn_with(|c| c.issuer = c.issuer.replace("http://", "https://")).await;
    let res = app
        .http
        .get(format!(
            "http://127.0.0.1:{}/signin",
            app.state.config.listen.port()
        ))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-keyway_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    // Plain http (local development) keeps the plain name.
    let local = TestApp::spawn().await;
    let res = local.http.get(local.url("/signin")).send().await.unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("keyway_session="), "{cookie}");
}

#[tokio::test]
async fn a_cross_site_post_is_refused_even_with_a_valid_csrf_token() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let (browser, _) = browser();
        let res = sign_in(&app, &browser, &headers).await;
        assert_eq!(res.status(), 403, "{headers:?}");
        assert!(!signed_in(&app, &browser).await, "{headers:?}");
    }
    // The browser's own same-origin POST goes through.
    let (browser, _) = browser();
    let origin = app.issuer.clone();
    let res = sign_in(
        &app,
        &browser,
        &[
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "{}", location(&res));
    assert!(signed_in(&app, &browser).await);
}

/// A browser coming back after its session expired: the page it is shown carries a token for
/// a live session, so its first post works (it used to fail once with "Form expired").
#[tokio::test]
async fn a_form_shown_after_the_session_expired_can_be_posted() {
    let app = crate::helpers::TestApp::spawn().await;
    app.user("alice").await;
    let browser = crate::helpers::http_client();
    app.page(&browser, "/signin").await;
    app.clock.advance(86_400 + 1);
    let signed_in = app.sign_in_at(&browser, "/signin", "alice").await;
    assert_eq!(signed_in, "/");
}
