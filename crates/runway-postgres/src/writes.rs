//! The parts of writes that several `Store` operations share, inside one transaction ([`Tx`]).
//! A change of a job's status is decided by core (`transition::decide`, through
//! `tree::apply`) on the job as read — and locked — in the same transaction; this module
//! persists the answer guarded by what it read and records its event. No policy lives in SQL.

use std::sync::LazyLock;

use runway_core::clock::Timestamp;
use runway_core::event::EventKind;
use runway_core::job::{Job, JobId, JobStatus, NewJob};
use runway_core::keyed_insert;
use runway_core::spawn_under::{SpawnTx, spawn_under};
use runway_core::store::{
    AttemptRef, IdempotencyKey, Insertion, JobClaimParams, JobFinishParams, Spawn, TreeDeletion,
};
use runway_core::transition::{JobCommand, Transition};
use runway_core::tree::{self, TreeTx};
use serde_json::Value;

use crate::rows::{self, ARTIFACT_COLUMNS, JOB_COLUMNS, int, micros};
use crate::store::{PendingEvent, PgError, Tx};

/// The job, locked until the transaction ends: whoever else changes it waits.
pub(crate) fn locked_job(tx: &Tx, id: JobId) -> Result<Option<Job>, PgError> {
    if let Some(job) = tx.held_job(id) {
        return Ok(Some(job));
    }
    Ok(tx
        .lock_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"),
            &[&id.0],
        )?
        .pop())
}

/// The log size of the job if `attempt` still holds it (running, same attempt, same worker),
/// its row locked: what a runner's log or artifact write needs.
pub(crate) fn held_log_size(tx: &Tx, attempt: &AttemptRef) -> Result<Option<u64>, PgError> {
    Ok(tx
        .query_opt(
            "SELECT log_size FROM jobs
             WHERE id = $1 AND status = 'running' AND attempt = $2 AND worker = $3
             FOR UPDATE",
            &[&attempt.id.0, &int(attempt.attempt), &attempt.worker],
        )?
        .map(|row| row.get::<_, i64>(0) as u64))
}

/// Writes what core decided, guarded by what the job was when it was read: the same status,
/// attempt and worker. `None` when the guard no longer held.
fn persist(
    tx: &Tx,
    before: &Job,
    transition: &Transition,
    now: Timestamp,
) -> Result<Option<Job>, PgError> {
    let event = PendingEvent {
        job: transition.job.clone(),
        previous: Some(before.status),
        at: now,
        kind: transition.event,
        data: transition.event_data.clone(),
    };
    tx.persist(before, &transition.job, event)
}

/// The three things `tree::apply` needs of a transaction.
struct TreeWrite<'a, 't> {
    tx: &'a Tx<'t>,
}

impl TreeTx for TreeWrite<'_, '_> {
    type Error = PgError;

    fn job(&mut self, id: JobId) -> Result<Option<Job>, PgError> {
        locked_job(self.tx, id)
    }

    fn unfinished_children(&mut self, parent: JobId) -> Result<Vec<Job>, PgError> {
        self.tx.lock_jobs(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE parent_id = $1 AND status IN ('queued', 'scheduled', 'running', 'waiting')
                 ORDER BY id FOR UPDATE"
            ),
            &[&parent.0],
        )
    }

    fn persist(
        &mut self,
        before: &Job,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<bool, PgError> {
        Ok(persist(self.tx, before, transition, now)?.is_some())
    }
}

impl SpawnTx for TreeWrite<'_, '_> {
    fn sibling(&mut self, parent: JobId, key: &str) -> Result<Option<Job>, PgError> {
        self.tx
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE parent_id = $1 AND spawn_key = $2"),
                &[&parent.0, &key],
            )?
            .map(|row| rows::job(&row))
            .transpose()
    }

    fn insert(&mut self, child: NewJob, now: Timestamp) -> Result<Job, PgError> {
        insert_job(self.tx, child, now)
    }
}

/// Decides `command` for `job` in core and persists it with its effects on the tree.
pub(crate) fn apply(
    tx: &Tx,
    job: &Job,
    command: JobCommand,
    now: Timestamp,
) -> Result<Option<Job>, PgError> {
    tree::apply(&mut TreeWrite { tx }, job, command, now)
}

pub(crate) fn finish(tx: &Tx, params: &JobFinishParams) -> Result<Option<Job>, PgError> {
    let job = locked_job(tx, params.attempt.id)?;
    finish_locked(tx, job, params)
}

/// Ends many attempts: their jobs are read and locked in one statement, in id order (as lease
/// renewals lock them, so the two do not wait for each other in a cycle; a cycle through a
/// tree's parents is broken by PostgreSQL and the write runs again), then each is decided alone
/// on the job as this write holds it (a parent told of its child's end earlier in the batch is
/// read with its new counts).
pub(crate) fn finish_many(
    tx: &Tx,
    finished: &[JobFinishParams],
) -> Result<Vec<Option<Job>>, PgError> {
    let ids: Vec<i64> = finished.iter().map(|params| params.attempt.id.0).collect();
    tx.lock_jobs(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE"),
        &[&ids],
    )?;
    finished.iter().map(|params| finish(tx, params)).collect()
}

/// Ends the attempt `params` names on its job as read and locked, if the attempt holds it.
fn finish_locked(
    tx: &Tx,
    job: Option<Job>,
    params: &JobFinishParams,
) -> Result<Option<Job>, PgError> {
    let Some(job) = job else {
        return Ok(None);
    };
    let holds = job.status == JobStatus::Running
        && job.attempt == params.attempt.attempt
        && job.worker.as_deref() == Some(params.attempt.worker.as_str());
    if !holds {
        return Ok(None);
    }
    apply(
        tx,
        &job,
        JobCommand::Finish(params.outcome.clone()),
        params.now,
    )
}

/// Claims due jobs of a queue. The due jobs are locked first (`SKIP LOCKED`: servers claiming
/// at once take different ones), then the queue's room is counted under the queue's lock
/// (`runway_queue_room`), so that its `queue_limit` holds over every server while the lock is
/// held for as few statements as possible.
pub(crate) fn claim(tx: &Tx, params: &JobClaimParams) -> Result<Vec<Job>, PgError> {
    let mut claimed = if params.unanswered.is_empty() {
        Vec::new()
    } else {
        let times: Vec<i64> = params.unanswered.iter().copied().map(micros).collect();
        let mut found = rows::jobs(&tx.query(
            &format!(
                "UPDATE jobs SET lease_until = $5
                 WHERE id IN (SELECT id FROM jobs
                     WHERE status = 'running' AND queue = $1 AND worker = $2
                       AND started_at = ANY($3)
                     ORDER BY id LIMIT $4 FOR UPDATE)
                 RETURNING {JOB_COLUMNS}"
            ),
            &[
                &params.queue,
                &params.worker,
                &times,
                &i64::from(params.limit),
                &micros(params.lease_until),
            ],
        )?)?;
        found.sort_by_key(|job| job.id);
        found
    };
    let wanted = params.limit - claimed.len() as u32;
    if wanted == 0 {
        return Ok(claimed);
    }
    let due = tx.lock_jobs(
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE queue = $1 AND status IN ('queued', 'scheduled') AND run_at <= $2
               AND job_type = ANY($4)
               AND NOT EXISTS (SELECT 1 FROM queues WHERE name = $1 AND paused)
             ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED"
        ),
        &[
            &params.queue,
            &micros(params.now),
            &i64::from(wanted),
            &params.job_types,
        ],
    )?;
    if due.is_empty() {
        return Ok(claimed);
    }
    let room: i64 = tx
        .query_one(
            "SELECT runway_queue_room($1, $2)",
            &[&params.queue, &int(params.queue_limit)],
        )?
        .get(0);
    for job in due.into_iter().take(room.max(0) as usize) {
        let command = JobCommand::Claim {
            worker: params.worker.clone(),
            lease_until: params.lease_until,
        };
        if let Some(job) = apply(tx, &job, command, params.now)? {
            claimed.push(job);
        }
    }
    Ok(claimed)
}

/// Writes the searched text of the jobs a statement's `inserted` rows name (id, type, input):
/// the type and input, ASCII-lowercased, that the list's search narrows by (`job_query`).
const INSERT_TEXT: &str = "INSERT INTO job_text (id, text)
     SELECT id, lower((job_type || chr(10) || input) COLLATE \"C\") FROM inserted";

/// One job and its searched text; answers the job's id.
static INSERT_JOB: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS (
             INSERT INTO jobs (job_type, queue, status, priority, input, max_attempts,
                 parent_id, retry_of, created_at, run_at, root_id, depth, spawn_key,
                 phase, tree_join, on_child_failure, children_total,
                 children_unfinished, children_succeeded, output, finished_at, trigger,
                 owner_id, owner_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $16, $17, $18, $19, $20, $21, $22, $23, $24)
             RETURNING id, job_type, input),
         texts AS ({INSERT_TEXT})
         SELECT id FROM inserted"
    )
});

/// A batch of jobs given as arrays, with their ids, and their searched text.
static INSERT_PLAIN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS (
             INSERT INTO jobs (id, job_type, queue, status, priority, input, max_attempts,
                 parent_id, retry_of, created_at, run_at, root_id, depth, spawn_key, phase,
                 tree_join, on_child_failure, output, finished_at, trigger, owner_id,
                 owner_name)
             OVERRIDING SYSTEM VALUE
             SELECT id, job_type, queue, status, priority, input, max_attempts, parent_id,
                 retry_of, $10, run_at, root_id, depth, spawn_key, phase, tree_join,
                 on_child_failure, output, finished_at, trigger, owner_id, owner_name
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::integer[],
                 $6::text[], $7::integer[], $8::bigint[], $9::bigint[], $11::bigint[],
                 $12::bigint[], $13::integer[], $14::text[], $15::text[], $16::boolean[],
                 $17::text[], $18::text[], $19::bigint[], $20::text[], $21::bigint[],
                 $22::text[])
                 AS new (id, job_type, queue, status, priority, input, max_attempts,
                     parent_id, retry_of, run_at, root_id, depth, spawn_key, phase,
                     tree_join, on_child_failure, output, finished_at, trigger, owner_id,
                     owner_name)
             RETURNING id, job_type, input)
         {INSERT_TEXT}"
    )
});

/// Inserts one job with its `submitted` event, then its children below it; returns the job's
/// row as inserted.
pub(crate) fn insert_job(tx: &Tx, job: NewJob, now: Timestamp) -> Result<Job, PgError> {
    let counts = job.child_counts();
    let id: i64 = tx
        .query_one(
            &INSERT_JOB,
            &[
                &job.job_type,
                &job.queue,
                &job.status.as_str(),
                &job.priority,
                &job.input.to_string(),
                &int(job.max_attempts),
                &job.parent.map(|id| id.0),
                &job.retry_of.map(|id| id.0),
                &micros(now),
                &micros(job.run_at),
                &job.root.map(|id| id.0),
                &int(job.depth),
                &job.key,
                &job.phase.as_str(),
                &job.tree.join,
                &job.tree.on_child_failure.as_str(),
                &int(counts.total),
                &int(counts.unfinished),
                &int(counts.succeeded),
                &job.output.as_ref().map(Value::to_string),
                &job.status.is_terminal().then(|| micros(now)),
                &job.trigger,
                &job.owner.as_ref().map(|owner| owner.id.0),
                &job.owner.as_ref().map(|owner| owner.name.as_str()),
            ],
        )?
        .get(0);
    let data = job.submitted_event_data();
    if let (JobStatus::Succeeded, Some(original)) = (job.status, job.retry_of) {
        // A carried child keeps its original's artifacts: the same files, named again. The
        // original is held meanwhile, so that no server deletes its tree (and the files, named
        // by no committed row yet) before this commits.
        tx.execute("SELECT 1 FROM jobs WHERE id = $1 FOR SHARE", &[&original.0])?;
        tx.execute(
            &format!(
                "INSERT INTO artifacts ({ARTIFACT_COLUMNS})
                 SELECT $1, name, size, sha256, content_type, attempt, created_at, path
                 FROM artifacts WHERE job_id = $2"
            ),
            &[&id, &original.0],
        )?;
    }
    // The row as inserted, without reading it back.
    let (row, children) = job.inserted(JobId(id), now);
    record_submitted(tx, &row, data, now);
    for mut child in children {
        child.place_under(&row);
        insert_job(tx, child, now)?;
    }
    Ok(row)
}

/// Records the `submitted` event of a job just inserted, and counts it if it is finished.
fn record_submitted(tx: &Tx, row: &Job, data: Value, now: Timestamp) {
    tx.count_if_finished(None, row);
    tx.record(PendingEvent {
        job: row.clone(),
        previous: None,
        at: now,
        kind: EventKind::Submitted,
        data,
    });
}

/// Whether a job can go in a batch of [`insert_plain`]: no children to place under it, no
/// artifacts to carry from the job it retries.
pub(crate) fn is_plain(job: &NewJob) -> bool {
    job.children.is_empty() && !(job.status == JobStatus::Succeeded && job.retry_of.is_some())
}

/// Inserts plain jobs (see [`is_plain`]) with their `submitted` events in two statements,
/// whatever their number: their ids are drawn from the table's sequence first, in increasing
/// order, then every row goes in one `INSERT … SELECT FROM unnest(…)`.
pub(crate) fn insert_plain(
    tx: &Tx,
    jobs: Vec<NewJob>,
    now: Timestamp,
) -> Result<Vec<Job>, PgError> {
    let mut ids: Vec<i64> = tx
        .query(
            "SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, $1)",
            &[&(jobs.len() as i32)],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    ids.sort_unstable();
    let column = |value: fn(&NewJob) -> Option<String>| jobs.iter().map(value).collect::<Vec<_>>();
    let job_type: Vec<&str> = jobs.iter().map(|job| job.job_type.as_str()).collect();
    let queue: Vec<&str> = jobs.iter().map(|job| job.queue.as_str()).collect();
    let status: Vec<&str> = jobs.iter().map(|job| job.status.as_str()).collect();
    let priority: Vec<i32> = jobs.iter().map(|job| job.priority).collect();
    let input: Vec<String> = jobs.iter().map(|job| job.input.to_string()).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|job| int(job.max_attempts)).collect();
    let parent: Vec<Option<i64>> = jobs.iter().map(|job| job.parent.map(|id| id.0)).collect();
    let retry_of: Vec<Option<i64>> = jobs.iter().map(|job| job.retry_of.map(|id| id.0)).collect();
    let run_at: Vec<i64> = jobs.iter().map(|job| micros(job.run_at)).collect();
    let root: Vec<Option<i64>> = jobs.iter().map(|job| job.root.map(|id| id.0)).collect();
    let depth: Vec<i32> = jobs.iter().map(|job| int(job.depth)).collect();
    let spawn_key = column(|job| job.key.clone());
    let phase: Vec<&str> = jobs.iter().map(|job| job.phase.as_str()).collect();
    let tree_join: Vec<bool> = jobs.iter().map(|job| job.tree.join).collect();
    let on_child_failure: Vec<&str> = jobs
        .iter()
        .map(|job| job.tree.on_child_failure.as_str())
        .collect();
    let output = column(|job| job.output.as_ref().map(Value::to_string));
    let finished_at: Vec<Option<i64>> = jobs
        .iter()
        .map(|job| job.status.is_terminal().then(|| micros(now)))
        .collect();
    let trigger = column(|job| job.trigger.clone());
    let owner_id: Vec<Option<i64>> = jobs
        .iter()
        .map(|job| job.owner.as_ref().map(|owner| owner.id.0))
        .collect();
    let owner_name = column(|job| job.owner.as_ref().map(|owner| owner.name.clone()));
    tx.execute(
        &INSERT_PLAIN,
        &[
            &ids,
            &job_type,
            &queue,
            &status,
            &priority,
            &input,
            &max_attempts,
            &parent,
            &retry_of,
            &micros(now),
            &run_at,
            &root,
            &depth,
            &spawn_key,
            &phase,
            &tree_join,
            &on_child_failure,
            &output,
            &finished_at,
            &trigger,
            &owner_id,
            &owner_name,
        ],
    )?;
    Ok(jobs
        .into_iter()
        .zip(ids)
        .map(|(job, id)| {
            let data = job.submitted_event_data();
            let (row, _) = job.inserted(JobId(id), now);
            record_submitted(tx, &row, data, now);
            row
        })
        .collect())
}

/// The hash and the job of `key` if it was recorded since its `since` and the job still
/// exists. The key is locked first: a server inserting the same key at once waits, then finds
/// it.
fn recorded_key(tx: &Tx, key: &IdempotencyKey) -> Result<Option<(Vec<u8>, Job)>, PgError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(10) || $2, 0))",
        &[&key.scope, &key.key],
    )?;
    let recorded = tx.query_opt(
        "SELECT request_hash, job_id FROM idempotency_keys
         WHERE scope = $1 AND key = $2 AND created_at >= $3",
        &[&key.scope, &key.key, &micros(key.since)],
    )?;
    let Some(recorded) = recorded else {
        return Ok(None);
    };
    let hash: Vec<u8> = recorded.try_get(0)?;
    let job_id: i64 = recorded.try_get(1)?;
    let job = tx
        .query_opt(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
            &[&job_id],
        )?
        .map(|row| rows::job(&row))
        .transpose()?;
    Ok(job.map(|job| (hash, job)))
}

/// Inserts a batch with its idempotency keys, as `Store::job_insert_keyed` says (core's
/// `keyed_insert` decides).
pub(crate) fn insert_keyed(
    tx: &Tx,
    jobs: Vec<(NewJob, Option<IdempotencyKey>)>,
    now: Timestamp,
) -> Result<Insertion, PgError> {
    keyed_insert::insert_keyed(
        jobs,
        |key| recorded_key(tx, key),
        |job, key| {
            let row = insert_job(tx, job, now)?;
            if let Some(key) = key {
                tx.execute(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, job_id, created_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
                         job_id = excluded.job_id, created_at = excluded.created_at",
                    &[
                        &key.scope,
                        &key.key,
                        &key.request_hash,
                        &row.id.0,
                        &micros(now),
                    ],
                )?;
            }
            Ok(row)
        },
    )
}

/// Spawns `children` under the job of `attempt`, as `Store::job_spawn` says (core's
/// `spawn_under` decides); the parent is locked first, so siblings are spawned one at a time.
pub(crate) fn spawn(
    tx: &Tx,
    attempt: &AttemptRef,
    children: &[NewJob],
    max_children: u32,
    now: Timestamp,
) -> Result<Spawn, PgError> {
    let parent = locked_job(tx, attempt.id)?;
    spawn_under(
        &mut TreeWrite { tx },
        parent,
        attempt,
        children.to_vec(),
        max_children,
        now,
    )
}

/// Of `paths`, those no artifact names any more.
pub(crate) fn unreferenced(tx: &Tx, paths: Vec<String>) -> Result<Vec<String>, PgError> {
    let mut free = Vec::new();
    for path in paths {
        if !free.contains(&path)
            && tx
                .query_opt("SELECT 1 FROM artifacts WHERE path = $1 LIMIT 1", &[&path])?
                .is_none()
        {
            free.push(path);
        }
    }
    Ok(free)
}

/// Deletes the finished tree of root `id` whole (see `Store::job_delete_tree`).
pub(crate) fn delete_tree(tx: &Tx, id: JobId) -> Result<TreeDeletion, PgError> {
    let Some(job) = locked_job(tx, id)? else {
        return Ok(TreeDeletion::NotFound);
    };
    if let Some(parent) = job.parent {
        return Ok(TreeDeletion::NotRoot {
            root: job.root.unwrap_or(parent),
        });
    }
    let unfinished = tx.query_opt(
        "SELECT id, status FROM jobs WHERE (id = $1 OR root_id = $1)
           AND status IN ('queued', 'scheduled', 'running', 'waiting') LIMIT 1",
        &[&id.0],
    )?;
    if let Some(row) = unfinished {
        return Ok(TreeDeletion::Unfinished {
            job: JobId(row.try_get(0)?),
            status: rows::parsed(&row, 1)?,
        });
    }
    let jobs: Vec<JobId> = tx
        .query(
            "SELECT id FROM jobs WHERE id = $1 OR root_id = $1 ORDER BY id FOR UPDATE",
            &[&id.0],
        )?
        .iter()
        .map(|row| JobId(row.get(0)))
        .collect();
    let ids: Vec<i64> = jobs.iter().map(|job| job.0).collect();
    let paths: Vec<String> = tx
        .query(
            "DELETE FROM artifacts WHERE job_id = ANY($1) RETURNING path",
            &[&ids],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in ["events", "job_logs", "idempotency_keys"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE job_id = ANY($1)"),
            &[&ids],
        )?;
    }
    tx.execute("DELETE FROM jobs WHERE id = ANY($1)", &[&ids])?;
    // A job's directory is `JOB/`: free when no artifact's path starts with it.
    let mut directories = Vec::new();
    for job in &jobs {
        let named = tx.query_opt(
            "SELECT 1 FROM artifacts WHERE starts_with(path, $1) LIMIT 1",
            &[&format!("{job}/")],
        )?;
        if named.is_none() {
            directories.push(job.to_string());
        }
    }
    Ok(TreeDeletion::Deleted {
        jobs,
        unreferenced: unreferenced(tx, paths)?,
        directories,
    })
}
