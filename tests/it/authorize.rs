//! The authorization endpoint: redirect URI rules, error routing, PKCE, prompt, max_age, consent,
//! response modes and parameter handling.

use crate::helpers::{REDIRECT, TestApp, http_client, location, query, urlencode};

fn auth_url(app: &TestApp, client_id: &str, redirect: &str, extra: &str) -> String {
    let challenge = keyway::oidc::pkce::s256(&"v".repeat(50));
    app.url(&format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=xyz&code_challenge={challenge}&code_challenge_method=S256{extra}",
        urlencode(redirect)
    ))
}

#[tokio::test]
async fn unregistered_and_look_alike_redirect_uris_get_an_error_page_not_a_redirect() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    for bad in [
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/CB",
        "http://127.0.0.1:9/cb?x=1",
        "http://127.0.0.1:9/cb#frag",
        "http://127.0.0.1:9/c%62",
        "http://127.0.0.1:9/cbx",
        "http://127.0.0.1.evil.example/cb",
        "https://evil.example/cb",
    ] {
        let res = app
            .http
            .get(auth_url(&app, &client.id, bad, ""))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(
            res.headers().get("location").is_none(),
            "{bad} must not redirect"
        );
        assert!(res.text().await.unwrap().contains("redirect_uri"), "{bad}");
    }
    // Missing redirect_uri and unknown client: a page too.
    let res = app
        .http
        .get(app.url(&format!(
            "/authorize?response_type=code&client_id={}&scope=openid",
            client.id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    let res = app
        .http
        .get(auth_url(&app, "no-such-client", REDIRECT, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn loopback_redirect_uris_may_change_port_only() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .http
        .get(auth_url(&app, &client.id, "http://127.0.0.1:55555/cb", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(location(&res).starts_with("/signin"));
}

#[tokio::test]
async fn other_errors_go_back_to_the_client_with_state_and_iss() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .http
        .get(app.url(&format!(
            "/authorize?response_type=token&client_id={}&redirect_uri={}&scope=openid&state=a%20b%2Bc",
            client.id,
            urlencode(REDIRECT)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert!(loc.starts_with(REDIRECT));
    let q = query(&loc);
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["state"], "a b+c", "state passed through unchanged");
    assert_eq!(q["iss"], app.issuer);
    assert!(
        q["error_description"]
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
    );
}

#[tokio::test]
async fn pkce_is_s256_only_and_required_for_public_clients() {
    let app = TestApp::spawn().await;
    let public = app
        .client_with(|c| {
            c.public = true;
            c.grant_types = vec![keyway::domain::GrantType::AuthorizationCode];
        })
        .await;
    let no_pkce = app.url(&format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
        public.id,
        urlencode(REDIRECT)
    ));
    let res = app.http.get(&no_pkce).send().await.unwrap();
    assert_eq!(query(&location(&res))["error"], "invalid_request");
    let plain = format!(
        "{no_pkce}&code_challenge={}&code_challenge_method=plain",
        "a".repeat(43)
    );
    let res = app.http.get(&plain).send().await.unwrap();
    assert_eq!(query(&location(&res))["error"], "invalid_request");
    let missing_method = format!("{no_pkce}&code_challenge={}", "a".repeat(43));
    let res = app.http.get(&missing_method).send().await.unwrap();
    assert_eq!(
        query(&location(&res))["error"],
        "invalid_request",
        "the default method is plain, which we refuse"
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .http
        .get(auth_url(&app, &client.id, REDIRECT, "&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let q = query(&location(&res));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "xyz");
}

#[tokio::test]
async fn max_age_zero_and_prompt_login_force_a_new_sign_in() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = http_client();
    app.code_for(&browser, &client, "alice", "").await;
    // Signed in: a plain request goes straight back with a code.
    let res = browser
        .get(auth_url(&app, &client.id, REDIRECT, ""))
        .send()
        .await
        .unwrap();
    assert!(query(&location(&res)).contains_key("code"));
    for extra in ["&max_age=0", "&prompt=login"] {
        let res = browser
            .get(auth_url(&app, &client.id, REDIRECT, extra))
            .send()
            .await
            .unwrap();
        assert!(
            location(&res).starts_with("/signin"),
            "{extra} must ask for sign-in"
        );
    }
    // max_age larger than the session's age does not.
    let res = browser
        .get(auth_url(&app, &client.id, REDIRECT, "&max_age=3600"))
        .send()
        .await
        .unwrap();
    assert!(query(&location(&res)).contains_key("code"));
    // After signing in again for max_age=0, the code comes back and auth_time is fresh.
    app.clock.advance(100);
    let back = app
        .authorize_as(
            &browser,
            &auth_url(&app, &client.id, REDIRECT, "&max_age=0"),
            "alice",
            false,
        )
        .await;
    let code = query(&back).get("code").cloned().expect("a code");
    let res = app.exchange(&client, &code, &"v".repeat(50)).await;
    assert_eq!(res.status(), 200);
    let tokens: serde_json::Value = res.json().await.unwrap();
    let claims = id_token_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        claims["auth_time"],
        app.clock_now(),
        "auth_time is the new sign-in"
    );
}

/// The payload of a JWT (its signature is checked by the relying-party tests).
fn id_token_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn consent_is_asked_remembered_and_can_be_denied() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client_with(|c| c.first_party = false).await;
    let browser = http_client();
    // Deny: access_denied goes back to the client.
    let res = browser
        .get(auth_url(&app, &client.id, REDIRECT, ""))
        .send()
        .await
        .unwrap();
    let resume = app.sign_in_at(&browser, &location(&res), "alice").await;
    let res = browser.get(app.url(&resume)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Test App"), "consent page names the client");
    let res = browser
        .post(app.url("/authorize/consent"))
        .form(&[
            ("csrf", crate::helpers::hidden(&page, "csrf")),
            ("req", crate::helpers::hidden(&page, "req")),
            ("decision", "deny".into()),
        ])
        .send()
        .await
        .unwrap();
    let q = query(&location(&res));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz");

    // Allow once; the same scopes later skip the page; prompt=consent asks again.
    let back = app
        .authorize_as(
            &browser,
            &auth_url(&app, &client.id, REDIRECT, ""),
            "alice",
            true,
        )
        .await;
    assert!(query(&back).contains_key("code"));
    let res = browser
        .get(auth_url(&app, &client.id, REDIRECT, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(
        query(&location(&res)).contains_key("code"),
        "consent remembered"
    );
    let res = browser
        .get(auth_url(&app, &client.id, REDIRECT, "&prompt=consent"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "prompt=consent shows the page again");
    // A wider scope set needs consent again; prompt=none then answers consent_required.
    let res = browser
        .get(
            auth_url(&app, &client.id, REDIRECT, "&prompt=none")
                .replace("scope=openid", "scope=openid%20email"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&res))["error"], "consent_required");
}

#[tokio::test]
async fn form_post_answers_with_an_auto_submitting_form() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = http_client();
    app.code_for(&browser, &client, "alice", "").await;
    let res = browser
        .get(auth_url(
            &app,
            &client.id,
            REDIRECT,
            "&response_mode=form_post",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"http://127.0.0.1:9/cb\""), "{html}");
    assert!(html.contains("name=\"code\""));
    assert!(html.contains("name=\"state\" value=\"xyz\""));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce in the CSP");
    assert!(nonce.len() >= 16, "{csp}");
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "the auto-submit script carries the CSP nonce: {html}"
    );
}

#[tokio::test]
async fn repeated_parameters_and_oversized_state_are_invalid_requests() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .http
        .get(auth_url(&app, &client.id, REDIRECT, "&scope=openid"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&res))["error"], "invalid_request");
    let long = "s".repeat(5000);
    let res = app
        .http
        .get(
            auth_url(&app, &client.id, REDIRECT, "").replace("state=xyz", &format!("state={long}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&res))["error"], "invalid_request");
    // Unknown parameters are ignored.
    let res = app
        .http
        .get(auth_url(&app, &client.id, REDIRECT, "&foo=bar"))
        .send()
        .await
        .unwrap();
    assert!(location(&res).starts_with("/signin"));
}

#[tokio::test]
async fn login_hint_prefills_the_username() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .http
        .get(auth_url(
            &app,
            &client.id,
            REDIRECT,
            "&login_hint=bob%40example.com",
        ))
        .send()
        .await
        .unwrap();
    let page = app
        .http
        .get(app.url(&location(&res)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"bob@example.com\""), "{page}");
}

#[tokio::test]
async fn the_authorization_endpoint_accepts_post() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let url = auth_url(&app, &client.id, REDIRECT, "&prompt=none");
    let (base, q) = url.split_once('?').unwrap();
    let res = app
        .http
        .post(base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(q.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&res))["error"], "login_required");
}

#[tokio::test]
async fn id_token_hint_for_another_user_asks_for_sign_in() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    app.user("bob").await;
    let client = app.client().await;
    let browser = http_client();
    // Get an ID token for bob, then sign the browser in as alice.
    let (code, verifier) = app.code_for(&http_client(), &client, "bob", "").await;
    let body: serde_json::Value = app
        .exchange(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let bob_hint = body["id_token"].as_str().unwrap().to_string();
    app.code_for(&browser, &client, "alice", "").await;
    let res = browser
        .get(auth_url(
            &app,
            &client.id,
            REDIRECT,
            &format!("&prompt=none&id_token_hint={bob_hint}"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(&location(&res))["error"],
        "login_required",
        "the session is not bob's"
    );
    let res = browser
        .get(auth_url(
            &app,
            &client.id,
            REDIRECT,
            &format!("&id_token_hint={bob_hint}"),
        ))
        .send()
        .await
        .unwrap();
    assert!(location(&res).starts_with("/signin"));
    let res = browser
        .get(auth_url(
            &app,
            &client.id,
            REDIRECT,
            "&id_token_hint=not.a.token",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&res))["error"], "invalid_request");
}
