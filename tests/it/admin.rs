//! The admin UI signs in through Keyway itself, as the relying party `keyway-admin`: the OIDC
//! flow end to end, the admin role from the ID token, 403 for others, sign-out through
//! end_session.

use crate::helpers::{TestApp, http_client, location};
use crate::webauthn::{Device, redeem, redirected};
use keyway::ops::{Actor, CreateInvitation, Operator};

/// A person made by invitation (admin or not), signed in to Keyway in the returned browser.
async fn person(app: &TestApp, username: &str, is_admin: bool) -> reqwest::Client {
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
    let res = redeem(
        &app.issuer,
        &browser,
        &mut Device::new(&app.issuer),
        &token,
        username,
        "",
    )
    .await;
    assert_eq!(redirected(&res), "/account?welcome=1");
    browser
}

/// Follows redirects from `path` (recording each hop) until a page answers; returns the final
/// response and the hops.
async fn follow(
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
