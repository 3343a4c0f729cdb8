//! Every path Keyway serves, in one place; templates and redirects use these.

pub const HOME: &str = "/";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const AS_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const JWKS: &str = "/jwks";
pub const AUTHORIZE: &str = "/authorize";
pub const AUTHORIZE_RESUME: &str = "/authorize/resume";
pub const CONSENT: &str = "/authorize/consent";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const END_SESSION: &str = "/logout";
pub const SIGNIN: &str = "/signin";
pub const SIGNOUT_DONE: &str = "/signed-out";
pub const ADMIN_SETUP: &str = "/setup";
pub const STYLESHEET: &str = "/static/css/keyway.css";

/// Endpoints that answer JSON, so a server error there is JSON too.
pub fn is_json_endpoint(path: &str) -> bool {
    matches!(
        path,
        TOKEN | USERINFO | REVOKE | INTROSPECT | JWKS | DISCOVERY | AS_METADATA | HEALTHZ | READYZ
    )
}
