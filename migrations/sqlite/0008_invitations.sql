-- Invitations: a link that lets someone create their account (and register a passkey), with the
-- username, email, groups and admin flag the inviter chose. Only the token's hash is stored.
CREATE TABLE invitations (
    id         TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    username   TEXT COLLATE NOCASE,
    email      TEXT COLLATE NOCASE,
    name       TEXT,
    -- JSON list of group names.
    groups     TEXT NOT NULL DEFAULT '[]',
    is_admin   INTEGER NOT NULL DEFAULT 0,
    -- Accounts it may create, and created so far.
    uses       INTEGER NOT NULL CHECK (uses > 0),
    used       INTEGER NOT NULL DEFAULT 0,
    -- 'cli', or the id of the administrator who made it.
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
