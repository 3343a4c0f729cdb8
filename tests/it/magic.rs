//! Sign-in by emailed link, through the file transport: the same answer for any address, the
//! link bound to the browser that asked (a button there; a code or a confirmed "sign in here"
//! elsewhere), single use under concurrency, expiry, five wrong codes, rate limits, the amr a
//! relying party sees, and a client that refuses sign-in links.

use crate::helpers::{TestApp, hidden, http_client, location};
use crate::mail::{MailApp, mail_app_with, mailbox, text_part};
use crate::rp::Rp;
use crate::webauthn::{csrf_of, post};
use keyway::config::RawConfig;

type MagicApp = MailApp;

async fn magic_app_with(tweak: impl FnOnce(&mut RawConfig)) -> MagicApp {
    let m = mail_app_with(tweak).await;
    m.app.user("alice").await; // alice@example.com
    m
}

async fn magic_app() -> MagicApp {
    magic_app_with(|_| {}).await
}

/// Asks for a link in `browser` (from the sign-in page at `signin`); the answer page.
async fn ask(
    app: &TestApp,
    browser: &reqwest::Client,
    signin: &str,
    email: &str,
) -> reqwest::Response {
    let page = app.page(browser, signin).await;
    let (csrf, req) = (hidden(&page, "csrf"), hidden(&page, "req"));
    post(
        &app.issuer,
        browser,
        "/signin/email",
        &[("csrf", &csrf), ("req", &req), ("email", email)],
    )
    .await
}

/// The sign-in link in the newest message, as a path.
async fn newest_link(m: &MagicApp, count: usize) -> String {
    let mut mails = mailbox(m.dir.path()).await;
    for _ in 0..100 {
        if mails.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        mails = mailbox(m.dir.path()).await;
    }
    assert_eq!(mails.len(), count, "messages");
    let text = text_part(mails.last().unwrap());
    let start = text
        .find("/signin/email/")
        .unwrap_or_else(|| panic!("no link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

async fn signed_in_as(app: &TestApp, browser: &reqwest::Client) -> Option<String> {
    let home = app.page(browser, "/").await;
    let at = home.find("signed in as <strong>")?;
    Some(home[at + 21..].split('<').next().unwrap().to_owned())
}

/// Opens the link's page and presses its button (with `confirm` for the other-browser form).
async fn press(
    app: &TestApp,
    browser: &reqwest::Client,
    link: &str,
    confirm: bool,
) -> reqwest::Response {
    let csrf = csrf_of(&app.issuer, browser, link).await;
    let mut form = vec![("csrf", csrf.as_str())];
    if confirm {
        form.push(("confirm", "yes"));
    }
    post(&app.issuer, browser, link, &form).await
}

#[tokio::test]
async fn a_link_opened_in_the_browser_that_asked_signs_in_after_a_button() {
    let m = magic_app().await;
    let app = &m.app;
    let browser = http_client();
    let res = ask(app, &browser, "/signin", "Alice@Example.com").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("keyway_magic="))
    );
    let link = newest_link(&m, 1).await;
    let mail = text_part(&mailbox(m.dir.path()).await[0]);
    assert!(
        mail.contains("127.0.0.1") && mail.contains("Not you?"),
        "{mail}"
    );
    // Opening it (as a mail scanner would) signs nobody in and uses nothing.
    for _ in 0..2 {
        let page = app.page(&browser, &link).await;
        assert!(page.contains("Sign in as alice"), "{page}");
    }
    assert_eq!(signed_in_as(app, &browser).await, None);
    let res = press(app, &browser, &link, false).await;
    assert_eq!(location(&res), "/");
    assert_eq!(signed_in_as(app, &browser).await.as_deref(), Some("alice"));
    // The address is verified now; the link is used up.
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(alice.email_verified);
    let again = http_client().get(app.url(&link)).send().await.unwrap();
    assert_eq!(again.status(), 410);
}

#[tokio::test]
async fn the_answer_is_the_same_for_any_address() {
    let m = magic_app().await;
    let app = &m.app;
    app.state
        .repos
        .users
        .create(
            &keyway::domain::NewUser {
                username: "off".into(),
                email: Some("off@example.com".into()),
                name: None,
                is_admin: false,
            },
            app.clock_now(),
        )
        .await
        .unwrap();
    let off = app
        .state
        .repos
        .users
        .by_username("off")
        .await
        .unwrap()
        .unwrap();
    app.state
        .repos
        .users
        .set_disabled(&off.id, true, app.clock_now())
        .await
        .unwrap();
    let mut pages = Vec::new();
    for email in ["alice@example.com", "nobody@example.com", "off@example.com"] {
        let browser = http_client();
        let res = ask(app, &browser, "/signin", email).await;
        assert_eq!(res.status(), 200, "{email}");
        let page = res.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        pages.push(page.replace(&csrf, "CSRF").replace(email, "EMAIL"));
    }
    assert_eq!(pages[0], pages[1]);
    assert_eq!(pages[0], pages[2]);
    // Only the active account got mail.
    assert_eq!(mailbox(m.dir.path()).await.len(), 1);
}

#[tokio::test]
async fn two_clicks_at_once_give_one_session() {
    let m = magic_app().await;
    let app = &m.app;
    let browser = http_client();
    ask(app, &browser, "/signin", "alice@example.com").await;
    let link = newest_link(&m, 1).await;
    let csrf = csrf_of(&app.issuer, &browser, &link).await;
    let form = [("csrf", csrf.as_str())];
    let (a, b) = tokio::join!(
        post(&app.issuer, &browser, &link, &form),
        post(&app.issuer, &browser, &link, &form)
    );
    // One signs in. The other finds the link used (410) or, when the first has already moved
    // the browser to a new session id, a form from the old session (403): never a second session.
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses[0], 303, "{statuses:?}");
    assert!(matches!(statuses[1], 403 | 410), "{statuses:?}");
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let sessions = app
        .state
        .repos
        .sessions
        .list_for_user(&alice.id, app.clock_now())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
}

#[tokio::test]
async fn an_expired_link_signs_nobody_in() {
    let m = magic_app().await;
    let app = &m.app;
    let browser = http_client();
    ask(app, &browser, "/signin", "alice@example.com").await;
    let link = newest_link(&m, 1).await;
    let csrf = csrf_of(&app.issuer, &browser, &link).await;
    app.clock.advance(901);
    let page = browser.get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("no longer works"));
    let res = post(&app.issuer, &browser, &link, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 410);
    assert_eq!(signed_in_as(app, &browser).await, None);
}

#[tokio::test]
async fn another_browser_gets_a_code_for_the_one_that_asked_and_never_a_silent_session() {
    let m = magic_app().await;
    let app = &m.app;
    let laptop = http_client();
    let sent = ask(app, &laptop, "/signin", "alice@example.com")
        .await
        .text()
        .await
        .unwrap();
    assert!(sent.contains("6-digit code"), "{sent}");
    let link = newest_link(&m, 1).await;
    let phone = http_client();
    // Pressing the button there without confirming the request signs nobody in.
    let res = press(app, &phone, &link, false).await;
    assert_eq!(res.status(), 410);
    assert_eq!(signed_in_as(app, &phone).await, None);
    // The page there shows a code (a fresh one each time it is shown).
    let page = app.page(&phone, &link).await;
    assert!(
        page.contains("Enter this code where you asked") && page.contains("127.0.0.1"),
        "{page}"
    );
    let code: String = page
        .split("class=\"code\"")
        .nth(1)
        .unwrap()
        .split('>')
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 6);
    // The code, typed into the laptop, signs the laptop in.
    let csrf = hidden(&sent, "csrf");
    let res = post(
        &app.issuer,
        &laptop,
        "/signin/email/code",
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(location(&res), "/");
    assert_eq!(signed_in_as(app, &laptop).await.as_deref(), Some("alice"));
    assert_eq!(signed_in_as(app, &phone).await, None);
    // Single use.
    let other = http_client();
    let res = post(
        &app.issuer,
        &laptop,
        "/signin/email/code",
        &[
            ("csrf", &csrf_of(&app.issuer, &laptop, "/signin").await),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    drop(other);
}

#[tokio::test]
async fn signing_in_on_the_other_device_needs_the_confirmation() {
    let m = magic_app().await;
    let app = &m.app;
    ask(app, &http_client(), "/signin", "alice@example.com").await;
    let link = newest_link(&m, 1).await;
    let phone = http_client();
    let res = press(app, &phone, &link, true).await;
    assert_eq!(location(&res), "/");
    assert_eq!(signed_in_as(app, &phone).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn five_wrong_codes_kill_the_link() {
    let m = magic_app().await;
    let app = &m.app;
    let laptop = http_client();
    let sent = ask(app, &laptop, "/signin", "alice@example.com")
        .await
        .text()
        .await
        .unwrap();
    let link = newest_link(&m, 1).await;
    let page = app.page(&http_client(), &link).await;
    let code: String = page
        .split("class=\"code\"")
        .nth(1)
        .unwrap()
        .split('>')
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let csrf = hidden(&sent, "csrf");
    for _ in 0..5 {
        let res = post(
            &app.issuer,
            &laptop,
            "/signin/email/code",
            &[("csrf", &csrf), ("code", wrong)],
        )
        .await;
        assert_eq!(res.status(), 401);
    }
    let res = post(
        &app.issuer,
        &laptop,
        "/signin/email/code",
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(res.status(), 401, "the right code after five wrong ones");
    assert_eq!(signed_in_as(app, &laptop).await, None);
    assert!(
        app.page(&http_client(), &link)
            .await
            .contains("no longer works")
    );
}

#[tokio::test]
async fn links_are_limited_per_address_and_per_ip_with_the_same_page() {
    let m = magic_app_with(|c| {
        c.auth.magic_links_per_address = 2;
        c.auth.magic_links_per_ip = 4;
    })
    .await;
    let app = &m.app;
    for _ in 0..3 {
        let res = ask(app, &http_client(), "/signin", "alice@example.com").await;
        assert_eq!(res.status(), 200);
    }
    newest_link(&m, 2).await;
    // Two more from the same IP to other addresses: the fifth request is over the IP's limit.
    ask(app, &http_client(), "/signin", "x@example.com").await;
    let res = ask(app, &http_client(), "/signin", "y@example.com").await;
    assert_eq!(res.status(), 200);
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    let limited: Vec<_> = audit
        .iter()
        .filter(|e| e.event == "magic_link.request" && e.outcome == "limited")
        .map(|e| e.detail.clone().unwrap())
        .collect();
    assert_eq!(limited.len(), 2, "{limited:?}");
    assert!(limited.iter().any(|d| d.contains("email address")));
    assert!(limited.iter().any(|d| d.contains("from this address")));
    // The limit lifts with its window.
    app.clock.advance(3601);
    ask(app, &http_client(), "/signin", "alice@example.com").await;
    newest_link(&m, 3).await;
}

#[tokio::test]
async fn a_relying_party_sees_amr_email_and_a_client_can_refuse_links() {
    let m = magic_app().await;
    let app = &m.app;
    let rp = Rp::discover(app, app.client_with(|c| c.first_party = true).await).await;
    let browser = http_client();
    let pending = rp.start(&[], &[]);
    let signin = location(&browser.get(&pending.url).send().await.unwrap());
    assert!(
        app.page(&browser, &signin)
            .await
            .contains("Email me a sign-in link")
    );
    ask(app, &browser, &signin, "alice@example.com").await;
    let link = newest_link(&m, 1).await;
    let mail = text_part(&mailbox(m.dir.path()).await[0]);
    assert!(
        mail.contains("Test App"),
        "the message names the application: {mail}"
    );
    let resume = location(&press(app, &browser, &link, false).await);
    assert!(resume.starts_with("/authorize/resume"), "{resume}");
    let back = location(&browser.get(app.url(&resume)).send().await.unwrap());
    let signed_in = rp.finish(app, pending, &back).await;
    let claims = rp.id_claims(&signed_in);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(amr, ["email"]);
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "1");
    // An application that refuses links: no email form, and this session must sign in again.
    let strict = Rp::discover(
        app,
        app.client_with(|c| {
            c.first_party = true;
            c.allow_magic_link = false;
        })
        .await,
    )
    .await;
    let pending = strict.start(&[], &[]);
    let res = browser.get(&pending.url).send().await.unwrap();
    let signin = location(&res);
    assert!(signin.starts_with("/signin?req="), "{signin}");
    let page = app.page(&browser, &signin).await;
    assert!(!page.contains("Email me a sign-in link"), "{page}");
    let refused = ask(app, &browser, &signin, "alice@example.com").await;
    assert_eq!(refused.status(), 400);
    // A password sign-in is accepted there.
    let back = app.sign_in_at(&browser, &signin, "alice").await;
    let back = location(&browser.get(app.url(&back)).send().await.unwrap());
    strict.finish(app, pending, &back).await;
}
