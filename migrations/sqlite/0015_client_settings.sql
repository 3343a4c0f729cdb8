-- Application settings editable in the admin UI: a logo, the client's own token lifetimes
-- (seconds; NULL: the server's), and the secret being rotated out, valid until a deadline.
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN access_token_ttl INTEGER;
ALTER TABLE clients ADD COLUMN id_token_ttl INTEGER;
ALTER TABLE clients ADD COLUMN refresh_token_ttl INTEGER;
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_until INTEGER;
