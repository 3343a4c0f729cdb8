//! The protocol layer's error: an OAuth error (RFC 6749 §5.2), a bearer-token error (RFC 6750
//! §3), or a failure underneath. The web layer turns each into a response in one place.

use crate::store::StoreError;

/// An OAuth error code with its description and the HTTP status it implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// Client authentication with Basic failed: answer with `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{}: {}", .0.error, .0.description)]
    OAuth(OAuthError),
    /// A bearer-token error (RFC 6750): `error` is None when no token was sent at all.
    #[error("bearer token rejected")]
    Bearer {
        status: u16,
        error: Option<&'static str>,
        description: &'static str,
    },
    /// Too many failed client authentications for this client or IP: not checked; 429 with
    /// Retry-After.
    #[error("too many failed attempts")]
    Limited { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ProtocolResult<T> = Result<T, ProtocolError>;

impl ProtocolError {
    /// 400 with an RFC 6749 error code.
    pub fn oauth(error: &'static str, description: impl Into<String>) -> Self {
        ProtocolError::OAuth(OAuthError {
            status: 400,
            error,
            description: description.into(),
            basic_challenge: false,
        })
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::oauth("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::oauth("invalid_grant", description)
    }

    /// 401 `invalid_client`; `basic` when the client tried HTTP Basic.
    pub fn invalid_client(basic: bool) -> Self {
        ProtocolError::OAuth(OAuthError {
            status: 401,
            error: "invalid_client",
            description: "client authentication failed".into(),
            basic_challenge: basic,
        })
    }

    pub fn bearer(status: u16, error: Option<&'static str>, description: &'static str) -> Self {
        ProtocolError::Bearer {
            status,
            error,
            description,
        }
    }

    /// The OAuth error code, if this is an OAuth error.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ProtocolError::OAuth(e) => Some(e.error),
            _ => None,
        }
    }
}

/// `error_description` must be printable ASCII without `"` or `\` (RFC 6749 §5.2).
pub fn sanitize_description(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                ' '
            }
        })
        .collect()
}
