//! Email on the account: verifying the address, changing it (effective only when the new address
//! confirms; the old one is told), security notices and their opt-out, and recovery of an account
//! whose passkeys are lost (cooling-off period, cancel, a new passkey, signed in).

use crate::helpers::{TestApp, hidden, http_client, location};
use crate::mail::{MailApp, mail_app_with, mailbox, text_part};
use crate::webauthn::{Device, add_passkey, csrf_of, options, post, redirected};

/// Waits for `n` messages; returns them (oldest first) as (recipient line, subject, text).
async fn mails(m: &MailApp, n: usize) -> Vec<(String, String, String)> {
    let mut got = Vec::new();
    for _ in 0..200 {
        got = if n == 0 && std::fs::read_dir(m.dir.path()).map_or(true, |d| d.count() == 0) {
            Vec::new()
        } else {
            mailbox(m.dir.path()).await
        };
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(got.len(), n, "messages");
    got.iter()
        .map(|eml| {
            let header = |name: &str| {
                eml.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            (header("To:"), header("Subject:"), text_part(eml))
        })
        .collect()
}

fn link_in(text: &str, path: &str) -> String {
    let at = text
        .find(path)
        .unwrap_or_else(|| panic!("no {path} in {text}"));
    text[at..].split_whitespace().next().unwrap().to_owned()
}

/// POSTs the form of the page at `path` (its CSRF token) to `path`.
async fn press(app: &TestApp, browser: &reqwest::Client, path: &str) -> reqwest::Response {
    let csrf = csrf_of(&app.issuer, browser, path).await;
    post(&app.issuer, browser, path, &[("csrf", &csrf)]).await
}

#[tokio::test]
async fn an_address_is_verified_by_the_link_sent_to_it() {
    let m = mail_app_with(|_| {}).await;
    let app = &m.app;
    app.user("alice").await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    let page = app.page(&browser, "/account").await;
    assert!(page.contains("not verified"), "{page}");
    let res = post(
        &app.issuer,
        &browser,
        "/account/email/verify",
        &[("csrf", &hidden(&page, "csrf"))],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=verify_sent");
    let sent = mails(&m, 1).await;
    assert_eq!(sent[0].0, "alice@example.com");
    let link = link_in(&sent[0].2, "/email/confirm/");
    // Opening the link shows a button and changes nothing.
    let other = http_client();
    assert!(app.page(&other, &link).await.contains("Confirm"));
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(!alice.email_verified);
    let csrf = csrf_of(&app.issuer, &other, &link).await;
    let res = post(&app.issuer, &other, &link, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(alice.email_verified);
    let again = post(&app.issuer, &other, &link, &[("csrf", &csrf)]).await;
    assert_eq!(again.status(), 410, "single use");
}

#[tokio::test]
async fn a_new_address_takes_effect_only_when_confirmed_and_the_old_one_is_told() {
    let m = mail_app_with(|_| {}).await;
    let app = &m.app;
    app.user("alice").await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    let page = app.page(&browser, "/account").await;
    let csrf = hidden(&page, "csrf");
    let res = post(
        &app.issuer,
        &browser,
        "/account/email",
        &[("csrf", &csrf), ("email", "not an address")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let res = post(
        &app.issuer,
        &browser,
        "/account/email",
        &[("csrf", &csrf), ("email", "alice@new.example")],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=change_sent");
    let sent = mails(&m, 1).await;
    assert_eq!(sent[0].0, "alice@new.example");
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"), "not yet");
    let link = link_in(&sent[0].2, "/email/confirm/");
    assert_eq!(press(app, &http_client(), &link).await.status(), 200);
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.email.as_deref(), Some("alice@new.example"));
    assert!(alice.email_verified);
    let sent = mails(&m, 2).await;
    assert_eq!(sent[1].0, "alice@example.com");
    assert!(
        sent[1].1.contains("your email address changed"),
        "{:?}",
        sent[1]
    );
    assert!(sent[1].2.contains("alice@new.example") && sent[1].2.contains("Not you?"));
    // Changing it needs a recent sign-in.
    app.clock.advance(301);
    let page = app.page(&browser, "/account").await;
    let res = post(
        &app.issuer,
        &browser,
        "/account/email",
        &[("csrf", &hidden(&page, "csrf")), ("email", "x@y.example")],
    )
    .await;
    assert_eq!(location(&res), "/signin?next=/account");
}

#[tokio::test]
async fn security_notices_go_out_unless_turned_off() {
    let m = mail_app_with(|_| {}).await;
    let app = &m.app;
    app.user("alice").await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    let mut device = Device::new(&app.issuer);
    add_passkey(&app.issuer, &browser, &mut device).await;
    let sent = mails(&m, 1).await;
    assert!(sent[0].1.contains("a passkey was added"), "{:?}", sent[0]);
    assert!(sent[0].2.contains("127.0.0.1"));
    // Off: the next passkey goes unannounced.
    let page = app.page(&browser, "/account").await;
    let res = post(
        &app.issuer,
        &browser,
        "/account/notices",
        &[("csrf", &hidden(&page, "csrf")), ("on", "no")],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=notices");
    add_passkey(&app.issuer, &browser, &mut Device::new(&app.issuer)).await;
    // On again: signing out everywhere is announced.
    let page = app.page(&browser, "/account").await;
    post(
        &app.issuer,
        &browser,
        "/account/notices",
        &[("csrf", &hidden(&page, "csrf")), ("on", "yes")],
    )
    .await;
    let page = app.page(&browser, "/account").await;
    post(
        &app.issuer,
        &browser,
        "/account/sessions/end-all",
        &[("csrf", &hidden(&page, "csrf"))],
    )
    .await;
    let sent = mails(&m, 2).await;
    assert!(sent[1].1.contains("signed out everywhere"), "{:?}", sent[1]);
}

/// Alice, passwordless with a passkey and a verified address.
async fn alice_recoverable(app: &TestApp) {
    let alice = app.user("alice").await;
    let mut u = alice.clone();
    u.email_verified = true;
    app.state
        .repos
        .users
        .update(&u, app.clock_now())
        .await
        .unwrap();
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    add_passkey(&app.issuer, &browser, &mut Device::new(&app.issuer)).await;
}

#[tokio::test]
async fn recovery_opens_after_its_cooling_off_and_lets_a_new_passkey_in() {
    let m = mail_app_with(|c| c.email.transport = "file".into()).await;
    let app = &m.app;
    alice_recoverable(app).await;
    let before = mails(&m, 1).await.len();
    let browser = http_client();
    let ask = async |email: &str| {
        let csrf = csrf_of(&app.issuer, &browser, "/signin/recover").await;
        let res = post(
            &app.issuer,
            &browser,
            "/signin/recover",
            &[("csrf", &csrf), ("email", email)],
        )
        .await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap().replace(&csrf, "CSRF")
    };
    // The same answer for an unknown address, and no mail for it.
    let unknown = ask("nobody@example.com").await;
    let known = ask("alice@example.com").await;
    assert_eq!(unknown, known);
    let sent = mails(&m, before + 1).await;
    let (to, subject, text) = sent.last().unwrap().clone();
    assert_eq!(
        (to.as_str(), subject.as_str()),
        ("alice@example.com", "Recover your account")
    );
    let link = link_in(&text, "/recover/");
    let cancel = link_in(&text[text.find("Cancel").unwrap()..], "/recover/");
    assert!(
        cancel.ends_with("/cancel") && !link.ends_with("/cancel"),
        "{text}"
    );
    // Not yet: the cooling-off period (24 h by default).
    let page = app.page(&browser, &link).await;
    assert!(page.contains("Not yet"), "{page}");
    let csrf = csrf_of(&app.issuer, &browser, &link).await;
    let early = post(
        &app.issuer,
        &browser,
        &format!("{link}/options"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(early.status(), 410);
    app.clock.advance(24 * 3600);
    let page = app.page(&browser, &link).await;
    assert!(page.contains("Create a new passkey"), "{page}");
    // (A day later the browser's session has ended: a fresh token.)
    let csrf = hidden(&page, "csrf");
    let o = options(
        &app.issuer,
        &browser,
        &format!("{link}/options"),
        &[("csrf", &csrf)],
    )
    .await;
    let credential = Device::new(&app.issuer).create(&o).to_string();
    let res = post(
        &app.issuer,
        &browser,
        &link,
        &[("csrf", &csrf), ("credential", &credential)],
    )
    .await;
    assert_eq!(redirected(&res), "/account?done=recovered");
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state
            .repos
            .passkeys
            .list_for_user(&alice.id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        app.page(&browser, "/")
            .await
            .contains("signed in as <strong>alice")
    );
    assert_eq!(
        browser.get(app.url(&link)).send().await.unwrap().status(),
        410,
        "single use"
    );
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    for event in ["recovery.request", "recovery.complete"] {
        assert!(audit.iter().any(|e| e.event == event), "{event}");
    }
}

#[tokio::test]
async fn a_recovery_can_be_cancelled_and_a_zero_delay_opens_at_once() {
    let m = mail_app_with(|c| c.auth.recovery_delay = 0).await;
    let app = &m.app;
    alice_recoverable(app).await;
    let browser = http_client();
    let csrf = csrf_of(&app.issuer, &browser, "/signin/recover").await;
    post(
        &app.issuer,
        &browser,
        "/signin/recover",
        &[("csrf", &csrf), ("email", "alice@example.com")],
    )
    .await;
    let sent = mails(&m, 2).await;
    let text = &sent[1].2;
    let link = link_in(text, "/recover/");
    assert!(
        app.page(&browser, &link)
            .await
            .contains("Create a new passkey"),
        "opens at once"
    );
    let cancel = format!("{link}/cancel");
    let res = press(app, &http_client(), &cancel).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Recovery cancelled"));
    assert_eq!(
        browser.get(app.url(&link)).send().await.unwrap().status(),
        410
    );
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "recovery.cancel"));
}
