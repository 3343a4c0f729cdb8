//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! client_secret_basic, client_secret_post, or none for public clients.

use crate::crypto::{constant_time_eq, token_hash};
use crate::domain::{AuditEvent, Client, ClientKind, RequestMeta};
use crate::oidc::{ProtocolError, ProtocolResult, Provider};

/// How the client presented itself.
#[derive(Default)]
pub struct ClientCredentials {
    /// From the Authorization: Basic header.
    pub basic: Option<(String, String)>,
    /// Sent an Authorization header that was not valid Basic.
    pub malformed_header: bool,
    pub form_id: Option<String>,
    pub form_secret: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("basic_id", &self.basic.as_ref().map(|(id, _)| id))
            .field("form_id", &self.form_id)
            .finish_non_exhaustive()
    }
}

/// Authenticates the client; `allow_public` lets a public client in with its id alone.
/// Throttled: a client id or IP with too many failures is refused (Limited) before its
/// credentials are checked, and every `invalid_client` counts as a failure.
pub async fn authenticate(
    p: &Provider,
    creds: &ClientCredentials,
    allow_public: bool,
    meta: &RequestMeta,
) -> ProtocolResult<Client> {
    let id = creds
        .basic
        .as_ref()
        .map(|(id, _)| id.as_str())
        .or(creds.form_id.as_deref())
        .unwrap_or("");
    let ip = meta.ip.as_deref().unwrap_or("");
    let t = &p.throttles;
    if let Some(retry_after) = t.client.blocked(id).or_else(|| t.client_ip.blocked(ip)) {
        return Err(ProtocolError::Limited { retry_after });
    }
    let result = check(p, creds, allow_public).await;
    if !matches!(&result, Err(e) if e.code() == Some("invalid_client")) {
        return result;
    }
    let by_client = t.client.failed(id);
    let by_ip = t.client_ip.failed(ip);
    let Some(retry_after) = by_client.max(by_ip) else {
        return result;
    };
    let which = if by_client.is_some() { "client" } else { "ip" };
    p.audit
        .record(AuditEvent {
            at: p.now(),
            event: "client_auth".into(),
            user_id: None,
            client_id: Some(id.chars().take(128).collect()),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            outcome: "limited".into(),
            detail: Some(format!(
                "too many failures for this {which}; blocked {retry_after} s"
            )),
        })
        .await;
    Err(ProtocolError::Limited { retry_after })
}

async fn check(
    p: &Provider,
    creds: &ClientCredentials,
    allow_public: bool,
) -> ProtocolResult<Client> {
    let basic = creds.basic.is_some();
    if creds.malformed_header {
        return Err(ProtocolError::invalid_client(true));
    }
    if basic && creds.form_secret.is_some() {
        return Err(ProtocolError::invalid_request(
            "use one client authentication method",
        ));
    }
    let (id, secret) = match (&creds.basic, &creds.form_id, &creds.form_secret) {
        (Some((id, secret)), form_id, _) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err(ProtocolError::invalid_request(
                    "client_id does not match the authenticated client",
                ));
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id), secret) => (id.clone(), secret.clone()),
        (None, None, _) => return Err(ProtocolError::invalid_client(false)),
    };
    let Some(client) = p.clients.get(&id).await? else {
        // Spend the same hash as a real check so timing does not reveal which ids exist.
        let _ = token_hash(secret.as_deref().unwrap_or(""));
        return Err(ProtocolError::invalid_client(basic));
    };
    match (client.kind(), secret) {
        (ClientKind::Confidential, Some(secret)) => {
            let expected = client.secret_hash.as_deref().unwrap_or("");
            if constant_time_eq(token_hash(&secret).as_bytes(), expected.as_bytes()) {
                Ok(client)
            } else {
                Err(ProtocolError::invalid_client(basic))
            }
        }
        (ClientKind::Public, None) if allow_public => Ok(client),
        _ => Err(ProtocolError::invalid_client(basic)),
    }
}
