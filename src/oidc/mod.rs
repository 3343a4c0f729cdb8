//! The protocol core, free of HTTP types: metadata, keys, ID tokens, PKCE, redirect URI matching,
//! the authorization request, and the token-endpoint grants.

pub mod authorize;
pub mod clients;
pub mod id_token;
pub mod keys;
pub mod metadata;
pub mod pkce;
pub mod redirect;
pub mod tokens;
