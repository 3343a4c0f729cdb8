//! Discovery (OpenID Connect Discovery 1.0) and authorization server metadata (RFC 8414).

use serde_json::{Value, json};

pub const SCOPES_SUPPORTED: [&str; 7] = crate::domain::OIDC_SCOPES;

/// Where the HTTP layer serves each endpoint (paths below the issuer).
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub authorization: &'static str,
    pub token: &'static str,
    pub userinfo: &'static str,
    pub jwks: &'static str,
    pub revocation: &'static str,
    pub introspection: &'static str,
    pub end_session: &'static str,
}

pub fn discovery(issuer: &str, paths: &Endpoints) -> Value {
    let u = |p: &str| format!("{issuer}{p}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": u(paths.authorization),
        "token_endpoint": u(paths.token),
        "userinfo_endpoint": u(paths.userinfo),
        "jwks_uri": u(paths.jwks),
        "revocation_endpoint": u(paths.revocation),
        "introspection_endpoint": u(paths.introspection),
        "end_session_endpoint": u(paths.end_session),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": crate::oidc::claims::supported(),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": true,
        "acr_values_supported": [crate::domain::ACR_PHR, crate::domain::ACR_BASIC],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}
