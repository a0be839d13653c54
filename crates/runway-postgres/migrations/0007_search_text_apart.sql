-- A job's searched text (its type and input, ASCII-lowercased) moves out of the jobs table into
-- a table of its own, written once when the job is inserted. A status change cannot be a HOT
-- update (status is indexed), so it wrote a new version into every index of the jobs table,
-- the trigram index too: extracting the trigrams of the type and input again and adding them
-- to the index, at every claim and every finish (a quarter of the database's work per job with
-- a seven-byte input, nine tenths with 250 bytes of paths). A job's type and input never
-- change, so their trigrams need indexing once.
--
-- No server may insert a job between the copy below and the end of this migration: its job
-- would have no text. (Servers of an older runway must be stopped before the upgrade, see
-- docs/operations.md.)
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE job_text (
    id   bigint PRIMARY KEY,
    text text COLLATE "C" NOT NULL
);
INSERT INTO job_text (id, text)
    SELECT id, lower((job_type || chr(10) || input) COLLATE "C") FROM jobs;
CREATE INDEX job_text_trigrams ON job_text USING gin (text gin_trgm_ops);
DROP INDEX jobs_text;

-- Deleted with their jobs, however many one statement deletes (a prune deletes thousands).
CREATE FUNCTION job_text_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_text WHERE id IN (SELECT id FROM gone);
    RETURN NULL;
END $$;
CREATE TRIGGER job_text_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION job_text_remove();
