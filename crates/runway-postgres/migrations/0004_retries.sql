-- A job's retries, for the link from a job to the jobs that ran it again (few jobs have any).
CREATE INDEX jobs_retries ON jobs (retry_of, id) WHERE retry_of IS NOT NULL;
