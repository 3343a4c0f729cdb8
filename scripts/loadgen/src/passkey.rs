//! The passkey sign-in scenario (Keyway only: the peer has no passkeys). Each worker registers a
//! software passkey for its own user once (password sign-in, then the account page), then signs
//! in with it again and again with a fresh cookie jar: authorize → sign-in page → passkey
//! options → the authenticator's assertion (a real ECDSA P-256 signature over real CTAP data,
//! by webauthn-authenticator-rs SoftPasskey) → the code.
//!
//! SoftPasskey needs the credential listed and returns no user handle, so the device lists its
//! own credential and adds the handle, as a platform authenticator would on its own.

use crate::{Conn, Jar, Kind, Oidc, form, resolve};
use base64::Engine as _;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

pub struct Device {
    soft: SoftPasskey,
    origin: Url,
    credential: Vec<u8>,
    handle: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of the first hidden field `name` in a page.
fn hidden(page: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = page.find(&needle)? + needle.len();
    let end = page[start..].find('"')? + start;
    Some(
        page[start..end]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

/// GET `url` with the jar; the page body.
async fn page(c: &mut Conn, jar: &mut Jar, url: &str, step: &str) -> Result<String, String> {
    let cookie = jar.header();
    let r = c.get(url, &[("cookie", &cookie)]).await?;
    jar.store(&r.set_cookies);
    if r.status != 200 {
        return Err(r.fail(step));
    }
    Ok(String::from_utf8_lossy(&r.body).into_owned())
}

/// POST a form with the jar; the response.
async fn post(
    c: &mut Conn,
    jar: &mut Jar,
    url: &str,
    pairs: &[(&str, &str)],
) -> Result<crate::Resp, String> {
    let cookie = jar.header();
    let r = c.post(url, &[("cookie", &cookie)], form(pairs)).await?;
    jar.store(&r.set_cookies);
    Ok(r)
}

/// Registers a passkey for `username` (who has a password) from the account page.
pub async fn register(
    oidc: &Oidc,
    c: &mut Conn,
    issuer: &str,
    username: &str,
    password: &str,
) -> Result<Device, String> {
    let (_code, mut jar) = oidc
        .signin_code(
            c,
            Kind::Keyway,
            username,
            password,
            "openid",
            "passkey-setup",
        )
        .await?;
    let account = page(c, &mut jar, &format!("{issuer}/account"), "account page").await?;
    let csrf = hidden(&account, "csrf").ok_or("account page: no csrf")?;
    let r = post(
        c,
        &mut jar,
        &format!("{issuer}/account/passkeys/options"),
        &[("csrf", &csrf)],
    )
    .await?;
    if r.status != 200 {
        return Err(r.fail("registration options"));
    }
    let mut options = r.json()?;
    let sel = &mut options["publicKey"]["authenticatorSelection"];
    sel["residentKey"] = json!("preferred");
    sel["requireResidentKey"] = json!(false);
    let ccr: CreationChallengeResponse =
        serde_json::from_value(options).map_err(|e| format!("registration options: {e}"))?;
    let handle = ccr.public_key.user.id.to_vec();
    let origin = Url::parse(issuer).map_err(|e| e.to_string())?;
    let mut soft = SoftPasskey::new(true);
    let reg = soft
        .do_registration(origin.clone(), ccr)
        .map_err(|e| format!("authenticator (registration): {e:?}"))?;
    let credential = serde_json::to_string(&reg).map_err(|e| e.to_string())?;
    let r = post(
        c,
        &mut jar,
        &format!("{issuer}/account/passkeys"),
        &[("csrf", &csrf), ("credential", &credential)],
    )
    .await?;
    if r.status != 303 {
        return Err(r.fail("registration"));
    }
    Ok(Device {
        soft,
        origin,
        credential: reg.raw_id,
        handle,
    })
}

impl Device {
    fn assert(&mut self, mut options: Value) -> Result<String, String> {
        options["publicKey"]["allowCredentials"] =
            json!([{ "type": "public-key", "id": b64(&self.credential) }]);
        let rcr: RequestChallengeResponse =
            serde_json::from_value(options).map_err(|e| format!("sign-in options: {e}"))?;
        let mut pkc = self
            .soft
            .do_authentication(self.origin.clone(), rcr)
            .map_err(|e| format!("authenticator (sign-in): {e:?}"))?;
        pkc.response.user_handle = Some(self.handle.clone());
        serde_json::to_string(&pkc).map_err(|e| e.to_string())
    }
}

/// One passkey sign-in with a fresh cookie jar, from authorize to the code.
pub async fn sign_in(
    oidc: &Oidc,
    c: &mut Conn,
    device: &mut Device,
    issuer: &str,
    nonce: &str,
) -> Result<String, String> {
    let mut jar = Jar::default();
    let authorize = oidc.authorize_url("openid", nonce);
    let r = c.get(&authorize, &[]).await?;
    jar.store(&r.set_cookies);
    let signin = match (r.status, &r.location) {
        (302, Some(loc)) => resolve(&authorize, loc)?.to_string(),
        _ => return Err(r.fail("authorize")),
    };
    let signin_page = page(c, &mut jar, &signin, "sign-in page").await?;
    let csrf = hidden(&signin_page, "csrf").ok_or("sign-in page: no csrf")?;
    let req = hidden(&signin_page, "req").ok_or("sign-in page: no req")?;
    let r = post(
        c,
        &mut jar,
        &format!("{issuer}/signin/passkey/options"),
        &[("csrf", &csrf), ("mode", "button")],
    )
    .await?;
    if r.status != 200 {
        return Err(r.fail("passkey options"));
    }
    let credential = device.assert(r.json()?)?;
    let answer = format!("{issuer}/signin/passkey");
    let r = post(
        c,
        &mut jar,
        &answer,
        &[("csrf", &csrf), ("req", &req), ("credential", &credential)],
    )
    .await?;
    let resume = match (r.status, &r.location) {
        (303, Some(loc)) => resolve(&answer, loc)?.to_string(),
        _ => return Err(r.fail("passkey sign-in")),
    };
    let cookie = jar.header();
    let r = c.get(&resume, &[("cookie", &cookie)]).await?;
    match &r.location {
        Some(loc) => match oidc.code_from(&resume, loc) {
            Some(code) => code,
            None => Err(r.fail("resume")),
        },
        None => Err(r.fail("resume")),
    }
}
