-- Job trees: a job's place in its tree, its type's tree policy (copied at submit, like
-- max_attempts), the phase of its command, and its children counted by how they stand.
ALTER TABLE jobs ADD COLUMN root_id INTEGER;
ALTER TABLE jobs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN spawn_key TEXT;
ALTER TABLE jobs ADD COLUMN phase TEXT NOT NULL DEFAULT 'run' CHECK (phase IN ('run', 'join'));
ALTER TABLE jobs ADD COLUMN phase_attempt_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tree_join INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN on_child_failure TEXT NOT NULL DEFAULT 'fail_fast'
    CHECK (on_child_failure IN ('fail_fast', 'wait_all'));
ALTER TABLE jobs ADD COLUMN children_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN children_unfinished INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN children_succeeded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN children_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN children_cancelled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN child_failure TEXT;

-- A job's children in order; a spawn key is unique among siblings.
CREATE INDEX jobs_children ON jobs (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_child_key ON jobs (parent_id, spawn_key) WHERE spawn_key IS NOT NULL;
-- The jobs list shows roots by default.
CREATE INDEX jobs_roots ON jobs (id) WHERE parent_id IS NULL;
-- Every job of a tree, to delete or prune it whole.
CREATE INDEX jobs_tree ON jobs (root_id) WHERE root_id IS NOT NULL;
