//! Rows as SQLite returns them (`sqlx::FromRow`), and their conversion into domain types, which
//! know nothing of storage. Column lists remain only for the batched INSERTs of `writer.rs`.

use super::OrBackend;
use crate::domain::{
    AuditEvent, Client, ClientLifetimes, EmailToken, Grant, GrantType, Invitation, MagicLink,
    OutboxMessage, SigningAlg, StoredPasskey, StoredToken, TokenKind, User,
};
use crate::store::{StoreResult, StoredKey};
use anyhow::Context as _;

macro_rules! grant_cols {
    () => {
        "id, user_id, client_id, scope, auth_time, amr, sid, created_at, expires_at, revoked_at, \
         claims"
    };
}

macro_rules! token_cols {
    () => {
        "token_hash, kind, grant_id, client_id, user_id, scope, created_at, expires_at, \
         consumed_at, revoked_at, claims, parent"
    };
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: String,
    username: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    /// JSON.
    profile: String,
    is_admin: bool,
    disabled: bool,
    security_notices: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = crate::store::StoreError;

    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(User {
            profile: json(&r.profile, "profile")?,
            id: r.id,
            username: r.username,
            email: r.email,
            email_verified: r.email_verified,
            name: r.name,
            is_admin: r.is_admin,
            disabled: r.disabled,
            security_notices: r.security_notices,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Optional JSON, e.g. requested claims.
fn json_opt<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    column: &str,
) -> StoreResult<Option<T>> {
    text.map(|t| json(t, column)).transpose()
}

/// Lists are stored as JSON text.
#[derive(sqlx::FromRow)]
pub(super) struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    first_party: bool,
    id_token_alg: String,
    refresh_token_cap: i64,
    refresh_always: bool,
    require_passkey: bool,
    allow_magic_link: bool,
    allowed_groups: String,
    logo_uri: Option<String>,
    access_token_ttl: Option<i64>,
    id_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    previous_secret_hash: Option<String>,
    previous_secret_until: Option<i64>,
    created_at: i64,
}

fn ttl(v: Option<i64>, column: &str) -> StoreResult<Option<u32>> {
    v.map(|t| {
        u32::try_from(t)
            .with_context(|| format!("{column} out of range: {t}"))
            .or_backend()
    })
    .transpose()
}

fn json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .with_context(|| format!("column {column} holds invalid JSON"))
        .or_backend()
}

pub(super) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).or_backend()
}

impl TryFrom<ClientRow> for Client {
    type Error = crate::store::StoreError;

    fn try_from(r: ClientRow) -> StoreResult<Self> {
        Ok(Client {
            redirect_uris: json(&r.redirect_uris, "redirect_uris")?,
            post_logout_redirect_uris: json(
                &r.post_logout_redirect_uris,
                "post_logout_redirect_uris",
            )?,
            grant_types: json::<Vec<GrantType>>(&r.grant_types, "grant_types")?,
            scopes: json(&r.scopes, "scopes")?,
            id_token_alg: SigningAlg::parse(&r.id_token_alg)
                .with_context(|| format!("unknown id_token_alg {:?}", r.id_token_alg))
                .or_backend()?,
            refresh_token_cap: u32::try_from(r.refresh_token_cap)
                .with_context(|| format!("refresh_token_cap out of range: {}", r.refresh_token_cap))
                .or_backend()?,
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            first_party: r.first_party,
            refresh_always: r.refresh_always,
            require_passkey: r.require_passkey,
            allow_magic_link: r.allow_magic_link,
            allowed_groups: json(&r.allowed_groups, "allowed_groups")?,
            logo_uri: r.logo_uri,
            lifetimes: ClientLifetimes {
                access_token: ttl(r.access_token_ttl, "access_token_ttl")?,
                id_token: ttl(r.id_token_ttl, "id_token_ttl")?,
                refresh_token: ttl(r.refresh_token_ttl, "refresh_token_ttl")?,
            },
            previous_secret: r.previous_secret_hash.zip(r.previous_secret_until),
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct GrantRow {
    id: String,
    user_id: String,
    client_id: String,
    scope: String,
    auth_time: i64,
    amr: String,
    sid: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    claims: Option<String>,
}

impl TryFrom<GrantRow> for Grant {
    type Error = crate::store::StoreError;

    fn try_from(r: GrantRow) -> StoreResult<Self> {
        Ok(Grant {
            claims: json_opt(r.claims.as_deref(), "claims")?,
            id: r.id,
            user_id: r.user_id,
            client_id: r.client_id,
            scope: r.scope,
            auth_time: r.auth_time,
            amr: r.amr,
            sid: r.sid,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    token_hash: String,
    kind: String,
    grant_id: Option<String>,
    client_id: String,
    user_id: Option<String>,
    scope: String,
    created_at: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
    revoked_at: Option<i64>,
    claims: Option<String>,
    parent: Option<String>,
}

impl TryFrom<TokenRow> for StoredToken {
    type Error = crate::store::StoreError;

    fn try_from(r: TokenRow) -> StoreResult<Self> {
        Ok(StoredToken {
            kind: TokenKind::parse(&r.kind)
                .with_context(|| format!("unknown token kind {:?}", r.kind))
                .or_backend()?,
            token_hash: r.token_hash,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_id: r.user_id,
            scope: r.scope,
            created_at: r.created_at,
            expires_at: r.expires_at,
            consumed_at: r.consumed_at,
            revoked_at: r.revoked_at,
            claims: json_opt(r.claims.as_deref(), "claims")?,
            parent: r.parent,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct KeyRow {
    kid: String,
    alg: String,
    sealed_private_key: Vec<u8>,
    public_jwk: String,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
}

impl From<KeyRow> for StoredKey {
    fn from(r: KeyRow) -> Self {
        StoredKey {
            kid: r.kid,
            alg: r.alg,
            sealed_private_key: r.sealed_private_key,
            public_jwk: r.public_jwk,
            created_at: r.created_at,
            activates_at: r.activates_at,
            retired_at: r.retired_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    pub(super) id: i64,
    at: i64,
    event: String,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    outcome: String,
    detail: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            at: r.at,
            event: r.event,
            user_id: r.user_id,
            client_id: r.client_id,
            ip: r.ip,
            user_agent: r.user_agent,
            outcome: r.outcome,
            detail: r.detail,
        }
    }
}

/// A refresh token with its grant, read in one query (grant columns prefixed `g_`).
#[derive(sqlx::FromRow)]
pub(super) struct RefreshRow {
    #[sqlx(flatten)]
    token: TokenRow,
    g_id: String,
    g_user_id: String,
    g_client_id: String,
    g_scope: String,
    g_auth_time: i64,
    g_amr: String,
    g_sid: String,
    g_created_at: i64,
    g_expires_at: i64,
    g_revoked_at: Option<i64>,
    g_claims: Option<String>,
}

impl RefreshRow {
    pub(super) fn split(self) -> StoreResult<(StoredToken, Grant)> {
        let grant = Grant::try_from(GrantRow {
            id: self.g_id,
            user_id: self.g_user_id,
            client_id: self.g_client_id,
            scope: self.g_scope,
            auth_time: self.g_auth_time,
            amr: self.g_amr,
            sid: self.g_sid,
            created_at: self.g_created_at,
            expires_at: self.g_expires_at,
            revoked_at: self.g_revoked_at,
            claims: self.g_claims,
        })?;
        Ok((StoredToken::try_from(self.token)?, grant))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct InvitationRow {
    id: String,
    username: Option<String>,
    email: Option<String>,
    name: Option<String>,
    /// JSON.
    groups: String,
    is_admin: bool,
    uses: i64,
    used: i64,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    emailed: bool,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = crate::store::StoreError;

    fn try_from(r: InvitationRow) -> StoreResult<Self> {
        let count = |v: i64, what: &str| {
            u32::try_from(v)
                .with_context(|| format!("{what} out of range: {v}"))
                .or_backend()
        };
        Ok(Invitation {
            groups: json(&r.groups, "groups")?,
            uses: count(r.uses, "uses")?,
            used: count(r.used, "used")?,
            id: r.id,
            username: r.username,
            email: r.email,
            name: r.name,
            is_admin: r.is_admin,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            emailed: r.emailed,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PasskeyRow {
    id: String,
    user_id: String,
    credential_id: Vec<u8>,
    name: String,
    aaguid: Option<String>,
    passkey: String,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<PasskeyRow> for StoredPasskey {
    type Error = crate::store::StoreError;

    fn try_from(r: PasskeyRow) -> StoreResult<Self> {
        Ok(StoredPasskey {
            sign_count: u32::try_from(r.sign_count)
                .with_context(|| format!("sign_count out of range: {}", r.sign_count))
                .or_backend()?,
            id: r.id,
            user_id: r.user_id,
            credential_id: r.credential_id,
            name: r.name,
            aaguid: r.aaguid,
            passkey_json: r.passkey,
            backup_eligible: r.backup_eligible,
            backup_state: r.backup_state,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct OutboxRow {
    id: String,
    recipient: String,
    subject: String,
    body: Option<Vec<u8>>,
    kind: String,
    user_id: Option<String>,
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = crate::store::StoreError;

    fn try_from(r: OutboxRow) -> StoreResult<Self> {
        Ok(OutboxMessage {
            attempts: u32::try_from(r.attempts)
                .with_context(|| format!("attempts out of range: {}", r.attempts))
                .or_backend()?,
            id: r.id,
            recipient: r.recipient,
            subject: r.subject,
            sealed_body: r.body.unwrap_or_default(),
            kind: r.kind,
            user_id: r.user_id,
            created_at: r.created_at,
            next_attempt_at: r.next_attempt_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct MagicLinkRow {
    id: String,
    token_hash: String,
    user_id: String,
    binding_hash: String,
    request_id: Option<String>,
    code_hash: Option<String>,
    code_tries: i64,
    requested_ip: Option<String>,
    requested_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<MagicLinkRow> for MagicLink {
    type Error = crate::store::StoreError;

    fn try_from(r: MagicLinkRow) -> StoreResult<Self> {
        Ok(MagicLink {
            code_tries: u32::try_from(r.code_tries)
                .with_context(|| format!("code_tries out of range: {}", r.code_tries))
                .or_backend()?,
            id: r.id,
            token_hash: r.token_hash,
            user_id: r.user_id,
            binding_hash: r.binding_hash,
            request_id: r.request_id,
            code_hash: r.code_hash,
            requested_ip: r.requested_ip,
            requested_at: r.requested_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EmailTokenRow {
    id: String,
    token_hash: String,
    purpose: String,
    user_id: String,
    email: String,
    created_at: i64,
    not_before: i64,
    expires_at: i64,
    used_at: Option<i64>,
    cancelled_at: Option<i64>,
}

impl TryFrom<EmailTokenRow> for EmailToken {
    type Error = crate::store::StoreError;

    fn try_from(r: EmailTokenRow) -> StoreResult<Self> {
        Ok(EmailToken {
            purpose: crate::domain::EmailPurpose::parse(&r.purpose)
                .with_context(|| format!("unknown email token purpose {:?}", r.purpose))
                .or_backend()?,
            id: r.id,
            token_hash: r.token_hash,
            user_id: r.user_id,
            email: r.email,
            created_at: r.created_at,
            not_before: r.not_before,
            expires_at: r.expires_at,
            used_at: r.used_at,
            cancelled_at: r.cancelled_at,
        })
    }
}
