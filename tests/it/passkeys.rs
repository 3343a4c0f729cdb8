//! Passkeys against the real server over HTTP with a software authenticator: registration from
//! the account page, the three sign-in modes, what a relying party receives (amr, acr), the
//! step-up to a passkey, and every refusal the issue names.

use crate::helpers::{TestApp, http_client};
use crate::rp::Rp;
use crate::webauthn::{
    Device, add_passkey, b64, csrf_of, options, passkey_sign_in, post, redirected, unb64,
};
use keyway::domain::{PasskeyUse, User};
use openidconnect::TokenResponse;
use serde_json::Value;

/// Alice (who also has a password) with one passkey on `device`, and her signed-in browser.
async fn alice_with_passkey(app: &TestApp) -> (User, Device, reqwest::Client) {
    let alice = app.user("alice").await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    let mut device = Device::new(&app.issuer);
    let res = add_passkey(&app.issuer, &browser, &mut device).await;
    assert_eq!(redirected(&res), "/account?done=added");
    (alice, device, browser)
}

async fn audit_details(app: &TestApp, event: &str) -> Vec<String> {
    let events = app.state.repos.audit.recent(100).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event == event)
        .map(|e| format!("{} {}", e.outcome, e.detail.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn registration_asks_for_a_discoverable_verified_credential_with_a_random_handle() {
    let app = TestApp::spawn().await;
    let (alice, device, browser) = alice_with_passkey(&app).await;
    let csrf = csrf_of(&app.issuer, &browser, "/account").await;
    let o = options(
        &app.issuer,
        &browser,
        "/account/passkeys/options",
        &[("csrf", &csrf)],
    )
    .await;
    let pk = &o["publicKey"];
    let sel = &pk["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "required", "{o}");
    assert_eq!(sel["requireResidentKey"], true);
    assert_eq!(sel["userVerification"], "required");
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["rp"]["id"], "localhost");
    // The handle: 16 random bytes, the same for every registration of this user, never a name.
    let handle = unb64(pk["user"]["id"].as_str().unwrap());
    assert_eq!(handle.len(), 16);
    assert_eq!(device.credentials[0].1, handle);
    assert!(!String::from_utf8_lossy(&handle).contains("alice"));
    assert_eq!(pk["user"]["name"], "alice");
    // The passkey she has is excluded.
    let excluded: Vec<&str> = pk["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(excluded, [b64(&device.credentials[0].0)]);
    let stored = app
        .state
        .repos
        .passkeys
        .list_for_user(&alice.id)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].credential_id, device.credentials[0].0);
    // No AAGUID from a software key: the name says browser and platform, or "Passkey".
    assert_eq!(stored[0].name, "Passkey");
    assert_eq!(
        audit_details(&app, "passkey.register").await,
        ["success Passkey"]
    );
    // A second passkey from another device joins the first.
    let mut phone = Device::new(&app.issuer);
    assert_eq!(
        redirected(&add_passkey(&app.issuer, &browser, &mut phone).await),
        "/account?done=added"
    );
    let page = app.page(&browser, "/account").await;
    assert_eq!(page.matches("this device only").count(), 2, "{page}");
    // Two passkeys with the same default name are told apart.
    assert!(
        page.contains("<strong>Passkey</strong>") && page.contains("<strong>Passkey 2</strong>"),
        "{page}"
    );
}

#[tokio::test]
async fn the_button_signs_in_with_a_discoverable_credential_and_no_username() {
    let app = TestApp::spawn().await;
    let (alice, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    let csrf = csrf_of(&app.issuer, &browser, "/signin").await;
    let o = options(
        &app.issuer,
        &browser,
        "/signin/passkey/options",
        &[("csrf", &csrf), ("mode", "button")],
    )
    .await;
    assert!(
        o.get("mediation").is_none(),
        "the button is not conditional: {o}"
    );
    assert!(
        o["publicKey"]
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().unwrap().is_empty())
    );
    assert_eq!(o["publicKey"]["userVerification"], "required");
    let res = passkey_sign_in(&app.issuer, &browser, &mut device, "/signin", "button", "").await;
    assert_eq!(redirected(&res), "/");
    assert!(
        app.page(&browser, "/")
            .await
            .contains("signed in as <strong>alice")
    );
    let stored = app
        .state
        .repos
        .passkeys
        .list_for_user(&alice.id)
        .await
        .unwrap();
    assert_eq!(stored[0].sign_count, 1, "the counter is stored");
    assert!(stored[0].last_used_at.is_some());
    let signins = audit_details(&app, "signin").await;
    assert_eq!(
        signins[0], "success passkey user verification",
        "{signins:?}"
    );
}

#[tokio::test]
async fn autofill_asks_for_conditional_mediation_and_signs_in() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    let csrf = csrf_of(&app.issuer, &browser, "/signin").await;
    let o = options(
        &app.issuer,
        &browser,
        "/signin/passkey/options",
        &[("csrf", &csrf), ("mode", "autofill")],
    )
    .await;
    assert_eq!(o["mediation"], "conditional", "{o}");
    let page = app.page(&browser, "/signin").await;
    assert!(
        page.contains(r#"autocomplete="username webauthn""#),
        "{page}"
    );
    assert!(page.contains(r#"<script src="/static/js/webauthn.js" defer></script>"#));
    let res = passkey_sign_in(
        &app.issuer,
        &browser,
        &mut device,
        "/signin",
        "autofill",
        "",
    )
    .await;
    assert_eq!(redirected(&res), "/");
}

#[tokio::test]
async fn username_first_lists_that_users_passkeys_and_answers_alike_for_anyone() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    app.user("bob").await; // an account without passkeys
    let browser = http_client();
    let csrf = csrf_of(&app.issuer, &browser, "/signin").await;
    let ask = async |name: &str| -> Value {
        options(
            &app.issuer,
            &browser,
            "/signin/passkey/options",
            &[("csrf", &csrf), ("mode", "username"), ("username", name)],
        )
        .await
    };
    let alice = ask("alice").await;
    let ids = |o: &Value| -> Vec<String> {
        o["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&alice), [b64(&device.credentials[0].0)]);
    // Same shape for an account without passkeys and for no account at all; stable per name.
    let keys = |o: &Value| -> Vec<String> {
        let mut k: Vec<String> = o["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    for other in ["bob", "nobody"] {
        let o = ask(other).await;
        assert_eq!(keys(&o), keys(&alice), "{other}: {o}");
        assert_eq!(ids(&o).len(), 1, "{other}");
        assert!(o.get("mediation").is_none());
        assert_eq!(ids(&ask(other).await), ids(&o), "{other}: stable");
    }
    let res = passkey_sign_in(
        &app.issuer,
        &browser,
        &mut device,
        "/signin",
        "username",
        "alice",
    )
    .await;
    assert_eq!(redirected(&res), "/");
}

/// The options of a fresh sign-in page in `browser` and its CSRF token.
async fn button_options(app: &TestApp, browser: &reqwest::Client) -> (Value, String) {
    let csrf = csrf_of(&app.issuer, browser, "/signin").await;
    let o = options(
        &app.issuer,
        browser,
        "/signin/passkey/options",
        &[("csrf", &csrf), ("mode", "button")],
    )
    .await;
    (o, csrf)
}

async fn answer(app: &TestApp, browser: &reqwest::Client, csrf: &str, credential: &Value) -> u16 {
    let credential = credential.to_string();
    post(
        &app.issuer,
        browser,
        "/signin/passkey",
        &[("csrf", csrf), ("credential", &credential)],
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn a_replayed_or_foreign_challenge_fails() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    let (o, csrf) = button_options(&app, &browser).await;
    let credential = device.get(&o).unwrap();
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 303);
    // The same answer again: its ceremony is used up.
    let browser2 = http_client();
    let (_, csrf2) = button_options(&app, &browser2).await;
    assert_eq!(
        answer(
            &app,
            &browser,
            &csrf_of(&app.issuer, &browser, "/signin").await,
            &credential
        )
        .await,
        401
    );
    // A challenge issued to one browser, answered from another.
    let (o3, _) = button_options(&app, &browser).await;
    let credential = device.get(&o3).unwrap();
    assert_eq!(answer(&app, &browser2, &csrf2, &credential).await, 401);
    let failures = audit_details(&app, "signin").await;
    assert!(
        failures
            .iter()
            .filter(|d| d.contains("no such ceremony"))
            .count()
            >= 2,
        "{failures:?}"
    );
}

#[tokio::test]
async fn an_expired_challenge_fails() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    let (o, csrf) = button_options(&app, &browser).await;
    let credential = device.get(&o).unwrap();
    app.clock.advance(301);
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 401);
}

#[tokio::test]
async fn a_wrong_origin_or_relying_party_id_fails() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    // A phishing page at another origin relays the challenge.
    let (o, csrf) = button_options(&app, &browser).await;
    let credential = device.get_from("http://evil.example", &o).unwrap();
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 401);
    // Signed for another relying party id.
    let (mut o, csrf) = button_options(&app, &browser).await;
    o["publicKey"]["rpId"] = "example.com".into();
    let credential = device.get_from(&app.issuer, &o).unwrap();
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 401);
    // The genuine article still works.
    let (o, csrf) = button_options(&app, &browser).await;
    let credential = device.get(&o).unwrap();
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 303);
}

#[tokio::test]
async fn an_unknown_credential_or_missing_user_verification_fails() {
    let app = TestApp::spawn().await;
    let (alice, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    // The authenticator skips user verification (the client asked it not to).
    let (mut o, csrf) = button_options(&app, &browser).await;
    o["publicKey"]["userVerification"] = "discouraged".into();
    let credential = device.get_from(&app.issuer, &o).unwrap();
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 401);
    let details = audit_details(&app, "signin").await;
    assert!(details[0].starts_with("failure passkey:"), "{details:?}");
    // A credential Keyway does not know (removed from the account).
    let id = app
        .state
        .repos
        .passkeys
        .list_for_user(&alice.id)
        .await
        .unwrap()[0]
        .id
        .clone();
    app.state
        .repos
        .passkeys
        .remove(&alice.id, &id)
        .await
        .unwrap();
    let (o, csrf) = button_options(&app, &browser).await;
    let credential = device.get(&o).unwrap();
    assert_eq!(answer(&app, &browser, &csrf, &credential).await, 401);
    assert!(audit_details(&app, "signin").await[0].contains("unknown credential"));
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let app = TestApp::spawn().await;
    let (alice, mut device, _) = alice_with_passkey(&app).await;
    let browser = http_client();
    let res = passkey_sign_in(&app.issuer, &browser, &mut device, "/signin", "button", "").await;
    assert_eq!(redirected(&res), "/");
    // A clone of the authenticator signed in elsewhere meanwhile: the stored counter is ahead.
    let stored = app
        .state
        .repos
        .passkeys
        .list_for_user(&alice.id)
        .await
        .unwrap()
        .remove(0);
    let mut json: Value = serde_json::from_str(&stored.passkey_json).unwrap();
    json["cred"]["counter"] = 50.into();
    let advanced = PasskeyUse {
        id: stored.id.clone(),
        previous_count: stored.sign_count,
        sign_count: 50,
        backup_state: false,
        passkey_json: json.to_string(),
        at: app.clock_now(),
    };
    assert!(
        app.state
            .repos
            .passkeys
            .record_use(&advanced)
            .await
            .unwrap()
    );
    let other = http_client();
    let res = passkey_sign_in(&app.issuer, &other, &mut device, "/signin", "button", "").await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        audit_details(&app, "passkey.counter_regression")
            .await
            .len(),
        1
    );
    assert!(!app.page(&other, "/").await.contains("signed in as"));
}

#[tokio::test]
async fn a_credential_on_another_account_cannot_be_registered_again() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let bob = app.user("bob").await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "bob").await;
    // Bob's registration, answered with a credential whose authenticator data is Alice's: the
    // attestation rebuilt as "none" (as an attacker holding Alice's public key would).
    let csrf = csrf_of(&app.issuer, &browser, "/account").await;
    let o = options(
        &app.issuer,
        &browser,
        "/account/passkeys/options",
        &[("csrf", &csrf)],
    )
    .await;
    let mut reg = device.create(&o);
    let alice = app
        .state
        .repos
        .users
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let alice_id = app
        .state
        .repos
        .passkeys
        .list_for_user(&alice.id)
        .await
        .unwrap()[0]
        .credential_id
        .clone();
    // Bob's authenticator data with Alice's credential id in it (offsets per WebAuthn §6.1:
    // 37 + 16 AAGUID bytes, then a 2-byte length and the id).
    let auth_data = {
        use serde_cbor_2::Value as Cbor;
        let ao = unb64(reg["response"]["attestationObject"].as_str().unwrap());
        let Cbor::Map(m) = serde_cbor_2::from_slice(&ao).unwrap() else {
            panic!("attestation object is not a map")
        };
        let Some(Cbor::Bytes(d)) = m.get(&Cbor::Text("authData".into())) else {
            panic!("no authData")
        };
        let id_len = usize::from(u16::from_be_bytes([d[53], d[54]]));
        let mut swapped = d[..53].to_vec();
        swapped.extend(u16::try_from(alice_id.len()).unwrap().to_be_bytes());
        swapped.extend(&alice_id);
        swapped.extend(&d[55 + id_len..]);
        swapped
    };
    let mut none = std::collections::BTreeMap::new();
    none.insert(
        serde_cbor_2::Value::Text("fmt".into()),
        serde_cbor_2::Value::Text("none".into()),
    );
    none.insert(
        serde_cbor_2::Value::Text("attStmt".into()),
        serde_cbor_2::Value::Map(Default::default()),
    );
    none.insert(
        serde_cbor_2::Value::Text("authData".into()),
        serde_cbor_2::Value::Bytes(auth_data),
    );
    let ao = serde_cbor_2::to_vec(&serde_cbor_2::Value::Map(none)).unwrap();
    reg["response"]["attestationObject"] = b64(&ao).into();
    reg["rawId"] = b64(&alice_id).into();
    reg["id"] = b64(&alice_id).into();
    let res = post(
        &app.issuer,
        &browser,
        "/account/passkeys",
        &[("csrf", &csrf), ("credential", &reg.to_string())],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("could not be added"));
    assert!(
        app.state
            .repos
            .passkeys
            .list_for_user(&bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    let details = audit_details(&app, "passkey.register").await;
    assert!(
        details[0].contains("credential already registered"),
        "{details:?}"
    );
}

#[tokio::test]
async fn a_relying_party_gets_the_passkey_amr_and_acr_phr() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let rp = Rp::discover(&app, app.client_with(|c| c.first_party = true).await).await;
    let metadata = app
        .page(&http_client(), "/.well-known/openid-configuration")
        .await;
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(
        metadata["acr_values_supported"],
        serde_json::json!(["phr", "1"])
    );
    let browser = http_client();
    let pending = rp.start(&[], &[]);
    let to_signin = browser.get(&pending.url).send().await.unwrap();
    let signin = crate::helpers::location(&to_signin);
    let res = passkey_sign_in(&app.issuer, &browser, &mut device, &signin, "button", "").await;
    let resume = redirected(&res);
    assert!(resume.starts_with("/authorize/resume"), "{resume}");
    let back = browser.get(app.url(&resume)).send().await.unwrap();
    let signed_in = rp
        .finish(&app, pending, &crate::helpers::location(&back))
        .await;
    let claims = rp.id_claims(&signed_in);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(amr, ["hwk", "user"]);
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "phr");
    // A password sign-in reaches the lower level.
    let other = http_client();
    let by_password = rp.sign_in(&app, &other, "alice", &[], &[]).await;
    let claims = rp.id_claims(&by_password);
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "1");
    assert!(signed_in.tokens.id_token().is_some());
}

#[tokio::test]
async fn a_client_that_requires_a_passkey_steps_a_password_user_up() {
    let app = TestApp::spawn().await;
    let (_, mut device, _) = alice_with_passkey(&app).await;
    let strict = Rp::discover(
        &app,
        app.client_with(|c| {
            c.first_party = true;
            c.require_passkey = true;
        })
        .await,
    )
    .await;
    let browser = http_client();
    app.sign_in_at(&browser, "/signin", "alice").await;
    // Signed in with a password: prompt=none cannot step up.
    let pending = strict.start(&[], &[("prompt", "none")]);
    let res = browser.get(&pending.url).send().await.unwrap();
    let back = crate::helpers::location(&res);
    assert_eq!(
        crate::helpers::query(&back)["error"],
        "login_required",
        "{back}"
    );
    // Without prompt=none: the sign-in page asks for a passkey, with no password field.
    let pending = strict.start(&[], &[]);
    let res = browser.get(&pending.url).send().await.unwrap();
    let signin = crate::helpers::location(&res);
    assert!(signin.starts_with("/signin?req="), "{signin}");
    let page = app.page(&browser, &signin).await;
    assert!(
        page.contains("Sign in with a passkey") && !page.contains(r#"name="password""#),
        "{page}"
    );
    let res = passkey_sign_in(
        &app.issuer,
        &browser,
        &mut device,
        &signin,
        "username",
        "alice",
    )
    .await;
    let back = browser
        .get(app.url(&redirected(&res)))
        .send()
        .await
        .unwrap();
    let signed_in = strict
        .finish(&app, pending, &crate::helpers::location(&back))
        .await;
    assert_eq!(
        strict
            .id_claims(&signed_in)
            .auth_context_ref()
            .unwrap()
            .as_str(),
        "phr"
    );
    // acr_values=phr asks the same of an ordinary client; a user without passkeys is told how
    // to add one.
    app.user("bob").await;
    let plain = Rp::discover(&app, app.client_with(|c| c.first_party = true).await).await;
    let bobs = http_client();
    app.sign_in_at(&bobs, "/signin", "bob").await;
    let pending = plain.start(&[], &[("acr_values", "phr")]);
    let res = bobs.get(&pending.url).send().await.unwrap();
    let signin = crate::helpers::location(&res);
    let page = app.page(&bobs, &signin).await;
    assert!(
        page.contains("You have no passkey yet") && page.contains("/account?req="),
        "{page}"
    );
    // While "1 phr" leaves the choice: no step-up.
    let pending = plain.start(&[], &[("acr_values", "1 phr")]);
    let res = bobs.get(&pending.url).send().await.unwrap();
    let back = crate::helpers::location(&res);
    let signed_in = plain.finish(&app, pending, &back).await;
    assert_eq!(
        plain
            .id_claims(&signed_in)
            .auth_context_ref()
            .unwrap()
            .as_str(),
        "1"
    );
}

#[tokio::test]
async fn an_issuer_on_an_ip_address_hides_passkeys_and_keeps_passwords() {
    let app = TestApp::spawn_with(|c| c.issuer = c.issuer.replace("localhost", "127.0.0.1")).await;
    app.user("alice").await;
    let browser = http_client();
    let page = app.page(&browser, "/signin").await;
    assert!(
        !page.contains("passkey-button") && !page.contains("webauthn"),
        "{page}"
    );
    assert!(page.contains(r#"name="password""#));
    let csrf = csrf_of(&app.issuer, &browser, "/signin").await;
    let res = post(
        &app.issuer,
        &browser,
        "/signin/passkey/options",
        &[("csrf", &csrf), ("mode", "button")],
    )
    .await;
    assert_eq!(res.status(), 404);
    app.sign_in_at(&browser, "/signin", "alice").await;
    let account = app.page(&browser, "/account").await;
    assert!(
        account.contains("Your account") && !account.contains("Add a passkey"),
        "{account}"
    );
}
