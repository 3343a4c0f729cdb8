//! A software authenticator speaking real CTAP data (webauthn-authenticator-rs `SoftPasskey`),
//! and the browser side of Keyway's passkey pages, doing what static/js/webauthn.js does.
//!
//! SoftPasskey refuses a required resident key, needs the credential listed in the request and
//! returns no user handle; a platform authenticator does all three. `Device` bridges that gap
//! (relaxes the registration request, lists its own credential, adds the handle), and nothing
//! else: every byte the server verifies is the authenticator's.

use crate::helpers::{hidden, location};
use base64::Engine as _;
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap()
}

pub struct Device {
    soft: SoftPasskey,
    pub origin: Url,
    /// (credential id, user handle) of every credential it made.
    pub credentials: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Device {
    /// A device that verifies its user (PIN or biometrics) when asked, for pages at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            soft: SoftPasskey::new(true),
            origin: Url::parse(base).unwrap(),
            credentials: Vec::new(),
        }
    }

    /// `navigator.credentials.create()`: the new credential as the page posts it.
    pub fn create(&mut self, options: &Value) -> Value {
        let mut o = options.clone();
        let sel = &mut o["publicKey"]["authenticatorSelection"];
        sel["residentKey"] = json!("preferred");
        sel["requireResidentKey"] = json!(false);
        let handle = unb64(o["publicKey"]["user"]["id"].as_str().unwrap());
        let ccr: CreationChallengeResponse = serde_json::from_value(o).unwrap();
        let reg = self.soft.do_registration(self.origin.clone(), ccr).unwrap();
        self.credentials.push((reg.raw_id.clone(), handle));
        serde_json::to_value(&reg).unwrap()
    }

    /// `navigator.credentials.get()`: the assertion as the page posts it. A discoverable
    /// request (no credentials listed) is answered with this device's newest credential.
    pub fn get(&mut self, options: &Value) -> Result<Value, String> {
        self.answer(options, None)
    }

    /// Like `get`, but as a client that skips the browser's checks of origin and relying-party
    /// id: what a phishing proxy or a tampered client sends.
    pub fn get_from(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        self.answer(options, Some(Url::parse(origin).unwrap()))
    }

    fn answer(&mut self, options: &Value, unchecked: Option<Url>) -> Result<Value, String> {
        let mut o = options.clone();
        let listed = o["publicKey"]["allowCredentials"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        if !listed {
            let (id, _) = self.credentials.last().ok_or("no credential")?;
            o["publicKey"]["allowCredentials"] = json!([{ "type": "public-key", "id": b64(id) }]);
        }
        let rcr: RequestChallengeResponse = serde_json::from_value(o).unwrap();
        let mut pkc = match unchecked {
            None => self.soft.do_authentication(self.origin.clone(), rcr),
            Some(origin) => {
                AuthenticatorBackend::perform_auth(&mut self.soft, origin, rcr.public_key, 60_000)
            }
        }
        .map_err(|e| format!("{e:?}"))?;
        if pkc.response.user_handle.is_none() {
            let handle = self
                .credentials
                .iter()
                .find(|(id, _)| *id == pkc.raw_id)
                .map(|(_, h)| h.clone());
            pkc.response.user_handle = handle;
        }
        Ok(serde_json::to_value(&pkc).unwrap())
    }
}

/// The page at `path` and its CSRF token.
pub async fn csrf_of(base: &str, browser: &reqwest::Client, path: &str) -> String {
    let page = browser
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden(&page, "csrf")
}

/// POSTs a form; the response.
pub async fn post(
    base: &str,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The JSON options a page's script asks for, asserting success.
pub async fn options(
    base: &str,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> Value {
    let res = post(base, browser, path, form).await;
    assert_eq!(res.status(), 200, "POST {path}");
    res.json().await.unwrap()
}

/// Registers a new passkey from the account page of a signed-in browser; the final response.
pub async fn add_passkey(
    base: &str,
    browser: &reqwest::Client,
    device: &mut Device,
) -> reqwest::Response {
    let csrf = csrf_of(base, browser, "/account").await;
    let opts = options(
        base,
        browser,
        "/account/passkeys/options",
        &[("csrf", &csrf)],
    )
    .await;
    let credential = device.create(&opts).to_string();
    post(
        base,
        browser,
        "/account/passkeys",
        &[("csrf", &csrf), ("credential", &credential)],
    )
    .await
}

/// Redeems an invitation link with a new passkey; the final response.
pub async fn redeem(
    base: &str,
    browser: &reqwest::Client,
    device: &mut Device,
    token: &str,
    username: &str,
    name: &str,
) -> reqwest::Response {
    let path = format!("/invite/{token}");
    let csrf = csrf_of(base, browser, &path).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("username", username),
        ("name", name),
    ];
    let opts = options(base, browser, &format!("{path}/options"), &form).await;
    let credential = device.create(&opts).to_string();
    let mut form = form.to_vec();
    form.push(("credential", &credential));
    post(base, browser, &path, &form).await
}

/// The passkey sign-in of the sign-in page at `signin` (a path, with its `req` if any), in
/// `mode` (autofill, button, or username with `username`): options, the device's answer, the
/// post. Returns the response to the post.
pub async fn passkey_sign_in(
    base: &str,
    browser: &reqwest::Client,
    device: &mut Device,
    signin: &str,
    mode: &str,
    username: &str,
) -> reqwest::Response {
    let page = browser
        .get(format!("{base}{signin}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (csrf, req, next) = (
        hidden(&page, "csrf"),
        hidden(&page, "req"),
        hidden(&page, "next"),
    );
    let opts = options(
        base,
        browser,
        "/signin/passkey/options",
        &[("csrf", &csrf), ("mode", mode), ("username", username)],
    )
    .await;
    let credential = device.get(&opts).unwrap().to_string();
    post(
        base,
        browser,
        "/signin/passkey",
        &[
            ("csrf", &csrf),
            ("req", &req),
            ("next", &next),
            ("credential", &credential),
        ],
    )
    .await
}

/// Where a 303 after a passkey post sends the browser, asserting it is one.
pub fn redirected(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 303, "expected a redirect");
    location(res)
}
