//! Rows read back into core's types, and core's values as PostgreSQL parameters. Counts and
//! attempts are `integer` columns (`i32`), ids, sizes and instants `bigint` (`i64`, instants in
//! microseconds since the epoch).

use runway_core::clock::{Timestamp, micros_to_timestamp};
use runway_core::event::{Event, EventKind};
use runway_core::job::{ChildCounts, Job, JobId, Progress, TreePolicy};
use runway_core::store::Artifact;
use runway_core::users::{Owner, UserId};
use serde_json::Value;
use tokio_postgres::Row;

use crate::store::PgError;

pub(crate) const JOB_COLUMNS: &str = "id, job_type, queue, status, priority, input, output, error, progress, \
     progress_message, attempt, max_attempts, parent_id, retry_of, cancel_requested, created_at, \
     run_at, started_at, finished_at, lease_until, worker, log_size, pid, log_lost, runs, root_id, \
     depth, spawn_key, phase, phase_attempt_base, tree_join, on_child_failure, children_total, \
     children_unfinished, children_succeeded, children_failed, children_cancelled, child_failure, \
     trigger, owner_id, owner_name";

pub(crate) const ARTIFACT_COLUMNS: &str =
    "job_id, name, size, sha256, content_type, attempt, created_at, path";

pub(crate) fn micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

/// A count or number core keeps unsigned, as an `integer` column.
pub(crate) fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn uint(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// A text column read into one of core's enums.
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(
    row: &Row,
    index: usize,
) -> Result<T, PgError> {
    let text: String = row.try_get(index)?;
    text.parse()
        .map_err(|message: String| PgError::Corrupt(format!("column {index}: {message}")))
}

pub(crate) fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A job from the columns of [`JOB_COLUMNS`], from `offset` on.
pub(crate) fn job_at(row: &Row, offset: usize) -> Result<Job, PgError> {
    let at = |index: usize| offset + index;
    let input: String = row.try_get(at(5))?;
    let output: Option<String> = row.try_get(at(6))?;
    let progress: Option<f64> = row.try_get(at(8))?;
    let progress_message: Option<String> = row.try_get(at(9))?;
    let instant = |index: usize| -> Result<Option<Timestamp>, PgError> {
        Ok(row
            .try_get::<_, Option<i64>>(at(index))?
            .map(micros_to_timestamp))
    };
    let id = |index: usize| -> Result<Option<JobId>, PgError> {
        Ok(row.try_get::<_, Option<i64>>(at(index))?.map(JobId))
    };
    Ok(Job {
        id: JobId(row.try_get(at(0))?),
        job_type: row.try_get(at(1))?,
        queue: row.try_get(at(2))?,
        status: parsed(row, at(3))?,
        priority: row.try_get(at(4))?,
        input: parse_json(&input),
        output: output.as_deref().map(parse_json),
        error: row.try_get(at(7))?,
        progress: progress.map(|fraction| Progress {
            fraction,
            message: progress_message,
        }),
        attempt: uint(row.try_get(at(10))?),
        max_attempts: uint(row.try_get(at(11))?),
        parent: id(12)?,
        retry_of: id(13)?,
        cancel_requested: row.try_get(at(14))?,
        created_at: micros_to_timestamp(row.try_get(at(15))?),
        run_at: micros_to_timestamp(row.try_get(at(16))?),
        started_at: instant(17)?,
        finished_at: instant(18)?,
        lease_until: instant(19)?,
        worker: row.try_get(at(20))?,
        log_size: row.try_get::<_, i64>(at(21))? as u64,
        pid: row.try_get::<_, Option<i32>>(at(22))?.map(|pid| pid as u32),
        log_lost: row.try_get::<_, i64>(at(23))? as u64,
        runs: uint(row.try_get(at(24))?),
        root: id(25)?,
        depth: uint(row.try_get(at(26))?),
        key: row.try_get(at(27))?,
        phase: parsed(row, at(28))?,
        phase_attempt_base: uint(row.try_get(at(29))?),
        tree: TreePolicy {
            join: row.try_get(at(30))?,
            on_child_failure: parsed(row, at(31))?,
        },
        children: ChildCounts {
            total: uint(row.try_get(at(32))?),
            unfinished: uint(row.try_get(at(33))?),
            succeeded: uint(row.try_get(at(34))?),
            failed: uint(row.try_get(at(35))?),
            cancelled: uint(row.try_get(at(36))?),
        },
        child_failure: row.try_get(at(37))?,
        trigger: row.try_get(at(38))?,
        owner: match (
            row.try_get::<_, Option<i64>>(at(39))?,
            row.try_get::<_, Option<String>>(at(40))?,
        ) {
            (Some(id), Some(name)) => Some(Owner {
                id: UserId(id),
                name,
            }),
            _ => None,
        },
    })
}

pub(crate) fn job(row: &Row) -> Result<Job, PgError> {
    job_at(row, 0)
}

/// How many columns [`JOB_COLUMNS`] has.
pub(crate) const JOB_COLUMN_COUNT: usize = 41;

pub(crate) fn jobs(rows: &[Row]) -> Result<Vec<Job>, PgError> {
    rows.iter().map(job).collect()
}

/// An event from `seq, job_id, at, kind, status, data`.
pub(crate) fn event(row: &Row) -> Result<Event, PgError> {
    let kind: String = row.try_get(3)?;
    let data: String = row.try_get(5)?;
    Ok(Event {
        seq: row.try_get(0)?,
        job_id: JobId(row.try_get(1)?),
        at: micros_to_timestamp(row.try_get(2)?),
        kind: EventKind::parse(&kind)
            .ok_or_else(|| PgError::Corrupt(format!("unknown event kind {kind:?}")))?,
        status: parsed(row, 4)?,
        data: parse_json(&data),
    })
}

pub(crate) fn artifact(row: &Row) -> Result<Artifact, PgError> {
    Ok(Artifact {
        job: JobId(row.try_get(0)?),
        name: row.try_get(1)?,
        size: row.try_get::<_, i64>(2)? as u64,
        sha256: row.try_get(3)?,
        content_type: row.try_get(4)?,
        attempt: uint(row.try_get(5)?),
        created_at: micros_to_timestamp(row.try_get(6)?),
        path: row.try_get(7)?,
    })
}
