-- Where each appended chunk of log came from: the attempt, when it was stored (microseconds),
-- and where its stream changes (`0o,120e`: stdout from byte 0, stderr from byte 120; `r` is
-- runway's own notes). Chunks stored before have none: attempt 0, no time, stdout.
ALTER TABLE job_logs ADD COLUMN attempt integer NOT NULL DEFAULT 0;
ALTER TABLE job_logs ADD COLUMN at bigint;
ALTER TABLE job_logs ADD COLUMN streams text NOT NULL DEFAULT '';
