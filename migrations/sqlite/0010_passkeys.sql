-- Passkeys (WebAuthn credentials). Each user gets a random 16-byte WebAuthn user handle when
-- they register their first passkey: never the username or the email.
ALTER TABLE users ADD COLUMN webauthn_id BLOB;
CREATE UNIQUE INDEX users_webauthn_id ON users (webauthn_id);

CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Unique across all users: a credential belongs to one account.
    credential_id   BLOB NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    -- The authenticator's model (AAGUID, hex), when it told us.
    aaguid          TEXT,
    -- The verified public key and its counter, as webauthn-rs serialises them.
    passkey         TEXT NOT NULL,
    -- Copies of what sign-in compares and the account page shows.
    sign_count      INTEGER NOT NULL DEFAULT 0,
    backup_eligible INTEGER NOT NULL DEFAULT 0,
    backup_state    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- Clients that accept only a phishing-resistant sign-in (acr "phr").
ALTER TABLE clients ADD COLUMN require_passkey INTEGER NOT NULL DEFAULT 0;

-- The signed-in user of a browser session, so that the account page can list and end them.
ALTER TABLE sessions ADD COLUMN user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX sessions_user ON sessions (user_id);

-- The account page's "recent security events" reads one user's newest events.
CREATE INDEX audit_events_user ON audit_events (user_id, id);
