//! The admin UI signs in through Keyway itself, as the relying party `keyway-admin`: the OIDC
//! flow end to end, the admin role from the ID token, 403 for others, sign-out through
//! end_session.

use crate::helpers::{TestApp, http_client, location};
use crate::webauthn::{Device, redeem, redirected};
use keyway::ops::{Actor, CreateInvitation, Operator};

/// A person made by invitation (admin or not), signed in to Keyway in the returned browser.
pub async fn person(app: &TestApp, username: &str, is_admin: bool) -> reqwest::Client {
    person_with_device(app, username, is_admin).await.0
}

/// The same, with the device that holds their passkey.
pub async fn person_with_device(
    app: &TestApp,
    username: &str,
    is_admin: bool,
) -> (reqwest::Client, Device) {
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
            is_admin,
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

/// Follows redirects from `path` (recording each hop) until a page answers; returns the final
/// response and the hops.
pub async fn follow(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
) -> (reqwest::Response, Vec<String>) {
    let mut url = app.url(path);
    let mut hops = Vec::new();
    for _ in 0..10 {
        let res = browser.get(&url).send().await.unwrap();
        if !res.status().is_redirection() {
            return (res, hops);
        }
        let loc = location(&res);
        hops.push(loc.clone());
        url = if loc.starts_with("http") {
            loc
        } else {
            app.url(&loc)
        };
    }
    panic!("too many redirects: {hops:?}");
}

#[tokio::test]
async fn an_administrator_signs_in_to_admin_through_the_oidc_flow() {
    let app = TestApp::spawn().await;
    let browser = person(&app, "ada", true).await;
    let (res, hops) = follow(&app, &browser, "/admin").await;
    assert_eq!(res.status(), 200, "{hops:?}");
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Dashboard") && page.contains("Sign out ada"),
        "{page}"
    );
    // The day's sign-ins by method: ada's sign-in at her invitation, by passkey.
    assert!(
        page.contains("Sign-ins: 1 by passkey. Failed attempts: 0."),
        "{page}"
    );
    // Through the protocol: login, the authorization endpoint (PKCE, the admin client), the callback.
    assert!(
        hops[0].starts_with("/admin/login?next=%2Fadmin"),
        "{hops:?}"
    );
    let authorize = &hops[1];
    assert!(
        authorize.starts_with(&format!("{}/authorize?", app.issuer)),
        "{hops:?}"
    );
    for part in [
        "client_id=keyway-admin",
        "code_challenge_method=S256",
        "nonce=",
        "state=",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    assert!(
        hops[2].starts_with(&format!("{}/admin/callback?code=", app.issuer)),
        "{hops:?}"
    );
    // Its own cookie, on /admin only.
    let res = browser.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let audit = app.state.repos.audit.recent(20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.event == "token" && e.client_id.as_deref() == Some("keyway-admin")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn anyone_else_is_sent_to_sign_in_or_refused() {
    let app = TestApp::spawn().await;
    // Anonymous: to sign in, by the admin login.
    let anonymous = http_client();
    let res = anonymous.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(location(&res), "/admin/login?next=%2Fadmin");
    let res = anonymous
        .post(app.url("/admin/logout"))
        .send()
        .await
        .unwrap();
    assert!(location(&res).starts_with("/admin/login"));
    // A signed-in non-administrator: 403.
    let browser = person(&app, "bob", false).await;
    let (res, hops) = follow(&app, &browser, "/admin").await;
    assert_eq!(res.status(), 403, "{hops:?}");
    assert!(res.text().await.unwrap().contains("Administrators only"));
    // A forged or foreign cookie counts for nothing.
    let res = http_client()
        .get(app.url("/admin"))
        .header("cookie", "keyway_admin=AAAA")
        .send()
        .await
        .unwrap();
    assert!(location(&res).starts_with("/admin/login"));
}

#[tokio::test]
async fn a_disabled_administrator_is_out_at_once() {
    let app = TestApp::spawn().await;
    let browser = person(&app, "ada", true).await;
    let (res, _) = follow(&app, &browser, "/admin").await;
    assert_eq!(res.status(), 200);
    let ada = app
        .state
        .repos
        .users
        .by_username("ada")
        .await
        .unwrap()
        .unwrap();
    // A second admin, so that the first may be disabled.
    person(&app, "eve", true).await;
    app.state
        .repos
        .users
        .set_disabled(&ada.id, true, app.clock_now())
        .await
        .unwrap();
    let res = browser.get(app.url("/admin")).send().await.unwrap();
    assert!(location(&res).starts_with("/admin/login"));
}

#[tokio::test]
async fn signing_out_goes_through_end_session_with_the_id_token() {
    let app = TestApp::spawn().await;
    let browser = person(&app, "ada", true).await;
    let (res, _) = follow(&app, &browser, "/admin").await;
    let page = res.text().await.unwrap();
    let csrf = crate::helpers::hidden(&page, "csrf");
    let res = browser
        .post(app.url("/admin/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let to = location(&res);
    assert!(to.starts_with("/logout?id_token_hint="), "{to}");
    assert!(
        to.contains("post_logout_redirect_uri=") && to.contains("admin%2Fsigned-out"),
        "{to}"
    );
    // The admin cookie is gone.
    let res = browser.get(app.url("/admin")).send().await.unwrap();
    assert!(location(&res).starts_with("/admin/login"));
}

#[tokio::test]
async fn the_admin_client_takes_no_sign_in_links() {
    let app = TestApp::spawn().await;
    let browser = http_client();
    let (res, hops) = follow(&app, &browser, "/admin").await;
    assert!(
        hops.iter().any(|h| h.starts_with("/signin?req=")),
        "{hops:?}"
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Sign in") && !page.contains("Email me a sign-in link"),
        "{page}"
    );
}

/// Signs `browser` in to /admin; returns the dashboard page.
pub async fn admin_page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let (res, hops) = follow(app, browser, path).await;
    assert_eq!(res.status(), 200, "{path}: {hops:?}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn an_administrator_manages_people_and_invitations() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
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
    // The list, and a search.
    let page = admin_page(&app, &admin, "/admin/users").await;
    assert!(
        page.contains("<strong>ada</strong>") && page.contains("<strong>bob</strong>"),
        "{page}"
    );
    let page = admin_page(&app, &admin, "/admin/users?q=BO").await;
    assert!(!page.contains("<strong>ada</strong>") && page.contains("<strong>bob</strong>"));
    // Bob's page, and disabling him: his refresh token fails at once, his session ends.
    let path = format!("/admin/users/{}", bob.id);
    let page = admin_page(&app, &admin, &path).await;
    assert!(
        page.contains("Sessions") && page.contains("Disable"),
        "{page}"
    );
    let csrf = crate::helpers::hidden(&page, "csrf");
    let res = admin
        .post(app.url(&format!("{path}/disable")))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), path);
    assert_eq!(app.refresh(&client, &refresh).await.status(), 400);
    let sessions = app
        .state
        .repos
        .sessions
        .list_for_user(&bob.id, app.clock_now())
        .await
        .unwrap();
    assert!(sessions.is_empty());
    let audit = app.state.repos.audit.recent(20).await.unwrap();
    let disabled = audit.iter().find(|e| e.event == "user.disable").unwrap();
    let ada = app
        .state
        .repos
        .users
        .by_username("ada")
        .await
        .unwrap()
        .unwrap();
    assert!(
        disabled.detail.as_deref().unwrap().contains(&ada.id),
        "{disabled:?}"
    );
    let res = admin
        .post(app.url(&format!("{path}/enable")))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), path);
    // The last administrator cannot be disabled.
    let res = admin
        .post(app.url(&format!("/admin/users/{}/disable", ada.id)))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("last active administrator")
    );
    // An invitation: made, its link shown once and working, then revoked.
    let res = admin
        .post(app.url("/admin/invitations"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "cleo@example.com"),
            ("groups", "staff, ops"),
            ("hours", "24"),
            ("uses", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    let marker = "id=\"invitation-link\">";
    let at = page.find(marker).unwrap() + marker.len();
    let link = page[at..].split('<').next().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/invite/", app.issuer)),
        "{link}"
    );
    assert_eq!(http_client().get(&link).send().await.unwrap().status(), 200);
    let invitation = app.state.repos.invitations.list().await.unwrap().remove(0);
    assert_eq!(invitation.groups, ["staff", "ops"]);
    let res = admin
        .post(app.url(&format!("/admin/invitations/{}/revoke", invitation.id)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/admin/invitations");
    assert_eq!(http_client().get(&link).send().await.unwrap().status(), 410);
    // The reserved group name is refused with words.
    let res = admin
        .post(app.url("/admin/invitations"))
        .form(&[("csrf", csrf.as_str()), ("groups", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("reserved"));
}

/// Every admin route, GET and POST: anonymous → sign in, signed-in non-admin → 403, an admin
/// without a valid CSRF token → 403, and ids seen by an admin are no use to anyone else.
#[tokio::test]
async fn the_admin_authorization_sweep() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let bob = person(&app, "bob", false).await;
    admin_page(&app, &admin, "/admin").await;
    let (res, _) = follow(&app, &bob, "/admin").await;
    assert_eq!(res.status(), 403);
    let bob_id = app
        .state
        .repos
        .users
        .by_username("bob")
        .await
        .unwrap()
        .unwrap()
        .id;
    let gets = [
        "/admin".to_owned(),
        "/admin/users".into(),
        "/admin/users/new".into(),
        format!("/admin/users/{bob_id}"),
        format!("/admin/users/{bob_id}/delete"),
        "/admin/invitations".into(),
        "/admin/audit".into(),
        "/admin/audit.csv".into(),
        "/admin/keys".into(),
        "/admin/groups".into(),
        "/admin/groups/some-id".into(),
        "/admin/apps".into(),
        "/admin/apps/new".into(),
        "/admin/apps/some-id".into(),
        "/admin/apps/some-id/edit".into(),
    ];
    let posts = [
        "/admin/logout".to_owned(),
        format!("/admin/users/{bob_id}/disable"),
        format!("/admin/users/{bob_id}/enable"),
        format!("/admin/users/{bob_id}/sessions/end"),
        format!("/admin/users/{bob_id}/passkeys/remove"),
        "/admin/users".into(),
        format!("/admin/users/{bob_id}/profile"),
        format!("/admin/users/{bob_id}/groups"),
        format!("/admin/users/{bob_id}/admin"),
        format!("/admin/users/{bob_id}/recovery"),
        format!("/admin/users/{bob_id}/delete"),
        "/admin/invitations".into(),
        "/admin/invitations/some-id/revoke".into(),
        "/admin/invitations/some-id/reissue".into(),
        "/admin/keys/rotate".into(),
        "/admin/groups".into(),
        "/admin/groups/some-id/rename".into(),
        "/admin/groups/some-id/delete".into(),
        "/admin/groups/some-id/members".into(),
        "/admin/groups/some-id/members/remove".into(),
        "/admin/apps".into(),
        "/admin/apps/some-id".into(),
        "/admin/apps/some-id/secret".into(),
        "/admin/apps/some-id/groups".into(),
        "/admin/apps/some-id/delete".into(),
    ];
    let anonymous = http_client();
    for path in &gets {
        let res = anonymous.get(app.url(path)).send().await.unwrap();
        assert!(location(&res).starts_with("/admin/login"), "GET {path}");
        assert_eq!(
            bob.get(app.url(path)).send().await.unwrap().status(),
            403,
            "GET {path}"
        );
    }
    for path in &posts {
        let res = anonymous
            .post(app.url(path))
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert!(location(&res).starts_with("/admin/login"), "POST {path}");
        let res = bob
            .post(app.url(path))
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "POST {path}");
        let res = admin
            .post(app.url(path))
            .form(&[("key", "x"), ("passkey", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "POST {path} without a CSRF token");
    }
    // Bob is still enabled: none of that did anything.
    let bob_now = app.state.repos.users.by_id(&bob_id).await.unwrap().unwrap();
    assert!(!bob_now.disabled);
    // Ids an admin page shows (Ada's passkey, her session) do nothing in Bob's hands on his own
    // account pages either: those act on the signed-in user's things only.
    let ada = app
        .state
        .repos
        .users
        .by_username("ada")
        .await
        .unwrap()
        .unwrap();
    let page = admin_page(&app, &admin, &format!("/admin/users/{}", ada.id)).await;
    let passkey = crate::helpers::hidden(&page, "passkey");
    let key = crate::helpers::hidden(&page, "key");
    let csrf = crate::helpers::hidden(&app.page(&bob, "/account").await, "csrf");
    for (path, form) in [
        (
            "/account/passkeys/rename",
            vec![("id", passkey.as_str()), ("name", "mine now")],
        ),
        ("/account/passkeys/remove", vec![("id", passkey.as_str())]),
        ("/account/sessions/end", vec![("key", key.as_str())]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let res = bob.post(app.url(path)).form(&form).send().await.unwrap();
        assert!(res.status() != 500, "{path}");
    }
    let passkeys = app
        .state
        .repos
        .passkeys
        .list_for_user(&ada.id)
        .await
        .unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_ne!(passkeys[0].name, "mine now");
    admin_page(&app, &admin, "/admin").await;
}

#[tokio::test]
async fn the_audit_log_filters_pages_and_exports_csv() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    app.user("bob").await;
    // Bob fails to sign in twice, with a formula in his user agent.
    for _ in 0..2 {
        let browser = http_client();
        let page = app.page(&browser, "/signin").await;
        browser
            .post(app.url("/signin"))
            .header("user-agent", "=HYPERLINK(\"x\")")
            .form(&[
                ("csrf", crate::helpers::hidden(&page, "csrf")),
                ("username", "bob".into()),
                ("password", "wrong one!".into()),
            ])
            .send()
            .await
            .unwrap();
    }
    let page = admin_page(&app, &admin, "/admin/audit?user=bob&outcome=failure").await;
    assert_eq!(page.matches("<strong>signin</strong>").count(), 2, "{page}");
    let page = admin_page(&app, &admin, "/admin/audit?event=passkey").await;
    assert!(
        page.contains("passkey.register") && !page.contains("<strong>signin</strong>"),
        "{page}"
    );
    let page = admin_page(&app, &admin, "/admin/audit?from=2000-01-01&to=2000-01-02").await;
    assert!(page.contains("No event matches"), "{page}");
    let res = admin
        .get(app.url("/admin/audit?user=nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // CSV: the filter's events, a header, formulas defused.
    let res = admin
        .get(app.url("/admin/audit.csv?user=bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,event,outcome,user,client,ip,user_agent,detail"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains(",signin,failure,bob,")
            && lines[1].contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "{csv}"
    );
    // Paging: older events behind a link.
    for i in 0..60 {
        app.state
            .repos
            .audit
            .record(&keyway::domain::AuditEvent {
                at: app.clock_now(),
                event: "test.filler".into(),
                user_id: None,
                client_id: None,
                ip: None,
                user_agent: None,
                outcome: "success".into(),
                detail: Some(format!("n{i}")),
            })
            .await
            .unwrap();
    }
    let page = admin_page(&app, &admin, "/admin/audit?event=test").await;
    assert_eq!(page.matches("test.filler").count(), 50);
    assert!(page.contains("Older events"));
    let at = page.find("href=\"/admin/audit?event=test").unwrap() + 6;
    let older = page[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let page = admin_page(&app, &admin, &older).await;
    assert_eq!(page.matches("test.filler").count(), 10);
    // Anyone else gets nothing.
    let res = http_client()
        .get(app.url("/admin/audit.csv"))
        .send()
        .await
        .unwrap();
    assert!(location(&res).starts_with("/admin/login"));
}

#[tokio::test]
async fn old_audit_events_are_purged_after_the_retention() {
    let app = TestApp::spawn_with(|c| c.audit.retention_days = 1).await;
    let repos = &app.state.repos;
    let event = |at| keyway::domain::AuditEvent {
        at,
        event: "test.old".into(),
        user_id: None,
        client_id: None,
        ip: None,
        user_agent: None,
        outcome: "success".into(),
        detail: None,
    };
    let now = app.clock_now();
    repos.audit.record(&event(now - 2 * 86400)).await.unwrap();
    repos.audit.record(&event(now)).await.unwrap();
    assert_eq!(repos.audit.purge_before(now - 86400).await.unwrap(), 1);
    let left = repos
        .audit
        .search(
            &keyway::store::AuditFilter {
                event: Some("test".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn keys_rotate_with_prepublication_after_a_fresh_sign_in() {
    let app = TestApp::spawn().await;
    let (admin, mut device) = person_with_device(&app, "ada", true).await;
    let page = admin_page(&app, &admin, "/admin/keys").await;
    assert_eq!(
        page.matches("<span class=\"tag\">current</span>").count(),
        3,
        "{page}"
    );
    let csrf = crate::helpers::hidden(&page, "csrf");
    let res = admin
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/admin/keys");
    let page = admin_page(&app, &admin, "/admin/keys").await;
    assert_eq!(
        page.matches("<span class=\"tag\">next</span>").count(),
        3,
        "{page}"
    );
    assert!(page.contains("starts signing"));
    // The new keys are in the JWKS at once, before they sign anything.
    let jwks: serde_json::Value = http_client()
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 6);
    // Later, rotating again needs a fresh sign-in: through Keyway with max_age=0, then back.
    app.clock.advance(301);
    let res = admin
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let login = location(&res);
    assert_eq!(login, "/admin/login?next=%2Fadmin%2Fkeys&fresh=1");
    let (_, hops) = follow(&app, &admin, &login).await;
    assert!(hops[0].contains("max_age=0"), "{hops:?}");
    let signin = hops.last().unwrap().clone();
    assert!(signin.starts_with("/signin?req="), "{hops:?}");
    let res =
        crate::webauthn::passkey_sign_in(&app.issuer, &admin, &mut device, &signin, "button", "")
            .await;
    let resume = redirected(&res);
    let (res, _) = follow(&app, &admin, &resume).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Signing keys"),
        "back on the keys page: {page}"
    );
    let csrf = crate::helpers::hidden(&page, "csrf");
    let res = admin
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/admin/keys");
}

#[tokio::test]
async fn groups_are_created_renamed_given_members_and_deleted() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let bob = app.user("bob").await;
    let page = admin_page(&app, &admin, "/admin/groups").await;
    let csrf = crate::helpers::hidden(&page, "csrf");
    let post = async |path: &str, form: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        admin.post(app.url(path)).form(&all).send().await.unwrap()
    };
    // The reserved name and an empty one are refused with words.
    for (name, words) in [("Admin", "reserved"), ("  ", "1 to 64")] {
        let res = post("/admin/groups", &[("name", name)]).await;
        assert_eq!(res.status(), 400, "{name}");
        assert!(res.text().await.unwrap().contains(words), "{name}");
    }
    let res = post("/admin/groups", &[("name", "staff")]).await;
    let group = location(&res);
    assert!(group.starts_with("/admin/groups/"), "{group}");
    let res = post("/admin/groups", &[("name", "staff")]).await;
    assert_eq!(res.status(), 400, "a taken name");
    // Members: bob in; the groups claim shows it; someone unknown is refused.
    assert_eq!(
        location(&post(&format!("{group}/members"), &[("username", "bob")]).await),
        group
    );
    let res = post(&format!("{group}/members"), &[("username", "nobody")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.state
            .repos
            .groups
            .names_for_user(&bob.id)
            .await
            .unwrap(),
        ["staff"]
    );
    let page = admin_page(&app, &admin, &group).await;
    assert!(page.contains("<strong>bob</strong>"), "{page}");
    // Renamed, member removed, deleted.
    assert_eq!(
        location(&post(&format!("{group}/rename"), &[("name", "crew")]).await),
        group
    );
    assert_eq!(
        app.state
            .repos
            .groups
            .names_for_user(&bob.id)
            .await
            .unwrap(),
        ["crew"]
    );
    assert_eq!(
        location(&post(&format!("{group}/members/remove"), &[("user", &bob.id)]).await),
        group
    );
    assert!(
        app.state
            .repos
            .groups
            .names_for_user(&bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        location(&post(&format!("{group}/delete"), &[]).await),
        "/admin/groups"
    );
    assert!(app.state.repos.groups.list().await.unwrap().is_empty());
    let audit = app.state.repos.audit.recent(30).await.unwrap();
    for event in [
        "group.create",
        "group.rename",
        "group.member_add",
        "group.member_remove",
        "group.delete",
    ] {
        assert!(audit.iter().any(|e| e.event == event), "{event}");
    }
}

#[tokio::test]
async fn an_application_restricted_to_a_group_refuses_everyone_else_with_access_denied() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let bob = app.user("bob").await;
    let client = app.client().await;
    let staff = app
        .state
        .repos
        .groups
        .create("staff", app.clock_now())
        .await
        .unwrap();
    let page = admin_page(&app, &admin, &format!("/admin/apps/{}", client.id)).await;
    assert!(
        page.contains("/.well-known/openid-configuration") && page.contains(&client.id),
        "{page}"
    );
    let csrf = crate::helpers::hidden(&page, "csrf");
    let res = admin
        .post(app.url(&format!("/admin/apps/{}/groups", client.id)))
        .form(&[("csrf", csrf.as_str()), ("group", staff.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("/admin/apps/{}", client.id));
    assert!(
        admin_page(&app, &admin, "/admin/apps")
            .await
            .contains("some groups only")
    );
    // Bob is in no allowed group: a page that says so, and a way back with access_denied.
    let browser = http_client();
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s1&code_challenge={}&code_challenge_method=S256",
        client.id,
        crate::helpers::urlencode(&client.redirect_uri),
        keyway::oidc::pkce::s256(&"v".repeat(50)),
    ));
    let res = browser.get(&url).send().await.unwrap();
    let resume = app.sign_in_at(&browser, &location(&res), "bob").await;
    let res = browser.get(app.url(&resume)).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Not for this account") && page.contains("error=access_denied"),
        "{page}"
    );
    assert!(page.contains("state=s1"), "{page}");
    // prompt=none: straight back with access_denied.
    let res = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    let back = location(&res);
    assert!(
        back.starts_with(&client.redirect_uri) && back.contains("error=access_denied"),
        "{back}"
    );
    // A member gets through.
    app.state
        .repos
        .groups
        .add_member(&staff, &bob.id)
        .await
        .unwrap();
    let res = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    assert!(location(&res).contains("code="), "{}", location(&res));
    // Deleting it (the admin UI's own client cannot be).
    for action in ["delete", "groups"] {
        let res = admin
            .post(app.url(&format!("/admin/apps/keyway-admin/{action}")))
            .form(&[("csrf", csrf.as_str()), ("group", staff.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{action} the admin UI's client");
    }
    let res = admin
        .post(app.url(&format!("/admin/apps/{}/delete", client.id)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/admin/apps");
    assert!(
        app.state
            .repos
            .clients
            .get(&client.id)
            .await
            .unwrap()
            .is_none()
    );
}
