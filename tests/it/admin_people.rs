//! People in the admin UI: an account created, given a sign-in link (shown or emailed) with which
//! its owner registers a passkey; profile and groups edited; the admin flag; deletion after a
//! confirmation; and never without an administrator.

use crate::admin::{admin_page, person};
use crate::helpers::{TestApp, code_text, hidden, http_client, location};
use crate::mail::{mail_app_with, mailbox, text_part};
use crate::webauthn::{Device, csrf_of, options, post, redirected};

async fn form_post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(app.url(path)).form(form).send().await.unwrap()
}

/// Registers a passkey through a recovery link in a fresh browser; the final response.
async fn use_link(app: &TestApp, link: &str) -> (reqwest::Client, reqwest::Response) {
    let path = link.strip_prefix(&app.issuer).unwrap().to_owned();
    let browser = http_client();
    let csrf = csrf_of(&app.issuer, &browser, &path).await;
    let o = options(
        &app.issuer,
        &browser,
        &format!("{path}/options"),
        &[("csrf", &csrf)],
    )
    .await;
    let credential = Device::new(&app.issuer).create(&o).to_string();
    let res = post(
        &app.issuer,
        &browser,
        &path,
        &[("csrf", &csrf), ("credential", &credential)],
    )
    .await;
    (browser, res)
}

#[tokio::test]
async fn an_account_is_created_and_its_owner_gets_in_with_a_link() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let page = admin_page(&app, &admin, "/admin/users/new").await;
    let csrf = hidden(&page, "csrf");
    // A bad username comes back with the reason and the fields as typed.
    let res = form_post(
        &app,
        &admin,
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("username", "no spaces"),
            ("email", "c@example.com"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(page.contains("value=\"c@example.com\""), "{page}");
    let res = form_post(
        &app,
        &admin,
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("username", "carol"),
            ("full_name", "Carol C"),
            ("email", "carol@example.com"),
        ],
    )
    .await;
    let path = location(&res);
    assert!(path.ends_with("?created=1"), "{path}");
    let page = admin_page(&app, &admin, &path).await;
    assert!(page.contains("no way to sign in yet"), "{page}");
    let carol = app
        .state
        .repos
        .users
        .by_username("carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.name.as_deref(), Some("Carol C"));
    // The link, shown once; it lets Carol register a passkey and signs her in, once.
    let user_path = format!("/admin/users/{}", carol.id);
    let res = form_post(
        &app,
        &admin,
        &format!("{user_path}/recovery"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let link = code_text(&res.text().await.unwrap(), "recovery-link");
    assert!(
        link.starts_with(&format!("{}/recover/", app.issuer)),
        "{link}"
    );
    let (carols, res) = use_link(&app, &link).await;
    assert_eq!(redirected(&res), "/account?done=recovered");
    let account = app.page(&carols, "/account").await;
    assert!(account.contains("carol"), "{account}");
    assert_eq!(
        app.state
            .repos
            .passkeys
            .list_for_user(&carol.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let page = app
        .page(&http_client(), link.strip_prefix(&app.issuer).unwrap())
        .await;
    assert!(!page.contains("Create a new passkey"), "single use: {page}");
    let audit = app.state.repos.audit.recent(30).await.unwrap();
    let made = audit
        .iter()
        .find(|e| e.event == "user.recovery_link")
        .unwrap();
    assert_eq!(made.user_id.as_deref(), Some(carol.id.as_str()));
    assert!(made.detail.as_deref().unwrap().starts_with("by admin "));
}

#[tokio::test]
async fn a_sign_in_link_can_be_emailed() {
    let m = mail_app_with(|_| {}).await;
    let app = &m.app;
    let admin = person(app, "ada", true).await;
    let dan = app.user("dan").await;
    let path = format!("/admin/users/{}", dan.id);
    let page = admin_page(app, &admin, &path).await;
    let csrf = hidden(&page, "csrf");
    // Without an address: refused, with the reason.
    let res = form_post(
        app,
        &admin,
        &format!("{path}/profile"),
        &[("csrf", &csrf), ("full_name", ""), ("email", "")],
    )
    .await;
    assert_eq!(location(&res), path);
    let res = form_post(
        app,
        &admin,
        &format!("{path}/recovery"),
        &[("csrf", &csrf), ("send", "yes")],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("no email address"));
    let res = form_post(
        app,
        &admin,
        &format!("{path}/profile"),
        &[
            ("csrf", &csrf),
            ("full_name", "Dan D"),
            ("email", "dan@example.com"),
        ],
    )
    .await;
    assert_eq!(location(&res), path);
    let res = form_post(
        app,
        &admin,
        &format!("{path}/recovery"),
        &[("csrf", &csrf), ("send", "yes")],
    )
    .await;
    let page = res.text().await.unwrap();
    assert!(page.contains("on its way"), "{page}");
    assert!(!page.contains("recovery-link"));
    let mail = mailbox(m.dir.path()).await;
    let text = text_part(mail.last().unwrap());
    assert!(text.contains("dan"), "{text}");
    let start = text.find(&format!("{}/recover/", app.issuer)).unwrap();
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let (_, res) = use_link(app, &link).await;
    assert_eq!(redirected(&res), "/account?done=recovered");
}

#[tokio::test]
async fn profile_groups_admin_flag_and_deletion() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let ada = app
        .state
        .repos
        .users
        .by_username("ada")
        .await
        .unwrap()
        .unwrap();
    let bob = app.user("bob").await;
    let client = app.client().await;
    let bobs = http_client();
    let (code, verifier) = app.code_for(&bobs, &client, "bob", "").await;
    let tokens: serde_json::Value = app
        .exchange(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let ops = keyway::ops::Operator::new(
        app.state.repos.clone(),
        app.state.clock.clone(),
        app.state.auth.hasher.clone(),
        keyway::ops::Actor::Cli,
    );
    let staff = ops.create_group("staff").await.unwrap();
    let path = format!("/admin/users/{}", bob.id);
    let page = admin_page(&app, &admin, &path).await;
    let csrf = hidden(&page, "csrf");
    // Groups: exactly the ticked ones.
    let res = form_post(
        &app,
        &admin,
        &format!("{path}/groups"),
        &[("csrf", &csrf), ("group", &staff)],
    )
    .await;
    assert_eq!(location(&res), path);
    assert_eq!(
        app.state
            .repos
            .groups
            .names_for_user(&bob.id)
            .await
            .unwrap(),
        ["staff"]
    );
    let res = form_post(&app, &admin, &format!("{path}/groups"), &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), path);
    assert!(
        app.state
            .repos
            .groups
            .names_for_user(&bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    // The last administrator can be neither demoted nor deleted nor disabled.
    let ada_path = format!("/admin/users/{}", ada.id);
    let res = form_post(
        &app,
        &admin,
        &format!("{ada_path}/admin"),
        &[("csrf", &csrf), ("admin", "no")],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("last active administrator")
    );
    let res = form_post(
        &app,
        &admin,
        &format!("{ada_path}/delete"),
        &[("csrf", &csrf), ("confirm", "ada")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let res = form_post(
        &app,
        &admin,
        &format!("{ada_path}/disable"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(
        app.state
            .repos
            .users
            .by_id(&ada.id)
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
    // Bob made an administrator; then Ada may step down.
    let res = form_post(
        &app,
        &admin,
        &format!("{path}/admin"),
        &[("csrf", &csrf), ("admin", "yes")],
    )
    .await;
    assert_eq!(location(&res), path);
    assert!(
        app.state
            .repos
            .users
            .by_id(&bob.id)
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
    assert!(ops.set_admin("bob", false).await.is_ok());
    assert!(ops.set_admin("bob", true).await.is_ok());
    // Deleting Bob: a confirmation page, the username typed, then gone with his tokens.
    let page = admin_page(&app, &admin, &format!("{path}/delete")).await;
    assert!(page.contains("Type <strong>bob</strong>"), "{page}");
    let res = form_post(
        &app,
        &admin,
        &format!("{path}/delete"),
        &[("csrf", &csrf), ("confirm", "bo")],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(
        app.state
            .repos
            .users
            .by_id(&bob.id)
            .await
            .unwrap()
            .is_some()
    );
    let res = form_post(
        &app,
        &admin,
        &format!("{path}/delete"),
        &[("csrf", &csrf), ("confirm", "bob")],
    )
    .await;
    assert_eq!(location(&res), "/admin/users");
    assert!(
        app.state
            .repos
            .users
            .by_id(&bob.id)
            .await
            .unwrap()
            .is_none()
    );
    let res = app.refresh(&client, &refresh).await;
    assert_eq!(res.status(), 400);
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    for event in ["user.groups", "user.admin_grant", "user.delete"] {
        assert!(audit.iter().any(|e| e.event == event), "{event}");
    }
    // Later, deleting someone needs a fresh sign-in first.
    let carol = app.user("carol").await;
    app.clock.advance(301);
    let res = form_post(
        &app,
        &admin,
        &format!("/admin/users/{}/delete", carol.id),
        &[("csrf", &csrf), ("confirm", "carol")],
    )
    .await;
    assert!(
        location(&res).starts_with("/admin/login?"),
        "{}",
        location(&res)
    );
    assert!(
        app.state
            .repos
            .users
            .by_id(&carol.id)
            .await
            .unwrap()
            .is_some()
    );
    // So does a sign-in link into an administrator's account (not into anyone else's).
    let res = form_post(
        &app,
        &admin,
        &format!("{ada_path}/recovery"),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        location(&res).starts_with("/admin/login?"),
        "{}",
        location(&res)
    );
    let res = form_post(
        &app,
        &admin,
        &format!("/admin/users/{}/recovery", carol.id),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    let links: Vec<_> = audit
        .iter()
        .filter(|e| e.event == "user.recovery_link")
        .collect();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].user_id.as_deref(), Some(carol.id.as_str()));
}
