//! The admin UI's own cookies (its session, and a login on its way), sealed with a key only the
//! server holds and scoped to /admin. They hold only what the relying party learnt from the ID
//! token, or the state of a login it started.

use crate::crypto::SealingKey;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `__Secure-` on https (Secure enforced by browsers); the path stays /admin.
pub fn name(base: &str, https: bool) -> String {
    if https {
        format!("__Secure-{base}")
    } else {
        base.to_owned()
    }
}

pub fn seal<T: Serialize>(key: &SealingKey, name: &str, value: &T) -> Option<String> {
    let json = serde_json::to_vec(value).ok()?;
    Some(ENGINE.encode(key.seal(&json, name.as_bytes()).ok()?))
}

pub fn open<T: DeserializeOwned>(key: &SealingKey, name: &str, text: &str) -> Option<T> {
    let sealed = ENGINE.decode(text).ok()?;
    serde_json::from_slice(&key.open(&sealed, name.as_bytes()).ok()?).ok()
}

/// Sets (or, with `max_age` 0, clears) a cookie on /admin.
pub fn set(res: &mut Response, name: &str, value: &str, max_age: i64, https: bool) {
    let secure = if https { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}
