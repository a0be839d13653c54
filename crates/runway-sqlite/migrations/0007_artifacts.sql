-- Files jobs produced. `path` is relative to the data directory's `artifacts/`; a retried tree's
-- carried child shares its original's files, so a file is removed only when no row names it.
CREATE TABLE artifacts (
    job_id       INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    path         TEXT    NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
CREATE INDEX artifacts_path ON artifacts (path);
