-- Mail waiting to be sent, so that a slow or down mail server never delays a page and a restart
-- loses nothing. The body is sealed with the instance's key (it may hold a sign-in link) and
-- dropped once the message is sent.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            BLOB,
    kind            TEXT NOT NULL,
    user_id         TEXT,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    -- Given up after too many failed attempts.
    failed_at       INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
