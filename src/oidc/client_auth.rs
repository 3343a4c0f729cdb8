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
/// Throttled per client and IP and per IP: a pair with too many failed secrets is refused
/// (Limited) before its credentials are checked. A public client that sends no secret where one
/// is needed (revocation) is refused but counts as no guess.
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
    let ip = crate::throttle::ip_key(meta.ip.as_deref());
    let pair = format!("{id}|{ip}");
    let t = &p.throttles;
    if let Some(retry_after) = t.client.blocked(&pair).or_else(|| t.client_ip.blocked(&ip)) {
        return Err(ProtocolError::Limited { retry_after });
    }
    let (result, guessed) = check(p, creds, allow_public).await;
    if !guessed {
        return result;
    }
    let refusal = match (t.client.failed(&pair), t.client_ip.failed(&ip)) {
        (Some(r), _) => (r, "client from this address"),
        (_, Some(r)) => (r, "address"),
        _ => return result,
    };
    let (r, which) = refusal;
    if r.newly {
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
                    "too many failures for this {which}; blocked {} s",
                    r.retry_after
                )),
            })
            .await;
    }
    Err(ProtocolError::Limited {
        retry_after: r.retry_after,
    })
}

/// The check itself, and whether a failure was a guess (a wrong secret, an unknown client)
/// that counts against the throttle.
async fn check(
    p: &Provider,
    creds: &ClientCredentials,
    allow_public: bool,
) -> (ProtocolResult<Client>, bool) {
    match check_inner(p, creds, allow_public).await {
        Ok(client) => (Ok(client), false),
        Err((e, guessed)) => (Err(e), guessed),
    }
}

type Checked = Result<Client, (ProtocolError, bool)>;

fn no_guess(e: ProtocolError) -> (ProtocolError, bool) {
    (e, false)
}

async fn check_inner(p: &Provider, creds: &ClientCredentials, allow_public: bool) -> Checked {
    let basic = creds.basic.is_some();
    if creds.malformed_header {
        return Err(no_guess(ProtocolError::invalid_client(true)));
    }
    if basic && creds.form_secret.is_some() {
        return Err(no_guess(ProtocolError::invalid_request(
            "use one client authentication method",
        )));
    }
    let (id, secret) = match (&creds.basic, &creds.form_id, &creds.form_secret) {
        (Some((id, secret)), form_id, _) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err(no_guess(ProtocolError::invalid_request(
                    "client_id does not match the authenticated client",
                )));
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id), secret) => (id.clone(), secret.clone()),
        (None, None, _) => return Err(no_guess(ProtocolError::invalid_client(false))),
    };
    let client = match p.clients.get(&id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            // Spend the same hash as a real check so timing does not reveal which ids exist.
            let _ = token_hash(secret.as_deref().unwrap_or(""));
            return Err((ProtocolError::invalid_client(basic), true));
        }
        Err(e) => return Err(no_guess(e.into())),
    };
    match (client.kind(), secret) {
        (ClientKind::Confidential, Some(secret)) => {
            let presented = token_hash(&secret);
            // Every candidate is compared, so the answer takes as long whichever one matches.
            let matched = client.secret_hashes(p.now()).fold(false, |hit, expected| {
                constant_time_eq(presented.as_bytes(), expected.as_bytes()) | hit
            });
            if matched {
                Ok(client)
            } else {
                Err((ProtocolError::invalid_client(basic), true))
            }
        }
        (ClientKind::Public, None) if allow_public => Ok(client),
        // A public client where one is not allowed, or sending a secret it does not have, or a
        // confidential client without its secret: refused, but no secret was guessed.
        _ => Err(no_guess(ProtocolError::invalid_client(basic))),
    }
}
