-- One row that /readyz rewrites: readiness means the database can be written, not only read
-- (a lock held by another process, a full disk or a read-only file make it fail).
CREATE TABLE health (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    checks INTEGER NOT NULL
);
INSERT INTO health (id, checks) VALUES (1, 0);
