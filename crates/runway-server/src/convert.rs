//! Core types to wire types: the only place the two meet.

use runway_api::triggers::{
    MissedFires, PENDING_PATHS_SHOWN, ScheduleDetails, TriggerKind, TriggerListResponse,
    TriggerResponse, TriggerState, WatchDetails, WebhookDetails, WebhookSignature,
};
use runway_api::users::{TokenResponse, UserResponse};
use runway_api::{
    ChildCountsBody, EventResponse, JobListResponse, JobPhase, JobResponse, JobUpdate,
    ProgressBody, QueueResponse, SubmitJobRequest, ThroughputBody, TypeResponse,
};
use runway_core::app::QueueView;
use runway_core::bus::JobChange;
use runway_core::config::{JobRun, JobTypeConfig};
use runway_core::config::{Missed, Signature, TriggerSource};
use runway_core::event::Event;
use runway_core::job::Phase;
use runway_core::job_order::JobOrder;
use runway_core::log_text::{LogMark, LogStream};
use runway_core::queue_history::QueueHistory;
use runway_core::store::{THROUGHPUT_BUCKET_SECONDS, THROUGHPUT_BUCKETS};
use runway_core::triggers::{TriggerPhase, TriggerView};
use runway_core::users::{Role, TokenRecord, User};
use runway_core::watch_state::Changed;
use runway_core::{Job, SubmitParams};

/// Longest input, as JSON text, that lists and live messages carry whole. A larger one is sent
/// as a preview: lists and feeds repeat a job's input with every row and every change, so a
/// 100 MB input must not travel with each; `GET /v1/jobs/{id}` always has it whole.
pub const INPUT_PREVIEW_BYTES: usize = 4096;

/// The job for lists and live messages: its input cut to a preview when it is large. Takes
/// the job by reference so a large input is never copied whole for a message that carries
/// only its preview.
pub fn job_preview(job: &Job) -> JobResponse {
    match input_preview(&job.input, INPUT_PREVIEW_BYTES) {
        Some(preview) => response(job, serde_json::Value::String(preview), true),
        None => response(job, job.input.clone(), false),
    }
}

/// The first `limit` bytes of `input` as JSON text and `…`, or `None` when it is no longer.
/// Serializing stops at the limit, so a huge input costs no more than a small one.
fn input_preview(input: &serde_json::Value, limit: usize) -> Option<String> {
    struct Bounded {
        text: Vec<u8>,
        limit: usize,
    }
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let room = self.limit + 1 - self.text.len();
            self.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if self.text.len() > self.limit {
                return Err(std::io::Error::other("past the preview"));
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut bounded = Bounded {
        text: Vec::with_capacity(limit + 1),
        limit,
    };
    if serde_json::to_writer(&mut bounded, input).is_ok() {
        return None;
    }
    let mut cut = limit;
    while cut > 0 && (bounded.text[cut] & 0b1100_0000) == 0b1000_0000 {
        cut -= 1;
    }
    let mut preview = String::from_utf8_lossy(&bounded.text[..cut]).into_owned();
    preview.push('…');
    Some(preview)
}

/// A submit as the wire gives it, for `App::submit`.
pub fn submit_params(request: SubmitJobRequest) -> SubmitParams {
    SubmitParams {
        job_type: request.job_type,
        input: request.input,
        queue: request.queue,
        priority: request.priority,
        run_at: request.run_at,
        max_attempts: request.max_attempts,
        idempotency_key: request.idempotency_key,
        key: request.key,
        children: request.children.into_iter().map(submit_params).collect(),
        trigger: None,
    }
}

/// The job whole, as `GET /v1/jobs/{id}` shows it.
pub fn job(mut job: Job) -> JobResponse {
    let input = std::mem::take(&mut job.input);
    response(&job, input, false)
}

/// Every field of the job, with `input` as given.
fn response(job: &Job, input: serde_json::Value, input_truncated: bool) -> JobResponse {
    JobResponse {
        id: job.id.to_string(),
        job_type: job.job_type.clone(),
        queue: job.queue.clone(),
        status: job.status.as_str().to_string(),
        priority: job.priority,
        input,
        input_truncated,
        output: job.output.clone(),
        error: job.error.clone(),
        // A waiting parent's progress is the share of its children that finished.
        progress: job
            .tree_progress()
            .as_ref()
            .or(job.progress.as_ref())
            .map(|progress| ProgressBody {
                fraction: progress.fraction,
                message: progress.message.clone(),
            }),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        parent: job.parent.map(|id| id.to_string()),
        retry_of: job.retry_of.map(|id| id.to_string()),
        cancel_requested: job.cancel_requested,
        created_at: job.created_at,
        run_at: job.run_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        worker: job.worker.clone(),
        log_size: job.log_size,
        log_lost: job.log_lost,
        runs: job.runs,
        root: job.root.map(|id| id.to_string()),
        depth: job.depth,
        key: job.key.clone(),
        phase: match job.phase {
            Phase::Run => JobPhase::Run,
            Phase::Join => JobPhase::Join,
        },
        phase_attempt: job.phase_attempt(),
        children: ChildCountsBody {
            total: job.children.total,
            unfinished: job.children.unfinished,
            succeeded: job.children.succeeded,
            failed: job.children.failed,
            cancelled: job.children.cancelled,
        },
        trigger: job.trigger.clone(),
        owner: job.owner.as_ref().map(|owner| owner.name.clone()),
    }
}

pub fn queue(view: QueueView) -> QueueResponse {
    QueueResponse {
        name: view.name,
        concurrency: view.config.concurrency,
        paused: view.stats.paused,
        queued: view.stats.queued,
        scheduled: view.stats.scheduled,
        running: view.stats.running,
        succeeded: view.stats.succeeded,
        failed: view.stats.failed,
        cancelled: view.stats.cancelled,
        oldest_queued_at: view.stats.oldest_queued_at,
        throughput: ThroughputBody {
            bucket_seconds: THROUGHPUT_BUCKET_SECONDS as u32,
            finished: {
                let mut finished = view.stats.finished_per_bucket;
                finished.resize(THROUGHPUT_BUCKETS, 0);
                finished
            },
        },
    }
}

/// A committed change as a live message: the job as `GET /v1/jobs/{id}` shows it, under the
/// message's names. Built from [`job`], so both always carry the same fields.
pub fn job_update(change: &JobChange) -> JobUpdate {
    let JobResponse {
        id,
        job_type,
        queue,
        status,
        priority,
        input,
        output,
        error,
        progress,
        attempt,
        max_attempts,
        parent,
        retry_of,
        cancel_requested,
        created_at,
        run_at,
        started_at,
        finished_at,
        worker,
        log_size,
        log_lost,
        runs,
        input_truncated,
        root,
        depth,
        key,
        phase,
        phase_attempt,
        children,
        trigger,
        owner,
    } = job_preview(&change.job);
    JobUpdate {
        seq: change.seq,
        kind: change.kind.as_str().to_string(),
        at: change.at,
        job_id: id,
        job_type,
        queue,
        status,
        parent,
        input,
        output,
        progress,
        error,
        attempt,
        max_attempts,
        priority,
        retry_of,
        cancel_requested,
        created_at,
        run_at,
        started_at,
        finished_at,
        worker,
        log_size,
        log_lost,
        runs,
        input_truncated,
        root,
        depth,
        key,
        phase,
        phase_attempt,
        children,
        trigger,
        owner,
    }
}

/// One page of a job list of at most `limit`: a full page says where the next one starts.
pub fn queue_history(queue: &str, history: &QueueHistory) -> runway_api::QueueHistoryResponse {
    runway_api::QueueHistoryResponse {
        queue: queue.to_string(),
        range: history.span.as_str().to_string(),
        bucket_seconds: history.span.bucket_seconds() as u32,
        sampled: history.sampled,
        buckets: history
            .buckets
            .iter()
            .map(|bucket| runway_api::HistoryBucketBody {
                start: runway_core::clock::micros_to_timestamp(bucket.start),
                succeeded: bucket.succeeded,
                failed: bucket.failed,
                cancelled: bucket.cancelled,
                wait_p50_ms: bucket.wait_p50_ms,
                wait_p95_ms: bucket.wait_p95_ms,
                run_p50_ms: bucket.run_p50_ms,
                run_p95_ms: bucket.run_p95_ms,
            })
            .collect(),
    }
}

/// The marks of a log's text.
pub fn log_marks(marks: &[LogMark]) -> Vec<runway_api::LogMark> {
    marks
        .iter()
        .map(|mark| runway_api::LogMark {
            offset: mark.offset,
            attempt: mark.attempt,
            stream: match mark.stream {
                LogStream::Stdout => runway_api::LogStream::Stdout,
                LogStream::Stderr => runway_api::LogStream::Stderr,
                LogStream::Runway => runway_api::LogStream::Runway,
            },
            at: mark.at,
        })
        .collect()
}

/// A page of a list in `order`; full pages tell where the next one starts.
pub fn job_page(jobs: Vec<Job>, limit: u32, order: JobOrder) -> JobListResponse {
    let next_cursor = (jobs.len() as u32 == limit)
        .then(|| jobs.last().map(|job| order.cursor(job).to_text()))
        .flatten();
    JobListResponse {
        jobs: jobs.iter().map(job_preview).collect(),
        next_cursor,
    }
}

pub fn event(event: Event) -> EventResponse {
    EventResponse {
        seq: event.seq,
        at: event.at,
        kind: event.kind.as_str().to_string(),
        status: event.status.as_str().to_string(),
        data: event.data,
    }
}

pub fn job_type(config: &JobTypeConfig) -> TypeResponse {
    let (kind, command) = match &config.run {
        JobRun::Command { argv, .. } => ("command", Some(argv.clone())),
        JobRun::Shell => ("shell", None),
        JobRun::Handler { .. } => ("handler", None),
    };
    TypeResponse {
        name: config.name.clone(),
        queue: config.queue.clone(),
        kind: kind.to_string(),
        command,
        timeout_secs: config.timeout.map(|timeout| timeout.as_secs_f64()),
        max_attempts: config.max_attempts,
        schema: config.schema.as_ref().map(|schema| schema.document.clone()),
    }
}

/// Every trigger, as `GET /v1/triggers` and a session's triggers subscription show them.
pub fn trigger_list(views: Vec<TriggerView>) -> TriggerListResponse {
    TriggerListResponse {
        triggers: views
            .into_iter()
            .map(|view| trigger(view, Vec::new()))
            .collect(),
    }
}

/// A trigger's view, with its newest jobs when given.
pub fn trigger(view: TriggerView, recent_jobs: Vec<JobResponse>) -> TriggerResponse {
    let stoked = view.stoked();
    let (pending_paths, pending_count, pending_everything) = match &view.pending {
        Changed::Nothing => (Vec::new(), 0, false),
        Changed::Everything => (Vec::new(), 0, true),
        Changed::Paths(paths) => (
            paths.iter().take(PENDING_PATHS_SHOWN).cloned().collect(),
            paths.len() as u64,
            false,
        ),
    };
    let (mut watch, mut schedule, mut webhook) = (None, None, None);
    let kind = match view.source.as_ref() {
        TriggerSource::Watch(config) => {
            watch = Some(WatchDetails {
                root: config.root.display().to_string(),
                patterns: config.patterns.clone(),
                ignore: config.ignore.clone(),
                debounce_ms: config.debounce.as_millis() as u64,
                cooldown_ms: config.cooldown.as_millis() as u64,
            });
            TriggerKind::Watch
        }
        TriggerSource::Schedule(config) => {
            schedule = Some(ScheduleDetails {
                cron: config.expression.clone(),
                timezone: config.timezone.name().to_string(),
                missed: match config.missed {
                    Missed::RunOnce => MissedFires::RunOnce,
                    Missed::Skip => MissedFires::Skip,
                },
                input: config.input.clone(),
            });
            TriggerKind::Schedule
        }
        TriggerSource::Webhook(config) => {
            webhook = Some(WebhookDetails {
                url_path: format!("/hooks/{}", config.path),
                signature: match config.signature {
                    Signature::HmacSha256 => WebhookSignature::HmacSha256,
                    Signature::Bearer => WebhookSignature::Bearer,
                },
                input_pointer: config.input_pointer.clone(),
            });
            TriggerKind::Webhook
        }
    };
    TriggerResponse {
        name: view.name,
        kind,
        job_type: view.job_type,
        paused: view.paused,
        state: match view.phase {
            TriggerPhase::Idle => TriggerState::Idle,
            TriggerPhase::Waiting => TriggerState::Waiting,
            TriggerPhase::Running => TriggerState::Running,
            TriggerPhase::Cooldown => TriggerState::Cooldown,
        },
        stoked,
        pending_paths,
        pending_count,
        pending_everything,
        last_change_at: view.last_change_at,
        next_fire_at: view.next_fire_at,
        running_job: view.running_job.map(|id| id.to_string()),
        last_fire_at: view.last_fire_at,
        last_job: view.last_job.map(|id| id.to_string()),
        problem: view.problem,
        revision: view.revision,
        watch,
        schedule,
        webhook,
        recent_jobs,
    }
}

/// A role as the wire names it, for core.
pub fn core_role(role: runway_api::users::Role) -> Role {
    match role {
        runway_api::users::Role::Admin => Role::Admin,
        runway_api::users::Role::Member => Role::Member,
    }
}

pub fn role(role: Role) -> runway_api::users::Role {
    match role {
        Role::Admin => runway_api::users::Role::Admin,
        Role::Member => runway_api::users::Role::Member,
    }
}

pub fn user(user: &User) -> UserResponse {
    UserResponse {
        name: user.name.clone(),
        role: role(user.role),
        created_at: user.created_at,
    }
}

/// A token as shown: its id, public prefix and owner, never the secret or its hash.
pub fn token(token: &TokenRecord, user: &str) -> TokenResponse {
    TokenResponse {
        id: token.id.to_string(),
        prefix: crate::auth::shown_prefix(token),
        user: user.to_string(),
        name: token.name.clone(),
        created_at: token.created_at,
        expires_at: token.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_small_input_is_whole_and_a_large_one_a_preview_at_a_character_boundary() {
        assert_eq!(input_preview(&json!({"a": 1}), 16), None);
        assert_eq!(
            input_preview(&json!("0123456789abcd"), 16),
            None,
            "16 bytes fit"
        );
        assert_eq!(
            input_preview(&json!("0123456789abcdef"), 16).as_deref(),
            Some("\"0123456789abcde…")
        );
        // "é" is two bytes: the cut never splits it.
        let preview = input_preview(&json!("ééééééééé"), 8).unwrap();
        assert_eq!(preview, "\"ééé…");
    }
}
