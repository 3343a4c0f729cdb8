//! Token endpoint, UserInfo, revocation and introspection: the negative cases, by raw request.

use crate::helpers::{TestApp, http_client};
use serde_json::Value;

async fn json(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

async fn userinfo_status(app: &TestApp, access: &str) -> u16 {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn code_exchange_returns_no_store_tokens() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let res = app.exchange(&client, &code, &verifier).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = json(res).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["id_token"].is_string() && body["refresh_token"].is_string());
}

#[tokio::test]
async fn code_reuse_is_refused_and_revokes_the_first_tokens() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let first = json(app.token(&client, &form).await).await;
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access).await, 200);

    let res = app.token(&client, &form).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(&app, access).await,
        401,
        "access token from the first use is revoked"
    );
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        json(res).await["error"],
        "invalid_grant",
        "refresh token from the first use is revoked"
    );
    let audit = app.state.repos.audit.recent(10).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "code_replay"));
}

#[tokio::test]
async fn pkce_wrong_missing_and_downgrade_are_refused() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = http_client();

    let (code, _) = app.code_for(&browser, &client, "alice", "").await;
    let wrong = "w".repeat(50);
    let res = app.exchange(&client, &code, &wrong).await;
    assert_eq!(json(res).await["error"], "invalid_grant", "wrong verifier");

    let (code, _) = app.code_for(&browser, &client, "alice", "").await;
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await;
    assert_eq!(
        json(res).await["error"],
        "invalid_grant",
        "missing verifier"
    );

    // Downgrade: no challenge at authorization, a verifier at the token endpoint.
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
        client.id,
        crate::helpers::urlencode(&client.redirect_uri)
    ));
    let back = app.authorize_as(&browser, &url, "alice", true).await;
    let code = crate::helpers::query(&back)["code"].clone();
    let verifier = "v".repeat(43);
    let res = app.exchange(&client, &code, &verifier).await;
    assert_eq!(
        json(res).await["error"],
        "invalid_grant",
        "verifier without challenge"
    );
}

#[tokio::test]
async fn refresh_replay_revokes_the_whole_grant() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let first = json(app.exchange(&client, &code, &verifier).await).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let second = json(
        app.token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await,
    )
    .await;
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    let a2 = second["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(userinfo_status(&app, &a2).await, 200);

    // Past the reuse grace, the rotated token is a replay.
    app.clock
        .advance(app.state.config.refresh.reuse_grace as i64 + 1);
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await;
    assert_eq!(json(res).await["error"], "invalid_grant", "replay refused");
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
        )
        .await;
    assert_eq!(
        json(res).await["error"],
        "invalid_grant",
        "the newest refresh token died with the grant"
    );
    assert_eq!(
        userinfo_status(&app, &a2).await,
        401,
        "access tokens of the grant are revoked"
    );
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "refresh_replay"));
}

#[tokio::test]
async fn bad_client_secret_is_invalid_client_with_basic_challenge() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(json(res).await["error"], "invalid_client");
    // client_secret_post with a wrong secret: 401 too.
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.id),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn expired_code_is_refused() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    app.clock.advance(61);
    let res = app.exchange(&client, &code, &verifier).await;
    let body = json(res).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

/// Codes are sealed, not stored: anything the server did not seal itself is refused, and
/// failed attempts leave the real code usable.
#[tokio::test]
async fn an_altered_or_foreign_code_is_refused() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    // The same client id and user on another server, whose key sealed this one.
    let other = TestApp::spawn().await;
    other.user("alice").await;
    let other_client = other.client().await;
    let (foreign, _) = other
        .code_for(&http_client(), &other_client, "alice", "")
        .await;
    let mut altered = code.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in [
        altered.as_str(),
        &code[..code.len() - 4],
        foreign.as_str(),
        "not-a-code",
    ] {
        let res = app.exchange(&client, bad, &verifier).await;
        assert_eq!(res.status(), 400);
        let body = json(res).await;
        assert_eq!(body["error"], "invalid_grant", "{bad}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("invalid")
        );
    }
    let res = app.exchange(&client, &code, &verifier).await;
    assert_eq!(res.status(), 200, "the real code still works");
}

#[tokio::test]
async fn a_code_cannot_be_redeemed_by_another_client() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let res = app
        .token(
            &other,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(json(res).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let other_uri = "http://127.0.0.1:9/other";
    let client = app
        .client_with(|c| c.redirect_uris.push(other_uri.into()))
        .await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    // Another URI registered for the same client is still not the one the code was issued to.
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let body = json(res).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri"),
        "{body}"
    );
    let res = app.exchange(&client, &code, &verifier).await;
    assert_eq!(
        res.status(),
        200,
        "refused before use: the code still works"
    );
}

#[tokio::test]
async fn a_disabled_user_cannot_refresh() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let first = json(app.exchange(&client, &code, &verifier).await).await;
    let now = app.clock_now();
    app.state
        .repos
        .users
        .set_disabled(&alice.id, true, now)
        .await
        .unwrap();
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(&app, first["access_token"].as_str().unwrap()).await,
        401
    );
}

#[tokio::test]
async fn client_credentials_and_unauthorized_grants() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let res = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "api")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["scope"], "api");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let res = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await;
    assert_eq!(json(res).await["error"], "invalid_scope");

    let limited = app
        .client_with(|c| c.grant_types = vec![keyway::domain::GrantType::AuthorizationCode])
        .await;
    let res = app
        .token(&limited, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(json(res).await["error"], "unauthorized_client");
    let res = app.token(&limited, &[("grant_type", "password")]).await;
    assert_eq!(json(res).await["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn userinfo_without_a_valid_token_is_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"keyway\"");
    let res = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    // Expired tokens too.
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let body = json(app.exchange(&client, &code, &verifier).await).await;
    let access = body["access_token"].as_str().unwrap();
    let res = app
        .http
        .post(app.url("/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "token in the form body");
    app.clock
        .advance(app.state.config.lifetimes.access_token as i64 + 1);
    assert_eq!(userinfo_status(&app, access).await, 401);
}

#[tokio::test]
async fn introspection_and_revocation_are_per_client() {
    let app = TestApp::spawn().await;
    let a = app.client().await;
    let b = app.client().await;
    let token =
        json(app.token(&a, &[("grant_type", "client_credentials")]).await).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
    let introspect = |c: &crate::helpers::TestClient, t: &str| {
        app.http
            .post(app.url("/introspect"))
            .basic_auth(&c.id, c.secret.as_ref())
            .form(&[("token", t.to_string())])
            .send()
    };
    let body = json(introspect(&a, &token).await.unwrap()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], a.id);
    assert_eq!(
        json(introspect(&b, &token).await.unwrap()).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        json(introspect(&a, "unknown").await.unwrap()).await,
        serde_json::json!({"active": false})
    );

    // Another client's revocation does nothing; the owner's works; unknown tokens are 200.
    let revoke = |c: &crate::helpers::TestClient, t: &str| {
        app.http
            .post(app.url("/revoke"))
            .basic_auth(&c.id, c.secret.as_ref())
            .form(&[("token", t.to_string())])
            .send()
    };
    assert_eq!(revoke(&b, &token).await.unwrap().status(), 200);
    assert_eq!(
        json(introspect(&a, &token).await.unwrap()).await["active"],
        true
    );
    assert_eq!(revoke(&a, &token).await.unwrap().status(), 200);
    assert_eq!(
        json(introspect(&a, &token).await.unwrap()).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(revoke(&a, "never-issued").await.unwrap().status(), 200);

    // Both require client authentication.
    let res = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn another_clients_refresh_token_is_refused_and_left_usable() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let first = json(app.exchange(&client, &code, &verifier).await).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let res = app
        .token(
            &other,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "the owner's token was not consumed by the foreign attempt"
    );
}

#[tokio::test]
async fn refresh_tokens_need_offline_access_unless_the_client_always_gets_them() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let browser = http_client();
    for (always, expect_refresh) in [(false, false), (true, true)] {
        let client = app.client_with(|c| c.refresh_always = always).await;
        let url = app.url(&format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
            client.id,
            crate::helpers::urlencode(&client.redirect_uri)
        ));
        let back = app.authorize_as(&browser, &url, "alice", true).await;
        let code = crate::helpers::query(&back)["code"].clone();
        let body = json(
            app.token(
                &client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &client.redirect_uri),
                ],
            )
            .await,
        )
        .await;
        assert!(body["access_token"].is_string());
        assert_eq!(
            body["refresh_token"].is_string(),
            expect_refresh,
            "always={always}"
        );
    }
}

/// The first refresh token of a fresh sign-in, with its client.
async fn refresh_token(app: &TestApp) -> (crate::helpers::TestClient, String) {
    app.user("alice").await;
    let client = app.client().await;
    let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
    let first = json(app.exchange(&client, &code, &verifier).await).await;
    (client, first["refresh_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_refused_refresh_uses_nothing_up() {
    let app = TestApp::spawn().await;
    let (client, r1) = refresh_token(&app).await;
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("scope", "openid profile email offline_access api"),
            ],
        )
        .await;
    assert_eq!(json(res).await["error"], "invalid_scope");
    // Later than any grace: the retry works because nothing was consumed.
    app.clock.advance(3600);
    let res = app.refresh(&client, &r1).await;
    assert_eq!(res.status(), 200);
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    assert!(!audit.iter().any(|e| e.event == "refresh_replay"));
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_all_succeed_within_the_grace() {
    let app = TestApp::spawn().await;
    let (client, r1) = refresh_token(&app).await;
    // Eight identical refreshes in flight at once (tabs, retries).
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (app.http.clone(), app.url("/token"));
            let (id, secret, r1) = (client.id.clone(), client.secret.clone(), r1.clone());
            tokio::spawn(async move {
                http.post(url)
                    .basic_auth(id, secret)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &r1)])
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut pairs = Vec::new();
    for task in tasks {
        let res = task.await.unwrap();
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        pairs.push((
            body["access_token"].as_str().unwrap().to_string(),
            body["refresh_token"].as_str().unwrap().to_string(),
        ));
    }
    // Every pair works: no loser revoked the winner.
    for (access, _) in &pairs {
        assert_eq!(userinfo_status(&app, access).await, 200);
    }
    // Once a successor has been used, the old token is a replay again, even within the grace:
    // the grant goes, with every pair.
    let res = app.refresh(&client, &pairs[0].1).await;
    assert_eq!(res.status(), 200);
    let res = app.refresh(&client, &r1).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    for (access, _) in &pairs {
        assert_eq!(userinfo_status(&app, access).await, 401);
    }
}

#[tokio::test]
async fn a_rotated_token_presented_after_the_grace_revokes_the_grant() {
    let app = TestApp::spawn().await;
    let (client, r1) = refresh_token(&app).await;
    let second = json(app.refresh(&client, &r1).await).await;
    let a2 = second["access_token"].as_str().unwrap().to_string();
    app.clock
        .advance(app.state.config.refresh.reuse_grace as i64 + 1);
    let res = app.refresh(&client, &r1).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    assert_eq!(userinfo_status(&app, &a2).await, 401);
}

#[tokio::test]
async fn two_branches_of_one_family_in_use_revoke_the_grant() {
    let app = TestApp::spawn().await;
    let (client, r1) = refresh_token(&app).await;
    // Two answers for one token within the grace (a thief and the client, say)...
    let a = json(app.refresh(&client, &r1).await).await;
    let b = json(app.refresh(&client, &r1).await).await;
    let (ra, rb) = (
        a["refresh_token"].as_str().unwrap(),
        b["refresh_token"].as_str().unwrap(),
    );
    // ...an honest client keeps using one of them;
    let next = json(app.refresh(&client, ra).await).await;
    assert!(next["access_token"].is_string(), "{next}");
    // using the other one too means the family forked: the grant goes.
    let res = app.refresh(&client, rb).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
    let res = app
        .refresh(&client, next["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        json(res).await["error"],
        "invalid_grant",
        "the other branch died too"
    );
    let audit = app.state.repos.audit.recent(50).await.unwrap();
    assert!(audit.iter().any(|e| e.event == "refresh_replay"));
}

#[tokio::test]
async fn a_zero_grace_turns_the_reuse_window_off() {
    let app = TestApp::spawn_with(|c| c.refresh.reuse_grace = 0).await;
    let (client, r1) = refresh_token(&app).await;
    assert_eq!(app.refresh(&client, &r1).await.status(), 200);
    // The same second: still a replay.
    let res = app.refresh(&client, &r1).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
}
