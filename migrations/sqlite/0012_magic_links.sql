-- Emailed sign-in links, bound to the browser that asked (by the hash of a cookie value). Only
-- hashes of the token, the binding and the one-time code are stored.
CREATE TABLE magic_links (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    binding_hash TEXT NOT NULL,
    request_id   TEXT,
    code_hash    TEXT,
    code_tries   INTEGER NOT NULL DEFAULT 0,
    requested_ip TEXT,
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX magic_links_binding ON magic_links (binding_hash);

-- Clients that refuse sign-ins by emailed link (their users get the other methods).
ALTER TABLE clients ADD COLUMN allow_magic_link INTEGER NOT NULL DEFAULT 1;
