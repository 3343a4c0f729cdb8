//! Every state-changing browser POST refuses a missing or wrong CSRF token before it does
//! anything: a sweep over every path the router serves.

use crate::helpers::{PASSWORD, TestApp, hidden, http_client};
use keyway::web::urls;

#[tokio::test]
async fn every_browser_post_refuses_a_missing_or_wrong_csrf_token() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let browser = http_client();
    // A signed-in browser with a live session and a real token, so that only the token differs.
    let page = app.page(&browser, urls::SIGNIN).await;
    let signed_in = browser
        .post(app.url(urls::SIGNIN))
        .form(&[
            ("csrf", hidden(&page, "csrf")),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let mut swept = Vec::new();
    // The fixed paths, and the invitation pages under their token.
    let invite = [
        "/invite/some-token",
        "/invite/some-token/options",
        "/signin/email/some-token",
        "/email/confirm/some-token",
        "/recover/some-token",
        "/recover/some-token/options",
        "/recover/some-token/cancel",
    ];
    for path in urls::ALL.iter().chain(&invite) {
        if urls::PROTOCOL_POSTS.contains(path) {
            continue;
        }
        let probe = browser.post(app.url(path)).send().await.unwrap();
        if probe.status() == 405 || probe.status() == 404 {
            continue;
        }
        swept.push(*path);
        for csrf in [None, Some("wrong-token")] {
            let mut form = vec![
                ("username", "alice"),
                ("password", PASSWORD),
                ("req", "x"),
                ("decision", "allow"),
            ];
            if let Some(c) = csrf {
                form.push(("csrf", c));
            }
            let res = browser
                .post(app.url(path))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "POST {path} with csrf {csrf:?}");
            let body = res.text().await.unwrap();
            assert!(body.contains("Form expired"), "POST {path}: {body}");
        }
    }
    // The sweep found the browser forms that exist today.
    for form in [
        urls::SIGNIN,
        urls::CONSENT,
        urls::SIGN_OUT,
        urls::SIGNIN_PASSKEY_OPTIONS,
        urls::SIGNIN_PASSKEY,
        urls::ACCOUNT_PASSKEY_OPTIONS,
        urls::ACCOUNT_PASSKEYS,
        urls::ACCOUNT_PASSKEY_RENAME,
        urls::ACCOUNT_PASSKEY_REMOVE,
        urls::ACCOUNT_SESSION_END,
        urls::ACCOUNT_SESSIONS_END_ALL,
        urls::SIGNIN_EMAIL,
        urls::SIGNIN_EMAIL_CODE,
        invite[0],
        invite[1],
        invite[2],
        invite[3],
        invite[4],
        invite[5],
        invite[6],
        urls::RECOVER,
        urls::ACCOUNT_EMAIL,
        urls::ACCOUNT_EMAIL_VERIFY,
        urls::ACCOUNT_NOTICES,
        urls::ACCOUNT_PASSWORD,
        urls::ACCOUNT_PASSWORD_REMOVE,
    ] {
        assert!(swept.contains(&form), "{form} not swept: {swept:?}");
    }
    // Still signed in: no refused POST signed the browser out.
    let home = app.page(&browser, urls::HOME).await;
    assert!(home.contains("signed in as"), "{home}");
}
