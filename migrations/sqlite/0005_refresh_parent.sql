-- The refresh token a refresh token replaced, so that a rotated token presented again can be
-- told apart: before its successor has been used (a concurrent or retried refresh, answered
-- within the grace window) or after (a replay, which revokes the grant).
ALTER TABLE tokens ADD COLUMN parent TEXT;
CREATE INDEX tokens_parent ON tokens (parent) WHERE parent IS NOT NULL;
