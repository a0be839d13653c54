//! The storage interface. Every backend (SQLite now, PostgreSQL later) implements [`Store`] and
//! passes the behavioural suite in `testkit`, so the engine never knows which one it runs on.
//!
//! Invariants every backend keeps:
//! - Each write is one transaction: it happens whole or not at all, and its events are written
//!   in the same transaction.
//! - Every change of a job is guarded by the status (and, for a runner's writes, the attempt
//!   and worker) the caller expects; a guard that does not hold changes nothing and says so.
//! - A write returns only after it is durable as the backend documents.

use async_trait::async_trait;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::event::Event;
use crate::job::{Job, JobId, JobStatus, NewJob, Progress};
use crate::job_order::{JobCursor, JobOrder};
use crate::log_text::{ChunkMarks, LogMark, LogText};
use crate::queue_history::{HistoryRows, HistoryWindow};
use crate::time_range::TimeRange;
use crate::users::UserId;
pub use crate::users::{TokenRecord, UserStore};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, a bug in a query). Not the caller's fault.
    #[error("storage failed: {0}")]
    Backend(String),
    /// The disk holding the data is full: nothing of the write was made. Retrying after an
    /// operator frees space succeeds.
    #[error("the disk holding runway's data is full ({0}); nothing was stored")]
    Full(String),
    /// The store is closing; the write was not made.
    #[error("storage is shutting down")]
    Closed,
    /// The database cannot be reached now (restarting, connection lost): whatever was asked
    /// may be asked again in a moment. A write that got this answer may have committed just
    /// before the connection went; its guards make a repeat harmless.
    #[error("the database cannot be reached now ({0})")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the same write may go through if tried again soon.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// An idempotency key with what it guards: a repeat of the same request (same hash) within the
/// window returns the first job instead of making a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Where the key is unique: `submit` for clients' submits.
    pub scope: String,
    pub key: String,
    /// SHA-256 of the request as the client sent it.
    pub request_hash: Vec<u8>,
    /// Keys recorded before this instant have expired and are free again.
    pub since: Timestamp,
}

/// One job of a keyed insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    pub job: Job,
    /// False when the key answered with the job an earlier request made.
    pub created: bool,
}

/// What a keyed insert did.
#[derive(Debug, Clone, PartialEq)]
pub enum Insertion {
    /// Every job, in request order.
    Done(Vec<Inserted>),
    /// The job at `index` reused a key of a different request (the job `existing` made, or
    /// an earlier job of the same batch): nothing was inserted.
    KeyConflict {
        index: usize,
        existing: Option<JobId>,
    },
}

/// What a spawn under a running job did.
#[derive(Debug, Clone, PartialEq)]
pub enum Spawn {
    /// Every child, in request order; a child whose key was used before comes back with
    /// `created: false`.
    Done(Vec<Inserted>),
    /// Nothing was created: the parent cannot take children now (see `transition::adopt`),
    /// or the attempt that asked is no longer the parent's running attempt.
    Refused(String),
    /// The child at `index` names a key its sibling `existing` holds for another type or
    /// input: nothing was created.
    KeyConflict { index: usize, existing: JobId },
}

/// A file a job produced, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub job: JobId,
    /// Its path relative to the attempt's `RUNWAY_ARTIFACTS`, `/`-separated.
    pub name: String,
    pub size: u64,
    /// Hex SHA-256 of the content: also its ETag.
    pub sha256: String,
    pub content_type: String,
    pub attempt: u32,
    pub created_at: Timestamp,
    /// Where the bytes are, relative to the data directory's `artifacts/`.
    pub path: String,
}

/// Files and bytes of artifacts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArtifactUsage {
    pub files: u64,
    pub bytes: u64,
}

/// What a tree's deletion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeDeletion {
    /// Every job of the tree is gone with its events, logs and artifact records; the files at
    /// `unreferenced` (relative to `artifacts/`) are named by no artifact any more.
    Deleted {
        jobs: Vec<JobId>,
        unreferenced: Vec<String>,
        /// The deleted jobs' directories below `artifacts/` that no artifact names a file in
        /// any more: whatever is left there (files an attempt moved but never recorded) goes.
        directories: Vec<String>,
    },
    NotFound,
    /// The job is inside the tree of `root`: only a whole tree is deleted.
    NotRoot {
        root: JobId,
    },
    /// A job of the tree has not finished.
    Unfinished {
        job: JobId,
        status: JobStatus,
    },
}

/// Which jobs of their trees a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TreeFilter {
    #[default]
    All,
    /// Only jobs without a parent.
    Roots,
    /// Only the children of this job.
    ChildrenOf(JobId),
}

impl TreeFilter {
    pub fn matches(&self, job: &Job) -> bool {
        match self {
            TreeFilter::All => true,
            TreeFilter::Roots => job.parent.is_none(),
            TreeFilter::ChildrenOf(parent) => job.parent == Some(*parent),
        }
    }
}

/// Filters for listing jobs, and the order of the list (newest first by default).
#[derive(Debug, Clone, Default)]
pub struct JobListParams {
    pub tree: TreeFilter,
    pub statuses: Vec<JobStatus>,
    pub job_types: Vec<String>,
    pub queues: Vec<String>,
    /// Only jobs that [`JobSearch::matches`].
    pub search: Option<JobSearch>,
    /// Only the jobs of this owner (a member's view).
    pub owner: Option<UserId>,
    /// Only the jobs that run this one again (its retries).
    pub retry_of: Option<JobId>,
    /// Only jobs created in this range.
    pub created: TimeRange,
    /// Only jobs finished in this range (a bounded range leaves out unfinished jobs).
    pub finished: TimeRange,
    pub order: JobOrder,
    /// Only jobs after this cursor in `order` (the previous page's end).
    pub before: Option<JobCursor>,
    pub limit: u32,
}

impl JobListParams {
    /// Whether a count must read the jobs themselves: the kept counts know no owner, parent,
    /// retried job or time.
    pub fn counts_by_row(&self) -> bool {
        matches!(self.tree, TreeFilter::ChildrenOf(_))
            || self.owner.is_some()
            || self.retry_of.is_some()
            || !self.created.is_unbounded()
            || !self.finished.is_unbounded()
    }

    /// Whether `job` is in the ranges of time the list keeps to.
    pub fn in_time(&self, job: &Job) -> bool {
        self.created.contains(Some(job.created_at)) && self.finished.contains(job.finished_at)
    }
}

/// A free-text search over jobs, the same in SQL and in memory: the job's id when the text is
/// a number, or an ASCII-case-insensitive substring of its type or of its input's JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobSearch {
    /// Lowercased (ASCII only, like SQLite's `lower`) so both sides fold case alike.
    pub needle: String,
    pub id: Option<JobId>,
}

impl JobSearch {
    /// `None` for blank text: no search.
    pub fn new(text: &str) -> Option<JobSearch> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(JobSearch {
            needle: text.to_ascii_lowercase(),
            id: text.parse::<JobId>().ok(),
        })
    }

    pub fn matches(&self, job: &Job) -> bool {
        self.id == Some(job.id)
            || job.job_type.to_ascii_lowercase().contains(&self.needle)
            || job
                .input
                .to_string()
                .to_ascii_lowercase()
                .contains(&self.needle)
    }
}

/// Take up to `limit` due jobs of one queue to run them.
#[derive(Debug, Clone)]
pub struct JobClaimParams {
    pub queue: String,
    /// Only jobs of these types: a worker never takes a job it cannot run.
    pub job_types: Vec<String>,
    pub limit: u32,
    /// The queue's concurrency over every server that shares the store: nothing is claimed
    /// past this many running jobs of the queue, whoever runs them.
    pub queue_limit: u32,
    pub worker: String,
    pub now: Timestamp,
    pub lease_until: Timestamp,
    /// The times of this worker's claims that may have committed without their answer
    /// reaching the caller (the connection failed at the commit). The jobs they claimed, still
    /// running under `worker` with one of those start times, are answered first (up to
    /// `limit`) with their lease extended to `lease_until`, so no claimed job is left without
    /// a slot until its lease runs out. A worker's claim times must be unique.
    pub unanswered: Vec<Timestamp>,
}

/// Which running attempt a runner's write is about: the fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRef {
    pub id: JobId,
    pub attempt: u32,
    pub worker: String,
}

/// How a running attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        output: Option<Value>,
    },
    /// `retry_at` is set when attempts remain: the job becomes `scheduled` for then.
    Failed {
        error: String,
        output: Option<Value>,
        retry_at: Option<Timestamp>,
    },
    Cancelled {
        error: String,
    },
    /// The lease ran out; `requeue` when attempts remain, otherwise failed with `error`.
    /// With `expired_only`, applies only if the lease is still expired when the write runs
    /// (a renewal that landed meanwhile wins).
    Rescued {
        error: String,
        requeue: bool,
        expired_only: bool,
    },
    /// The runner stopped without an outcome (shutdown): queued again, attempt not counted.
    HandedBack,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobFinishParams {
    pub attempt: AttemptRef,
    pub outcome: Outcome,
    pub now: Timestamp,
}

/// Answer to a lease renewal for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Renewed; keep running.
    Held,
    /// Renewed, and a user asked to cancel the job: stop it.
    CancelRequested,
    /// The attempt is no longer this worker's (rescued, finished): stop and write nothing.
    Lost,
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// It was not running: it is now cancelled.
    Cancelled(Job),
    /// It is running: `cancel_requested` is set and its runner must stop it.
    Requested(Job),
    /// It had already ended; nothing changed.
    AlreadyTerminal(Job),
    NotFound,
}

impl CancelOutcome {
    /// What a cancel of the unfinished `job` did, given what applying the cancel stored
    /// (`None`: nothing, as when a cancel of its running attempt was already requested).
    pub fn of_unfinished(job: Job, stored: Option<Job>) -> CancelOutcome {
        let job = stored.unwrap_or(job);
        if job.status == JobStatus::Running {
            CancelOutcome::Requested(job)
        } else {
            CancelOutcome::Cancelled(job)
        }
    }
}

/// A slice of a job's stored log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub offset: u64,
    pub data: String,
    /// Where each part of `data` came from, in order of offset; the first is at `offset`.
    pub marks: Vec<LogMark>,
    /// Total bytes stored so far.
    pub size: u64,
}

impl LogChunk {
    /// Up to `max_bytes` of a log of `size` bytes from `start`, rounded to character
    /// boundaries, out of the stored chunks that overlap that range (with their marks and
    /// text, in order of offset).
    pub fn from_chunks(
        chunks: Vec<(ChunkMarks, String)>,
        start: u64,
        max_bytes: u64,
        size: u64,
    ) -> LogChunk {
        let Some(first_offset) = chunks.first().map(|(marks, _)| marks.offset) else {
            return LogChunk {
                offset: start,
                data: String::new(),
                marks: Vec::new(),
                size,
            };
        };
        let (marks, texts): (Vec<ChunkMarks>, Vec<String>) = chunks.into_iter().unzip();
        let joined: String = texts.concat();
        let mut from = start.saturating_sub(first_offset) as usize;
        while from < joined.len() && !joined.is_char_boundary(from) {
            from += 1;
        }
        let mut to = from.saturating_add(max_bytes as usize).min(joined.len());
        while to > from && !joined.is_char_boundary(to) {
            to -= 1;
        }
        let (offset, end) = (first_offset + from as u64, first_offset + to as u64);
        LogChunk {
            offset,
            data: joined[from..to].to_string(),
            marks: if offset < end {
                marks
                    .iter()
                    .flat_map(|chunk| chunk.marks_within(offset, end))
                    .collect()
            } else {
                Vec::new()
            },
            size,
        }
    }
}

/// A queue's counts by status and its pause flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub name: String,
    pub paused: bool,
    pub queued: u64,
    pub scheduled: u64,
    pub running: u64,
    pub waiting: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// When the queue's oldest queued job was created.
    pub oldest_queued_at: Option<Timestamp>,
    /// Jobs that finished in each of the last [`THROUGHPUT_BUCKETS`] windows of
    /// [`THROUGHPUT_BUCKET_SECONDS`], oldest first; the last is the current window.
    pub finished_per_bucket: Vec<u64>,
}

/// Assembles every queue's [`QueueStats`] from what a store counted, the same for every
/// store: queues appear as their counts, pause flags or finished jobs name them.
#[derive(Debug)]
pub struct QueueStatsBuilder {
    stats: Vec<QueueStats>,
    /// The first throughput window's index (instants in microseconds divided by the width).
    first_window: i64,
}

impl QueueStatsBuilder {
    pub fn new(now: Timestamp) -> QueueStatsBuilder {
        let current = now.timestamp_micros().div_euclid(Self::window_micros());
        QueueStatsBuilder {
            stats: Vec::new(),
            first_window: current - (THROUGHPUT_BUCKETS as i64 - 1),
        }
    }

    /// The width of a throughput window in microseconds: a store counts finished jobs by
    /// `finished_at / window_micros()`.
    pub fn window_micros() -> i64 {
        THROUGHPUT_BUCKET_SECONDS * 1_000_000
    }

    /// The first instant (microseconds) whose finished jobs count.
    pub fn counted_from(&self) -> i64 {
        self.first_window * Self::window_micros()
    }

    fn entry(&mut self, name: &str) -> &mut QueueStats {
        let index = match self.stats.iter().position(|queue| queue.name == name) {
            Some(index) => index,
            None => {
                self.stats.push(QueueStats {
                    name: name.to_string(),
                    finished_per_bucket: vec![0; THROUGHPUT_BUCKETS],
                    ..QueueStats::default()
                });
                self.stats.len() - 1
            }
        };
        &mut self.stats[index]
    }

    /// `count` jobs of the queue stand in `status`.
    pub fn count(&mut self, queue: &str, status: JobStatus, count: u64) {
        let queue = self.entry(queue);
        match status {
            JobStatus::Queued => queue.queued = count,
            JobStatus::Scheduled => queue.scheduled = count,
            JobStatus::Running => queue.running = count,
            JobStatus::Waiting => queue.waiting = count,
            JobStatus::Succeeded => queue.succeeded = count,
            JobStatus::Failed => queue.failed = count,
            JobStatus::Cancelled => queue.cancelled = count,
        }
    }

    pub fn paused(&mut self, queue: &str, paused: bool) {
        self.entry(queue).paused = paused;
    }

    /// `count` jobs of the queue finished in the window `window` (`finished_at` divided by
    /// [`QueueStatsBuilder::window_micros`]).
    pub fn finished(&mut self, queue: &str, window: i64, count: u64) {
        let slot = (window - self.first_window).clamp(0, THROUGHPUT_BUCKETS as i64 - 1) as usize;
        self.entry(queue).finished_per_bucket[slot] += count;
    }

    /// The queues with queued jobs, whose oldest one the store looks up.
    pub fn queues_with_queued_jobs(&self) -> Vec<String> {
        self.stats
            .iter()
            .filter(|queue| queue.queued > 0)
            .map(|queue| queue.name.clone())
            .collect()
    }

    /// When the queue's oldest queued job became due.
    pub fn oldest_queued(&mut self, queue: &str, at: Option<Timestamp>) {
        self.entry(queue).oldest_queued_at = at;
    }

    pub fn build(self) -> Vec<QueueStats> {
        self.stats
    }
}

/// Width of one throughput window of [`QueueStats`].
pub const THROUGHPUT_BUCKET_SECONDS: i64 = 10;
/// How many throughput windows [`QueueStats`] keeps: ten minutes.
pub const THROUGHPUT_BUCKETS: usize = 60;

#[async_trait]
pub trait Store: UserStore + Send + Sync + 'static {
    /// Whether other servers may write to the same data at once (PostgreSQL): then a running
    /// attempt at start may be another server's, alive, and is left to its lease.
    fn shared(&self) -> bool {
        false
    }

    /// Inserts every job and its `submitted` event in one transaction, in order, each with
    /// the children it holds.
    async fn job_insert_many(
        &self,
        jobs: Vec<NewJob>,
        now: Timestamp,
    ) -> Result<Vec<Job>, StoreError> {
        let keyed = jobs.into_iter().map(|job| (job, None)).collect();
        match self.job_insert_keyed(keyed, now).await? {
            Insertion::Done(inserted) => Ok(inserted.into_iter().map(|one| one.job).collect()),
            Insertion::KeyConflict { .. } => Err(StoreError::Backend(
                "a key conflict was reported for jobs without keys".into(),
            )),
        }
    }

    /// Inserts jobs like `job_insert_many`, each with an optional idempotency key. A key
    /// recorded since its `since` with the same request hash answers with the job it made,
    /// not a new one (also twice within one batch); with another hash, nothing at all is
    /// inserted and the first such job is reported. Keys are unique per scope.
    async fn job_insert_keyed(
        &self,
        jobs: Vec<(NewJob, Option<IdempotencyKey>)>,
        now: Timestamp,
    ) -> Result<Insertion, StoreError>;

    /// Forgets idempotency keys recorded before `before`, a bounded number per call; returns
    /// how many.
    async fn idempotency_key_prune(&self, before: Timestamp) -> Result<u64, StoreError>;

    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Inserts `children` (each with its own children) under the running attempt's job, in
    /// one transaction with the parent's new counts (`transition::adopt`, limited to
    /// `max_children`). A child whose key a sibling already holds is that sibling, if its
    /// type and input are the same; otherwise nothing is inserted.
    async fn job_spawn(
        &self,
        parent: AttemptRef,
        children: Vec<NewJob>,
        max_children: u32,
        now: Timestamp,
    ) -> Result<Spawn, StoreError>;

    /// Up to `limit` children of `parent` in the order they were made, after `after`.
    async fn job_children(
        &self,
        parent: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;

    async fn job_list(&self, params: JobListParams) -> Result<Vec<Job>, StoreError>;

    /// How many jobs the filters of `params` match (`before` and `limit` are ignored).
    async fn job_count(&self, params: JobListParams) -> Result<u64, StoreError>;

    /// Moves up to `limit` due `queued`/`scheduled` jobs of the queue to `running`, highest
    /// priority then oldest first, counting an attempt and setting the lease. Claims nothing
    /// from a paused queue, and never more than leaves `queue_limit` jobs of it running.
    async fn job_claim(&self, params: JobClaimParams) -> Result<Vec<Job>, StoreError>;

    /// Extends the leases of the given running attempts; one answer per attempt, in order.
    async fn job_lease_renew(
        &self,
        attempts: Vec<AttemptRef>,
        lease_until: Timestamp,
    ) -> Result<Vec<LeaseState>, StoreError>;

    /// Ends a running attempt, guarded by status `running`, attempt and worker. `None` when the
    /// guard did not hold (the attempt is stale) and nothing changed.
    async fn job_finish(&self, params: JobFinishParams) -> Result<Option<Job>, StoreError>;

    /// Ends running attempts (each guarded like `job_finish`, one answer per finish, in
    /// order), then claims `next` for the slots they freed, in one transaction: the slots of a
    /// busy queue that end together need one write for all their jobs, not two per job.
    async fn job_finish_many_and_claim(
        &self,
        finished: Vec<JobFinishParams>,
        next: Option<JobClaimParams>,
    ) -> Result<(Vec<Option<Job>>, Vec<Job>), StoreError>;

    /// Many finishes in one transaction; one answer per finish, in order.
    async fn job_finish_many(
        &self,
        params: Vec<JobFinishParams>,
    ) -> Result<Vec<Option<Job>>, StoreError>;

    /// Records progress of a running attempt (guarded like `job_finish`); false when stale.
    async fn job_progress_set(
        &self,
        attempt: AttemptRef,
        progress: Progress,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records the process of a running attempt (guarded like `job_finish`); false when stale.
    async fn job_pid_set(&self, attempt: AttemptRef, pid: u32) -> Result<bool, StoreError>;

    async fn job_cancel(&self, id: JobId, now: Timestamp) -> Result<CancelOutcome, StoreError>;

    /// Running attempts whose lease ended before `now`.
    async fn job_list_lease_expired(&self, now: Timestamp) -> Result<Vec<Job>, StoreError>;

    /// Every running attempt, whoever holds it. At start, a server alone on its store hands
    /// all of them back as rescued; a server sharing it (see [`Store::shared`]) only its own.
    async fn job_list_running(&self) -> Result<Vec<Job>, StoreError>;

    /// Moves due `scheduled` jobs to `queued`; returns the queues that got jobs.
    async fn job_promote_due(&self, now: Timestamp) -> Result<Vec<String>, StoreError>;

    /// The earliest `run_at` of a scheduled job of the queue and types, to sleep exactly
    /// until then.
    async fn job_next_run_at(
        &self,
        queue: &str,
        job_types: &[String],
    ) -> Result<Option<Timestamp>, StoreError>;

    /// Appends text to the log of a running attempt, guarded like `job_finish`. Keeps at most
    /// `limit` bytes per job; the first append past it stores `truncated_note` instead.
    /// `lost` bytes that earlier appends could not store are added to the job's `log_lost`
    /// (the text starts with a note saying so), even once the log is past its limit. The
    /// text's stream marks, the attempt and `at` are kept beside it ([`ChunkMarks`]).
    async fn log_append(
        &self,
        attempt: AttemptRef,
        text: LogText,
        limit: u64,
        truncated_note: String,
        lost: u64,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Whether the store can take writes now: [`StoreError::Full`] when its disk has (almost)
    /// no room left, another error when a write cannot go through. Cheap enough for a load
    /// balancer to ask every second.
    async fn health_probe(&self) -> Result<(), StoreError>;

    /// Up to `max_bytes` of the log from `offset` (rounded to a character boundary).
    async fn log_read(
        &self,
        id: JobId,
        offset: u64,
        max_bytes: u64,
    ) -> Result<LogChunk, StoreError>;

    /// Stats for every queue that has jobs or a stored pause flag.
    /// Counts by status, the oldest queued job and recent throughput, as of `now`.
    async fn queue_stats(&self, now: Timestamp) -> Result<Vec<QueueStats>, StoreError>;

    async fn queue_set_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError>;

    /// The jobs of `queue` that finished in `window`, counted by bucket and status, and the
    /// wait (from due to last start) and run of each one that started, or of every
    /// [`HistoryRows::sample_every`]-th of them in id order when more than `sample_limit`
    /// finished.
    async fn queue_history(
        &self,
        queue: &str,
        window: HistoryWindow,
        sample_limit: u64,
    ) -> Result<HistoryRows, StoreError>;

    async fn queue_paused(&self, queue: &str) -> Result<bool, StoreError>;

    /// Stored job changes after `after_seq`, oldest first: each event with the job as it is
    /// now, but the status it had at the change. For clients catching up on missed changes.
    async fn job_changes_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::bus::JobChange>, StoreError>;

    /// The newest `seq` committed so far, 0 when there is none.
    async fn event_last_seq(&self) -> Result<i64, StoreError>;

    /// Makes every change committed so far survive a power cut. Live clients hear only of
    /// durable changes: a seq they hold must never be handed out again after a restart.
    async fn changes_make_durable(&self) -> Result<(), StoreError>;

    /// The oldest `seq` still kept, `None` when no event is kept.
    async fn event_first_seq(&self) -> Result<Option<i64>, StoreError>;

    /// Deletes events older than `before` and all but the newest `keep` events, oldest first
    /// and a bounded number per call; returns how many went. Jobs and logs are never touched.
    async fn event_prune(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError>;

    /// Events after `after_seq`, oldest first.
    /// A job's newest `limit` events, oldest of them first: the end of a long history.
    async fn event_list_newest(&self, job: JobId, limit: u32) -> Result<Vec<Event>, StoreError>;

    async fn event_list(
        &self,
        after_seq: i64,
        job: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// Records the artifacts a running attempt left (guarded like `job_finish`), replacing
    /// those of the same names. `None` when the attempt is stale and nothing was recorded;
    /// otherwise the paths no artifact names any more (replaced files), to delete.
    async fn artifact_record(
        &self,
        attempt: AttemptRef,
        artifacts: Vec<Artifact>,
    ) -> Result<Option<Vec<String>>, StoreError>;

    /// A job's artifacts by name.
    async fn artifact_list(&self, job: JobId) -> Result<Vec<Artifact>, StoreError>;

    /// The artifacts of every child of `parent`, by child and name.
    async fn artifact_list_children(&self, parent: JobId) -> Result<Vec<Artifact>, StoreError>;

    async fn artifact_get(&self, job: JobId, name: &str) -> Result<Option<Artifact>, StoreError>;

    /// Artifacts of one job, or of all jobs.
    async fn artifact_usage(&self, job: Option<JobId>) -> Result<ArtifactUsage, StoreError>;

    /// Deletes the finished tree of root `id` whole: jobs, events, logs, artifact records and
    /// idempotency keys, in one transaction.
    async fn job_delete_tree(&self, id: JobId) -> Result<TreeDeletion, StoreError>;

    /// Deletes up to `limit` finished trees whose root finished before `before` (and all of
    /// whose jobs have finished), oldest first, like `job_delete_tree`. Returns each deleted
    /// tree's deletion.
    async fn job_prune(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<TreeDeletion>, StoreError>;

    /// What trigger `name` recorded: its state as core encoded it, and a watch trigger's
    /// snapshot of its tree.
    async fn trigger_get(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError>;

    /// Records trigger `name`'s state, durably (a fire is recorded before its job is
    /// submitted). A `snapshot` of `None` keeps the one recorded.
    async fn trigger_put(
        &self,
        name: &str,
        state: Value,
        snapshot: Option<Vec<u8>>,
    ) -> Result<(), StoreError>;

    /// The newest jobs trigger `name` submitted, newest first.
    async fn job_list_by_trigger(&self, name: &str, limit: u32) -> Result<Vec<Job>, StoreError>;

    /// How many jobs stand in each status, by queue and type (the metrics' `runway_jobs`);
    /// only combinations that have jobs.
    async fn job_count_by_kind(&self) -> Result<Vec<KindCount>, StoreError>;
}

/// Jobs of one queue and type in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCount {
    pub queue: String,
    pub job_type: String,
    pub status: JobStatus,
    pub count: u64,
}

/// A trigger's record in the store; core alone reads its `state`.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRecord {
    pub state: Value,
    pub snapshot: Option<Vec<u8>>,
}
