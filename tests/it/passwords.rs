//! Passwords are optional: off hides every field and refuses them; optional lets people set,
//! change and remove one on the account page under the policy; raised argon2id parameters reach
//! each password at its next sign-in.

use crate::helpers::{PASSWORD, TestApp, hidden, http_client, location};
use crate::webauthn::{Device, add_passkey, post, redirected};
use keyway::auth::password::Passwords;

#[tokio::test]
async fn passwords_off_hides_the_fields_and_refuses_the_right_password() {
    let app = TestApp::spawn_with(|c| c.auth.passwords = "off".into()).await;
    app.user("alice").await;
    let browser = http_client();
    let page = app.page(&browser, "/signin").await;
    assert!(!page.contains(r#"type="password""#), "{page}");
    let res = post(
        &app.issuer,
        &browser,
        "/signin",
        &[
            ("csrf", &hidden(&page, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    let audit = app.state.repos.audit.recent(5).await.unwrap();
    assert!(
        audit[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("passwords are off")
    );
}

#[tokio::test]
async fn a_password_is_set_changed_and_removed_on_the_account_page_under_the_policy() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    let page = app.page(&browser, "/account").await;
    assert!(page.contains("Change password"), "{page}");
    let csrf = hidden(&page, "csrf");
    let set = async |pw: &str, again: &str| {
        post(
            &app.issuer,
            &browser,
            "/account/password",
            &[("csrf", &csrf), ("password", pw), ("confirm", again)],
        )
        .await
    };
    for (pw, again, words) in [
        ("short", "short", "at least 8"),
        ("password1", "password1", "common"),
        ("a fine long passphrase", "a different one", "differ"),
    ] {
        let res = set(pw, again).await;
        assert_eq!(res.status(), 400, "{pw}");
        assert!(res.text().await.unwrap().contains(words), "{pw}: {words}");
    }
    let res = set("a fine long passphrase", "a fine long passphrase").await;
    assert_eq!(redirected(&res), "/account?done=password");
    let other = http_client();
    let page = app.page(&other, "/signin").await;
    let res = post(
        &app.issuer,
        &other,
        "/signin",
        &[
            ("csrf", &hidden(&page, "csrf")),
            ("username", "alice"),
            ("password", "a fine long passphrase"),
        ],
    )
    .await;
    assert_eq!(location(&res), "/");
    // Removing it: refused while it is the only way in, fine once a passkey exists.
    let res = post(
        &app.issuer,
        &browser,
        "/account/password/remove",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Add a passkey first"));
    add_passkey(&app.issuer, &browser, &mut Device::new(&app.issuer)).await;
    let res = post(
        &app.issuer,
        &browser,
        "/account/password/remove",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=password_removed");
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.state
            .repos
            .passwords
            .get(&alice.id)
            .await
            .unwrap()
            .is_none()
    );
    // Changing it needs a recent sign-in.
    app.clock.advance(301);
    let res = set("another fine passphrase", "another fine passphrase").await;
    assert_eq!(location(&res), "/signin?next=/account");
}

#[tokio::test]
async fn raised_argon2_parameters_rehash_a_password_at_its_next_sign_in() {
    let app = TestApp::spawn_with(|c| c.auth.password_memory_kib = 24_576).await;
    let alice = app.user("alice").await;
    let old = Passwords::new(1).hash(PASSWORD).await.unwrap();
    assert!(old.contains("m=19456"));
    app.state
        .repos
        .passwords
        .set(&alice.id, &old, app.clock_now())
        .await
        .unwrap();
    app.sign_in_at(&http_client(), "/signin", "alice").await;
    let now = app
        .state
        .repos
        .passwords
        .get(&alice.id)
        .await
        .unwrap()
        .unwrap();
    assert!(now.starts_with("$argon2id$v=19$m=24576,t=2,p=1$"), "{now}");
    let audit = app.state.repos.audit.recent(10).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "password.rehash"));
    // And the new hash still signs in.
    app.sign_in_at(&http_client(), "/signin", "alice").await;
}
