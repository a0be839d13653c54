-- runway's first schema. Instants are microseconds since the Unix epoch (UTC).

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_type         TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'scheduled', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
    priority         INTEGER NOT NULL DEFAULT 0,
    input            TEXT    NOT NULL,
    output           TEXT,
    error            TEXT,
    progress         REAL,
    progress_message TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    parent_id        INTEGER REFERENCES jobs (id),
    retry_of         INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    lease_until      INTEGER,
    worker           TEXT,
    -- The running attempt's process (command jobs), so a restarted server can end it.
    pid              INTEGER,
    log_size         INTEGER NOT NULL DEFAULT 0
);

-- What a dispatcher claims: due jobs of one queue, highest priority, then oldest.
CREATE INDEX jobs_ready ON jobs (queue, priority DESC, id, run_at)
    WHERE status IN ('queued', 'scheduled');
CREATE INDEX jobs_scheduled ON jobs (queue, run_at) WHERE status = 'scheduled';
-- Listing by status; also finds running attempts whose lease ran out.
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_type ON jobs (job_type, id);
CREATE INDEX jobs_queue_status ON jobs (queue, status);

CREATE TABLE events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    status TEXT    NOT NULL,
    data   TEXT    NOT NULL
);
CREATE INDEX events_job ON events (job_id, seq);

-- A job's log as appended chunks; `offset` is the byte offset of the chunk in the whole log.
CREATE TABLE job_logs (
    job_id INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    size   INTEGER NOT NULL,
    data   TEXT    NOT NULL,
    PRIMARY KEY (job_id, offset)
) WITHOUT ROWID;

CREATE TABLE queues (
    name   TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);

-- API tokens: only a SHA-256 hash is kept, found by a public prefix.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix     TEXT    NOT NULL UNIQUE,
    hash       BLOB    NOT NULL,
    role       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
