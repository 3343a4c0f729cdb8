//! The WebAuthn ceremonies. Their state is kept server-side in the browser session, keyed by
//! challenge (a few may wait at once: an autofill request and a button, or two tabs), used at
//! most once and for `CEREMONY_TTL` seconds: a replayed, expired or foreign challenge finds no
//! state and fails.

use super::{authdata, names};
use crate::auth::{Attempt, Authenticated, Authenticator, CredentialError, CredentialResult};
use crate::crypto::b64url;
use crate::domain::{AuditEvent, AuthMethod, PasskeyUse, RequestMeta, StoredPasskey, User};
use base64::Engine as _;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::collections::BTreeMap;
use tower_sessions::Session;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, WebauthnError,
};

/// How long a ceremony may take, from options to answer.
pub const CEREMONY_TTL: i64 = 300;
/// Ceremonies one browser may have waiting per kind; the oldest goes first.
const MAX_WAITING: usize = 4;
const REGISTRATIONS: &str = "passkey_registrations";
const SIGNINS: &str = "passkey_signins";

#[derive(Serialize, Deserialize)]
struct Waiting<T> {
    state: T,
    issued_at: i64,
}

/// Parks a ceremony's state under its challenge.
async fn park<T: Serialize + DeserializeOwned>(
    session: &Session,
    slot: &str,
    challenge: &[u8],
    waiting: Waiting<T>,
) -> CredentialResult<()> {
    let mut all: BTreeMap<String, Waiting<T>> = session.get(slot).await?.unwrap_or_default();
    while all.len() >= MAX_WAITING {
        let oldest = all
            .iter()
            .min_by_key(|(_, w)| w.issued_at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => all.remove(&k),
            None => break,
        };
    }
    all.insert(b64url(challenge), waiting);
    session.insert(slot, &all).await?;
    Ok(())
}

/// Takes (and so uses up) the ceremony the browser answered, by the challenge in its client
/// data. `None` when there is none, or when it expired.
async fn take<T: Serialize + DeserializeOwned>(
    auth: &Authenticator,
    session: &Session,
    slot: &str,
    client_data_json: &[u8],
) -> CredentialResult<Option<T>> {
    let Some(challenge) = challenge_of(client_data_json) else {
        return Ok(None);
    };
    let mut all: BTreeMap<String, Waiting<T>> = session.get(slot).await?.unwrap_or_default();
    let found = all.remove(&challenge);
    let now = auth.now();
    all.retain(|_, w| now - w.issued_at <= CEREMONY_TTL);
    session.insert(slot, &all).await?;
    Ok(found
        .filter(|w| now - w.issued_at <= CEREMONY_TTL)
        .map(|w| w.state))
}

/// The challenge the browser signed, re-encoded the way `park` keys it.
fn challenge_of(client_data_json: &[u8]) -> Option<String> {
    let data: Value = serde_json::from_slice(client_data_json).ok()?;
    let text = data.get("challenge")?.as_str()?.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    Some(b64url(&bytes))
}

fn relying_party(auth: &Authenticator) -> CredentialResult<&Webauthn> {
    auth.webauthn
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("passkeys are off for this issuer").into())
}

fn internal(e: impl std::fmt::Display) -> CredentialError {
    CredentialError::Internal(anyhow::anyhow!("passkey: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Registration

/// Whose passkey a registration makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RegistrationFor {
    /// A signed-in user adds one to their account.
    Account { user_id: String },
    /// Someone who lost every passkey registers a new one with a recovery link (see
    /// `auth::email`).
    Recovery { token_hash: String, user_id: String },
    /// An invitee creates their account with it (see `auth::invitation`).
    Invitation {
        token_hash: String,
        username: String,
        name: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Registration {
    state: PasskeyRegistration,
    user_handle: Vec<u8>,
    purpose: RegistrationFor,
}

/// A verified new credential, not stored yet.
#[derive(Debug)]
pub struct NewPasskey {
    /// Its `user_id` is the account's, or empty for an invitee (who has no account yet).
    pub passkey: StoredPasskey,
    pub user_handle: Vec<u8>,
    pub purpose: RegistrationFor,
}

/// Starts a registration: the options for `navigator.credentials.create()` as JSON. Asks for a
/// discoverable credential (resident key required; the page retries with "preferred" for an
/// authenticator that cannot store one), user verification required, no attestation, the
/// user's random handle, and the user's passkeys excluded.
pub async fn start_registration(
    auth: &Authenticator,
    session: &Session,
    purpose: RegistrationFor,
) -> CredentialResult<Value> {
    let rp = relying_party(auth)?;
    let fresh = crate::crypto::random_bytes(16)?;
    let (handle, username, display, exclude) = match &purpose {
        RegistrationFor::Account { user_id } | RegistrationFor::Recovery { user_id, .. } => {
            let user = auth
                .users
                .by_id(user_id)
                .await?
                .ok_or(CredentialError::Refused)?;
            let handle = auth.passkeys.ensure_user_handle(user_id, &fresh).await?;
            let exclude: Vec<Vec<u8>> = auth
                .passkeys
                .list_for_user(user_id)
                .await?
                .into_iter()
                .map(|p| p.credential_id)
                .collect();
            let display = user.name.clone().unwrap_or_else(|| user.username.clone());
            (handle, user.username, display, exclude)
        }
        RegistrationFor::Invitation { username, name, .. } => {
            let display = name.clone().unwrap_or_else(|| username.clone());
            (fresh, username.clone(), display, Vec::new())
        }
    };
    let uuid = Uuid::from_slice(&handle).map_err(internal)?;
    let exclude = (!exclude.is_empty()).then_some(exclude);
    let (options, state) = rp
        .start_passkey_registration(uuid, &username, &display, exclude)
        .map_err(internal)?;
    let challenge = options.public_key.challenge.to_vec();
    let mut options = serde_json::to_value(&options).map_err(internal)?;
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    let waiting = Waiting {
        state: Registration {
            state,
            user_handle: handle,
            purpose,
        },
        issued_at: auth.now(),
    };
    park(session, REGISTRATIONS, &challenge, waiting).await?;
    Ok(options)
}

/// Verifies the browser's answer to a registration this session started. Refused (and
/// audited) when the ceremony is unknown, used, expired or fails verification, or when the
/// credential is registered already (to anyone).
pub async fn finish_registration(
    auth: &Authenticator,
    session: &Session,
    credential: &RegisterPublicKeyCredential,
    meta: &RequestMeta,
) -> CredentialResult<NewPasskey> {
    let rp = relying_party(auth)?;
    let waiting: Option<Registration> = take(
        auth,
        session,
        REGISTRATIONS,
        &credential.response.client_data_json,
    )
    .await?;
    let Some(reg) = waiting else {
        return refuse_registration(
            auth,
            None,
            "no such ceremony (unknown, used or expired)",
            meta,
        )
        .await;
    };
    let user_id = match &reg.purpose {
        RegistrationFor::Account { user_id } | RegistrationFor::Recovery { user_id, .. } => {
            Some(user_id.clone())
        }
        RegistrationFor::Invitation { .. } => None,
    };
    let passkey = match rp.finish_passkey_registration(credential, &reg.state) {
        Ok(p) => p,
        Err(e) => return refuse_registration(auth, user_id, &e.to_string(), meta).await,
    };
    let credential_id = passkey.cred_id().to_vec();
    if auth
        .passkeys
        .by_credential_id(&credential_id)
        .await?
        .is_some()
    {
        return refuse_registration(auth, user_id, "credential already registered", meta).await;
    }
    let data = authdata::read(&credential.response.attestation_object);
    let now = auth.now();
    Ok(NewPasskey {
        passkey: StoredPasskey {
            id: crate::crypto::random_id()?,
            user_id: user_id.unwrap_or_default(),
            credential_id,
            name: names::default_name(data.aaguid.as_deref(), meta.user_agent.as_deref()),
            aaguid: data.aaguid,
            passkey_json: serde_json::to_string(&passkey).map_err(internal)?,
            sign_count: data.sign_count,
            backup_eligible: data.backup_eligible,
            backup_state: data.backup_state,
            created_at: now,
            last_used_at: None,
        },
        user_handle: reg.user_handle,
        purpose: reg.purpose,
    })
}

async fn refuse_registration<T>(
    auth: &Authenticator,
    user_id: Option<String>,
    why: &str,
    meta: &RequestMeta,
) -> CredentialResult<T> {
    auth.record("passkey.register", user_id, "failure", why, meta)
        .await;
    Err(CredentialError::Refused)
}

// ---------------------------------------------------------------------------------------------
// Sign-in

/// How the sign-in page asks for a passkey.
#[derive(Debug, Clone)]
pub enum SigninMode {
    /// Conditional mediation: the browser offers passkeys in the username field's autofill.
    Autofill,
    /// The "Sign in with a passkey" button: any discoverable credential, no username.
    Button,
    /// Username first, then that user's passkeys (for security keys without a discoverable
    /// credential).
    Username(String),
}

#[derive(Serialize, Deserialize)]
enum Signin {
    Discoverable(DiscoverableAuthentication),
    Known {
        user_id: String,
        state: PasskeyAuthentication,
    },
    /// Options for a username with no passkeys (or no account): any answer fails.
    Decoy,
}

/// Starts a sign-in: the options for `navigator.credentials.get()` as JSON (with `mediation`
/// for autofill). For a username, the answer has the same shape whether or not the account
/// exists or has passkeys: a made-up credential id, stable per username, stands in.
pub async fn start_signin(
    auth: &Authenticator,
    session: &Session,
    mode: SigninMode,
) -> CredentialResult<Value> {
    let rp = relying_party(auth)?;
    let (options, state) = match mode {
        SigninMode::Autofill | SigninMode::Button => {
            let (mut options, state) = rp.start_discoverable_authentication().map_err(internal)?;
            if matches!(mode, SigninMode::Button) {
                options.mediation = None;
            }
            (options, Signin::Discoverable(state))
        }
        SigninMode::Username(name) => match known_passkeys(auth, &name).await? {
            Some((user, passkeys)) => {
                let (options, state) = rp
                    .start_passkey_authentication(&passkeys)
                    .map_err(internal)?;
                let user_id = user.id;
                (options, Signin::Known { user_id, state })
            }
            None => {
                let (mut options, _) = rp.start_discoverable_authentication().map_err(internal)?;
                options.mediation = None;
                options.public_key.extensions = None;
                let decoy = auth
                    .csrf_key
                    .tag(format!("decoy credential|{}", name.to_lowercase()).as_bytes())?;
                let mut v = serde_json::to_value(&options).map_err(internal)?;
                if let Some(pk) = v.get_mut("publicKey").and_then(Value::as_object_mut) {
                    let id: String = decoy.chars().take(22).collect();
                    pk.insert(
                        "allowCredentials".into(),
                        serde_json::json!([{ "type": "public-key", "id": id }]),
                    );
                }
                let challenge = options.public_key.challenge.to_vec();
                let waiting = Waiting {
                    state: Signin::Decoy,
                    issued_at: auth.now(),
                };
                park(session, SIGNINS, &challenge, waiting).await?;
                return Ok(v);
            }
        },
    };
    let challenge = options.public_key.challenge.to_vec();
    let waiting = Waiting {
        state,
        issued_at: auth.now(),
    };
    park(session, SIGNINS, &challenge, waiting).await?;
    serde_json::to_value(&options).map_err(internal)
}

/// An active user's passkeys, if they have any.
async fn known_passkeys(
    auth: &Authenticator,
    username: &str,
) -> CredentialResult<Option<(User, Vec<Passkey>)>> {
    let Some(user) = auth.users.by_username(username.trim()).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let passkeys: Vec<Passkey> = auth
        .passkeys
        .list_for_user(&user.id)
        .await?
        .iter()
        .filter_map(|p| serde_json::from_str(&p.passkey_json).ok())
        .collect();
    Ok((!passkeys.is_empty()).then_some((user, passkeys)))
}

/// Verifies the browser's answer (a PublicKeyCredential as JSON) to a sign-in this session
/// started; on success the passkey's counter and backup state are stored. Every refusal is audited with its reason; a counter
/// that went backwards (a possibly cloned authenticator) also as its own event.
pub async fn finish_signin(
    auth: &Authenticator,
    session: &Session,
    credential: &str,
    meta: &RequestMeta,
) -> CredentialResult<Authenticated> {
    let rp = relying_party(auth)?;
    // Every attempt counts against its IP before anything is checked; against its account once
    // the credential names one.
    auth.guard_ip(AuthMethod::Hwk, &Attempt::new("", meta), meta)
        .await?;
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return refuse(auth, None, "malformed answer", meta).await;
    };
    let credential = &credential;
    let waiting: Option<Signin> = take(
        auth,
        session,
        SIGNINS,
        &credential.response.client_data_json,
    )
    .await?;
    let Some(state) = waiting else {
        return refuse(
            auth,
            None,
            "no such ceremony (unknown, used or expired)",
            meta,
        )
        .await;
    };
    let stored = auth.passkeys.by_credential_id(&credential.raw_id).await?;
    let owner = match (&state, &stored) {
        (Signin::Decoy, _) => {
            return refuse(auth, None, "no passkey for this username", meta).await;
        }
        (_, None) => return refuse(auth, None, "unknown credential", meta).await,
        (Signin::Known { user_id, .. }, Some(p)) if *user_id == p.user_id => user_id.clone(),
        (Signin::Known { .. }, Some(_)) => {
            return refuse(auth, None, "credential of another user", meta).await;
        }
        (Signin::Discoverable(_), Some(p)) => {
            let handle = rp
                .identify_discoverable_authentication(credential)
                .map(|(uuid, _)| uuid.as_bytes().to_vec());
            let user_id = match handle {
                Ok(h) => auth.passkeys.user_for_handle(&h).await?,
                Err(_) => None,
            };
            if user_id.as_deref() != Some(p.user_id.as_str()) {
                return refuse(auth, None, "user handle does not own the credential", meta).await;
            }
            p.user_id.clone()
        }
    };
    let Some(stored) = stored else {
        return refuse(auth, None, "unknown credential", meta).await;
    };
    let user = auth.users.by_id(&owner).await?;
    let Some(user) = user else {
        return refuse(auth, None, "unknown user", meta).await;
    };
    auth.guard_account(AuthMethod::Hwk, &Attempt::new(&user.username, meta), meta)
        .await?;
    let mut passkey: Passkey = serde_json::from_str(&stored.passkey_json).map_err(internal)?;
    let result = match state {
        Signin::Discoverable(s) => {
            rp.finish_discoverable_authentication_v2(credential, s, &passkey)
        }
        Signin::Known { state, .. } => rp.finish_passkey_authentication(credential, &state),
        Signin::Decoy => Err(WebauthnError::CredentialNotFound),
    };
    let result = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            let why = "signature counter did not increase: the authenticator may be cloned";
            auth.record(
                "passkey.counter_regression",
                Some(user.id.clone()),
                "failure",
                why,
                meta,
            )
            .await;
            return refuse(auth, Some(&user), "counter regression", meta).await;
        }
        Err(e) => return refuse(auth, Some(&user), &e.to_string(), meta).await,
    };
    if !result.user_verified() {
        return refuse(auth, Some(&user), "user verification missing", meta).await;
    }
    if user.disabled {
        return refuse(auth, Some(&user), "account disabled", meta).await;
    }
    passkey.update_credential(&result);
    let recorded = auth
        .passkeys
        .record_use(&PasskeyUse {
            id: stored.id.clone(),
            previous_count: stored.sign_count,
            sign_count: result.counter(),
            backup_state: result.backup_state(),
            passkey_json: serde_json::to_string(&passkey).map_err(internal)?,
            at: auth.now(),
        })
        .await?;
    if !recorded {
        return refuse(
            auth,
            Some(&user),
            "counter changed by a concurrent sign-in",
            meta,
        )
        .await;
    }
    let kind = if stored.backup_eligible || result.backup_eligible() {
        AuthMethod::Swk
    } else {
        AuthMethod::Hwk
    };
    Ok(Authenticated {
        user,
        amr: vec![kind, AuthMethod::User],
        auth_time: auth.now(),
    })
}

async fn refuse<T>(
    auth: &Authenticator,
    user: Option<&User>,
    why: &str,
    meta: &RequestMeta,
) -> CredentialResult<T> {
    auth.refused(AuthMethod::Hwk, user, why, meta).await;
    Err(CredentialError::Refused)
}

impl Authenticator {
    /// Records an account event of `user_id` (`detail` for the audit log only).
    pub(crate) async fn record(
        &self,
        event: &str,
        user_id: Option<String>,
        outcome: &str,
        detail: &str,
        meta: &RequestMeta,
    ) {
        self.audit
            .record(AuditEvent {
                at: self.now(),
                event: event.into(),
                user_id,
                client_id: None,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                outcome: outcome.into(),
                detail: Some(detail.into()),
            })
            .await;
    }
}
