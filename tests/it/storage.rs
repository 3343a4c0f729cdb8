//! Storage guarantees: secrets only as hashes, private keys sealed, refresh-token caps, purging.

use crate::helpers::{TestApp, http_client};
use keyway::app::Application;
use keyway::config::{Config, RawConfig};
use serde_json::Value;

fn database_bytes(app: &TestApp) -> Vec<u8> {
    let dir = &app.state.config.data_dir;
    let mut bytes = Vec::new();
    for name in ["keyway.db", "keyway.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_database_holds_no_usable_secret_token_or_code() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let res = app.exchange(&client, &code, &verifier).await;
    let body: Value = res.json().await.unwrap();
    let db = database_bytes(&app);
    assert!(!db.is_empty());
    for (what, secret) in [
        ("client secret", client.secret.clone().unwrap()),
        ("authorization code", code.clone()),
        (
            "access token",
            body["access_token"].as_str().unwrap().to_string(),
        ),
        (
            "refresh token",
            body["refresh_token"].as_str().unwrap().to_string(),
        ),
        ("password", crate::helpers::PASSWORD.to_string()),
    ] {
        assert!(!contains(&db, &secret), "{what} stored in the clear");
    }
}

#[tokio::test]
async fn a_copy_of_the_database_without_the_secret_key_cannot_sign() {
    let app = TestApp::spawn().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        database_url: app.state.config.database_url.clone(),
        // A different data_dir: a new secret.key, as on a machine that only has the database.
        data_dir: elsewhere.path().display().to_string(),
        listen: Some("127.0.0.1:0".into()),
        ..RawConfig::default()
    };
    let result = Application::build(Config::validate(raw).unwrap()).await;
    let err = format!(
        "{:#}",
        result.err().expect("must not start with the wrong key")
    );
    assert!(err.contains("decrypt"), "{err}");
}

#[tokio::test]
async fn live_refresh_tokens_per_user_and_client_are_capped() {
    // Eleven sign-ins in a row, past the sign-in throttle's default for one account.
    let app = TestApp::spawn_with(|c| c.throttle.account_attempts = 100).await;
    app.user("alice").await;
    let client = app.client().await;
    let cap = 10;
    let mut refresh_tokens = Vec::new();
    for _ in 0..cap + 1 {
        let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
        let body: Value = app
            .exchange(&client, &code, &verifier)
            .await
            .json()
            .await
            .unwrap();
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    let introspect = |t: String| {
        app.http
            .post(app.url("/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", t)])
            .send()
    };
    let oldest: Value = introspect(refresh_tokens[0].clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        oldest["active"], false,
        "the oldest is revoked past the cap"
    );
    for t in &refresh_tokens[1..] {
        let v: Value = introspect(t.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(v["active"], true);
    }
}

#[tokio::test]
async fn expired_rows_are_purged() {
    use keyway::crypto::token_hash;
    use keyway::store::TokenRepo;
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let user_tokens: Value = app
        .exchange(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let service: Value = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let hashes: Vec<String> = [
        &user_tokens["access_token"],
        &user_tokens["refresh_token"],
        &service["access_token"],
    ]
    .iter()
    .map(|t| token_hash(t.as_str().unwrap()))
    .collect();
    // Read the database itself, not the server's cache.
    let raw = keyway::store::sqlite::SqliteStore::open(
        &app.state.config.database_url,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let grant_id = raw
        .token(&hashes[1])
        .await
        .unwrap()
        .unwrap()
        .grant_id
        .unwrap();
    let maintenance = &app.state.repos.maintenance;
    assert_eq!(
        maintenance.purge_expired(app.clock_now()).await.unwrap(),
        0,
        "nothing expired yet"
    );
    app.clock.advance(100 * 86400);
    let purged = maintenance.purge_expired(app.clock_now()).await.unwrap();
    // Three tokens, the grant and the browser session.
    assert_eq!(purged, 5);
    for h in &hashes {
        assert!(raw.token(h).await.unwrap().is_none(), "token purged");
    }
    assert!(
        raw.grant(&grant_id).await.unwrap().is_none(),
        "grant purged"
    );
    keyway::store::MaintenanceRepo::close(&raw).await;
}
