//! Core types to wire types: the only place the two meet.

use runway_api::{
    EventResponse, JobListResponse, JobResponse, JobUpdate, ProgressBody, QueueResponse,
    ThroughputBody, TypeResponse,
};
use runway_core::Job;
use runway_core::app::QueueView;
use runway_core::bus::JobChange;
use runway_core::config::{JobRun, JobTypeConfig};
use runway_core::event::Event;
use runway_core::store::{THROUGHPUT_BUCKET_SECONDS, THROUGHPUT_BUCKETS};

pub fn job(job: Job) -> JobResponse {
    JobResponse {
        id: job.id.to_string(),
        job_type: job.job_type,
        queue: job.queue,
        status: job.status.as_str().to_string(),
        priority: job.priority,
        input: job.input,
        output: job.output,
        error: job.error,
        progress: job.progress.map(|progress| ProgressBody {
            fraction: progress.fraction,
            message: progress.message,
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
        worker: job.worker,
        log_size: job.log_size,
        log_lost: job.log_lost,
        runs: job.runs,
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
    } = job(change.job.as_ref().clone());
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
    }
}

/// One page of a job list of at most `limit`: a full page says where the next one starts.
pub fn job_page(jobs: Vec<Job>, limit: u32) -> JobListResponse {
    let next_cursor = (jobs.len() as u32 == limit)
        .then(|| jobs.last().map(|job| job.id.to_string()))
        .flatten();
    JobListResponse {
        jobs: jobs.into_iter().map(job).collect(),
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
