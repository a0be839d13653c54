-- The store adds a job to `job_counts` itself, in the write that inserts it finished or moves
-- it to a final status: these two triggers made every insert and status change of a job run a
-- trigger program under a statement journal, about a sixth of the engine's write per job. The
-- delete trigger stays: a prune deletes thousands of jobs in one statement.
DROP TRIGGER job_counts_insert;
DROP TRIGGER job_counts_finish;
