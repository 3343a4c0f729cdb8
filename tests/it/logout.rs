//! RP-initiated logout: confirmation without a hint, exact post_logout_redirect_uri, state.

use crate::helpers::{TestApp, hidden, http_client, location, urlencode};

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_gets_an_error_page() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    for bad in ["http://127.0.0.1:9/bye/", "https://evil.example/bye"] {
        let res = app
            .http
            .get(app.url(&format!(
                "/logout?client_id={}&post_logout_redirect_uri={}",
                client.id,
                urlencode(bad)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.headers().get("location").is_none());
    }
    // Without a client to check it against, the URI cannot be trusted either.
    let res = app
        .http
        .get(app.url(&format!(
            "/logout?post_logout_redirect_uri={}",
            urlencode("http://127.0.0.1:9/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn without_a_hint_the_user_confirms_first() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = http_client();
    app.code_for(&browser, &client, "alice", "").await;
    let res = browser
        .get(app.url(&format!(
            "/logout?client_id={}&post_logout_redirect_uri={}&state=s1",
            client.id,
            urlencode("http://127.0.0.1:9/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Sign out?"));
    // Still signed in until confirmed.
    let home = browser
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("signed in as"));
    assert!(page.contains(r#"action="/logout/confirm""#), "{page}");
    let res = browser
        .post(app.url("/logout/confirm"))
        .form(&[
            ("csrf", hidden(&page, "csrf")),
            ("client_id", client.id.clone()),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/bye".into()),
            ("state", "s1".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "http://127.0.0.1:9/bye?state=s1");
    let home = browser
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!home.contains("signed in as"), "{home}");
    let audit = app.state.repos.audit.recent(20).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "logout"));
}
