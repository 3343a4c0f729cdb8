//! Extractors that make the browser rules impossible to forget: a handler that takes
//! `CsrfForm<T>` never runs on a forged POST, one that takes `CurrentUser` never runs for a
//! signed-out visitor. `RequestMeta` carries who sent the request, for audit.

use crate::auth::session::{self, SignedIn};
use crate::domain::{RequestMeta, User};
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::urls;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use tower_sessions::Session;

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = peer.map(|peer| client_ip(peer, &parts.headers, &state.config.trusted_proxies));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Ok(RequestMeta {
            ip: ip.map(|ip| ip.to_string()),
            user_agent,
        })
    }
}

/// The client's address: the socket's peer, unless the peer is a trusted proxy; then the
/// nearest address in `X-Forwarded-For` (or, when a proxy writes only that, `Forwarded`, RFC
/// 7239) that is not itself a trusted proxy, walking back from the last hop. X-Forwarded-For
/// comes first because the common proxies append to it and pass a client's own `Forwarded`
/// through. Headers from anyone else are ignored: a client cannot claim another IP.
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Lossy: a client's stray byte in a header line must not hide the hops a proxy appended.
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut hops: Vec<std::net::IpAddr> = values("x-forwarded-for")
        .iter()
        .filter_map(|v| parse_node(v))
        .collect();
    if hops.is_empty() {
        hops = values("forwarded")
            .iter()
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("for").then(|| parse_node(v))?
                })
            })
            .collect();
    }
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `"[2001:db8::1]:80"`, `2001:db8::1`.
fn parse_node(v: &str) -> Option<std::net::IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    v.rsplit_once(':')?.0.parse().ok()
}

async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Session, AppError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer: {msg}")))
}

/// The signed-in user, or nobody.
pub struct MaybeUser(pub Option<(SignedIn, User)>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = session_of(parts, state).await?;
        Ok(MaybeUser(session::current(&session, &state.auth).await?))
    }
}

/// A signed-in user; anyone else is sent to the sign-in page.
pub struct CurrentUser {
    pub signed_in: SignedIn,
    pub user: User,
}

/// Why a `CurrentUser` handler did not run.
pub enum NotSignedIn {
    /// To the sign-in page, which comes back here when this page may be come back to.
    Redirect {
        back_to_account: bool,
    },
    Error(AppError),
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::Redirect { back_to_account } => {
                if back_to_account {
                    crate::web::see_other(&format!("{}?next={}", urls::SIGNIN, urls::ACCOUNT))
                } else {
                    crate::web::see_other(urls::SIGNIN)
                }
            }
            NotSignedIn::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = NotSignedIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NotSignedIn> {
        match MaybeUser::from_request_parts(parts, state).await {
            Ok(MaybeUser(Some((signed_in, user)))) => Ok(CurrentUser { signed_in, user }),
            Ok(MaybeUser(None)) => Err(NotSignedIn::Redirect {
                back_to_account: parts.uri.path().starts_with(urls::ACCOUNT),
            }),
            Err(e) => Err(NotSignedIn::Error(e)),
        }
    }
}

/// The page every refused CSRF check gets.
pub fn csrf_refused() -> AppError {
    AppError::page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is no longer valid (its security token is missing or out of date). Go back, reload the page and try again.",
    )
}

/// A request another site made the browser send: `Sec-Fetch-Site: cross-site`, or an `Origin`
/// other than the issuer's (`null` included). Refused even with a valid CSRF token.
fn cross_site(parts: &Parts, state: &AppState) -> bool {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match parts.headers.get(header::ORIGIN) {
        None => false,
        Some(origin) => {
            let ours = state.config.issuer_url.origin().ascii_serialization();
            origin.as_bytes() != ours.as_bytes()
        }
    }
}

/// An `application/x-www-form-urlencoded` POST body from this site whose `csrf` field matched
/// the session's token before the handler runs; `T` is the rest of the form. Also hands over the
/// session.
pub struct CsrfForm<T> {
    pub form: T,
    pub session: Session,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let (mut parts, body) = req.into_parts();
        if cross_site(&parts, state) {
            return Err(csrf_refused());
        }
        let session = session_of(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                AppError::bad_request(
                    "Cannot read the form",
                    "The form could not be read. Go back and try again.",
                )
            })?;
        let submitted = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if !session::csrf_matches(&session, &state.auth, submitted.as_deref()).await? {
            return Err(csrf_refused());
        }
        let form = serde_urlencoded::from_bytes(&body).map_err(|_| {
            AppError::bad_request(
                "Cannot read the form",
                "Some fields of the form are missing or malformed. Go back, reload the page and try again.",
            )
        })?;
        Ok(CsrfForm { form, session })
    }
}

/// A form with nothing but its CSRF token: `CsrfForm<Empty>`.
#[derive(serde::Deserialize)]
pub struct Empty {}

/// The value of cookie `name` in the request, outside the session layer's cookie.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxy = "10.0.0.2".parse().unwrap();
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let xff = headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.5")]);
        // An untrusted peer's headers are ignored.
        assert_eq!(client_ip(proxy, &xff, &[]), proxy);
        // The nearest untrusted hop, walking back from the proxy.
        assert_eq!(
            client_ip(proxy, &xff, &trusted),
            "203.0.113.7".parse::<std::net::IpAddr>().unwrap()
        );
        let fwd = headers(&[(
            "forwarded",
            r#"for="[2001:db8::1]:4711";proto=https, for=10.0.0.9"#,
        )]);
        // X-Forwarded-For, which the proxy appends to, wins over a Forwarded the client sent.
        let both = headers(&[
            ("forwarded", "for=192.0.2.1"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(
            client_ip(proxy, &both, &trusted),
            "203.0.113.8".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(proxy, &fwd, &trusted),
            "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
        );
        // Every hop trusted: the first one.
        let inner = headers(&[("x-forwarded-for", "10.1.1.1, 10.0.0.5")]);
        assert_eq!(
            client_ip(proxy, &inner, &trusted),
            "10.1.1.1".parse::<std::net::IpAddr>().unwrap()
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
