-- Links sent by email for one account: verify the address, confirm a new address, recover an
-- account whose passkeys are lost (after a cooling-off period). Only the token's hash is stored.
CREATE TABLE email_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    -- 'verify', 'change' or 'recovery'.
    purpose      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The address the link went to (for 'change', the new one).
    email        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    -- It opens no earlier than this (recovery's cooling-off period).
    not_before   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    cancelled_at INTEGER
);
CREATE INDEX email_tokens_user ON email_tokens (user_id);

-- Security notices by email (a passkey added, the email changed, signed out everywhere).
ALTER TABLE users ADD COLUMN security_notices INTEGER NOT NULL DEFAULT 1;

-- Whether the invitation went out by email (redeeming it then proves the address).
ALTER TABLE invitations ADD COLUMN emailed INTEGER NOT NULL DEFAULT 0;
