use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use runway_api::{ErrorResponse, QueueHistoryResponse, QueueListResponse, QueueResponse, codes};
use runway_core::Error;
use runway_core::queue_history::HistorySpan;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, path_param};
use crate::{ServerState, convert, params};

/// Every declared queue with its counts by status, and what artifacts take on disk. The
/// counts are of every user's jobs: a member sees how busy a queue is, not whose jobs wait.
#[utoipa::path(get, path = "/v1/queues", tag = "queues", security(("bearer" = [])),
    responses((status = 200, body = QueueListResponse), (status = 401, body = ErrorResponse)))]
pub async fn list_queues(
    State(state): State<ServerState>,
) -> Result<Json<QueueListResponse>, ApiError> {
    let queues = state.app.queues().await?;
    let usage = state.app.artifact_usage().await?;
    Ok(Json(QueueListResponse {
        queues: queues.into_iter().map(convert::queue).collect(),
        storage: runway_api::StorageBody {
            artifact_files: usage.files,
            artifact_bytes: usage.bytes,
            artifact_limit_bytes: state.app.config().server.artifact_limits.max_total_bytes,
        },
    }))
}

/// A paused queue accepts jobs but starts none; running ones finish.
#[utoipa::path(post, path = "/v1/queues/{name}/pause", tag = "queues", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    responses(
        (status = 200, body = QueueResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "only an admin may pause or resume a queue", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn pause_queue(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<QueueResponse>, ApiError> {
    set_paused(state, caller, path_param(name)?, true).await
}

#[utoipa::path(post, path = "/v1/queues/{name}/resume", tag = "queues", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name")),
    responses(
        (status = 200, body = QueueResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "only an admin may pause or resume a queue", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn resume_queue(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<QueueResponse>, ApiError> {
    set_paused(state, caller, path_param(name)?, false).await
}

async fn set_paused(
    state: ServerState,
    caller: Caller,
    name: String,
    paused: bool,
) -> Result<Json<QueueResponse>, ApiError> {
    match state
        .app
        .set_queue_paused(caller.user()?, &name, paused)
        .await
    {
        Ok(view) => Ok(Json(convert::queue(view))),
        Err(error) => Err(queue_error(error)),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// `15m` (30 buckets of 30 s), `1h` (60 of a minute, the default), `24h` (96 of 15
    /// minutes) or `7d` (168 of an hour).
    #[param(pattern = "^(15m|1h|24h|7d)$")]
    range: Option<String>,
}

/// A queue's finished jobs over a span of time, for its charts: per bucket how many succeeded,
/// failed and were cancelled, and the p50 and p95 of their wait and run.
#[utoipa::path(get, path = "/v1/queues/{name}/history", tag = "queues", security(("bearer" = [])),
    params(("name" = String, Path, description = "queue name"), HistoryQuery),
    responses(
        (status = 200, body = QueueHistoryResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn queue_history(
    State(state): State<ServerState>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<QueueHistoryResponse>, ApiError> {
    let name = path_param(name)?;
    let query = params::query(query)?;
    let range = query.range.as_deref().unwrap_or("1h");
    let span = HistorySpan::parse(range).ok_or_else(|| {
        ApiError::bad_request(format!("`range` is `{range}`; use one of 15m, 1h, 24h, 7d"))
    })?;
    match state.app.queue_history(&name, span).await {
        Ok(history) => Ok(Json(convert::queue_history(&name, &history))),
        Err(error) => Err(queue_error(error)),
    }
}

/// A queue route's error: a queue the path names and the configuration does not is a 404 here
/// (a submit naming one is a 422, as a bad field of its body).
fn queue_error(error: Error) -> ApiError {
    match error {
        Error::UnknownQueue { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, error.to_string())
        }
        error => error.into(),
    }
}
