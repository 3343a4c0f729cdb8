//! Discovery, RFC 8414 metadata, JWKS, key rotation, health endpoints and security headers.

use crate::helpers::{TestApp, http_client, kid, published_kids};
use serde_json::Value;

#[tokio::test]
async fn discovery_documents_describe_the_endpoints() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], app.issuer);
        assert_eq!(doc["token_endpoint"], app.url("/token"));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    }
}

#[tokio::test]
async fn jwks_publishes_one_key_per_algorithm_and_keeps_rotated_keys() {
    let app = TestApp::spawn().await;
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    assert!(
        keys.iter()
            .all(|k| k["kid"].is_string() && k.get("d").is_none()),
        "public keys only"
    );

    let now = app.clock_now();
    let sealing =
        keyway::oidc::keys::sealing_key(None, std::path::Path::new(&app.state.config.data_dir))
            .unwrap();
    keyway::oidc::keys::rotate(app.state.repos.keys.as_ref(), &sealing, now, 0)
        .await
        .unwrap();
    app.state.keys().reload(now).await.unwrap();
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        6,
        "old keys stay until their tokens expire"
    );

    // Once every ID token signed by the old keys has expired, they leave the JWKS.
    app.clock
        .advance(app.state.config.lifetimes.id_token as i64 + 1);
    app.state.keys().reload(app.clock_now()).await.unwrap();
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_request_id() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/signin")).send().await.unwrap();
    let h = res.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over http"
    );
    assert!(h.contains_key("x-request-id"));
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(res.status(), 404);
    assert!(
        res.text().await.unwrap().contains(&id),
        "error pages show the request id"
    );
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_anything() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let client = app.client().await;
    let id_token = async || {
        let (code, verifier) = app.code_for(&http_client(), &client, "alice", "").await;
        let body: Value = app
            .exchange(&client, &code, &verifier)
            .await
            .json()
            .await
            .unwrap();
        kid(body["id_token"].as_str().unwrap())
    };
    let old = id_token().await;
    let prepublish = app.state.config.keys.prepublish as i64;
    let sealing =
        keyway::oidc::keys::sealing_key(None, std::path::Path::new(&app.state.config.data_dir))
            .unwrap();
    let new = keyway::oidc::keys::rotate(
        app.state.repos.keys.as_ref(),
        &sealing,
        app.clock_now(),
        prepublish,
    )
    .await
    .unwrap();
    app.state.keys().reload(app.clock_now()).await.unwrap();
    let jwks = published_kids(&app).await;
    for kid in &new {
        assert!(jwks.contains(kid), "the new key is published at once");
    }
    assert_eq!(id_token().await, old, "but does not sign yet");
    // After the pre-publication period it signs, without a reload.
    app.clock.advance(prepublish);
    let now_signing = id_token().await;
    assert!(new.contains(&now_signing), "{now_signing}");
    // The old key stays published until its last ID token has expired.
    app.clock
        .advance(app.state.config.lifetimes.id_token as i64 - 1);
    app.state.keys().reload(app.clock_now()).await.unwrap();
    assert!(published_kids(&app).await.contains(&old));
    app.clock.advance(1);
    app.state.keys().reload(app.clock_now()).await.unwrap();
    assert!(!published_kids(&app).await.contains(&old));
}
