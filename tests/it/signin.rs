//! The sign-in page: CSRF, identical failures, disabled users, session cookie and audit.

use crate::helpers::{PASSWORD, TestApp, hidden};

async fn signin_page(app: &TestApp) -> String {
    app.http
        .get(app.url("/signin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn post_signin(
    app: &TestApp,
    csrf: Option<&str>,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("username", username.to_string()),
        ("password", password.to_string()),
        ("req", String::new()),
    ];
    if let Some(c) = csrf {
        form.push(("csrf", c.to_string()));
    }
    app.http
        .post(app.url("/signin"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    signin_page(&app).await;
    let res = post_signin(&app, None, "alice", PASSWORD).await;
    assert_eq!(res.status(), 403);
    let res = post_signin(&app, Some("forged"), "alice", PASSWORD).await;
    assert_eq!(res.status(), 403);
    let audit = app.state.repos.audit.recent(10).await.unwrap();
    assert!(
        !audit
            .iter()
            .any(|e| e.event == "signin" && e.outcome == "success")
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_identical_pages() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let csrf = hidden(&signin_page(&app).await, "csrf");
    let a = post_signin(&app, Some(&csrf), "alice", "wrong password").await;
    let b = post_signin(&app, Some(&csrf), "nobody", "wrong password").await;
    assert_eq!(a.status(), b.status());
    let a = a.text().await.unwrap().replace("alice", "USER");
    let b = b.text().await.unwrap().replace("nobody", "USER");
    assert_eq!(a, b);
    assert!(a.contains("Incorrect username or password."));
    let audit = app.state.repos.audit.recent(10).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.event == "signin" && e.outcome == "failure")
            .count(),
        2
    );
}

#[tokio::test]
async fn disabled_users_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.state
        .repos
        .users
        .set_disabled(&alice.id, true, app.clock_now())
        .await
        .unwrap();
    let csrf = hidden(&signin_page(&app).await, "csrf");
    let res = post_signin(&app, Some(&csrf), "alice", PASSWORD).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
}

#[tokio::test]
async fn signing_in_sets_a_fresh_http_only_lax_session_cookie() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let first = app.http.get(app.url("/signin")).send().await.unwrap();
    let before = first.headers()["set-cookie"].to_str().unwrap().to_string();
    let csrf = hidden(&first.text().await.unwrap(), "csrf");
    assert!(
        before.contains("HttpOnly") && before.contains("SameSite=Lax"),
        "{before}"
    );
    assert!(
        !before.contains("Secure"),
        "no Secure flag on an http issuer"
    );
    let res = post_signin(&app, Some(&csrf), "ALICE", PASSWORD).await;
    assert_eq!(res.status(), 303, "usernames are case-insensitive");
    let after = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let id = |c: &str| c.split(';').next().unwrap().to_string();
    assert_ne!(id(&before), id(&after), "session id rotated at sign-in");
    let home = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("signed in as <strong>alice</strong>"),
        "{home}"
    );
    let audit = app.state.repos.audit.recent(10).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "signin"
        && e.outcome == "success"
        && e.ip.as_deref() == Some("127.0.0.1")));
}

#[tokio::test]
async fn sessions_end_after_their_idle_lifetime() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let csrf = hidden(&signin_page(&app).await, "csrf");
    post_signin(&app, Some(&csrf), "alice", PASSWORD).await;
    app.clock
        .advance(app.state.config.lifetimes.session_idle as i64 + 1);
    let home = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("not signed in"), "{home}");
}

#[tokio::test]
async fn https_issuers_get_secure_cookies_and_hsts() {
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
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}

#[tokio::test]
async fn active_sessions_live_until_their_absolute_lifetime() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let csrf = hidden(&signin_page(&app).await, "csrf");
    post_signin(&app, Some(&csrf), "alice", PASSWORD).await;
    let lt = app.state.config.lifetimes.clone();
    let step = lt.session_idle as i64 - 100;
    let mut elapsed = 0;
    // Used just inside the idle lifetime, again and again: alive until the absolute limit.
    while elapsed + step < lt.session_absolute as i64 {
        app.clock.advance(step);
        elapsed += step;
        let home = app
            .http
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(home.contains("signed in as"), "alive after {elapsed}s");
    }
    app.clock.advance(step);
    let home = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("not signed in"),
        "absolute lifetime ends the session"
    );
}
