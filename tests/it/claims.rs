//! Claims as relying parties and the conformance suite expect them: scope claims in UserInfo and
//! not in the ID token (OIDC Core §5.4), the claims request parameter (§5.5), discovery.

use crate::helpers::{TestApp, hidden, http_client, location, query, urlencode};
use crate::rp::{Rp, SignedIn};
use keyway::domain::{Address, Profile};
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use serde_json::Value;

/// alice with a full profile, and a third-party client allowed every scope.
async fn setup() -> (TestApp, Rp) {
    let app = TestApp::spawn().await;
    let mut alice = app.user("alice").await;
    alice.profile = Profile {
        given_name: Some("Alice".into()),
        family_name: Some("Liddell".into()),
        nickname: Some("Al".into()),
        birthdate: Some("0000-05-04".into()),
        locale: Some("en-GB".into()),
        zoneinfo: Some("Europe/London".into()),
        picture: Some("https://example.com/alice.png".into()),
        phone_number: Some("+441234567890".into()),
        phone_number_verified: true,
        address: Some(Address {
            street_address: Some("1 Rabbit Hole".into()),
            locality: Some("Oxford".into()),
            country: Some("GB".into()),
            ..Address::default()
        }),
        ..Profile::default()
    };
    app.state
        .repos
        .users
        .update(&alice, app.clock_now())
        .await
        .unwrap();
    let info = app
        .client_with(|c| {
            c.first_party = false;
            c.scopes.push("phone".into());
            c.scopes.push("address".into());
        })
        .await;
    let rp = Rp::discover(&app, info).await;
    (app, rp)
}

/// The raw UserInfo document.
async fn userinfo(app: &TestApp, signed_in: &SignedIn) -> Value {
    userinfo_for(app, signed_in.tokens.access_token().secret()).await
}

async fn userinfo_for(app: &TestApp, access_token: &str) -> Value {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The ID token's payload as JSON (verified by `Rp::id_claims` in each test).
fn id_token_json(signed_in: &SignedIn) -> Value {
    use base64::Engine;
    let jwt = signed_in.tokens.id_token().unwrap().to_string();
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

const ID_TOKEN_PROTOCOL_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "amr",
    "acr",
    "sid",
];

#[tokio::test]
async fn scopes_release_their_claims_to_userinfo_and_nothing_extra_to_the_id_token() {
    let (app, rp) = setup().await;
    let browser = http_client();
    let profile = rp
        .sign_in(&app, &browser, "alice", &["profile", "email"], &[])
        .await;
    rp.id_claims(&profile);
    let id = id_token_json(&profile);
    for key in id.as_object().unwrap().keys() {
        assert!(
            ID_TOKEN_PROTOCOL_CLAIMS.contains(&key.as_str()),
            "{key} in the ID token: {id}"
        );
    }
    let info = userinfo(&app, &profile).await;
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["given_name"], "Alice");
    assert_eq!(info["family_name"], "Liddell");
    assert_eq!(info["birthdate"], "0000-05-04");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], false);
    assert!(info["updated_at"].is_i64());
    for absent in ["phone_number", "address", "groups", "middle_name"] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }
    // The library accepts the document (types of every claim as the spec defines them).
    let parsed = rp.userinfo(&profile).await;
    assert_eq!(parsed.nickname().unwrap().get(None).unwrap().as_str(), "Al");

    let phone = rp
        .sign_in(&app, &browser, "alice", &["phone", "address"], &[])
        .await;
    let info = userinfo(&app, &phone).await;
    assert_eq!(info["phone_number"], "+441234567890");
    assert_eq!(info["phone_number_verified"], true);
    assert_eq!(info["address"]["locality"], "Oxford");
    assert_eq!(info["address"]["country"], "GB");
    for absent in ["given_name", "email", "preferred_username"] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }
    let parsed = rp.userinfo(&phone).await;
    assert_eq!(
        parsed
            .address()
            .unwrap()
            .locality
            .as_ref()
            .unwrap()
            .as_str(),
        "Oxford"
    );
    assert_eq!(parsed.phone_number_verified(), Some(true));
}

#[tokio::test]
async fn the_claims_parameter_adds_single_claims_where_asked() {
    let (app, rp) = setup().await;
    let browser = http_client();
    let claims = r#"{"userinfo":{"given_name":{"essential":true},"locale":null},"id_token":{"email":null,"nickname":{"essential":true}}}"#;
    let signed_in = rp
        .sign_in(&app, &browser, "alice", &[], &[("claims", claims)])
        .await;
    rp.id_claims(&signed_in);
    let id = id_token_json(&signed_in);
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["nickname"], "Al");
    assert!(id.get("given_name").is_none(), "{id}");
    let info = userinfo(&app, &signed_in).await;
    assert_eq!(info["given_name"], "Alice");
    assert_eq!(info["locale"], "en-GB");
    for absent in ["family_name", "email", "nickname"] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }

    // A claim whose scope the client may not use is not released, even when asked for.
    let limited = app
        .client_with(|c| c.scopes = vec!["openid".into(), "profile".into()])
        .await;
    let limited = Rp::discover(&app, limited).await;
    let signed_in = limited
        .sign_in(
            &app,
            &browser,
            "alice",
            &[],
            &[(
                "claims",
                r#"{"userinfo":{"phone_number":null,"given_name":null}}"#,
            )],
        )
        .await;
    let info = userinfo(&app, &signed_in).await;
    assert_eq!(info["given_name"], "Alice");
    assert!(info.get("phone_number").is_none(), "{info}");
}

#[tokio::test]
async fn refreshed_access_tokens_keep_the_claims_request() {
    let (app, rp) = setup().await;
    let browser = http_client();
    let signed_in = rp
        .sign_in(
            &app,
            &browser,
            "alice",
            &["offline_access"],
            &[("claims", r#"{"userinfo":{"given_name":null}}"#)],
        )
        .await;
    let refreshed: Value = app
        .refresh(&rp.info, signed_in.tokens.refresh_token().unwrap().secret())
        .await
        .json()
        .await
        .unwrap();
    let info = userinfo_for(&app, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(info["given_name"], "Alice", "{info}");
}

#[tokio::test]
async fn a_malformed_claims_parameter_is_invalid_request() {
    let (app, rp) = setup().await;
    let browser = http_client();
    // Signed in first, so the error comes straight back to the client.
    rp.sign_in(&app, &browser, "alice", &[], &[]).await;
    let challenge = keyway::oidc::pkce::s256(&"v".repeat(50));
    for bad in ["{not json", r#"{"userinfo":["email"]}"#] {
        let res = browser
            .get(app.url(&format!(
                "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256&claims={}",
                rp.info.id,
                urlencode(&rp.info.redirect_uri),
                urlencode(bad)
            )))
            .send()
            .await
            .unwrap();
        let q = query(&location(&res));
        assert_eq!(q["error"], "invalid_request", "{bad}");
        assert_eq!(q["state"], "s");
    }
    let _ = hidden;
}

#[tokio::test]
async fn discovery_lists_the_claims_the_scopes_and_the_claims_parameter() {
    let app = TestApp::spawn().await;
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["claims_parameter_supported"], true);
    for scope in [
        "openid",
        "profile",
        "email",
        "phone",
        "address",
        "offline_access",
    ] {
        assert!(
            d["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == scope),
            "{scope}"
        );
    }
    for claim in [
        "given_name",
        "family_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "phone_number",
        "phone_number_verified",
        "address",
        "updated_at",
    ] {
        assert!(
            d["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == claim),
            "{claim}"
        );
    }
}

#[tokio::test]
async fn claims_asked_for_individually_need_the_same_consent_as_their_scope() {
    let (app, rp) = setup().await;
    let browser = http_client();
    let challenge = keyway::oidc::pkce::s256(&"v".repeat(50));
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256&claims={}",
        rp.info.id,
        urlencode(&rp.info.redirect_uri),
        urlencode(r#"{"id_token":{"email":null},"userinfo":{"phone_number":null}}"#)
    ));
    let res = browser.get(&url).send().await.unwrap();
    let resume = app.sign_in_at(&browser, &location(&res), "alice").await;
    let page = app.page(&browser, &resume).await;
    assert!(page.contains("See your email address"), "{page}");
    assert!(page.contains("See your phone number"), "{page}");
    assert!(!page.contains("postal address"), "{page}");

    // Consent to plain openid does not cover them.
    let plain = rp.sign_in(&app, &http_client(), "alice", &[], &[]).await;
    rp.id_claims(&plain);
    let again = browser.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 200, "still asks: consent page");
    let _ = hidden;
}
