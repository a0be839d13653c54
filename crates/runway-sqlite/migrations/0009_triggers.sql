-- Jobs a trigger submitted name it; a trigger's recent runs are read newest first.
ALTER TABLE jobs ADD COLUMN trigger TEXT;
CREATE INDEX jobs_trigger ON jobs (trigger, id) WHERE trigger IS NOT NULL;

-- What a trigger must remember across restarts, as core encodes it (`state`, JSON), and a
-- watch trigger's record of its tree (`snapshot`), compared at start to find changes made
-- while the server was down.
CREATE TABLE triggers (
    name     TEXT PRIMARY KEY,
    state    TEXT NOT NULL,
    snapshot BLOB
) WITHOUT ROWID;
