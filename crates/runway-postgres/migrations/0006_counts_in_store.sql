-- The store adds jobs to `job_counts` itself: a write gathers the jobs it inserts finished or
-- moves to a final status and adds them in one statement with its commit, one row per kind.
-- The two triggers ran a function per row, and a batch finishing hundreds of jobs of one kind
-- updated the same count row once per job, each update walking the versions the transaction
-- had already made of it. The delete trigger stays: a prune deletes thousands of jobs in one
-- statement.
DROP TRIGGER job_counts_insert ON jobs;
DROP TRIGGER job_counts_finish ON jobs;
