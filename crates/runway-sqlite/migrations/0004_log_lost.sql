-- Log bytes the store could not keep (a full disk), so a cut log never passes as whole.
ALTER TABLE jobs ADD COLUMN log_lost INTEGER NOT NULL DEFAULT 0;
