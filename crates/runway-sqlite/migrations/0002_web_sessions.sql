-- Browser sessions: a token exchanged for an HttpOnly cookie. Only the cookie's SHA-256 hash
-- is kept.
CREATE TABLE web_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    hash       BLOB    NOT NULL UNIQUE,
    token_id   INTEGER NOT NULL REFERENCES tokens (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
