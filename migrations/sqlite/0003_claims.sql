-- The standard claims of OIDC Core §5.1 beyond name and email (given_name, address, phone...),
-- as one JSON object: they are read and written whole, never searched.
ALTER TABLE users ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';
-- What the claims request parameter (OIDC Core §5.5) asked for, as JSON: kept with the grant for
-- tokens issued on refresh, and with each access token so that UserInfo needs no second read.
ALTER TABLE grants ADD COLUMN claims TEXT;
ALTER TABLE tokens ADD COLUMN claims TEXT;
