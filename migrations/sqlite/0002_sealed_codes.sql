-- Authorization codes are sealed (AES-256-GCM) into the code itself and no longer stored. A code
-- is single-use because redeeming it inserts the grant whose id it carries: a second redemption
-- meets that grant's primary key.
DROP TABLE auth_codes;
