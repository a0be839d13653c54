//! The jobs a transaction holds locked, and the changes to them it has yet to write. A job
//! read `FOR UPDATE` cannot change under the transaction, so a change core decides for it
//! needs no guarded statement of its own: it is kept here, and every change kept is written in
//! one statement before the transaction's next statement (or its commit). A batch of eight
//! finishes and eight claims then costs two `UPDATE`s, not sixteen round trips.

use std::collections::HashMap;
use std::sync::LazyLock;

use runway_core::job::{Job, JobId, JobStatus};
use serde_json::Value;

use crate::rows::{int, micros};

/// A change to write: the job as core left it, guarded by what the row was when read.
struct Change {
    before_status: JobStatus,
    before_attempt: u32,
    before_worker: Option<String>,
    after: Job,
}

#[derive(Default)]
pub(crate) struct HeldJobs {
    /// Jobs locked by this transaction, as they are now (with the changes not yet written).
    held: HashMap<JobId, Job>,
    /// Changes not yet written, in the order they were made.
    unwritten: Vec<Change>,
}

impl HeldJobs {
    /// Rows just read `FOR UPDATE`: this transaction holds them until it ends.
    pub(crate) fn hold(&mut self, jobs: &[Job]) {
        for job in jobs {
            self.held.insert(job.id, job.clone());
        }
    }

    /// The job as this transaction holds it.
    pub(crate) fn get(&self, id: JobId) -> Option<&Job> {
        self.held.get(&id)
    }

    /// Keeps `after` to be written if this transaction holds `before` as it is; false when it
    /// does not (the caller writes it with a guarded statement instead).
    pub(crate) fn keep(&mut self, before: &Job, after: &Job) -> bool {
        if self.held.get(&before.id) != Some(before) {
            return false;
        }
        self.held.insert(after.id, after.clone());
        self.unwritten.push(Change {
            before_status: before.status,
            before_attempt: before.attempt,
            before_worker: before.worker.clone(),
            after: after.clone(),
        });
        true
    }

    /// Forgets one row's state: it was written apart from the held rows.
    pub(crate) fn release(&mut self, id: JobId) {
        self.held.remove(&id);
    }

    pub(crate) fn has_unwritten(&self) -> bool {
        !self.unwritten.is_empty()
    }

    /// Forgets every row's state: a statement may have changed rows behind this record.
    pub(crate) fn forget(&mut self) {
        self.held.clear();
    }

    /// The changes to write, each job's guard from its first change and its state from its
    /// last; empty when there are none.
    pub(crate) fn take_unwritten(&mut self) -> Option<Writes> {
        if self.unwritten.is_empty() {
            return None;
        }
        let mut order: Vec<JobId> = Vec::new();
        let mut merged: HashMap<JobId, Change> = HashMap::new();
        for change in self.unwritten.drain(..) {
            let id = change.after.id;
            match merged.get_mut(&id) {
                Some(first) => first.after = change.after,
                None => {
                    order.push(id);
                    merged.insert(id, change);
                }
            }
        }
        let changes: Vec<Change> = order
            .into_iter()
            .map(|id| merged.remove(&id).expect("every id was merged"))
            .collect();
        Some(Writes::of(&changes))
    }
}

/// One guarded `UPDATE` for many jobs: each column as an array, one element per job.
pub(crate) struct Writes {
    count: i64,
    ids: Vec<i64>,
    status: Vec<&'static str>,
    attempt: Vec<i32>,
    runs: Vec<i32>,
    run_at: Vec<i64>,
    started_at: Vec<Option<i64>>,
    finished_at: Vec<Option<i64>>,
    lease_until: Vec<Option<i64>>,
    worker: Vec<Option<String>>,
    pid: Vec<Option<i32>>,
    error: Vec<Option<String>>,
    output: Vec<Option<String>>,
    progress: Vec<Option<f64>>,
    progress_message: Vec<Option<String>>,
    cancel_requested: Vec<bool>,
    phase: Vec<&'static str>,
    phase_attempt_base: Vec<i32>,
    children_total: Vec<i32>,
    children_unfinished: Vec<i32>,
    children_succeeded: Vec<i32>,
    children_failed: Vec<i32>,
    children_cancelled: Vec<i32>,
    child_failure: Vec<Option<String>>,
    before_status: Vec<&'static str>,
    before_attempt: Vec<i32>,
    before_worker: Vec<Option<String>>,
}

/// Writes every job of [`Writes`] whose row is still as its guard says (same status, attempt
/// and worker).
const UPDATE_JOBS: &str = "UPDATE jobs SET status = u.status, attempt = u.attempt,
         runs = u.runs, run_at = u.run_at, started_at = u.started_at,
         finished_at = u.finished_at, lease_until = u.lease_until, worker = u.worker,
         pid = u.pid, error = u.error, output = u.output, progress = u.progress,
         progress_message = u.progress_message, cancel_requested = u.cancel_requested,
         phase = u.phase, phase_attempt_base = u.phase_attempt_base,
         children_total = u.children_total, children_unfinished = u.children_unfinished,
         children_succeeded = u.children_succeeded, children_failed = u.children_failed,
         children_cancelled = u.children_cancelled, child_failure = u.child_failure
     FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::integer[], $5::bigint[],
         $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::integer[], $11::text[],
         $12::text[], $13::double precision[], $14::text[], $15::boolean[], $16::text[],
         $17::integer[], $18::integer[], $19::integer[], $20::integer[], $21::integer[],
         $22::integer[], $23::text[], $24::text[], $25::integer[], $26::text[])
         AS u (id, status, attempt, runs, run_at, started_at, finished_at, lease_until, worker,
             pid, error, output, progress, progress_message, cancel_requested, phase,
             phase_attempt_base, children_total, children_unfinished, children_succeeded,
             children_failed, children_cancelled, child_failure, before_status,
             before_attempt, before_worker)
     WHERE jobs.id = u.id AND jobs.status = u.before_status AND jobs.attempt = u.before_attempt
         AND jobs.worker IS NOT DISTINCT FROM u.before_worker
     RETURNING 1";

/// The held jobs' changes: fails, aborting the transaction, unless every one was written
/// (`$27`), so a COMMIT sent behind it in the same round trip rolls back instead of keeping
/// part of a batch.
pub(crate) static WRITE_HELD: LazyLock<String> = LazyLock::new(|| {
    format!("WITH written AS ({UPDATE_JOBS}) SELECT runway_written(count(*), $27) FROM written")
});

/// One guarded change: answers how many rows it wrote (0 when the guard did not hold).
pub(crate) static WRITE_GUARDED: LazyLock<String> =
    LazyLock::new(|| format!("WITH written AS ({UPDATE_JOBS}) SELECT count(*) FROM written"));

impl Writes {
    fn of(changes: &[Change]) -> Writes {
        let jobs = || changes.iter().map(|change| &change.after);
        Writes {
            count: changes.len() as i64,
            ids: jobs().map(|job| job.id.0).collect(),
            status: jobs().map(|job| job.status.as_str()).collect(),
            attempt: jobs().map(|job| int(job.attempt)).collect(),
            runs: jobs().map(|job| int(job.runs)).collect(),
            run_at: jobs().map(|job| micros(job.run_at)).collect(),
            started_at: jobs().map(|job| job.started_at.map(micros)).collect(),
            finished_at: jobs().map(|job| job.finished_at.map(micros)).collect(),
            lease_until: jobs().map(|job| job.lease_until.map(micros)).collect(),
            worker: jobs().map(|job| job.worker.clone()).collect(),
            pid: jobs().map(|job| job.pid.map(|pid| pid as i32)).collect(),
            error: jobs().map(|job| job.error.clone()).collect(),
            output: jobs()
                .map(|job| job.output.as_ref().map(Value::to_string))
                .collect(),
            progress: jobs()
                .map(|job| job.progress.as_ref().map(|progress| progress.fraction))
                .collect(),
            progress_message: jobs()
                .map(|job| {
                    job.progress
                        .as_ref()
                        .and_then(|progress| progress.message.clone())
                })
                .collect(),
            cancel_requested: jobs().map(|job| job.cancel_requested).collect(),
            phase: jobs().map(|job| job.phase.as_str()).collect(),
            phase_attempt_base: jobs().map(|job| int(job.phase_attempt_base)).collect(),
            children_total: jobs().map(|job| int(job.children.total)).collect(),
            children_unfinished: jobs().map(|job| int(job.children.unfinished)).collect(),
            children_succeeded: jobs().map(|job| int(job.children.succeeded)).collect(),
            children_failed: jobs().map(|job| int(job.children.failed)).collect(),
            children_cancelled: jobs().map(|job| int(job.children.cancelled)).collect(),
            child_failure: jobs().map(|job| job.child_failure.clone()).collect(),
            before_status: changes
                .iter()
                .map(|change| change.before_status.as_str())
                .collect(),
            before_attempt: changes
                .iter()
                .map(|change| int(change.before_attempt))
                .collect(),
            before_worker: changes
                .iter()
                .map(|change| change.before_worker.clone())
                .collect(),
        }
    }

    /// A single guarded change, for a job this transaction does not hold.
    pub(crate) fn one(before: &Job, after: &Job) -> Writes {
        Writes::of(&[Change {
            before_status: before.status,
            before_attempt: before.attempt,
            before_worker: before.worker.clone(),
            after: after.clone(),
        }])
    }

    /// The parameters of [`WRITE_HELD`], in order ([`WRITE_GUARDED`] takes all but the last).
    pub(crate) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 27] {
        [
            &self.ids,
            &self.status,
            &self.attempt,
            &self.runs,
            &self.run_at,
            &self.started_at,
            &self.finished_at,
            &self.lease_until,
            &self.worker,
            &self.pid,
            &self.error,
            &self.output,
            &self.progress,
            &self.progress_message,
            &self.cancel_requested,
            &self.phase,
            &self.phase_attempt_base,
            &self.children_total,
            &self.children_unfinished,
            &self.children_succeeded,
            &self.children_failed,
            &self.children_cancelled,
            &self.child_failure,
            &self.before_status,
            &self.before_attempt,
            &self.before_worker,
            &self.count,
        ]
    }
}
