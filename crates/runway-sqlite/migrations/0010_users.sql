-- Users: admins and members. A removed user keeps its row (its jobs still name it) and frees
-- its name.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    created_at INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE UNIQUE INDEX users_name ON users (name) WHERE removed_at IS NULL;

-- The tokens made before users existed were all admin tokens: they become the first admin's.
INSERT INTO users (name, role, created_at)
    SELECT 'admin', 'admin', min(created_at) FROM tokens HAVING count(*) > 0;
ALTER TABLE tokens ADD COLUMN user_id INTEGER REFERENCES users (id);
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
UPDATE tokens SET user_id = (SELECT id FROM users WHERE name = 'admin');
ALTER TABLE tokens DROP COLUMN role;
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX web_sessions_token ON web_sessions (token_id);

-- Who submitted each job: a member lists its own jobs by this index. Jobs made before users
-- existed, and the server's own (a trigger's), have none.
ALTER TABLE jobs ADD COLUMN owner_id INTEGER;
ALTER TABLE jobs ADD COLUMN owner_name TEXT;
CREATE INDEX jobs_owner ON jobs (owner_id, id) WHERE owner_id IS NOT NULL;

-- Sign-in codes: single use, valid for minutes; only a hash is kept.
CREATE TABLE signin_codes (
    hash       BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) WITHOUT ROWID;
