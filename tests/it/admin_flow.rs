//! The admin flow end to end over HTTP, as an administrator runs Keyway for a team: signed in to
//! /admin through the OIDC flow with a passkey, they create an application, a group and an
//! invitation, restrict the application to the group, disable someone (whose refresh token
//! fails at once and whose session ends) and rotate the keys (the new key is in the JWKS before
//! it signs; ID tokens signed by the old one still verify).

use crate::admin::{admin_page, person_with_device};
use crate::helpers::{
    REDIRECT, TestApp, TestClient, code_text, hidden, http_client, kid, location, published_kids,
};
use crate::rp::Rp;
use crate::webauthn::{Device, redeem, redirected};
use openidconnect::{OAuth2TokenResponse, TokenResponse};

#[tokio::test]
async fn an_administrator_runs_keyway_for_a_team_from_the_browser() {
    let app = TestApp::spawn().await;
    // Ada's Keyway session began with a passkey; /admin signs her in through the OIDC flow.
    let (admin, _) = person_with_device(&app, "ada", true).await;
    let page = admin_page(&app, &admin, "/admin").await;
    assert!(page.contains("Dashboard"));
    let csrf = hidden(&page, "csrf");
    let post = async |path: &str, form: &[(&str, &str)]| {
        let mut form = form.to_vec();
        form.push(("csrf", &csrf));
        admin.post(app.url(path)).form(&form).send().await.unwrap()
    };

    // An application.
    let res = post(
        "/admin/apps",
        &[
            ("name", "Team wiki"),
            ("redirect_uris", REDIRECT),
            ("kind", "confidential"),
            ("grant", "authorization_code"),
            ("grant", "refresh_token"),
            ("scopes", "openid profile groups offline_access"),
            ("first_party", "yes"),
            ("id_token_alg", "RS256"),
        ],
    )
    .await;
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    let client = TestClient {
        id: code_text(&page, "client-id"),
        secret: Some(code_text(&page, "client-secret")),
        redirect_uri: REDIRECT.into(),
    };

    // A group, and an invitation into it, redeemed with a passkey.
    let res = post("/admin/groups", &[("name", "staff")]).await;
    assert!(res.status().is_redirection());
    let staff = app.state.repos.groups.list().await.unwrap()[0].id.clone();
    let res = post(
        "/admin/invitations",
        &[
            ("username", "cleo"),
            ("groups", "staff"),
            ("hours", "24"),
            ("uses", "1"),
        ],
    )
    .await;
    let link = code_text(&res.text().await.unwrap(), "invitation-link");
    let token = link.rsplit('/').next().unwrap();
    let mut device = Device::new(&app.issuer);
    let res = redeem(
        &app.issuer,
        &http_client(),
        &mut device,
        token,
        "cleo",
        "Cleo",
    )
    .await;
    assert_eq!(redirected(&res), "/account?welcome=1");
    let cleo = app
        .state
        .repos
        .users
        .by_username("cleo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state
            .repos
            .groups
            .names_for_user(&cleo.id)
            .await
            .unwrap(),
        ["staff"]
    );

    // Only staff may use the application; Bob joins it, Dan does not.
    let res = post(
        &format!("/admin/apps/{}/groups", client.id),
        &[("group", &staff)],
    )
    .await;
    assert!(res.status().is_redirection());
    let bob = app.user("bob").await;
    app.user("dan").await;
    let res = post(
        &format!("/admin/groups/{staff}/members"),
        &[("username", "bob")],
    )
    .await;
    assert!(res.status().is_redirection());
    let rp = Rp::discover(&app, client.clone()).await;
    let bobs = http_client();
    let signed_in = rp
        .sign_in(&app, &bobs, "bob", &["offline_access"], &[])
        .await;
    let claims = rp.id_claims(&signed_in);
    assert_eq!(claims.subject().as_str(), bob.id);
    let refresh = signed_in.tokens.refresh_token().unwrap().secret().clone();
    let old_id_token = signed_in.tokens.id_token().unwrap().to_string();
    let dans = http_client();
    let pending = rp.start(&[], &[]);
    let res = dans.get(&pending.url).send().await.unwrap();
    let resume = app.sign_in_at(&dans, &location(&res), "dan").await;
    let res = dans.get(app.url(&resume)).send().await.unwrap();
    assert_eq!(res.status(), 403, "not staff: refused with a page");

    // Disabling Bob: his refresh token fails at once and his session ends.
    let res = post(&format!("/admin/users/{}/disable", bob.id), &[]).await;
    assert!(res.status().is_redirection());
    let res = app.refresh(&client, &refresh).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let res = bobs.get(app.url("/account")).send().await.unwrap();
    assert!(location(&res).starts_with("/signin"), "signed out");

    // Rotating the keys: the new ones are published at once and sign only later.
    let old_kid = kid(&old_id_token);
    let res = post("/admin/keys/rotate", &[]).await;
    assert_eq!(location(&res), "/admin/keys");
    let published = published_kids(&app).await;
    assert_eq!(published.len(), 6);
    let now = app.clock_now();
    let new_kids: Vec<String> = app
        .state
        .repos
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state(now) == keyway::store::KeyState::Next)
        .map(|k| k.kid)
        .collect();
    assert_eq!(new_kids.len(), 3);
    assert!(
        new_kids.iter().all(|k| published.contains(k)),
        "published before signing"
    );
    let erin = app.user("erin").await;
    app.state
        .repos
        .groups
        .add_member(&staff, &erin.id)
        .await
        .unwrap();
    let fresh = rp.sign_in(&app, &http_client(), "erin", &[], &[]).await;
    assert_eq!(
        kid(&fresh.tokens.id_token().unwrap().to_string()),
        old_kid,
        "not signing yet"
    );
    app.clock.advance(app.state.config.keys.prepublish as i64);
    let later = rp.sign_in(&app, &http_client(), "erin", &[], &[]).await;
    let now_signing = kid(&later.tokens.id_token().unwrap().to_string());
    assert!(new_kids.contains(&now_signing), "{now_signing}");
    // The old key is still published, so the ID token it signed still verifies, checked by a
    // relying party that discovers the JWKS afresh.
    assert!(published_kids(&app).await.contains(&old_kid));
    let fresh_rp = Rp::discover(&app, client.clone()).await;
    let claims = fresh_rp.id_claims(&signed_in);
    assert_eq!(claims.subject().as_str(), bob.id);
}
