//! The [`Store`] operations as SQL. A change of a job's status is decided by core
//! (`transition::decide`) on the job as read in the same transaction; this module persists the
//! answer guarded by what it read (`WHERE id = ? AND status = ? AND attempt = ? AND worker IS ?`)
//! and writes its event in the same transaction. No policy lives in SQL.

use std::sync::Arc;

use async_trait::async_trait;
use runway_core::bus::{Change, JobChange, LogAppend};
use runway_core::clock::{Timestamp, micros_to_timestamp};
use runway_core::event::{Event, EventKind};
use runway_core::job::{
    ChildCounts, IllegalTransition, Job, JobId, JobStatus, NewJob, Progress, TreePolicy,
};
use runway_core::keyed_insert;
use runway_core::log_text::{ChunkMarks, LogText};
use runway_core::queue_history::{FinishedSample, HistoryRows, HistoryWindow};
use runway_core::spawn_under::{SpawnTx, spawn_under};
use runway_core::store::{
    Artifact, ArtifactUsage, AttemptRef, CancelOutcome, IdempotencyKey, Insertion, JobClaimParams,
    JobFinishParams, JobListParams, KindCount, LeaseState, LogChunk, QueueStats, QueueStatsBuilder,
    Spawn, Store, StoreError, TreeDeletion, TriggerRecord,
};
use runway_core::transition::{JobCommand, Transition};
use runway_core::tree::{self, TreeTx};
use runway_core::users::{Owner, UserId};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use crate::SqliteStore;
use crate::job_query;
use crate::writer::{Commit, Tx};

/// How long the health probe waits for the writer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) const JOB_COLUMNS: &str = "id, job_type, queue, status, priority, input, output, error, progress, \
     progress_message, attempt, max_attempts, parent_id, retry_of, cancel_requested, created_at, \
     run_at, started_at, finished_at, lease_until, worker, log_size, pid, log_lost, runs, root_id, \
     depth, spawn_key, phase, phase_attempt_base, tree_join, on_child_failure, children_total, \
     children_unfinished, children_succeeded, children_failed, children_cancelled, child_failure, \
     trigger, owner_id, owner_name";

/// A text column read into one of core's enums.
fn parsed<T: std::str::FromStr<Err = String>>(row: &Row, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse().map_err(|message: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            message.into(),
        )
    })
}

fn job_from_row(row: &Row) -> rusqlite::Result<Job> {
    let input: String = row.get(5)?;
    let output: Option<String> = row.get(6)?;
    let progress: Option<f64> = row.get(8)?;
    Ok(Job {
        id: JobId(row.get(0)?),
        job_type: row.get(1)?,
        queue: row.get(2)?,
        status: parsed(row, 3)?,
        priority: row.get(4)?,
        input: parse_json(&input),
        output: output.as_deref().map(parse_json),
        error: row.get(7)?,
        progress: progress.map(|fraction| Progress {
            fraction,
            message: row.get(9).ok().flatten(),
        }),
        attempt: row.get(10)?,
        max_attempts: row.get(11)?,
        parent: row.get::<_, Option<i64>>(12)?.map(JobId),
        retry_of: row.get::<_, Option<i64>>(13)?.map(JobId),
        cancel_requested: row.get(14)?,
        created_at: micros_to_timestamp(row.get(15)?),
        run_at: micros_to_timestamp(row.get(16)?),
        started_at: row.get::<_, Option<i64>>(17)?.map(micros_to_timestamp),
        finished_at: row.get::<_, Option<i64>>(18)?.map(micros_to_timestamp),
        lease_until: row.get::<_, Option<i64>>(19)?.map(micros_to_timestamp),
        worker: row.get(20)?,
        log_size: row.get::<_, i64>(21)? as u64,
        pid: row.get::<_, Option<i64>>(22)?.map(|pid| pid as u32),
        log_lost: row.get::<_, i64>(23)? as u64,
        runs: row.get(24)?,
        root: row.get::<_, Option<i64>>(25)?.map(JobId),
        depth: row.get(26)?,
        key: row.get(27)?,
        phase: parsed(row, 28)?,
        phase_attempt_base: row.get(29)?,
        tree: TreePolicy {
            join: row.get(30)?,
            on_child_failure: parsed(row, 31)?,
        },
        children: ChildCounts {
            total: row.get(32)?,
            unfinished: row.get(33)?,
            succeeded: row.get(34)?,
            failed: row.get(35)?,
            cancelled: row.get(36)?,
        },
        child_failure: row.get(37)?,
        trigger: row.get(38)?,
        owner: match (
            row.get::<_, Option<i64>>(39)?,
            row.get::<_, Option<String>>(40)?,
        ) {
            (Some(id), Some(name)) => Some(Owner {
                id: UserId(id),
                name,
            }),
            _ => None,
        },
    })
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn event_from_row(row: &Row) -> rusqlite::Result<Event> {
    let kind: String = row.get(3)?;
    let status: String = row.get(4)?;
    let data: String = row.get(5)?;
    Ok(Event {
        seq: row.get(0)?,
        job_id: JobId(row.get(1)?),
        at: micros_to_timestamp(row.get(2)?),
        kind: EventKind::parse(&kind).unwrap_or(EventKind::Progress),
        status: status.parse().unwrap_or(JobStatus::Queued),
        data: parse_json(&data),
    })
}

fn micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

/// Stores the event of a change and queues the change for the bus (sent after the commit).
/// `previous`: the job's status before the change, `None` for a new job.
fn insert_event(
    tx: &Tx,
    job: &Job,
    previous: Option<JobStatus>,
    at: Timestamp,
    kind: EventKind,
    data: &Value,
) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "INSERT INTO events (job_id, at, kind, status, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    statement.execute(params![
        job.id.0,
        micros(at),
        kind.as_str(),
        job.status.as_str(),
        data.to_string()
    ])?;
    let change = JobChange::new(tx.last_insert_rowid(), kind, at, Arc::new(job.clone()));
    tx.publish(Change::Job(match previous {
        Some(previous) => change.after(previous),
        None => change,
    }));
    Ok(())
}

/// Adds `job` to the kept counts of finished jobs (`job_counts`) when it stands in a final
/// status: called where a job is inserted or its status changes. A trigger kept them before;
/// it cost every insert and status change a trigger program and a statement journal, about a
/// sixth of a no-op job's write. A delete still moves them by trigger (a prune deletes by the
/// thousand in one statement).
fn count_if_finished(tx: &Tx, job: &Job) -> rusqlite::Result<()> {
    if !job.status.is_terminal() {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO job_counts (queue, job_type, status, root, count) VALUES (?1, ?2, ?3, ?4, 1)
         ON CONFLICT (queue, job_type, status, root) DO UPDATE SET count = count + 1",
    )?
    .execute(params![
        job.queue,
        job.job_type,
        job.status.as_str(),
        job.parent.is_none()
    ])?;
    Ok(())
}

fn get_job(connection: &Connection, id: JobId) -> rusqlite::Result<Option<Job>> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
    statement.query_row([id.0], job_from_row).optional()
}

/// The log size of the job if `attempt` still holds it (running, same attempt, same worker):
/// what a runner's log write needs.
fn held_log_size(connection: &Connection, attempt: &AttemptRef) -> rusqlite::Result<Option<u64>> {
    connection
        .prepare_cached(
            "SELECT log_size FROM jobs
             WHERE id = ?1 AND status = 'running' AND attempt = ?2 AND worker = ?3",
        )?
        .query_row(
            params![attempt.id.0, attempt.attempt, attempt.worker],
            |row| row.get::<_, i64>(0).map(|size| size as u64),
        )
        .optional()
}

/// Writes what core decided (`transition::decide`), guarded by what the job was when it was
/// read: the same status, attempt and worker. `None` when the guard no longer held.
fn persist(
    tx: &Tx,
    before: &Job,
    transition: &Transition,
    now: Timestamp,
) -> rusqlite::Result<Option<Job>> {
    let job = &transition.job;
    let updated = tx
        .prepare_cached(
            "UPDATE jobs SET status = ?1, attempt = ?2, runs = ?3, run_at = ?4, started_at = ?5,
                 finished_at = ?6, lease_until = ?7, worker = ?8, pid = ?9, error = ?10,
                 output = ?11, progress = ?12, progress_message = ?13, cancel_requested = ?14,
                 phase = ?19, phase_attempt_base = ?20, children_total = ?21,
                 children_unfinished = ?22, children_succeeded = ?23, children_failed = ?24,
                 children_cancelled = ?25, child_failure = ?26
             WHERE id = ?15 AND status = ?16 AND attempt = ?17 AND worker IS ?18",
        )?
        .execute(params![
            job.status.as_str(),
            job.attempt,
            job.runs,
            micros(job.run_at),
            job.started_at.map(micros),
            job.finished_at.map(micros),
            job.lease_until.map(micros),
            job.worker,
            job.pid,
            job.error,
            job.output.as_ref().map(Value::to_string),
            job.progress.as_ref().map(|progress| progress.fraction),
            job.progress
                .as_ref()
                .and_then(|progress| progress.message.clone()),
            job.cancel_requested,
            before.id.0,
            before.status.as_str(),
            before.attempt,
            before.worker,
            job.phase.as_str(),
            job.phase_attempt_base,
            job.children.total,
            job.children.unfinished,
            job.children.succeeded,
            job.children.failed,
            job.children.cancelled,
            job.child_failure,
        ])?;
    if updated == 0 {
        return Ok(None);
    }
    if job.status != before.status {
        count_if_finished(tx, job)?;
    }
    insert_event(
        tx,
        job,
        Some(before.status),
        now,
        transition.event,
        &transition.event_data,
    )?;
    Ok(Some(job.clone()))
}

/// A transition core refused: a bug in the caller, reported as a failed write.
fn illegal(error: IllegalTransition) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(error))
}

/// The three things `tree::apply` needs of a transaction: read a job, list its unfinished
/// children, persist a decision.
struct TreeWrite<'a, 'c> {
    tx: &'a Tx<'c>,
}

/// The error of a write the tree driver makes: SQLite's, or a transition core refused.
struct TreeError(rusqlite::Error);

impl From<IllegalTransition> for TreeError {
    fn from(error: IllegalTransition) -> Self {
        TreeError(illegal(error))
    }
}

impl From<rusqlite::Error> for TreeError {
    fn from(error: rusqlite::Error) -> Self {
        TreeError(error)
    }
}

impl TreeTx for TreeWrite<'_, '_> {
    type Error = TreeError;

    fn job(&mut self, id: JobId) -> Result<Option<Job>, TreeError> {
        Ok(get_job(self.tx, id)?)
    }

    fn unfinished_children(&mut self, parent: JobId) -> Result<Vec<Job>, TreeError> {
        let mut statement = self.tx.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE parent_id = ?1 AND status IN ('queued', 'scheduled', 'running', 'waiting')
             ORDER BY id"
        ))?;
        let rows = statement.query_map([parent.0], job_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<Job>>>()?)
    }

    fn persist(
        &mut self,
        before: &Job,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<bool, TreeError> {
        Ok(persist(self.tx, before, transition, now)?.is_some())
    }
}

impl SpawnTx for TreeWrite<'_, '_> {
    fn sibling(&mut self, parent: JobId, key: &str) -> Result<Option<Job>, TreeError> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE parent_id = ?1 AND spawn_key = ?2"
            ))?
            .query_row(params![parent.0, key], job_from_row)
            .optional()?)
    }

    fn insert(&mut self, child: NewJob, now: Timestamp) -> Result<Job, TreeError> {
        Ok(insert_job(self.tx, child, now)?)
    }
}

/// Decides `command` for `job` in core and persists it with its effects on the tree.
fn apply(tx: &Tx, job: &Job, command: JobCommand, now: Timestamp) -> rusqlite::Result<Option<Job>> {
    tree::apply(&mut TreeWrite { tx }, job, command, now).map_err(|TreeError(error)| error)
}

fn finish(tx: &Tx, params: &JobFinishParams) -> rusqlite::Result<Option<Job>> {
    let Some(job) = get_job(tx, params.attempt.id)? else {
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

fn claim(tx: &Tx, params: &JobClaimParams) -> rusqlite::Result<Vec<Job>> {
    let mut claimed = if params.unanswered.is_empty() {
        Vec::new()
    } else {
        let times: Vec<i64> = params.unanswered.iter().copied().map(micros).collect();
        let found = tx
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE status = 'running' AND queue = ?1 AND worker = ?2
                   AND started_at IN (SELECT value FROM json_each(?3))
                 ORDER BY id LIMIT (SELECT ?4)"
            ))?
            .query_map(
                params![
                    params.queue,
                    params.worker,
                    serde_json::to_string(&times).expect("numbers encode"),
                    params.limit
                ],
                job_from_row,
            )?
            .collect::<rusqlite::Result<Vec<Job>>>()?;
        let mut extend = tx.prepare_cached("UPDATE jobs SET lease_until = ?1 WHERE id = ?2")?;
        found
            .into_iter()
            .map(|mut job| {
                extend.execute(params![micros(params.lease_until), job.id.0])?;
                job.lease_until = Some(params.lease_until);
                Ok(job)
            })
            .collect::<rusqlite::Result<Vec<Job>>>()?
    };
    let wanted = params.limit - claimed.len() as u32;
    let running: i64 = tx
        .prepare_cached("SELECT count(*) FROM jobs WHERE status = 'running' AND queue = ?1")?
        .query_row([&params.queue], |row| row.get(0))?;
    let limit = i64::from(wanted)
        .min(i64::from(params.queue_limit) - running)
        .max(0);
    if limit == 0 {
        return Ok(claimed);
    }
    // `LIMIT (SELECT ?)`: with a bare `LIMIT ?` SQLite plans with the bound value
    // and re-prepares the statement at every call.
    let type_placeholders: Vec<String> = (0..params.job_types.len())
        .map(|n| format!("?{}", n + 4))
        .collect();
    let mut statement = tx.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE queue = ?1 AND status IN ('queued', 'scheduled') AND run_at <= ?2
           AND job_type IN ({})
           AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused = 1)
         ORDER BY priority DESC, id LIMIT (SELECT ?3)",
        type_placeholders.join(", ")
    ))?;
    let mut values: Vec<SqlValue> = vec![
        SqlValue::Text(params.queue.clone()),
        SqlValue::Integer(micros(params.now)),
        SqlValue::Integer(limit),
    ];
    values.extend(params.job_types.iter().cloned().map(SqlValue::Text));
    let due = statement
        .query_map(rusqlite::params_from_iter(values), job_from_row)?
        .collect::<rusqlite::Result<Vec<Job>>>()?;
    for job in due {
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

/// The hash and the job of `key` if it was recorded since its `since` and the job still exists.
fn recorded_key(tx: &Tx, key: &IdempotencyKey) -> rusqlite::Result<Option<(Vec<u8>, Job)>> {
    let recorded: Option<(Vec<u8>, i64)> = tx
        .prepare_cached(
            "SELECT request_hash, job_id FROM idempotency_keys
             WHERE scope = ?1 AND key = ?2 AND created_at >= ?3",
        )?
        .query_row(params![key.scope, key.key, micros(key.since)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let Some((hash, job_id)) = recorded else {
        return Ok(None);
    };
    Ok(get_job(tx, JobId(job_id))?.map(|job| (hash, job)))
}

/// Runs `insert`, then adds every job it inserted to the search index in one statement: the
/// index writes its pending entries out at each statement, so one statement per job would cost
/// every submit a segment of its own.
fn indexing_new_jobs<R>(
    tx: &Tx,
    insert: impl FnOnce() -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    let newest_before: i64 = tx
        .prepare_cached("SELECT coalesce(max(id), 0) FROM jobs")?
        .query_row([], |row| row.get(0))?;
    let inserted = insert()?;
    tx.prepare_cached(
        "INSERT INTO job_text (rowid, text)
         SELECT id, job_type || char(10) || input FROM jobs WHERE id > ?1",
    )?
    .execute([newest_before])?;
    Ok(inserted)
}

/// Inserts one job with its `submitted` event, then its children below it; returns the job's
/// row as inserted. Its caller indexes it for search ([`indexing_new_jobs`]).
fn insert_job(tx: &Tx, job: NewJob, now: Timestamp) -> rusqlite::Result<Job> {
    let counts = job.child_counts();
    // No `RETURNING id`: SQLite runs a RETURNING clause as a trigger, which puts the insert
    // under a statement journal (a copy of every page it touches); the rowid is at hand anyway.
    tx.prepare_cached(
        "INSERT INTO jobs (job_type, queue, status, priority, input, max_attempts,
                 parent_id, retry_of, created_at, run_at, root_id, depth, spawn_key, phase,
                 tree_join, on_child_failure, children_total, children_unfinished,
                 children_succeeded, output, finished_at, trigger, owner_id, owner_name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    )?
    .execute(params![
        job.job_type,
        job.queue,
        job.status.as_str(),
        job.priority,
        job.input.to_string(),
        job.max_attempts,
        job.parent.map(|id| id.0),
        job.retry_of.map(|id| id.0),
        micros(now),
        micros(job.run_at),
        job.root.map(|id| id.0),
        job.depth,
        job.key,
        job.phase.as_str(),
        job.tree.join,
        job.tree.on_child_failure.as_str(),
        counts.total,
        counts.unfinished,
        counts.succeeded,
        job.output.as_ref().map(Value::to_string),
        job.status.is_terminal().then(|| micros(now)),
        job.trigger,
        job.owner.as_ref().map(|owner| owner.id.0),
        job.owner.as_ref().map(|owner| owner.name.as_str()),
    ])?;
    let id = tx.last_insert_rowid();
    let data = job.submitted_event_data();
    if let (JobStatus::Succeeded, Some(original)) = (job.status, job.retry_of) {
        // A carried child keeps its original's artifacts: the same files, named again.
        tx.prepare_cached(&format!(
            "INSERT INTO artifacts ({ARTIFACT_COLUMNS})
             SELECT ?1, name, size, sha256, content_type, attempt, created_at, path
             FROM artifacts WHERE job_id = ?2"
        ))?
        .execute(params![id, original.0])?;
    }
    // The row as inserted, without reading it back.
    let (row, children) = job.inserted(JobId(id), now);
    count_if_finished(tx, &row)?;
    insert_event(tx, &row, None, now, EventKind::Submitted, &data)?;
    for mut child in children {
        child.place_under(&row);
        insert_job(tx, child, now)?;
    }
    Ok(row)
}

/// Inserts a batch with its idempotency keys, as `Store::job_insert_keyed` says (core's
/// `keyed_insert` decides).
fn insert_keyed(
    connection: &Tx,
    jobs: Vec<(NewJob, Option<IdempotencyKey>)>,
    now: Timestamp,
) -> rusqlite::Result<Insertion> {
    keyed_insert::insert_keyed(
        jobs,
        |key| recorded_key(connection, key),
        |job, key| {
            let row = insert_job(connection, job, now)?;
            if let Some(key) = key {
                connection
                    .prepare_cached(
                        "INSERT OR REPLACE INTO idempotency_keys
                                 (scope, key, request_hash, job_id, created_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        key.scope,
                        key.key,
                        key.request_hash,
                        row.id.0,
                        micros(now)
                    ])?;
            }
            Ok(row)
        },
    )
}

/// Spawns `children` under the job of `attempt`, as `Store::job_spawn` says (core's
/// `spawn_under` decides).
fn spawn(
    tx: &Tx,
    attempt: &AttemptRef,
    children: Vec<NewJob>,
    max_children: u32,
    now: Timestamp,
) -> rusqlite::Result<Spawn> {
    let parent = get_job(tx, attempt.id)?;
    spawn_under(
        &mut TreeWrite { tx },
        parent,
        attempt,
        children,
        max_children,
        now,
    )
    .map_err(|TreeError(error)| error)
}

const ARTIFACT_COLUMNS: &str =
    "job_id, name, size, sha256, content_type, attempt, created_at, path";

fn artifact_from_row(row: &Row) -> rusqlite::Result<Artifact> {
    Ok(Artifact {
        job: JobId(row.get(0)?),
        name: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        sha256: row.get(3)?,
        content_type: row.get(4)?,
        attempt: row.get(5)?,
        created_at: micros_to_timestamp(row.get(6)?),
        path: row.get(7)?,
    })
}

/// Of `paths`, those no artifact names any more.
fn unreferenced(tx: &Tx, paths: Vec<String>) -> rusqlite::Result<Vec<String>> {
    let mut statement = tx.prepare_cached("SELECT 1 FROM artifacts WHERE path = ?1 LIMIT 1")?;
    let mut free = Vec::new();
    for path in paths {
        if !free.contains(&path)
            && statement
                .query_row([&path], |_| Ok(()))
                .optional()?
                .is_none()
        {
            free.push(path);
        }
    }
    Ok(free)
}

/// Deletes the finished tree of root `id` whole (see `Store::job_delete_tree`).
fn delete_tree(tx: &Tx, id: JobId) -> rusqlite::Result<TreeDeletion> {
    let Some(job) = get_job(tx, id)? else {
        return Ok(TreeDeletion::NotFound);
    };
    if let Some(parent) = job.parent {
        return Ok(TreeDeletion::NotRoot {
            root: job.root.unwrap_or(parent),
        });
    }
    let unfinished = tx
        .prepare_cached(
            "SELECT id, status FROM jobs WHERE (id = ?1 OR root_id = ?1)
               AND status IN ('queued', 'scheduled', 'running', 'waiting') LIMIT 1",
        )?
        .query_row([id.0], |row| {
            Ok((row.get::<_, i64>(0)?, parsed::<JobStatus>(row, 1)?))
        })
        .optional()?;
    if let Some((job, status)) = unfinished {
        return Ok(TreeDeletion::Unfinished {
            job: JobId(job),
            status,
        });
    }
    let jobs: Vec<JobId> = tx
        .prepare_cached("SELECT id FROM jobs WHERE id = ?1 OR root_id = ?1 ORDER BY id")?
        .query_map([id.0], |row| row.get(0).map(JobId))?
        .collect::<rusqlite::Result<_>>()?;
    const TREE: &str = "(SELECT id FROM jobs WHERE id = ?1 OR root_id = ?1)";
    let paths: Vec<String> = tx
        .prepare_cached(&format!(
            "DELETE FROM artifacts WHERE job_id IN {TREE} RETURNING path"
        ))?
        .query_map([id.0], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in ["events", "job_logs", "idempotency_keys"] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE job_id IN {TREE}"))?
            .execute([id.0])?;
    }
    tx.prepare_cached("DELETE FROM jobs WHERE id = ?1 OR root_id = ?1")?
        .execute([id.0])?;
    // A job's directory is `JOB/`: free when no path in the range `JOB/` .. `JOB0` is named.
    let mut named =
        tx.prepare_cached("SELECT 1 FROM artifacts WHERE path >= ?1 AND path < ?2 LIMIT 1")?;
    let mut directories = Vec::new();
    for job in &jobs {
        let (from, to) = (format!("{job}/"), format!("{job}0"));
        if named
            .query_row([&from, &to], |_| Ok(()))
            .optional()?
            .is_none()
        {
            directories.push(job.to_string());
        }
    }
    Ok(TreeDeletion::Deleted {
        jobs,
        unreferenced: unreferenced(tx, paths)?,
        directories,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn job_insert_keyed(
        &self,
        jobs: Vec<(NewJob, Option<IdempotencyKey>)>,
        now: Timestamp,
    ) -> Result<Insertion, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                indexing_new_jobs(connection, || insert_keyed(connection, jobs, now))
            })
            .await
    }

    async fn idempotency_key_prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                // Bounded per call, like the event prune: one sweep never holds the writer long.
                let deleted = connection
                    .prepare_cached(
                        "DELETE FROM idempotency_keys WHERE (scope, key) IN (
                             SELECT scope, key FROM idempotency_keys WHERE created_at < ?1
                             LIMIT 10000)",
                    )?
                    .execute([micros(before)])?;
                Ok(deleted as u64)
            })
            .await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.readers
            .read(move |connection| get_job(connection, id))
            .await
    }

    async fn job_spawn(
        &self,
        parent: AttemptRef,
        children: Vec<NewJob>,
        max_children: u32,
        now: Timestamp,
    ) -> Result<Spawn, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                indexing_new_jobs(connection, || {
                    spawn(connection, &parent, children, max_children, now)
                })
            })
            .await
    }

    async fn job_children(
        &self,
        parent: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE parent_id = ?1 AND id > ?2
                     ORDER BY id LIMIT (SELECT ?3)"
                ))?;
                let rows = statement.query_map(
                    params![parent.0, after.map_or(0, |id| id.0), limit],
                    job_from_row,
                )?;
                rows.collect()
            })
            .await
    }

    async fn job_list(&self, params: JobListParams) -> Result<Vec<Job>, StoreError> {
        self.readers
            .read(move |connection| {
                let query = job_query::list(&params);
                let mut statement = connection.prepare_cached(&query.sql)?;
                let rows =
                    statement.query_map(rusqlite::params_from_iter(query.values), job_from_row)?;
                rows.collect()
            })
            .await
    }

    async fn job_count(&self, params: JobListParams) -> Result<u64, StoreError> {
        self.readers
            .read(move |connection| {
                let query = job_query::count(&params);
                let count: i64 = connection
                    .prepare_cached(&query.sql)?
                    .query_row(rusqlite::params_from_iter(query.values), |row| row.get(0))?;
                Ok(count as u64)
            })
            .await
    }

    async fn job_claim(&self, params: JobClaimParams) -> Result<Vec<Job>, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| claim(connection, &params))
            .await
    }

    async fn job_finish_many_and_claim(
        &self,
        finished: Vec<JobFinishParams>,
        next: Option<JobClaimParams>,
    ) -> Result<(Vec<Option<Job>>, Vec<Job>), StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let done = finished
                    .iter()
                    .map(|params| finish(connection, params))
                    .collect::<Result<Vec<_>, _>>()?;
                let claimed = match &next {
                    Some(next) => claim(connection, next)?,
                    None => Vec::new(),
                };
                Ok((done, claimed))
            })
            .await
    }

    async fn job_lease_renew(
        &self,
        attempts: Vec<AttemptRef>,
        lease_until: Timestamp,
    ) -> Result<Vec<LeaseState>, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let mut statement = connection.prepare_cached(
                    "UPDATE jobs SET lease_until = ?1
                     WHERE id = ?2 AND status = 'running' AND attempt = ?3 AND worker = ?4
                     RETURNING cancel_requested",
                )?;
                attempts
                    .iter()
                    .map(|attempt| {
                        let cancel: Option<bool> = statement
                            .query_row(
                                params![
                                    micros(lease_until),
                                    attempt.id.0,
                                    attempt.attempt,
                                    attempt.worker
                                ],
                                |row| row.get(0),
                            )
                            .optional()?;
                        Ok(match cancel {
                            None => LeaseState::Lost,
                            Some(true) => LeaseState::CancelRequested,
                            Some(false) => LeaseState::Held,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn job_finish(&self, params: JobFinishParams) -> Result<Option<Job>, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| finish(connection, &params))
            .await
    }

    async fn job_finish_many(
        &self,
        params: Vec<JobFinishParams>,
    ) -> Result<Vec<Option<Job>>, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                params
                    .iter()
                    .map(|params| finish(connection, params))
                    .collect()
            })
            .await
    }

    async fn job_progress_set(
        &self,
        attempt: AttemptRef,
        progress: Progress,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let updated = connection
                    .prepare_cached(&format!(
                        "UPDATE jobs SET progress = ?1, progress_message = ?2
                         WHERE id = ?3 AND status = 'running' AND attempt = ?4 AND worker = ?5
                         RETURNING {JOB_COLUMNS}"
                    ))?
                    .query_row(
                        params![
                            progress.fraction,
                            progress.message,
                            attempt.id.0,
                            attempt.attempt,
                            attempt.worker
                        ],
                        job_from_row,
                    )
                    .optional()?;
                let Some(updated) = updated else {
                    return Ok(false);
                };
                let data = json!({"fraction": progress.fraction, "message": progress.message});
                insert_event(
                    connection,
                    &updated,
                    Some(updated.status),
                    now,
                    EventKind::Progress,
                    &data,
                )?;
                Ok(true)
            })
            .await
    }

    async fn job_pid_set(&self, attempt: AttemptRef, pid: u32) -> Result<bool, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let changed = connection
                    .prepare_cached(
                        "UPDATE jobs SET pid = ?1
                         WHERE id = ?2 AND status = 'running' AND attempt = ?3 AND worker = ?4",
                    )?
                    .execute(params![pid, attempt.id.0, attempt.attempt, attempt.worker])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn job_cancel(&self, id: JobId, now: Timestamp) -> Result<CancelOutcome, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                let Some(job) = get_job(connection, id)? else {
                    return Ok(CancelOutcome::NotFound);
                };
                if job.status.is_terminal() {
                    return Ok(CancelOutcome::AlreadyTerminal(job));
                }
                let stored = apply(connection, &job, JobCommand::Cancel, now)?;
                Ok(CancelOutcome::of_unfinished(job, stored))
            })
            .await
    }

    async fn job_list_lease_expired(&self, now: Timestamp) -> Result<Vec<Job>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND lease_until < ?1"
                ))?;
                let rows = statement.query_map([micros(now)], job_from_row)?;
                rows.collect()
            })
            .await
    }

    async fn job_list_running(&self) -> Result<Vec<Job>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running'"
                ))?;
                let rows = statement.query_map([], job_from_row)?;
                rows.collect()
            })
            .await
    }

    async fn job_promote_due(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let due: Vec<Job> = connection
                    .prepare_cached(&format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'scheduled' AND run_at <= ?1"
                    ))?
                    .query_map([micros(now)], job_from_row)?
                    .collect::<rusqlite::Result<_>>()?;
                let mut queues = Vec::new();
                for job in due {
                    if let Some(job) = apply(connection, &job, JobCommand::Promote, now)?
                        && !queues.contains(&job.queue)
                    {
                        queues.push(job.queue);
                    }
                }
                Ok(queues)
            })
            .await
    }

    async fn job_next_run_at(
        &self,
        queue: &str,
        job_types: &[String],
    ) -> Result<Option<Timestamp>, StoreError> {
        let queue = queue.to_string();
        let job_types = job_types.to_vec();
        self.readers
            .read(move |connection| {
                let placeholders: Vec<String> = (0..job_types.len())
                    .map(|n| format!("?{}", n + 2))
                    .collect();
                let mut values = vec![SqlValue::Text(queue)];
                values.extend(job_types.into_iter().map(SqlValue::Text));
                let next: Option<i64> = connection
                    .prepare_cached(&format!(
                        "SELECT min(run_at) FROM jobs
                         WHERE queue = ?1 AND status = 'scheduled' AND job_type IN ({})",
                        placeholders.join(", ")
                    ))?
                    .query_row(rusqlite::params_from_iter(values), |row| row.get(0))?;
                Ok(next.map(micros_to_timestamp))
            })
            .await
    }

    async fn log_append(
        &self,
        attempt: AttemptRef,
        text: LogText,
        limit: u64,
        truncated_note: String,
        lost: u64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let Some(log_size) = held_log_size(connection, &attempt)? else {
                    return Ok(false);
                };
                if lost > 0 {
                    connection
                        .prepare_cached("UPDATE jobs SET log_lost = log_lost + ?1 WHERE id = ?2")?
                        .execute(params![lost as i64, attempt.id.0])?;
                }
                // Past the limit means the truncation note is already there.
                if log_size > limit {
                    return Ok(true);
                }
                let kept = text.within(limit - log_size, &truncated_note);
                connection
                    .prepare_cached(
                        "INSERT INTO job_logs (job_id, offset, size, data, attempt, at, streams)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        attempt.id.0,
                        log_size as i64,
                        kept.len() as i64,
                        kept.text,
                        attempt.attempt,
                        at.timestamp_micros(),
                        kept.encode_streams(),
                    ])?;
                connection
                    .prepare_cached("UPDATE jobs SET log_size = log_size + ?1 WHERE id = ?2")?
                    .execute(params![kept.len() as i64, attempt.id.0])?;
                connection.publish(Change::Log(LogAppend {
                    job_id: attempt.id,
                    offset: log_size,
                    marks: Arc::from(kept.marks(log_size, attempt.attempt, at)),
                    data: Arc::from(kept.text),
                }));
                Ok(true)
            })
            .await
    }

    async fn health_probe(&self) -> Result<(), StoreError> {
        let dir = self.writer.data_dir();
        if let Some(free) = crate::writer::short_of_space(dir) {
            return Err(StoreError::Full(format!(
                "{free} bytes free in {}",
                dir.display()
            )));
        }
        // An empty write through the writer: it begins and commits a transaction, which needs
        // the writer thread alive and the database lock, and no room on disk.
        match tokio::time::timeout(PROBE_TIMEOUT, self.writer.write(Commit::Lazy, |_| Ok(()))).await
        {
            Ok(result) => result,
            Err(_) => Err(StoreError::Backend(format!(
                "the writer did not answer within {}s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn log_read(
        &self,
        id: JobId,
        offset: u64,
        max_bytes: u64,
    ) -> Result<LogChunk, StoreError> {
        self.readers
            .read(move |connection| {
                let size: i64 = connection
                    .prepare_cached("SELECT log_size FROM jobs WHERE id = ?1")?
                    .query_row([id.0], |row| row.get(0))
                    .optional()?
                    .unwrap_or(0);
                let size = size as u64;
                let start = offset.min(size);
                let mut statement = connection.prepare_cached(
                    "SELECT offset, data, attempt, at, streams FROM job_logs
                     WHERE job_id = ?1 AND offset + size > ?2 AND offset < ?2 + ?3
                     ORDER BY offset",
                )?;
                let chunks = statement
                    .query_map(params![id.0, start as i64, max_bytes as i64], |row| {
                        let marks = ChunkMarks {
                            offset: row.get::<_, i64>(0)? as u64,
                            attempt: row.get(2)?,
                            at: row.get::<_, Option<i64>>(3)?.map(micros_to_timestamp),
                            streams: row.get(4)?,
                        };
                        Ok((marks, row.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(LogChunk::from_chunks(chunks, start, max_bytes, size))
            })
            .await
    }

    async fn queue_stats(&self, now: Timestamp) -> Result<Vec<QueueStats>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut stats = QueueStatsBuilder::new(now);
                let mut counts = connection.prepare_cached(
                    // Finished jobs from their kept counts, unfinished ones (few) from the
                    // `jobs_status` index.
                    "SELECT queue, status, sum(count) FROM job_counts
                     GROUP BY queue, status HAVING sum(count) > 0
                     UNION ALL
                     SELECT queue, status, count(*) FROM jobs
                     WHERE status IN ('queued', 'scheduled', 'running', 'waiting')
                     GROUP BY queue, status",
                )?;
                let mut rows = counts.query([])?;
                while let Some(row) = rows.next()? {
                    let queue: String = row.get(0)?;
                    stats.count(&queue, parsed(row, 1)?, row.get::<_, i64>(2)? as u64);
                }
                let mut paused = connection.prepare_cached("SELECT name, paused FROM queues")?;
                let mut rows = paused.query([])?;
                while let Some(row) = rows.next()? {
                    let queue: String = row.get(0)?;
                    stats.paused(&queue, row.get(1)?);
                }
                // Ids grow with creation, so the oldest queued job is the lowest queued id,
                // found in the (queue, status) index without reading every queued row. It has
                // waited since it was due: submitted, or later when it was scheduled.
                let mut oldest = connection.prepare_cached(
                    "SELECT max(created_at, run_at) FROM jobs WHERE id =
                       (SELECT min(id) FROM jobs WHERE queue = ?1 AND status = 'queued')",
                )?;
                for queue in stats.queues_with_queued_jobs() {
                    let at = oldest
                        .query_row([&queue], |row| row.get::<_, i64>(0))
                        .optional()?
                        .map(micros_to_timestamp);
                    stats.oldest_queued(&queue, at);
                }
                let mut finished = connection.prepare_cached(
                    "SELECT queue, finished_at / ?1, count(*) FROM jobs
                     WHERE finished_at >= ?2 AND finished_at IS NOT NULL
                     GROUP BY 1, 2",
                )?;
                let mut rows = finished.query(params![
                    QueueStatsBuilder::window_micros(),
                    stats.counted_from()
                ])?;
                while let Some(row) = rows.next()? {
                    let queue: String = row.get(0)?;
                    stats.finished(&queue, row.get(1)?, row.get::<_, i64>(2)? as u64);
                }
                Ok(stats.build())
            })
            .await
    }

    async fn queue_history(
        &self,
        queue: &str,
        window: HistoryWindow,
        sample_limit: u64,
    ) -> Result<HistoryRows, StoreError> {
        let queue = queue.to_string();
        self.readers
            .read(move |connection| {
                let (from, to, width) =
                    (window.from_micros, window.to_micros(), window.bucket_micros);
                let mut counts = connection.prepare_cached(
                    "SELECT (finished_at - ?1) / ?2, status, count(*) FROM jobs
                     WHERE finished_at >= ?1 AND finished_at < ?3 AND queue = ?4
                     GROUP BY 1, 2",
                )?;
                let counts = counts
                    .query_map(params![from, width, to, queue], |row| {
                        Ok((
                            row.get::<_, i64>(0)? as usize,
                            parsed(row, 1)?,
                            row.get::<_, i64>(2)? as u64,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<(usize, JobStatus, u64)>>>()?;
                let every = HistoryRows::sample_every(
                    counts.iter().map(|count| count.2).sum(),
                    sample_limit,
                );
                let mut samples = connection.prepare_cached(
                    // Every n-th of the queue's jobs, numbered among themselves: ids are
                    // shared by every queue, so `id % n` could miss a queue altogether.
                    "SELECT finished_at, waited, ran FROM (
                       SELECT finished_at, started_at - max(created_at, run_at) AS waited,
                              finished_at - started_at AS ran,
                              row_number() OVER (ORDER BY id) AS n
                       FROM jobs
                       WHERE finished_at >= ?1 AND finished_at < ?2 AND queue = ?3
                         AND started_at IS NOT NULL)
                     WHERE n % ?4 = 0",
                )?;
                let samples = samples
                    .query_map(params![from, to, queue, every as i64], |row| {
                        Ok(FinishedSample {
                            finished_micros: row.get(0)?,
                            waited_micros: row.get(1)?,
                            ran_micros: row.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(HistoryRows {
                    counts,
                    samples,
                    sampled: every > 1,
                })
            })
            .await
    }

    async fn queue_set_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        let queue = queue.to_string();
        self.writer
            .write(Commit::Synced, move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO queues (name, paused) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                    )?
                    .execute(params![queue, paused])?;
                Ok(())
            })
            .await
    }

    async fn queue_paused(&self, queue: &str) -> Result<bool, StoreError> {
        let queue = queue.to_string();
        self.readers
            .read(move |connection| {
                Ok(connection
                    .prepare_cached("SELECT paused FROM queues WHERE name = ?1")?
                    .query_row([queue], |row| row.get(0))
                    .optional()?
                    .unwrap_or(false))
            })
            .await
    }

    async fn event_list(
        &self,
        after_seq: i64,
        job: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT seq, job_id, at, kind, status, data FROM events
                     WHERE seq > ?1 AND (?2 IS NULL OR job_id = ?2) ORDER BY seq LIMIT (SELECT ?3)",
                )?;
                let rows = statement.query_map(
                    params![after_seq, job.map(|id| id.0), limit],
                    event_from_row,
                )?;
                rows.collect()
            })
            .await
    }

    async fn event_list_newest(&self, job: JobId, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT * FROM (SELECT seq, job_id, at, kind, status, data FROM events
                       WHERE job_id = ?1 ORDER BY seq DESC LIMIT (SELECT ?2))
                     ORDER BY seq",
                )?;
                let rows = statement.query_map(params![job.0, limit], event_from_row)?;
                rows.collect()
            })
            .await
    }

    async fn job_changes_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<JobChange>, StoreError> {
        self.readers
            .read(move |connection| {
                let job_columns: Vec<String> =
                    JOB_COLUMNS.split(", ").map(|column| format!("j.{}", column.trim())).collect();
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {}, e.seq, e.kind, e.at, e.status FROM events e JOIN jobs j ON j.id = e.job_id
                     WHERE e.seq > ?1 ORDER BY e.seq LIMIT (SELECT ?2)",
                    job_columns.join(", ")
                ))?;
                // The event's columns follow the job's.
                let event = job_columns.len();
                let rows = statement.query_map(params![after_seq, limit], |row| {
                    let mut job = job_from_row(row)?;
                    let kind: String = row.get(event + 1)?;
                    let status: String = row.get(event + 3)?;
                    job.status = status.parse().unwrap_or(job.status);
                    Ok(JobChange::new(
                        row.get(event)?,
                        EventKind::parse(&kind).unwrap_or(EventKind::Progress),
                        micros_to_timestamp(row.get(event + 2)?),
                        Arc::new(job),
                    ))
                })?;
                rows.collect()
            })
            .await
    }

    async fn event_last_seq(&self) -> Result<i64, StoreError> {
        self.readers
            .read(move |connection| {
                connection.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |row| {
                    row.get(0)
                })
            })
            .await
    }

    async fn changes_make_durable(&self) -> Result<(), StoreError> {
        // A commit made with `synchronous = NORMAL` sits in the WAL until its next fsync; an
        // fsync of the WAL file through any descriptor makes every commit before it durable.
        // Commits already checkpointed were synced into the database file by the checkpoint.
        let mut wal = self.readers.file.clone().into_os_string();
        wal.push("-wal");
        tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(file) => file.sync_data(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        })
        .await
        .map_err(|error| StoreError::Backend(format!("the WAL sync stopped: {error}")))?
        .map_err(|error| StoreError::Backend(format!("cannot sync the WAL: {error}")))
    }

    async fn event_first_seq(&self) -> Result<Option<i64>, StoreError> {
        self.readers
            .read(move |connection| {
                connection.query_row("SELECT min(seq) FROM events", [], |row| row.get(0))
            })
            .await
    }

    async fn event_prune(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let newest: i64 = connection.query_row(
                    "SELECT coalesce(max(seq), 0) FROM events",
                    [],
                    |row| row.get(0),
                )?;
                let keep_from = newest - i64::try_from(keep).unwrap_or(i64::MAX).min(newest);
                // The oldest events first, a bounded number per call: the sweep calls again.
                let deleted = connection
                    .prepare_cached(
                        "DELETE FROM events WHERE seq IN (
                             SELECT seq FROM (SELECT seq, at FROM events ORDER BY seq LIMIT 10000)
                             WHERE seq <= ?1 OR at < ?2)",
                    )?
                    .execute(params![keep_from, micros(before)])?;
                Ok(deleted as u64)
            })
            .await
    }

    async fn artifact_record(
        &self,
        attempt: AttemptRef,
        artifacts: Vec<Artifact>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                if held_log_size(connection, &attempt)?.is_none() {
                    return Ok(None);
                }
                let mut replaced = Vec::new();
                for artifact in artifacts {
                    let old: Option<String> = connection
                        .prepare_cached(
                            "SELECT path FROM artifacts WHERE job_id = ?1 AND name = ?2",
                        )?
                        .query_row(params![attempt.id.0, artifact.name], |row| row.get(0))
                        .optional()?;
                    replaced.extend(old.filter(|old| *old != artifact.path));
                    connection
                        .prepare_cached(&format!(
                            "INSERT OR REPLACE INTO artifacts ({ARTIFACT_COLUMNS})
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                        ))?
                        .execute(params![
                            attempt.id.0,
                            artifact.name,
                            artifact.size as i64,
                            artifact.sha256,
                            artifact.content_type,
                            artifact.attempt,
                            micros(artifact.created_at),
                            artifact.path
                        ])?;
                }
                Ok(Some(unreferenced(connection, replaced)?))
            })
            .await
    }

    async fn artifact_list(&self, job: JobId) -> Result<Vec<Artifact>, StoreError> {
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE job_id = ?1 ORDER BY name"
                    ))?
                    .query_map([job.0], artifact_from_row)?
                    .collect()
            })
            .await
    }

    async fn artifact_list_children(&self, parent: JobId) -> Result<Vec<Artifact>, StoreError> {
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE job_id IN
                             (SELECT id FROM jobs WHERE parent_id = ?1)
                         ORDER BY job_id, name"
                    ))?
                    .query_map([parent.0], artifact_from_row)?
                    .collect()
            })
            .await
    }

    async fn artifact_get(&self, job: JobId, name: &str) -> Result<Option<Artifact>, StoreError> {
        let name = name.to_string();
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE job_id = ?1 AND name = ?2"
                    ))?
                    .query_row(params![job.0, name], artifact_from_row)
                    .optional()
            })
            .await
    }

    async fn artifact_usage(&self, job: Option<JobId>) -> Result<ArtifactUsage, StoreError> {
        self.readers
            .read(move |connection| {
                // Shared files (a retried tree's carried children) count once.
                let (files, bytes): (i64, i64) = connection
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(size), 0) FROM
                             (SELECT path, max(size) AS size FROM artifacts
                              WHERE ?1 IS NULL OR job_id = ?1 GROUP BY path)",
                    )?
                    .query_row([job.map(|id| id.0)], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok(ArtifactUsage {
                    files: files as u64,
                    bytes: bytes as u64,
                })
            })
            .await
    }

    async fn job_delete_tree(&self, id: JobId) -> Result<TreeDeletion, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                delete_tree(connection, id)
            })
            .await
    }

    async fn job_prune(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<TreeDeletion>, StoreError> {
        self.writer
            .write(Commit::Lazy, move |connection| {
                let roots: Vec<JobId> = connection
                    .prepare_cached(
                        // Through `jobs_finished`, oldest first; children are pruned with
                        // their roots, so few old children stand between the roots.
                        "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1
                           AND parent_id IS NULL
                         ORDER BY finished_at LIMIT (SELECT ?2)",
                    )?
                    .query_map(params![micros(before), limit], |row| row.get(0).map(JobId))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut deleted = Vec::new();
                for root in roots {
                    // A root whose tree still runs (children being cancelled) waits.
                    if let deletion @ TreeDeletion::Deleted { .. } = delete_tree(connection, root)?
                    {
                        deleted.push(deletion);
                    }
                }
                Ok(deleted)
            })
            .await
    }

    async fn trigger_get(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        let name = name.to_string();
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached("SELECT state, snapshot FROM triggers WHERE name = ?1")?
                    .query_row([name], |row| {
                        let state: String = row.get(0)?;
                        Ok(TriggerRecord {
                            state: parse_json(&state),
                            snapshot: row.get(1)?,
                        })
                    })
                    .optional()
            })
            .await
    }

    async fn trigger_put(
        &self,
        name: &str,
        state: Value,
        snapshot: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        self.writer
            .write(Commit::Synced, move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO triggers (name, state, snapshot) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET state = excluded.state,
                             snapshot = coalesce(excluded.snapshot, snapshot)",
                    )?
                    .execute(params![name, state.to_string(), snapshot])?;
                Ok(())
            })
            .await
    }

    async fn job_list_by_trigger(&self, name: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
        let name = name.to_string();
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE trigger = ?1 ORDER BY id DESC LIMIT ?2"
                ))?;
                let rows = statement.query_map(params![name, limit], job_from_row)?;
                rows.collect()
            })
            .await
    }

    async fn job_count_by_kind(&self) -> Result<Vec<KindCount>, StoreError> {
        self.readers
            .read(move |connection| {
                // Finished jobs from the kept counts; the few unfinished ones counted as they are.
                let mut statement = connection.prepare_cached(
                    "SELECT queue, job_type, status, sum(count) FROM job_counts
                     GROUP BY queue, job_type, status HAVING sum(count) > 0
                     UNION ALL
                     SELECT queue, job_type, status, count(*) FROM jobs
                     WHERE status IN ('queued', 'scheduled', 'running', 'waiting')
                     GROUP BY queue, job_type, status",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok(KindCount {
                        queue: row.get(0)?,
                        job_type: row.get(1)?,
                        status: parsed(row, 2)?,
                        count: row.get::<_, i64>(3)? as u64,
                    })
                })?;
                rows.collect()
            })
            .await
    }
}
