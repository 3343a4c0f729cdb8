//! Changes made by another process (the CLI here, a second server later) take effect in a
//! running server on its very next request, however warm its caches are.

use crate::helpers::{TestApp, http_client};
use serde_json::Value;
use std::process::{Command, Stdio};

/// Runs the `keyway` binary against the running server's database; requires success.
fn keyway(app: &TestApp, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyway"))
        .arg("--database-url")
        .arg(&app.state.config.database_url)
        .arg("--data-dir")
        .arg(&app.state.config.data_dir)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keyway {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Signs alice in to a fresh client and returns (client, token response).
async fn tokens(app: &TestApp, browser: &reqwest::Client) -> (crate::helpers::TestClient, Value) {
    let client = app.client().await;
    let (code, verifier) = app.code_for(browser, &client, "alice", "").await;
    let res = app.exchange(&client, &code, &verifier).await;
    assert_eq!(res.status(), 200);
    (client, res.json().await.unwrap())
}

#[tokio::test]
async fn a_client_deleted_by_the_cli_loses_its_tokens_at_once() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let (client, t) = tokens(&app, &http_client()).await;
    let access = t["access_token"].as_str().unwrap();
    // Twice, so both the token and the user are cached.
    assert_eq!(userinfo_status(&app, access).await, 200);
    assert_eq!(userinfo_status(&app, access).await, 200);

    keyway(&app, &["client", "delete", &client.id]);

    assert_eq!(userinfo_status(&app, access).await, 401);
    let refresh = app
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        refresh.status(),
        401,
        "the deleted client cannot authenticate"
    );
}

#[tokio::test]
async fn a_user_disabled_by_the_cli_is_refused_at_once() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let browser = http_client();
    let (client, t) = tokens(&app, &browser).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access).await, 200);
    let home = browser.get(app.url("/")).send().await.unwrap();
    assert!(home.text().await.unwrap().contains("signed in as"));

    keyway(&app, &["user", "disable", "alice"]);

    assert_eq!(userinfo_status(&app, access).await, 401);
    let refresh = app
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refresh.status(), 400);
    let body: Value = refresh.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let home = browser.get(app.url("/")).send().await.unwrap();
    let home = home.text().await.unwrap();
    assert!(!home.contains("signed in as"), "{home}");
}
