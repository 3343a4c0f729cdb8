//! Invitation links: create → open → passkey → account, signed in, with the invitation's groups
//! and admin flag; the pages for expired, revoked, used-up and unknown links; single use under
//! concurrency; an abandoned ceremony creates nothing.

use crate::helpers::{TestApp, hidden, http_client};
use crate::webauthn::{Device, csrf_of, options, post, redeem, redirected};
use keyway::ops::{Actor, CreateInvitation, Operator};

async fn invite(app: &TestApp, f: impl FnOnce(&mut CreateInvitation)) -> (String, String) {
    let mut req = CreateInvitation {
        username: Some("carol".into()),
        email: Some("carol@example.com".into()),
        name: Some("Carol".into()),
        groups: vec!["staff".into(), "ops".into()],
        is_admin: true,
        expires_in: 3600,
        uses: 1,
        send: false,
    };
    f(&mut req);
    let s = &app.state;
    let ops = Operator::new(
        s.repos.clone(),
        s.clock.clone(),
        s.auth.hasher.clone(),
        Actor::Cli,
    );
    let (invitation, token) = ops.create_invitation(req).await.unwrap();
    (invitation.id, token)
}

#[tokio::test]
async fn an_invitation_creates_a_signed_in_account_with_its_groups_and_admin_flag() {
    let app = TestApp::spawn().await;
    let (id, token) = invite(&app, |_| {}).await;
    let browser = http_client();
    let page = app.page(&browser, &format!("/invite/{token}")).await;
    assert!(
        page.contains("Create your account") && page.contains("administrator"),
        "{page}"
    );
    assert!(page.contains(r#"value="carol""#) && page.contains("carol@example.com"));
    let mut device = Device::new(&app.issuer);
    let res = redeem(&app.issuer, &browser, &mut device, &token, "carol", "Carol").await;
    assert_eq!(redirected(&res), "/account?welcome=1");
    let carol = app
        .state
        .repos
        .users
        .by_username("carol")
        .await
        .unwrap()
        .unwrap();
    assert!(carol.is_admin);
    assert_eq!(carol.email.as_deref(), Some("carol@example.com"));
    assert_eq!(carol.name.as_deref(), Some("Carol"));
    let groups = app
        .state
        .repos
        .groups
        .names_for_user(&carol.id)
        .await
        .unwrap();
    assert_eq!(groups, ["ops", "staff"]);
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
    let account = app.page(&browser, "/account?welcome=1").await;
    assert!(account.contains("Add a second passkey"), "{account}");
    assert!(account.contains("carol"));
    let invitation = app.state.repos.invitations.get(&id).await.unwrap().unwrap();
    assert_eq!(invitation.used, 1);
    // And the passkey signs Carol in again elsewhere.
    let other = http_client();
    let res =
        crate::webauthn::passkey_sign_in(&app.issuer, &other, &mut device, "/signin", "button", "")
            .await;
    assert_eq!(redirected(&res), "/");
}

#[tokio::test]
async fn expired_revoked_used_up_and_unknown_links_say_so() {
    let app = TestApp::spawn().await;
    let browser = http_client();
    let check = async |token: &str, status: u16, words: &str| {
        let res = browser
            .get(app.url(&format!("/invite/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{words}");
        let page = res.text().await.unwrap();
        assert!(page.contains(words), "{words}: {page}");
    };
    let (_, expiring) = invite(&app, |i| i.expires_in = 60).await;
    let (revoked_id, revoked) = invite(&app, |i| i.username = None).await;
    let (_, once) = invite(&app, |i| i.username = None).await;
    let mut device = Device::new(&app.issuer);
    let res = redeem(&app.issuer, &http_client(), &mut device, &once, "dave", "").await;
    assert_eq!(redirected(&res), "/account?welcome=1");
    app.state
        .repos
        .invitations
        .revoke(&revoked_id, app.clock_now())
        .await
        .unwrap();
    app.clock.advance(61);
    check(&expiring, 410, "has expired").await;
    check(&revoked, 410, "was withdrawn").await;
    check(&once, 410, "has been used").await;
    check("no-such-token", 404, "not valid").await;
    // Nor can the form be posted to any of them.
    let csrf = csrf_of(&app.issuer, &browser, "/signin").await;
    let res = post(
        &app.issuer,
        &browser,
        &format!("/invite/{once}/options"),
        &[("csrf", &csrf), ("username", "erin")],
    )
    .await;
    assert_eq!(res.status(), 410);
    assert!(
        app.state
            .repos
            .users
            .by_username("erin")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn two_browsers_redeeming_a_single_use_invitation_at_once_make_one_account() {
    let app = TestApp::spawn().await;
    let (id, token) = invite(&app, |i| i.username = None).await;
    // Both get through the form and their authenticators before either finishes.
    let path = format!("/invite/{token}");
    let mut ready = Vec::new();
    for name in ["fay", "gus"] {
        let browser = http_client();
        let csrf = csrf_of(&app.issuer, &browser, &path).await;
        let form = [("csrf", csrf.as_str()), ("username", name), ("name", "")];
        let o = options(&app.issuer, &browser, &format!("{path}/options"), &form).await;
        let credential = Device::new(&app.issuer).create(&o).to_string();
        ready.push((browser, csrf, name, credential));
    }
    let finish = |(browser, csrf, name, credential): &(reqwest::Client, String, &str, String)| {
        let path = path.clone();
        let (browser, csrf, name, credential) = (
            browser.clone(),
            csrf.clone(),
            name.to_string(),
            credential.clone(),
        );
        let base = app.issuer.clone();
        async move {
            post(
                &base,
                &browser,
                &path,
                &[
                    ("csrf", &csrf),
                    ("username", &name),
                    ("name", ""),
                    ("credential", &credential),
                ],
            )
            .await
            .status()
            .as_u16()
        }
    };
    let (a, b) = tokio::join!(finish(&ready[0]), finish(&ready[1]));
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(statuses, [303, 410]);
    let users = app.state.repos.users.list().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(
        app.state
            .repos
            .invitations
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .used,
        1
    );
}

#[tokio::test]
async fn an_abandoned_or_failed_ceremony_creates_nothing_and_uses_nothing() {
    let app = TestApp::spawn().await;
    let (id, token) = invite(&app, |i| i.username = None).await;
    let browser = http_client();
    let path = format!("/invite/{token}");
    let csrf = csrf_of(&app.issuer, &browser, &path).await;
    // Options asked for, the authenticator never answers.
    let form = [("csrf", csrf.as_str()), ("username", "hal"), ("name", "")];
    options(&app.issuer, &browser, &format!("{path}/options"), &form).await;
    // A garbled answer.
    let res = post(
        &app.issuer,
        &browser,
        &path,
        &[("csrf", &csrf), ("username", "hal"), ("credential", "{}")],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(app.state.repos.users.list().await.unwrap().is_empty());
    assert_eq!(
        app.state
            .repos
            .invitations
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .used,
        0
    );
    // A taken username is refused before any passkey is made.
    app.user("ivy").await;
    let res = post(
        &app.issuer,
        &browser,
        &format!("{path}/options"),
        &[("csrf", &csrf), ("username", "ivy")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("taken"), "{body}");
    // The invitation still works.
    let res = redeem(
        &app.issuer,
        &browser,
        &mut Device::new(&app.issuer),
        &token,
        "hal",
        "",
    )
    .await;
    assert_eq!(redirected(&res), "/account?welcome=1");
}

#[tokio::test]
async fn an_invitation_for_an_email_already_in_use_says_so_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.user("carol").await; // carol@example.com
    let (id, token) = invite(&app, |i| i.username = None).await;
    let browser = http_client();
    let res = redeem(
        &app.issuer,
        &browser,
        &mut Device::new(&app.issuer),
        &token,
        "carol2",
        "",
    )
    .await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(page.contains("email address exists already"), "{page}");
    assert!(
        app.state
            .repos
            .users
            .by_username("carol2")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        app.state
            .repos
            .invitations
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .used,
        0
    );
}

#[tokio::test]
async fn an_invitation_sent_by_email_arrives_and_redeeming_it_verifies_the_address() {
    let mail_dir = tempfile::tempdir().unwrap();
    let dir = mail_dir.path().display().to_string();
    let app = TestApp::spawn_with(|c| {
        c.email.transport = "file".into();
        c.email.file_dir = Some(dir);
    })
    .await;
    let s = &app.state;
    let ops = Operator::new(
        s.repos.clone(),
        s.clock.clone(),
        s.auth.hasher.clone(),
        Actor::Cli,
    )
    .with_mail(s.mail.clone(), &app.issuer);
    let req = |send: bool, email: Option<&str>| CreateInvitation {
        username: None,
        email: email.map(str::to_owned),
        name: None,
        groups: vec![],
        is_admin: false,
        expires_in: 3600,
        uses: 1,
        send,
    };
    // Sending needs an address.
    let e = ops.create_invitation(req(true, None)).await.err().unwrap();
    assert!(e.to_string().contains("--email"), "{e}");
    ops.create_invitation(req(true, Some("erin@example.com")))
        .await
        .unwrap();
    let mails = crate::mail::mailbox(mail_dir.path()).await;
    let text = crate::mail::text_part(&mails[0]);
    assert!(mails[0].contains("To: erin@example.com"));
    assert!(text.contains("An administrator invites you"), "{text}");
    let at = text.find("/invite/").unwrap();
    let token = text[at + 8..].split_whitespace().next().unwrap().to_owned();
    let res = redeem(
        &app.issuer,
        &http_client(),
        &mut Device::new(&app.issuer),
        &token,
        "erin",
        "",
    )
    .await;
    assert_eq!(redirected(&res), "/account?welcome=1");
    let erin = app
        .state
        .repos
        .users
        .by_username("erin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erin.email.as_deref(), Some("erin@example.com"));
    assert!(erin.email_verified, "the link went to the address");
    // A printed link proves nothing about the address.
    let (_, token) = ops
        .create_invitation(req(false, Some("finn@example.com")))
        .await
        .unwrap();
    redeem(
        &app.issuer,
        &http_client(),
        &mut Device::new(&app.issuer),
        &token,
        "finn",
        "",
    )
    .await;
    let finn = app
        .state
        .repos
        .users
        .by_username("finn")
        .await
        .unwrap()
        .unwrap();
    assert!(!finn.email_verified);
}

/// From the admin UI's list: a new link for a pending invitation, shown once or emailed; the old
/// link stops working at once.
#[tokio::test]
async fn a_pending_invitation_gets_a_new_link_shown_or_emailed() {
    let m = crate::mail::mail_app_with(|_| {}).await;
    let app = &m.app;
    let admin = crate::admin::person(app, "ada", true).await;
    let page = crate::admin::admin_page(app, &admin, "/admin/invitations").await;
    let csrf = hidden(&page, "csrf");
    let res = admin
        .post(app.url("/admin/invitations"))
        .form(&[("csrf", csrf.as_str()), ("email", "eve@example.com")])
        .send()
        .await
        .unwrap();
    let first = crate::helpers::code_text(&res.text().await.unwrap(), "invitation-link");
    let id = app.state.repos.invitations.list().await.unwrap()[0]
        .id
        .clone();
    let res = admin
        .post(app.url(&format!("/admin/invitations/{id}/reissue")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let page = res.text().await.unwrap();
    let second = crate::helpers::code_text(&page, "invitation-link");
    assert_ne!(first, second);
    let path = |link: &str| link.strip_prefix(&app.issuer).unwrap().to_owned();
    let res = http_client()
        .get(app.url(&path(&first)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the old link stops working");
    let res = http_client()
        .get(app.url(&path(&second)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Emailed: the message carries the newest link, and redeeming it will prove the address.
    let res = admin
        .post(app.url(&format!("/admin/invitations/{id}/reissue")))
        .form(&[("csrf", csrf.as_str()), ("send", "yes")])
        .send()
        .await
        .unwrap();
    let page = res.text().await.unwrap();
    assert!(page.contains("on its way to eve@example.com"), "{page}");
    assert!(
        !page.contains("invitation-link"),
        "an emailed link is not shown: opening it proves the address"
    );
    let mail = crate::mail::mailbox(m.dir.path()).await;
    let text = crate::mail::text_part(mail.last().unwrap());
    let start = text.find(&format!("{}/invite/", app.issuer)).unwrap();
    let third: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert_ne!(third, second);
    let res = http_client()
        .get(app.url(&path(&second)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http_client()
        .get(app.url(&path(&third)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        app.state
            .repos
            .invitations
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .emailed
    );
    let audit = app.state.repos.audit.recent(30).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.event == "invitation.reissue")
            .count(),
        2
    );
}
