//! The account page: profile, passkeys (rename, remove, never the last way in), sessions (one,
//! or everywhere with the user's tokens), recent security events, and the recent sign-in that
//! the dangerous changes need.

use crate::helpers::{TestApp, hidden, http_client, location};
use crate::webauthn::{Device, add_passkey, post, redeem, redirected};
use keyway::ops::{Actor, CreateInvitation, Operator};

/// A passwordless user made by invitation, signed in in the returned browser.
async fn passwordless(app: &TestApp, username: &str) -> (reqwest::Client, Device) {
    let s = &app.state;
    let ops = Operator::new(
        s.repos.clone(),
        s.clock.clone(),
        s.auth.hasher.clone(),
        Actor::Cli,
    );
    let (_, token) = ops
        .create_invitation(CreateInvitation {
            username: None,
            email: None,
            name: None,
            groups: vec![],
            is_admin: false,
            expires_in: 3600,
            uses: 1,
            send: false,
        })
        .await
        .unwrap();
    let browser = http_client();
    let mut device = Device::new(&app.issuer);
    let res = redeem(&app.issuer, &browser, &mut device, &token, username, "").await;
    assert_eq!(redirected(&res), "/account?welcome=1");
    (browser, device)
}

/// The value of the last hidden `name` field before `marker` (a button's label).
fn field_near(page: &str, marker: &str, name: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {page}"));
    let before = &page[..at];
    let start = before
        .rfind(&format!(r#"name="{name}""#))
        .unwrap_or_else(|| panic!("no {name} before {marker}"));
    hidden(&page[start.saturating_sub(40)..], name)
}

/// The value of the first hidden `name` field after `marker`.
fn field_after(page: &str, marker: &str, name: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {page}"));
    hidden(&page[at..], name)
}

#[tokio::test]
async fn passkeys_are_renamed_and_removed_but_never_the_last_way_in() {
    let app = TestApp::spawn().await;
    let (browser, _) = passwordless(&app, "kim").await;
    let page = app.page(&browser, "/account").await;
    assert!(
        page.contains("this device only") && page.contains("Added"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let id = field_near(&page, "Remove Passkey", "id");
    // The only passkey, no password: refused, with words.
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys/remove",
        &[("csrf", &csrf), ("id", &id)],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("only way to sign in"));
    // Renamed; an empty name is refused.
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys/rename",
        &[("csrf", &csrf), ("id", &id), ("name", "  ")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys/rename",
        &[("csrf", &csrf), ("id", &id), ("name", "Work laptop")],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=renamed");
    // With a second passkey, the first can go.
    let mut phone = Device::new(&app.issuer);
    assert_eq!(
        redirected(&add_passkey(&app.issuer, &browser, &mut phone).await),
        "/account?done=added"
    );
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys/remove",
        &[("csrf", &csrf), ("id", &id)],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=removed");
    let page = app.page(&browser, "/account?done=removed").await;
    assert!(
        !page.contains(r#"value="Work laptop""#) && page.contains("Passkey removed."),
        "{page}"
    );
    // Each change is in the user's recent security events.
    for event in [
        "Passkey added",
        "Passkey renamed: Work laptop",
        "Passkey removed: Work laptop",
        "Account created",
    ] {
        assert!(page.contains(event), "{event} missing: {page}");
    }
    // Someone else's passkey id is not found.
    let (other, _) = passwordless(&app, "lee").await;
    let other_page = app.page(&other, "/account").await;
    let other_id = field_near(&other_page, "Remove Passkey", "id");
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys/remove",
        &[("csrf", &csrf), ("id", &other_id)],
    )
    .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn dangerous_changes_need_a_sign_in_within_five_minutes() {
    let app = TestApp::spawn().await;
    let (browser, mut device) = passwordless(&app, "kim").await;
    let mut phone = Device::new(&app.issuer);
    add_passkey(&app.issuer, &browser, &mut phone).await;
    app.clock.advance(301);
    let page = app.page(&browser, "/account").await;
    let csrf = hidden(&page, "csrf");
    let id = field_near(&page, "Remove Passkey", "id");
    for (path, form) in [
        (
            "/account/passkeys/remove",
            vec![("csrf", csrf.as_str()), ("id", id.as_str())],
        ),
        ("/account/sessions/end-all", vec![("csrf", csrf.as_str())]),
    ] {
        let res = post(&app.issuer, &browser, path, &form).await;
        assert_eq!(redirected(&res), "/signin?next=/account", "{path}");
    }
    // Confirming with a passkey comes back to the account page, and the change goes through.
    let page = app.page(&browser, "/signin?next=/account").await;
    assert!(
        page.contains("Confirm it") && page.contains(r#"name="next" value="/account""#),
        "{page}"
    );
    let res = crate::webauthn::passkey_sign_in(
        &app.issuer,
        &browser,
        &mut device,
        "/signin?next=/account",
        "button",
        "",
    )
    .await;
    assert_eq!(redirected(&res), "/account");
    let page = app.page(&browser, "/account").await;
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys/remove",
        &[("csrf", &hidden(&page, "csrf")), ("id", &id)],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=removed");
    // `next` cannot send anyone elsewhere.
    let page = app
        .page(&browser, "/signin?next=https://evil.example/")
        .await;
    assert!(page.contains(r#"name="next" value="""#), "{page}");
}

#[tokio::test]
async fn sessions_are_listed_and_signed_out_one_by_one_or_everywhere() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let laptop = http_client();
    let (code, verifier) = app.code_for(&laptop, &client, "alice", "").await;
    let tokens: serde_json::Value = app
        .exchange(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let phone = http_client();
    app.sign_in_at(&phone, "/signin", "alice").await;
    let page = app.page(&laptop, "/account").await;
    assert_eq!(
        page.matches("Sign out</button>").count(),
        3,
        "two sessions and the page's own: {page}"
    );
    assert_eq!(page.matches("this browser").count(), 1, "{page}");
    // Security events: the sign-ins, not the tokens issued to the application.
    assert!(page.contains("Signed in with a password"), "{page}");
    assert!(!page.contains("<div>token</div>"), "{page}");
    assert!(page.contains("127.0.0.1"), "{page}");
    // Sign the phone out from the laptop: the phone's session ends, the laptop's does not.
    let csrf = hidden(&page, "csrf");
    let this = field_after(&page, "this browser</span>", "key");
    let keys: Vec<String> = page
        .match_indices(r#"name="key" value=""#)
        .map(|(i, m)| page[i + m.len()..].split('"').next().unwrap().to_owned())
        .collect();
    let phone_key = keys.iter().find(|k| **k != this).unwrap();
    let res = post(
        &app.issuer,
        &laptop,
        "/account/sessions/end",
        &[("csrf", &csrf), ("key", phone_key)],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=ended");
    assert!(!app.page(&phone, "/").await.contains("signed in as"));
    assert!(app.page(&laptop, "/").await.contains("signed in as"));
    // Everywhere: every session, and the refresh token, at once.
    app.sign_in_at(&phone, "/signin", "alice").await;
    let page = app.page(&laptop, "/account").await;
    let res = post(
        &app.issuer,
        &laptop,
        "/account/sessions/end-all",
        &[("csrf", &hidden(&page, "csrf"))],
    )
    .await;
    assert_eq!(location(&res), "/signed-out");
    assert!(!app.page(&phone, "/").await.contains("signed in as"));
    assert!(!app.page(&laptop, "/").await.contains("signed in as"));
    let refreshed = app.refresh(&client, &refresh).await;
    assert_eq!(refreshed.status(), 400, "the refresh token is revoked");
    let events = app.state.repos.audit.recent(50).await.unwrap();
    assert!(
        events.iter().any(|e| e.event == "session.end_all"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_account_page_needs_a_signed_in_user() {
    let app = TestApp::spawn().await;
    let res = http_client().get(app.url("/account")).send().await.unwrap();
    assert_eq!(location(&res), "/signin?next=/account");
}
