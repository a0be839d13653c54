-- Reads that stay fast with a million jobs: finished jobs counted as they finish instead of
-- counted on every read, and a trigram index that finds the jobs a search can match instead of
-- reading every input.

-- How many finished jobs stand in each final status, per queue, type and whether they are
-- roots. Counts of unfinished jobs are read from the `jobs_status` index instead: there are few
-- of them, and keeping them here would cost every claim a write. A finished job never changes
-- (terminal is final), so only a job's finish, its insert as finished (a child a retried tree
-- carries over) and its delete move these counts.
CREATE TABLE job_counts (
    queue    TEXT    NOT NULL,
    job_type TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    root     INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (queue, job_type, status, root)
) WITHOUT ROWID;

INSERT INTO job_counts (queue, job_type, status, root, count)
    SELECT queue, job_type, status, parent_id IS NULL, count(*) FROM jobs
    WHERE status IN ('succeeded', 'failed', 'cancelled')
    GROUP BY 1, 2, 3, 4;

CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs
WHEN new.status IN ('succeeded', 'failed', 'cancelled')
BEGIN
    INSERT INTO job_counts (queue, job_type, status, root, count)
        VALUES (new.queue, new.job_type, new.status, new.parent_id IS NULL, 1)
        ON CONFLICT (queue, job_type, status, root) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER job_counts_finish AFTER UPDATE OF status ON jobs
WHEN new.status IN ('succeeded', 'failed', 'cancelled') AND old.status IS NOT new.status
BEGIN
    INSERT INTO job_counts (queue, job_type, status, root, count)
        VALUES (new.queue, new.job_type, new.status, new.parent_id IS NULL, 1)
        ON CONFLICT (queue, job_type, status, root) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs
WHEN old.status IN ('succeeded', 'failed', 'cancelled')
BEGIN
    UPDATE job_counts SET count = count - 1
        WHERE queue = old.queue AND job_type = old.job_type AND status = old.status
          AND root = (old.parent_id IS NULL);
END;

-- Unfinished jobs by status and queue, covering what the queue view counts of them; replaces
-- the `(queue, status)` index, which made that count read every job.
DROP INDEX jobs_queue_status;
CREATE INDEX jobs_status_queue ON jobs (status, queue);

-- A job's type and input as trigrams, by job id. It only narrows a search to candidates (any
-- job holding every trigram looked up); the exact substring test then runs on those rows alone.
-- Contentless with `detail=none`: it stores which jobs hold a trigram and nothing else. The
-- store adds a job's text in the statement after the job's insert (a trigger would make SQLite
-- write the index out after every row).
CREATE VIRTUAL TABLE job_text USING fts5(
    text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram'
);

INSERT INTO job_text (rowid, text) SELECT id, job_type || char(10) || input FROM jobs;

CREATE TRIGGER job_text_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_text WHERE rowid = old.id;
END;
