-- Log bytes the store could not keep (a full disk), so a cut log never passes as whole.
ALTER TABLE jobs ADD COLUMN log_lost INTEGER NOT NULL DEFAULT 0;

-- Every start of the job, counted or not against max_attempts (a hand-back at shutdown and a
-- never-started attempt are not): a command sees it as RUNWAY_RUN.
ALTER TABLE jobs ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET runs = attempt;
