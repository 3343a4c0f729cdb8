//! /metrics: off by default; on its own listener with `metrics.listen`; behind a bearer token on
//! the main address with `metrics.token`. The series an operator watches are there, labelled by
//! route pattern (never by raw path).

use crate::helpers::{TestApp, http_client};

const TOKEN: &str = "a-long-random-metrics-token-0123456789";

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = http_client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = TestApp::spawn().await;
    assert!(app.metrics.is_none());
    assert!(app.state.metrics.is_none());
    let res = get(&app.url("/metrics"), Some(TOKEN)).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn metrics_on_their_own_listener_show_requests_sign_ins_tokens_and_queues() {
    let app = TestApp::spawn_with(|c| c.metrics.listen = Some("127.0.0.1:0".into())).await;
    let base = app.metrics.clone().unwrap();
    // Not on the main address.
    assert_eq!(get(&app.url("/metrics"), None).await.status(), 404);
    // Some traffic: a password sign-in and a code exchange, and an admin page by id.
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    assert_eq!(app.exchange(&client, &code, &verifier).await.status(), 200);
    let res = get(&app.url("/admin/users/some-user-id"), None).await;
    assert!(res.status().is_redirection());
    let odd = reqwest::Method::from_bytes(b"FOO123").unwrap();
    let res = http_client()
        .request(odd, app.url("/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let res = get(&format!("{base}/metrics"), None).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    for series in [
        "keyway_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"}",
        "keyway_http_request_duration_seconds_bucket{route=\"/token\",method=\"POST\",le=\"0.0005\"}",
        "keyway_http_requests_total{route=\"/admin/users/{id}\",method=\"GET\",status=\"303\"}",
        "keyway_signins_total{method=\"password\",outcome=\"success\"}",
        "keyway_tokens_issued_total{grant=\"authorization_code\"}",
        "keyway_sessions_signed_in ",
        "keyway_outbox_messages ",
        "keyway_password_hashes_waiting 0",
        "keyway_password_hashes_running 0",
        "keyway_db_read_connections ",
        "keyway_db_write_queue 0",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    assert!(
        !text.contains("some-user-id"),
        "raw paths never become labels"
    );
    assert!(!text.contains("FOO123"), "nor made-up methods");
    assert!(
        text.contains(
            "keyway_http_requests_total{route=\"/token\",method=\"other\",status=\"405\"}"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_on_the_main_address_need_the_token() {
    let app = TestApp::spawn_with(|c| c.metrics.token = Some(TOKEN.into())).await;
    let url = app.url("/metrics");
    let res = get(&url, None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        get(&url, Some("wrong-token-of-the-same-shape-000000000"))
            .await
            .status(),
        401
    );
    let res = get(&url, Some(TOKEN)).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("keyway_sessions_signed_in")
    );
}
