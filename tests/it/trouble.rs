//! Database trouble: a write lock held by another process gets fast, honest 503s with
//! Retry-After (never a 500, never a long hang) and loses nothing; readiness follows the
//! database; a lost database is refused at start; a client deleted mid-consent gets a page.

use crate::helpers::{TestApp, hidden, http_client, location};
use serde_json::Value;
use sqlx::Connection;

/// Another process's connection holding the write lock until dropped or released.
struct Lock(sqlx::SqliteConnection);

impl Lock {
    async fn take(app: &TestApp) -> Lock {
        let mut conn = sqlx::SqliteConnection::connect(&app.state.config.database_url)
            .await
            .unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        Lock(conn)
    }

    async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.unwrap();
        self.0.close().await.unwrap();
    }
}

async fn quick_to_give_up() -> TestApp {
    TestApp::spawn_with(|c| c.database.busy_timeout_ms = 100).await
}

#[tokio::test]
async fn a_held_write_lock_gets_503_with_retry_after_and_loses_nothing() {
    let app = quick_to_give_up().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let tokens: Value = app
        .exchange(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let lock = Lock::take(&app).await;
    let res = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let res = app.refresh(&client, &refresh).await;
    assert_eq!(res.status(), 503, "the refresh cannot be written");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    // The browser gets a page.
    let page = http_client().get(app.url("/signin")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    assert!(page.text().await.unwrap().contains("try again"));
    lock.release().await;

    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The refresh token was not used up by the failed write: the retry works.
    let res = app.refresh(&client, &refresh).await;
    assert_eq!(res.status(), 200);
    let res = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_empty_database_beside_an_old_key_file_is_refused_at_start() {
    use keyway::app::Application;
    use keyway::config::{Config, RawConfig};
    let dir = tempfile::tempdir().unwrap();
    let raw = |db: &str| RawConfig {
        issuer: "http://127.0.0.1:9".into(),
        listen: Some("127.0.0.1:0".into()),
        database_url: format!("sqlite://{}/{db}", dir.path().display()),
        data_dir: dir.path().display().to_string(),
        ..RawConfig::default()
    };
    // A first start writes the key file and the database.
    let first = Application::build(Config::validate(raw("keyway.db")).unwrap())
        .await
        .unwrap();
    first.state().repos.maintenance.close().await;
    drop(first);
    assert!(dir.path().join("secret.key").exists());

    // The database is not where database_url points (or was deleted): refused, saying why.
    let e = Application::build(Config::validate(raw("elsewhere.db")).unwrap())
        .await
        .err()
        .expect("refused");
    let message = format!("{e:#}");
    assert!(
        message.contains("elsewhere.db") && message.contains("--init"),
        "{message}"
    );
    assert!(!dir.path().join("elsewhere.db").exists(), "nothing created");
    // Truncated to nothing: refused too.
    std::fs::write(dir.path().join("truncated.db"), b"").unwrap();
    assert!(
        Application::build(Config::validate(raw("truncated.db")).unwrap())
            .await
            .is_err()
    );
    // --init starts afresh on purpose.
    let mut config = Config::validate(raw("elsewhere.db")).unwrap();
    config.init = true;
    let fresh = Application::build(config).await.unwrap();
    fresh.state().repos.maintenance.close().await;
}

#[tokio::test]
async fn consenting_to_a_client_deleted_a_moment_ago_gets_a_page() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client_with(|c| c.first_party = false).await;
    let browser = http_client();
    let challenge = keyway::oidc::pkce::s256(&"v".repeat(50));
    let res = browser
        .get(app.url(&format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
            client.id,
            crate::helpers::urlencode(&client.redirect_uri)
        )))
        .send()
        .await
        .unwrap();
    let resume = app.sign_in_at(&browser, &location(&res), "alice").await;
    let consent = app.page(&browser, &resume).await;
    app.state.repos.clients.delete(&client.id).await.unwrap();
    let res = browser
        .post(app.url("/authorize/consent"))
        .form(&[
            ("csrf", hidden(&consent, "csrf")),
            ("req", hidden(&consent, "req")),
            ("decision", "allow".to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(page.contains("start again"), "{page}");
}
