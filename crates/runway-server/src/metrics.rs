//! `GET /metrics`: the server's figures in the Prometheus text format. The engine and the store
//! record durations as they happen (`runway_job_wait_seconds`, `runway_job_run_seconds`,
//! `runway_store_commit_seconds`) through the `metrics` facade; counts are read when scraped
//! (jobs by queue, type and status, queue depth and oldest age, live clients), with the
//! process's own figures (`process_*`).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics::{describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::ServerState;
use crate::error::ApiError;

/// Bucket bounds of every duration histogram, in seconds: from a no-op job's half millisecond
/// to an hour-long render.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 900.0, 3600.0,
];

struct Recorder {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    /// Label sets of `runway_jobs` ever set: one whose jobs are all gone reads 0, not its
    /// last count.
    job_kinds: Mutex<HashSet<(String, String, &'static str)>>,
}

static RECORDER: OnceLock<Option<Recorder>> = OnceLock::new();

/// Installs the process's metrics recorder, once; `None` when another one was installed
/// before (an embedding program's).
pub fn install() -> bool {
    recorder().is_some()
}

fn recorder() -> Option<&'static Recorder> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    let process = metrics_process::Collector::default();
                    process.describe();
                    Some(Recorder {
                        handle,
                        process,
                        job_kinds: Mutex::new(HashSet::new()),
                    })
                }
                Err(error) => {
                    tracing::warn!(%error, "another metrics recorder is installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    describe_gauge!("runway_jobs", "Jobs in each status, by queue and type.");
    describe_gauge!(
        "runway_queue_depth",
        "Jobs queued or scheduled in the queue."
    );
    describe_gauge!("runway_queue_running", "Jobs of the queue running now.");
    describe_gauge!("runway_queue_concurrency", "The queue's concurrency.");
    describe_gauge!("runway_queue_paused", "1 when the queue is paused.");
    describe_gauge!(
        "runway_queue_oldest_queued_age_seconds",
        "How long the oldest queued job of the queue has waited; 0 when none waits."
    );
    describe_gauge!(
        "runway_live_clients",
        "Open WebSockets: live feeds and dashboard sessions."
    );
    describe_histogram!(
        "runway_job_wait_seconds",
        metrics::Unit::Seconds,
        "Time from a job being due to its attempt starting."
    );
    describe_histogram!(
        "runway_job_run_seconds",
        metrics::Unit::Seconds,
        "Time an attempt ran, by queue, type and the status it left the job in."
    );
    describe_histogram!(
        "runway_store_commit_seconds",
        metrics::Unit::Seconds,
        "Time the store took to commit a batch of writes (synced: with its fsync)."
    );
}

/// The server's metrics, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, body = runway_api::ErrorResponse),
        (status = 403, description = "a member: metrics count every user's jobs", body = runway_api::ErrorResponse),
        (status = 503, body = runway_api::ErrorResponse),
    ))]
pub async fn metrics(
    State(state): State<ServerState>,
    caller: crate::auth::Caller,
) -> Result<Response, ApiError> {
    caller.admin("read the metrics: they count every user's jobs")?;
    let Some(recorder) = recorder() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            runway_api::codes::UNAVAILABLE,
            "metrics are off: the program embedding runway installed its own recorder",
        ));
    };
    let kinds = state.app.job_count_by_kind().await?;
    {
        let mut seen = recorder
            .job_kinds
            .lock()
            .expect("the metrics lock is never poisoned");
        let mut now: HashSet<(String, String, &'static str)> = HashSet::new();
        for kind in kinds {
            let key = (kind.queue, kind.job_type, kind.status.as_str());
            gauge!("runway_jobs", "queue" => key.0.clone(), "type" => key.1.clone(), "status" => key.2)
                .set(kind.count as f64);
            now.insert(key);
        }
        for gone in seen.difference(&now) {
            gauge!("runway_jobs", "queue" => gone.0.clone(), "type" => gone.1.clone(), "status" => gone.2)
                .set(0.0);
        }
        seen.extend(now);
    }
    let now = state.app.now();
    for queue in state.app.queues().await? {
        let name = queue.name.clone();
        let stats = &queue.stats;
        gauge!("runway_queue_depth", "queue" => name.clone())
            .set((stats.queued + stats.scheduled) as f64);
        gauge!("runway_queue_running", "queue" => name.clone()).set(stats.running as f64);
        gauge!("runway_queue_concurrency", "queue" => name.clone())
            .set(f64::from(queue.config.concurrency));
        gauge!("runway_queue_paused", "queue" => name.clone()).set(if stats.paused {
            1.0
        } else {
            0.0
        });
        let oldest = stats.oldest_queued_at.map_or(0.0, |at| {
            (now - at).to_std().unwrap_or_default().as_secs_f64()
        });
        gauge!("runway_queue_oldest_queued_age_seconds", "queue" => name).set(oldest);
    }
    let open = state.app.config().server.max_websockets - state.websockets.available_permits();
    gauge!("runway_live_clients").set(open as f64);
    recorder.process.collect();
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        recorder.handle.render(),
    )
        .into_response())
}
