-- When a signing key starts signing. A rotated-in key is published first and signs only after
-- a pre-publication period, so that relying parties holding a cached JWKS already know it.
-- Existing keys have signed since before this column: 0.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
