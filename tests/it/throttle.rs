//! Guessing is throttled: failed passwords per account and per IP, failed client secrets per
//! client; a limited request gets 429 with Retry-After (the same sign-in page, or an OAuth
//! error), is audited once, and the limit lifts by itself on the clock. Behind a trusted proxy
//! the forwarded client IP counts; from anyone else, the socket's.

use crate::helpers::{PASSWORD, TestApp, hidden, http_client};
use keyway::web::signin::BAD_CREDENTIALS;

async fn strict() -> TestApp {
    TestApp::spawn_with(|c| {
        c.throttle.window = 60;
        c.throttle.account_attempts = 3;
        c.throttle.ip_attempts = 100;
        c.throttle.client_failures = 3;
    })
    .await
}

async fn try_password(
    app: &TestApp,
    username: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let browser = http_client();
    let page = app.page(&browser, "/signin").await;
    let mut req = browser.post(app.url("/signin")).form(&[
        ("csrf", hidden(&page, "csrf")),
        ("username", username.to_string()),
        ("password", password.to_string()),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn limited_audits(app: &TestApp) -> Vec<keyway::domain::AuditEvent> {
    let audit = app.state.repos.audit.recent(200).await.unwrap();
    audit
        .into_iter()
        .filter(|e| e.outcome == "limited")
        .collect()
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_account_and_the_limit_lifts() {
    let app = strict().await;
    app.user("alice").await;
    for _ in 0..3 {
        assert_eq!(
            try_password(&app, "alice", "wrong", &[]).await.status(),
            401
        );
    }
    let res = try_password(&app, "alice", "wrong", &[]).await;
    assert_eq!(res.status(), 429);
    let wait: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let page = res.text().await.unwrap();
    assert!(
        page.contains(BAD_CREDENTIALS),
        "the same page as a wrong password"
    );
    assert!(page.contains("try again in"), "{page}");
    // While limited, even the right password is not checked.
    let res = try_password(&app, "alice", PASSWORD, &[]).await;
    assert_eq!(res.status(), 429);
    assert_eq!(
        limited_audits(&app).await.len(),
        1,
        "audited once per block"
    );
    // Unknown accounts are throttled alike: nothing tells them apart.
    for _ in 0..3 {
        assert_eq!(
            try_password(&app, "nobody", "wrong", &[]).await.status(),
            401
        );
    }
    assert_eq!(
        try_password(&app, "nobody", "wrong", &[]).await.status(),
        429
    );
    // The limit lifts by itself.
    app.clock.advance(wait);
    assert_eq!(
        try_password(&app, "alice", PASSWORD, &[]).await.status(),
        303
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_ip_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.ip_attempts = 4;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for i in 0..4 {
        let res = try_password(&app, &format!("user{i}"), "wrong", &from("203.0.113.7")).await;
        assert_eq!(res.status(), 401);
    }
    let res = try_password(&app, "user9", "wrong", &from("203.0.113.7")).await;
    assert_eq!(res.status(), 429, "the fifth failure from one IP");
    // Another client behind the same proxy is not affected.
    let res = try_password(&app, "user9", "wrong", &from("198.51.100.1")).await;
    assert_eq!(res.status(), 401);
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.ip.as_deref() == Some("198.51.100.1"))
    );
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = TestApp::spawn().await;
    try_password(&app, "x", "wrong", &[("x-forwarded-for", "203.0.113.7")]).await;
    let audit = app.state.repos.audit.recent(10).await.unwrap();
    let signin = audit.iter().find(|e| e.event == "signin").unwrap();
    assert_eq!(signin.ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn wrong_client_secrets_are_throttled_and_the_limit_lifts() {
    let app = strict().await;
    let client = app.client().await;
    let attempt = |secret: &str| {
        app.http
            .post(app.url("/token"))
            .basic_auth(&client.id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    }
    let res = attempt("wrong").await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let right = client.secret.clone().unwrap();
    assert_eq!(
        attempt(&right).await.unwrap().status(),
        429,
        "not checked while limited"
    );
    // Introspection and revocation share the limit.
    let res = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&client.id, Some(&right))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(limited_audits(&app).await.len(), 1);
    app.clock.advance(wait);
    assert_eq!(attempt(&right).await.unwrap().status(), 200);
}

#[tokio::test]
async fn guesses_sent_at_once_cannot_outrun_the_count() {
    let app = strict().await;
    app.user("alice").await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (http, url) = (http_client(), app.url("/signin"));
            let signin = app.url("/signin");
            tokio::spawn(async move {
                let page = http
                    .get(&signin)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                http.post(url)
                    .form(&[
                        ("csrf", hidden(&page, "csrf")),
                        ("username", "alice".into()),
                        ("password", "wrong".into()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("status {other}"),
        }
    }
    assert_eq!(checked, 3, "only the allowed attempts were checked");
}

#[tokio::test]
async fn nobody_can_keep_a_client_out_from_another_address() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.client_failures = 3;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let client = app.client().await;
    let attempt = |secret: String, ip: &'static str| {
        app.http
            .post(app.url("/token"))
            .header("x-forwarded-for", ip)
            .basic_auth(&client.id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..4 {
        attempt("wrong".into(), "203.0.113.66").await.unwrap();
    }
    let right = client.secret.clone().unwrap();
    assert_eq!(
        attempt(right.clone(), "203.0.113.66")
            .await
            .unwrap()
            .status(),
        429,
        "the guessing address is held back"
    );
    assert_eq!(
        attempt(right, "198.51.100.20").await.unwrap().status(),
        200,
        "the client itself, elsewhere, is not"
    );
}

#[tokio::test]
async fn a_public_client_revoking_its_tokens_is_no_guess() {
    let app = strict().await;
    let client = app
        .client_with(|c| {
            c.public = true;
            c.grant_types = vec![keyway::domain::GrantType::AuthorizationCode];
        })
        .await;
    for _ in 0..10 {
        let res = app
            .http
            .post(app.url("/revoke"))
            .form(&[("client_id", client.id.as_str()), ("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "refused, but never throttled");
    }
}

#[tokio::test]
async fn passkey_attempts_count_per_ip_before_any_credential_is_known() {
    let app = TestApp::spawn_with(|c| {
        c.throttle.window = 60;
        c.throttle.ip_attempts = 3;
    })
    .await;
    let browser = http_client();
    let page = app.page(&browser, "/signin").await;
    let csrf = hidden(&page, "csrf");
    // Garbage and unknown credentials: each one counts against the address.
    let post = async |credential: &str| {
        browser
            .post(app.url("/signin/passkey"))
            .form(&[("csrf", csrf.as_str()), ("credential", credential)])
            .send()
            .await
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(post("{}").await.status(), 401);
    }
    let limited = post("{}").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.text().await.unwrap().contains("try again in"));
    let audits = limited_audits(&app).await;
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert!(audits[0].detail.as_deref().unwrap().starts_with("passkey:"));
    app.clock.advance(61);
    assert_eq!(post("{}").await.status(), 401, "the limit lifts");
}
