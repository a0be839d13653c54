-- Recent throughput per queue (the dashboard's sparkline) reads jobs by the time they finished.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
