-- Keyway schema, version 1. Times are INTEGER unix seconds. Secrets (codes, tokens, client
-- secrets, setup tokens) are stored only as SHA-256 hex; passwords as argon2id PHC strings.
-- Never edit this file once landed: add a new numbered migration instead.

CREATE TABLE users (
    id             TEXT PRIMARY KEY NOT NULL,
    -- NOCASE so that "Alice" and "alice" cannot both exist and sign-in ignores case (ASCII only).
    username       TEXT NOT NULL COLLATE NOCASE UNIQUE,
    email          TEXT COLLATE NOCASE UNIQUE,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name           TEXT,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE passwords (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phc        TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE groups (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL COLLATE NOCASE UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
-- names_for_user, and the cascade when a user is deleted.
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    secret_hash               TEXT,
    -- JSON arrays of strings.
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    first_party               INTEGER NOT NULL DEFAULT 0,
    id_token_alg              TEXT NOT NULL,
    refresh_token_cap         INTEGER NOT NULL,
    -- Issue refresh tokens even when offline_access was not asked for.
    refresh_always            INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL
);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    -- Not a foreign key: the grant is created only when the code is redeemed.
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL,
    sid            TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    consumed_at    INTEGER
) WITHOUT ROWID;
-- Codes live a minute: the purge keeps the table small, so cascades from clients and users scan
-- it rather than every code insert paying for two more indexes.
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE grants (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    amr        TEXT NOT NULL,
    sid        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
-- cap_refresh_grants; also serves the cascade from clients.
CREATE INDEX grants_client_user ON grants (client_id, user_id, created_at);
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_expires ON grants (expires_at);

CREATE TABLE tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    -- NULL for client_credentials tokens, which belong to no grant and no user.
    grant_id    TEXT REFERENCES grants (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER,
    revoked_at  INTEGER
) WITHOUT ROWID;
-- revoke_grant, cap_refresh_grants and the cascade from grants.
CREATE INDEX tokens_grant ON tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX tokens_expires ON tokens (expires_at);
-- No index on client_id or user_id: every token insert would pay for them, while the cascades
-- they would speed up (deleting a client or a user) are rare admin actions and the purge keeps
-- the table to live tokens.

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    -- Space-separated scopes the user agreed to.
    scope      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    -- AES-256-GCM sealed with the instance secret; never stored in the clear.
    sealed_private_key BLOB NOT NULL,
    public_jwk         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    data       BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- No foreign keys on purpose: the audit trail must outlive deleted users and clients.
CREATE TABLE audit_events (
    -- Rowid order is insertion order; no AUTOINCREMENT bookkeeping on every insert.
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    user_id    TEXT,
    client_id  TEXT,
    ip         TEXT,
    user_agent TEXT,
    outcome    TEXT NOT NULL,
    detail     TEXT
);

CREATE TABLE admin_setup_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
