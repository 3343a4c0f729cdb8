-- Session rows are now keyed by the SHA-256 of the session id, which only the cookie holds.
-- Rows keyed by a clear id can no longer be found: drop them (their users sign in again).
DELETE FROM sessions;
