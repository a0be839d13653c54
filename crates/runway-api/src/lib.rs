//! runway's wire contract: the JSON bodies of the REST API and its error codes.
//!
//! Server, client and tests share these types so the contract lives in one place. This crate
//! does no I/O and knows nothing of runway's domain types; the server converts between the two.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub mod session;
pub mod triggers;
pub mod users;
mod whole;

/// Every non-2xx answer of the API has this shape, so clients handle errors in one place.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// The machine-readable `code` stays stable; the `message` says what, where and how to fix.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// For `invalid_input`: each violation of the type's schema, so a form can mark its field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ErrorDetail>>,
}

/// One problem at one place of a request's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A JSON Pointer into the job's input; empty for the input itself.
    pub path: String,
    pub message: String,
}

/// Error codes the API answers with; stable across versions of `/v1`.
pub mod codes {
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const MALFORMED_JSON: &str = "malformed_json";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const TOO_DEEP: &str = "too_deep";
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    pub const UNKNOWN_QUEUE: &str = "unknown_queue";
    pub const INVALID_INPUT: &str = "invalid_input";
    pub const CONFLICT: &str = "conflict";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const INTERNAL: &str = "internal";
    pub const FORBIDDEN_ORIGIN: &str = "forbidden_origin";
    /// The credential may not make this request (a job token outside its job's subtree).
    pub const FORBIDDEN: &str = "forbidden";
    pub const UNKNOWN_TAG: &str = "unknown_tag";
    /// The server holds its limit of WebSockets (503): retry later.
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    /// The store cannot write because its disk is full (507): retry later; nothing changed.
    pub const STORAGE_FULL: &str = "storage_full";
    /// The `Host` header names no address this server answers to (400).
    pub const UNKNOWN_HOST: &str = "unknown_host";
    /// The server cannot take work now (503 from `/readyz`).
    pub const UNAVAILABLE: &str = "unavailable";
    /// Too many writes with one token: wait `Retry-After` seconds.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A request body did not arrive within `server.idle_timeout` (408).
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
}

/// `POST /v1/jobs`: one job to submit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJobRequest {
    /// A job type declared in the server's configuration.
    #[serde(rename = "type")]
    #[schema(min_length = 1)]
    pub job_type: String,
    /// The job's input; checked against the type's JSON Schema when it has one.
    #[serde(default)]
    pub input: Value,
    /// Overrides the type's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1)]
    pub queue: Option<String>,
    /// Higher runs first; -1000..=1000, default 0.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole::optional"
    )]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    /// Do not start before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    /// Overrides the type's attempt budget; 1..=100.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole::optional"
    )]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Makes the submit safe to repeat: the same request with the same key within
    /// `server.idempotency_window` (24 h) returns the first job (200) instead of a second one; the
    /// same key with another request is a 409. 1 to 255 visible ASCII characters, e.g. a UUID.
    /// The `Idempotency-Key` header does the same for `POST /v1/jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
    /// For a child: its key, unique among its siblings. A spawn naming a key a sibling already
    /// holds (same type and input) gets that sibling back, so a parent whose attempt is retried
    /// spawns no duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[!-~]{1,255}$")]
    pub key: Option<String>,
    /// Jobs created with this one as its children, in the same transaction (each a full
    /// request, nested up to `server.max_tree_depth`). The job then waits for them and its
    /// command runs only as their join (`join = true` in its type); without a join it succeeds
    /// when they all do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<SubmitJobRequest>,
}

/// `POST /v1/jobs/{id}/children`: children spawned under a running job, all or none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    #[schema(min_items = 1)]
    pub children: Vec<SubmitJobRequest>,
}

/// Which run of its command a job is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobPhase {
    /// The first run (`RUNWAY_PHASE=run`), which may spawn children.
    #[default]
    Run,
    /// The run after every child finished (`RUNWAY_PHASE=join`, `RUNWAY_CHILDREN`).
    Join,
}

/// A job's children by how they stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ChildCountsBody {
    pub total: u32,
    /// Queued, scheduled, running or waiting.
    pub unfinished: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub cancelled: u32,
}

/// `GET /v1/jobs/{id}/tree`: a job, the way up to its root, and one page of its children.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TreeResponse {
    pub job: JobResponse,
    /// From the root down to the job's parent; empty for a root.
    pub ancestors: Vec<JobResponse>,
    /// In the order they were made.
    pub children: Vec<JobResponse>,
    /// Pass as `cursor` to get the next page of children; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A file a job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactBody {
    /// Its path below the attempt's `RUNWAY_ARTIFACTS`, `/`-separated.
    pub name: String,
    pub size: u64,
    /// Hex SHA-256 of its bytes; the `ETag` it is served with.
    pub sha256: String,
    pub content_type: String,
    /// The attempt that left it.
    pub attempt: u32,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/jobs/{id}/artifacts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactListResponse {
    pub artifacts: Vec<ArtifactBody>,
}

/// `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteResponse {
    /// Jobs deleted: the job and its descendants.
    pub deleted: u64,
}

/// Disk use of what jobs keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StorageBody {
    pub artifact_files: u64,
    pub artifact_bytes: u64,
    /// `server.artifacts_max_total_bytes`.
    pub artifact_limit_bytes: u64,
}

/// `POST /v1/jobs/batch`: all jobs are created in one transaction, or none is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchRequest {
    #[schema(min_items = 1)]
    pub jobs: Vec<SubmitJobRequest>,
}

/// Answer to a batch submit with `return=ids`: the jobs' ids, in the order of the request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitBatchIdsResponse {
    pub ids: Vec<String>,
}

/// Answer to a batch submit, in the order of the request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitBatchResponse {
    pub jobs: Vec<JobResponse>,
}

/// A job's progress as its runner last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgressBody {
    /// 0.0 ..= 1.0
    pub fraction: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobResponse {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub queue: String,
    /// queued, scheduled, running, waiting, succeeded, failed or cancelled.
    pub status: String,
    pub priority: i32,
    /// The job's input; in lists and live messages, a string preview of its JSON text (ending
    /// in `…`) when that is over 4 KiB, with `input_truncated` set.
    pub input: Value,
    /// `input` is a preview: `GET /v1/jobs/{id}` has the whole input.
    #[serde(default)]
    pub input_truncated: bool,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub progress: Option<ProgressBody>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub parent: Option<String>,
    /// The job this one re-runs, when it was made by a retry.
    pub retry_of: Option<String>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub run_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub worker: Option<String>,
    /// Bytes of log kept so far.
    pub log_size: u64,
    /// Bytes of log the server could not keep (its disk was full); 0 when the log is whole.
    /// The log has a `[runway: … lost here …]` note where they went missing.
    #[serde(default)]
    pub log_lost: u64,
    /// Every start of the job, also those that do not count as an attempt (a hand-back at
    /// shutdown, a claim whose process never started); `RUNWAY_RUN` for a command.
    #[serde(default)]
    pub runs: u32,
    /// The root of the job's tree; absent for a root.
    #[serde(default)]
    pub root: Option<String>,
    /// 0 for a root, 1 for its children, …
    #[serde(default)]
    pub depth: u32,
    /// The key the job was spawned with.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub phase: JobPhase,
    /// Attempts of the current phase (`attempt` counts both phases): what `max_attempts`
    /// bounds.
    #[serde(default)]
    pub phase_attempt: u32,
    #[serde(default)]
    pub children: ChildCountsBody,
    /// The trigger that submitted the job.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The user who submitted the job (a child: its tree's); absent for the server's own, as a
    /// trigger's.
    #[serde(default)]
    pub owner: Option<String>,
}

/// `GET /v1/jobs`: one page, newest first unless `sort` says otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobListResponse {
    pub jobs: Vec<JobResponse>,
    /// Pass as `cursor` (with the same `sort` and `order`) to get the next page; absent on the
    /// last page.
    pub next_cursor: Option<String>,
}

/// What a job list is ordered by. Jobs without the value (not started, not finished) come
/// last in either order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobSortField {
    /// When submitted (the default).
    #[default]
    Created,
    /// When its latest attempt started.
    Started,
    Finished,
    /// Finished minus started.
    Duration,
    /// The attempt number.
    Attempts,
}

/// The direction of a sorted list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Highest, latest or longest first (the default).
    #[default]
    Desc,
    Asc,
}

/// `GET /v1/jobs/count`: how many jobs the filters match.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CountResponse {
    pub count: u64,
}

/// What a bulk request does to each job it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Cancel the unfinished jobs; finished ones are skipped.
    Cancel,
    /// Run the finished jobs again as new jobs; unfinished ones are skipped.
    Retry,
}

/// The jobs of a bulk request, by the same filters as `GET /v1/jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    #[serde(default)]
    pub status: Vec<String>,
    #[serde(default, rename = "type")]
    pub job_type: Vec<String>,
    #[serde(default)]
    pub queue: Vec<String>,
    #[serde(default)]
    pub q: Option<String>,
    /// Only the children of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[1-9][0-9]{0,17}$")]
    pub parent: Option<String>,
    /// `true`: only jobs without a parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<bool>,
    /// Only jobs created at or after this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub created_after: Option<String>,
    /// Only jobs created before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub created_before: Option<String>,
    /// Only jobs finished at or after this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub finished_after: Option<String>,
    /// Only jobs finished before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub finished_before: Option<String>,
}

/// `POST /v1/jobs/bulk`: one action on the jobs named by `ids` or matched by `filter`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub action: BulkAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<BulkFilter>,
}

/// Answer to a bulk request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkResponse {
    /// Jobs the request named or its filter matched.
    pub matched: u64,
    /// Jobs cancelled, or retried as new jobs; the rest were skipped as not applicable.
    pub changed: u64,
    /// Why jobs were skipped: the first 100 of them, in the order they were taken.
    pub skipped: Vec<BulkSkipped>,
}

/// A job a bulk action did not apply to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkSkipped {
    pub id: String,
    pub reason: String,
}

/// One change in a job's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `submitted`, `started`, `progress`, `succeeded`, `failed`, … (see docs/protocol.md).
    pub kind: String,
    /// The job's status after the change.
    pub status: String,
    /// Details: attempt, error, progress, as the change recorded them.
    pub data: Value,
}

/// `GET /v1/jobs/{id}/events`: the job's timeline, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventListResponse {
    pub events: Vec<EventResponse>,
}

/// `GET /v1/jobs/{id}/log`: the stored log from `offset`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogResponse {
    pub offset: u64,
    /// Pass as `offset` to continue after this chunk.
    pub next_offset: u64,
    pub data: String,
    /// Where each part of `data` came from, in order; the first is at `offset`.
    #[serde(default)]
    pub marks: Vec<LogMark>,
    /// The job is terminal and `next_offset` is the end of its log: nothing more will come.
    pub complete: bool,
}

/// `POST /v1/jobs/{id}/cancel`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CancelResponse {
    pub job: JobResponse,
    /// True when the job was running: it is being stopped and will end `cancelled` shortly.
    pub stopping: bool,
}

/// A declared job type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TypeResponse {
    pub name: String,
    pub queue: String,
    /// `command`, `shell` or `handler`.
    pub kind: String,
    pub command: Option<Vec<String>>,
    pub timeout_secs: Option<f64>,
    pub max_attempts: u32,
    pub schema: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TypeListResponse {
    pub types: Vec<TypeResponse>,
}

/// A queue with its live counts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueResponse {
    pub name: String,
    pub concurrency: u32,
    pub paused: bool,
    pub queued: u64,
    pub scheduled: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// When the oldest queued job was submitted; how long the queue has kept someone waiting.
    pub oldest_queued_at: Option<DateTime<Utc>>,
    pub throughput: ThroughputBody,
}

/// Jobs of a queue that finished per window, over the last ten minutes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThroughputBody {
    pub bucket_seconds: u32,
    /// Oldest window first; the last is the current, unfinished window.
    pub finished: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueListResponse {
    pub queues: Vec<QueueResponse>,
    /// What artifacts take on disk.
    #[serde(default)]
    pub storage: StorageBody,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
    pub version: String,
}

/// The statuses a job can have, as strings on the wire.
pub const JOB_STATUSES: [&str; 7] = [
    "queued",
    "scheduled",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "cancelled",
];

/// Statuses after which a job never changes again.
pub const TERMINAL_STATUSES: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// A message of the live job feed `/v1/jobs/updates`: a frame of changes, or a resync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "tag", rename_all = "snake_case")]
pub enum FeedMessage {
    Frame(Frame),
    /// Changes after `since` are no longer kept: reload the state you show (e.g. `GET
    /// /v1/jobs`); the feed goes on from `seq`.
    Resync(ResyncUpdate),
    /// A trigger changed (with `?triggers=true`): its whole view, as `GET
    /// /v1/triggers/{name}` shows it without `recent_jobs`.
    Trigger(Box<triggers::TriggerResponse>),
}

/// The changes with a `seq` in `after < seq <= upto` that a subscription covers, oldest first,
/// and the log text written meanwhile (when asked for). Frames of one subscription follow each
/// other without gap: the next one's `after` is at least this one's `upto`. Pass `upto` as
/// `since` to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Frame {
    pub after: i64,
    pub upto: i64,
    /// Only the latest change of each job in the range (the client fell behind, or resumed):
    /// every job's newest state, not every step on the way.
    #[serde(default)]
    pub coalesced: bool,
    pub jobs: Vec<JobUpdate>,
    #[serde(default)]
    pub logs: Vec<LogUpdate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResyncUpdate {
    pub seq: i64,
    pub reason: String,
}

/// One committed change of a job, with the job as it was right after it. Fields at their
/// default (null, false, 0, `"run"`, no children) are left out: a live client receives
/// thousands of changes, most of them of jobs with no parent, output, error or children yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobUpdate {
    /// Global, increasing; pass the last one seen as `since` to resume.
    pub seq: i64,
    /// What happened: submitted, started, progress, succeeded, failed, retry_scheduled, …
    pub kind: String,
    pub at: DateTime<Utc>,
    pub job_id: String,
    pub job_type: String,
    pub queue: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub input: Value,
    #[serde(default, skip_serializing_if = "is_default")]
    pub input_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempt: u32,
    pub max_attempts: u32,
    /// The rest of the job, as `GET /v1/jobs/{id}` shows it, so a client can show a job it
    /// first hears of from a message without reading it again.
    #[serde(default, skip_serializing_if = "is_default")]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub run_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub log_size: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub log_lost: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub runs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub depth: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub phase: JobPhase,
    #[serde(default, skip_serializing_if = "is_default")]
    pub phase_attempt: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub children: ChildCountsBody,
    /// The trigger that submitted the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The user who submitted the job.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Whether a field holds its type's default, so a live change can leave it out.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Log text appended to a job's log at byte `offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogUpdate {
    pub job_id: String,
    pub offset: u64,
    pub data: String,
    /// Where each part of `data` came from, in order; the first is at `offset`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<LogMark>,
}

/// `GET /v1/queues/{name}/history`: the queue's jobs that finished over a span, by bucket of
/// time, oldest first; the last bucket is the current, unfinished one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueHistoryResponse {
    pub queue: String,
    /// `15m`, `1h`, `24h` or `7d`.
    pub range: String,
    pub bucket_seconds: u32,
    /// The wait and run percentiles come from an even sample of the jobs (more than 20,000
    /// finished in the span); the counts are exact.
    pub sampled: bool,
    pub buckets: Vec<HistoryBucketBody>,
}

/// One bucket of a queue's history. Percentiles are absent for a bucket without a finished
/// job that started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryBucketBody {
    pub start: DateTime<Utc>,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// From due (submitted, or its retry's time) to its last start, in milliseconds.
    pub wait_p50_ms: Option<f64>,
    pub wait_p95_ms: Option<f64>,
    /// Its last run, in milliseconds.
    pub run_p50_ms: Option<f64>,
    pub run_p95_ms: Option<f64>,
}

/// Where a part of a job's log begins: from `offset` up to the next mark, its text came from
/// `stream` during `attempt` and was stored at `at` (absent for logs kept before marks were).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogMark {
    pub offset: u64,
    pub attempt: u32,
    pub stream: LogStream,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// Where a line of log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// runway's own notes: a spawn, a refused line, a cut log.
    Runway,
}

/// `POST /v1/auth/session`: exchange a token, or a sign-in code, for a browser session
/// cookie. Give exactly one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A sign-in code (`rwc_…`), as `runway serve` or `runway dashboard` printed it in a link;
    /// spent by this sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The session made by a sign-in; the cookie itself is HttpOnly and never in a body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInResponse {
    pub expires_at: DateTime<Utc>,
    /// Who the session speaks for.
    pub user: users::UserResponse,
}
