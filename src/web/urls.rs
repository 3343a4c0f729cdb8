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
/// The signed-in user's own "Sign out" button (a browser form, unlike `END_SESSION`).
pub const SIGN_OUT: &str = "/logout/confirm";
pub const SIGNIN: &str = "/signin";
/// Options for a passkey sign-in (JSON for the page's script).
pub const SIGNIN_PASSKEY_OPTIONS: &str = "/signin/passkey/options";
/// The answer of a passkey sign-in (a form post).
pub const SIGNIN_PASSKEY: &str = "/signin/passkey";
/// Ask for a sign-in link by email (a form post).
pub const SIGNIN_EMAIL: &str = "/signin/email";
/// The code an emailed link shows in another browser, typed into the one that asked.
pub const SIGNIN_EMAIL_CODE: &str = "/signin/email/code";
/// "Lost your passkey?": ask for a recovery link.
pub const RECOVER: &str = "/signin/recover";
/// The signed-in user's own page.
pub const ACCOUNT: &str = "/account";
pub const ACCOUNT_PASSKEY_OPTIONS: &str = "/account/passkeys/options";
/// Change the account's email address (a link goes to the new one).
pub const ACCOUNT_EMAIL: &str = "/account/email";
pub const ACCOUNT_EMAIL_VERIFY: &str = "/account/email/verify";
pub const ACCOUNT_NOTICES: &str = "/account/notices";
pub const ACCOUNT_PASSWORD: &str = "/account/password";
pub const ACCOUNT_PASSWORD_REMOVE: &str = "/account/password/remove";
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
pub const ACCOUNT_PASSKEY_RENAME: &str = "/account/passkeys/rename";
pub const ACCOUNT_PASSKEY_REMOVE: &str = "/account/passkeys/remove";
pub const ACCOUNT_SESSION_END: &str = "/account/sessions/end";
pub const ACCOUNT_SESSIONS_END_ALL: &str = "/account/sessions/end-all";
pub const SIGNOUT_DONE: &str = "/signed-out";
/// Invitation links: `/invite/{token}`.
pub const INVITE: &str = "/invite";
pub const STYLESHEET: &str = "/static/css/keyway.css";
/// The only script the pages use: the WebAuthn ceremonies.
pub const SCRIPT: &str = "/static/js/webauthn.js";
/// The admin UI's copy buttons.
pub const ADMIN_SCRIPT: &str = "/static/js/admin.js";

/// Every fixed path above, so tests can sweep the router.
pub const ALL: &[&str] = &[
    HOME,
    HEALTHZ,
    READYZ,
    DISCOVERY,
    AS_METADATA,
    JWKS,
    AUTHORIZE,
    AUTHORIZE_RESUME,
    CONSENT,
    TOKEN,
    USERINFO,
    REVOKE,
    INTROSPECT,
    END_SESSION,
    SIGN_OUT,
    SIGNIN,
    SIGNIN_PASSKEY_OPTIONS,
    SIGNIN_PASSKEY,
    SIGNIN_EMAIL,
    SIGNIN_EMAIL_CODE,
    RECOVER,
    ACCOUNT,
    ACCOUNT_EMAIL,
    ACCOUNT_EMAIL_VERIFY,
    ACCOUNT_NOTICES,
    ACCOUNT_PASSWORD,
    ACCOUNT_PASSWORD_REMOVE,
    ACCOUNT_PASSKEY_OPTIONS,
    ACCOUNT_PASSKEYS,
    ACCOUNT_PASSKEY_RENAME,
    ACCOUNT_PASSKEY_REMOVE,
    ACCOUNT_SESSION_END,
    ACCOUNT_SESSIONS_END_ALL,
    SIGNOUT_DONE,
    INVITE,
    STYLESHEET,
    SCRIPT,
    ADMIN_SCRIPT,
];

/// POST endpoints of the protocol, where relying parties (not Keyway's own pages) send
/// requests: no CSRF token applies; each is protected by client authentication, a bearer token,
/// or by changing nothing without the user's confirmation.
pub const PROTOCOL_POSTS: &[&str] = &[AUTHORIZE, TOKEN, USERINFO, REVOKE, INTROSPECT, END_SESSION];

/// The protocol endpoints, for the discovery document.
pub const ENDPOINTS: crate::oidc::metadata::Endpoints = crate::oidc::metadata::Endpoints {
    authorization: AUTHORIZE,
    token: TOKEN,
    userinfo: USERINFO,
    jwks: JWKS,
    revocation: REVOKE,
    introspection: INTROSPECT,
    end_session: END_SESSION,
};

/// Endpoints that answer JSON, so a server error there is JSON too.
pub fn is_json_endpoint(path: &str) -> bool {
    matches!(
        path,
        TOKEN | USERINFO | REVOKE | INTROSPECT | JWKS | DISCOVERY | AS_METADATA | HEALTHZ | READYZ
    )
}
