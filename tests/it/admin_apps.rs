//! Applications in the admin UI: created and edited with every setting, secrets rotated with an
//! overlap in which both work, the admin UI's own client left alone.

use crate::admin::{admin_page, person};
use crate::helpers::{TestApp, TestClient, code_text, hidden, http_client, location};

/// The new-application form as an admin fills it in: a confidential machine-and-browser client.
fn new_app_form(csrf: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("name", "Wiki".into()),
        ("logo_uri", "".into()),
        (
            "redirect_uris",
            "https://wiki.example.com/cb\r\nhttps://wiki.example.com/cb2".into(),
        ),
        ("post_logout_uris", "https://wiki.example.com/bye".into()),
        ("kind", "confidential".into()),
        ("grant", "authorization_code".into()),
        ("grant", "refresh_token".into()),
        ("grant", "client_credentials".into()),
        ("scopes", "openid profile email api".into()),
        ("allow_magic_link", "yes".into()),
        ("id_token_alg", "ES256".into()),
        ("access_token_ttl", "".into()),
        ("id_token_ttl", "".into()),
        ("refresh_token_ttl", "".into()),
    ]
}

async fn machine_token(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    let client = TestClient {
        id: id.to_owned(),
        secret: Some(secret.to_owned()),
        redirect_uri: String::new(),
    };
    app.token(
        &client,
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await
}

#[tokio::test]
async fn an_administrator_creates_and_edits_an_application() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let page = admin_page(&app, &admin, "/admin/apps/new").await;
    let csrf = hidden(&page, "csrf");
    // A refused form comes back with its words and what was typed; nothing is made.
    let mut bad = new_app_form(&csrf);
    bad[3].1 = "http://wiki.example.com/cb".into();
    let res = admin
        .post(app.url("/admin/apps"))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(page.contains("non-loopback host"), "{page}");
    assert!(page.contains("value=\"Wiki\""), "{page}");
    assert_eq!(app.state.repos.clients.list().await.unwrap().len(), 1);
    // Made: its secret is on the page this once, and works.
    let res = admin
        .post(app.url("/admin/apps"))
        .form(&new_app_form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    let (id, secret) = (
        code_text(&page, "client-id"),
        code_text(&page, "client-secret"),
    );
    assert_eq!(
        page.matches(&secret).count(),
        2,
        "in the notice and the snippet"
    );
    let res = machine_token(&app, &id, &secret).await;
    assert_eq!(res.status(), 200);
    let page = admin_page(&app, &admin, &format!("/admin/apps/{id}")).await;
    assert!(!page.contains(&secret), "the secret is shown only once");
    let client = app.state.repos.clients.get(&id).await.unwrap().unwrap();
    assert_eq!(client.redirect_uris.len(), 2);
    assert_eq!(client.id_token_alg.as_str(), "ES256");
    assert!(client.allow_magic_link && !client.first_party);
    // Edited: every setting the form shows, prefilled, then changed.
    let page = admin_page(&app, &admin, &format!("/admin/apps/{id}/edit")).await;
    assert!(page.contains("https://wiki.example.com/cb2"), "{page}");
    let mut form = new_app_form(&csrf);
    form[1].1 = "Team wiki".into();
    form[2].1 = "https://wiki.example.com/logo.png".into();
    form.retain(|(k, _)| *k != "allow_magic_link");
    form.push(("first_party", "yes".into()));
    form.push(("require_passkey", "yes".into()));
    for (k, v) in form.iter_mut() {
        match *k {
            "id_token_alg" => *v = "EdDSA".into(),
            "access_token_ttl" => *v = "10m".into(),
            "refresh_token_ttl" => *v = "7d".into(),
            _ => {}
        }
    }
    let res = admin
        .post(app.url(&format!("/admin/apps/{id}")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("/admin/apps/{id}"));
    let client = app.state.repos.clients.get(&id).await.unwrap().unwrap();
    assert_eq!(client.name, "Team wiki");
    assert_eq!(
        client.logo_uri.as_deref(),
        Some("https://wiki.example.com/logo.png")
    );
    assert!(client.first_party && client.require_passkey && !client.allow_magic_link);
    assert_eq!(client.id_token_alg.as_str(), "EdDSA");
    assert_eq!(client.lifetimes.access_token, Some(600));
    assert_eq!(client.lifetimes.refresh_token, Some(7 * 86_400));
    // The client's own lifetime is what its tokens get.
    let res = machine_token(&app, &id, &secret).await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 600, "{body}");
    // The logo is on the sign-in page of a request from it.
    let browser = http_client();
    let res = browser
        .get(app.url(&format!(
            "/authorize?client_id={id}&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fwiki.example.com%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        )))
        .send()
        .await
        .unwrap();
    let signin = location(&res);
    let page = app.page(&browser, &signin).await;
    assert!(
        page.contains("src=\"https://wiki.example.com/logo.png\""),
        "{page}"
    );
    // Made public: its secret goes; made confidential again: a new one, shown once.
    form.retain(|(k, v)| *k != "kind" && !(*k == "grant" && v == "client_credentials"));
    form.push(("kind", "public".into()));
    let res = admin
        .post(app.url(&format!("/admin/apps/{id}")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection());
    assert_eq!(machine_token(&app, &id, &secret).await.status(), 401);
    form.retain(|(k, _)| *k != "kind");
    form.push(("kind", "confidential".into()));
    let res = admin
        .post(app.url(&format!("/admin/apps/{id}")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert_ne!(code_text(&page, "client-secret"), secret);
    // The admin UI's own application is not changed from here.
    let res = admin
        .post(app.url("/admin/apps/keyway-admin"))
        .form(&new_app_form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("cannot be changed"));
    let page = admin_page(&app, &admin, "/admin/apps/keyway-admin").await;
    assert!(!page.contains("Edit settings"));
}

#[tokio::test]
async fn a_rotated_secret_overlaps_the_old_one_then_replaces_it() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let client = app.client().await;
    let old = client.secret.clone().unwrap();
    let path = format!("/admin/apps/{}", client.id);
    let page = admin_page(&app, &admin, &path).await;
    let csrf = hidden(&page, "csrf");
    let res = admin
        .post(app.url(&format!("{path}/secret")))
        .form(&[("csrf", csrf.as_str()), ("overlap", "1h")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let new = code_text(&page, "client-secret");
    assert_ne!(new, old);
    assert!(
        page.contains("The previous secret keeps working until"),
        "{page}"
    );
    // Both work during the overlap...
    assert_eq!(machine_token(&app, &client.id, &old).await.status(), 200);
    assert_eq!(machine_token(&app, &client.id, &new).await.status(), 200);
    // ...then only the new one.
    app.clock.advance(3601);
    let res = machine_token(&app, &client.id, &old).await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(machine_token(&app, &client.id, &new).await.status(), 200);
    // No overlap: the old secret stops at once. (Straight through the operator: the admin's
    // session has expired with the clock.)
    let ops = keyway::ops::Operator::new(
        app.state.repos.clone(),
        app.state.clock.clone(),
        app.state.auth.hasher.clone(),
        keyway::ops::Actor::Cli,
    );
    let (_, newest) = ops.rotate_client_secret(&client.id, 0).await.unwrap();
    assert_eq!(machine_token(&app, &client.id, &new).await.status(), 401);
    assert_eq!(machine_token(&app, &client.id, &newest).await.status(), 200);
    // A public client has no secret to rotate; an overlap past 30 days is refused.
    assert!(
        ops.rotate_client_secret(&client.id, 31 * 86_400)
            .await
            .is_err()
    );
    let events = app.state.repos.audit.recent(50).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == "client.secret_rotate")
            .count(),
        2
    );
}
