//! Job trees: a job with the way up to its root and a page of its children, and children
//! spawned under a running job (by its command with its job token, or by an admin).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use runway_api::{ErrorResponse, SpawnRequest, SubmitBatchResponse, TreeResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Credential};
use crate::error::{ApiError, path_param};
use crate::json::JsonBody;
use crate::{ServerState, convert, params};

const DEFAULT_CHILDREN: u32 = 100;
const MAX_CHILDREN_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TreeQuery {
    /// `next_cursor` of the previous page of children.
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
    /// Children per page, 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A job, its ancestors from the root down, and one page of its children in the order they
/// were made. Open a child's own tree to go further down.
#[utoipa::path(get, path = "/v1/jobs/{id}/tree", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$"), TreeQuery),
    responses(
        (status = 200, body = TreeResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn job_tree(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<TreeQuery>, QueryRejection>,
) -> Result<Json<TreeResponse>, ApiError> {
    let query = params::query(query)?;
    let limit = params::page_limit(query.limit, DEFAULT_CHILDREN, MAX_CHILDREN_PAGE)?;
    let after = params::id_cursor(query.cursor.as_deref())?;
    let job = state
        .app
        .job(caller.access(), params::job_id(&path_param(id)?)?)
        .await?;
    let mut ancestors = state.app.ancestors(&job).await?;
    // A job token sees its own job's subtree: the ancestors from its job down, not above.
    if let Credential::Job(own) = caller.0 {
        let from = ancestors.iter().position(|ancestor| ancestor.id == own);
        ancestors.drain(..from.unwrap_or(ancestors.len()));
    }
    let children = state
        .app
        .children(caller.access(), job.id, after, limit)
        .await?;
    let next_cursor = (children.len() as u32 == limit)
        .then(|| children.last().map(|child| child.id.to_string()))
        .flatten();
    Ok(Json(TreeResponse {
        ancestors: ancestors.iter().map(convert::job_preview).collect(),
        children: children.iter().map(convert::job_preview).collect(),
        job: convert::job(job),
        next_cursor,
    }))
}

/// Spawns children under a running job, all or none, validated like submits. A child whose
/// `key` a sibling already holds (same type and input) is that sibling (`200` when no child
/// was new). Made for commands, with their `RUNWAY_TOKEN`.
#[utoipa::path(post, path = "/v1/jobs/{id}/children", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "the running parent's id", pattern = r"^[1-9][0-9]{0,17}$")),
    request_body = SpawnRequest,
    responses(
        (status = 201, description = "the children, in request order", body = SubmitBatchResponse),
        (status = 200, description = "every child was made before, under its key", body = SubmitBatchResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a job token of another job, or a member spawning a type only admins may (`shell`)", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job is not running, cannot take more children, or a key is held by another child", body = ErrorResponse),
        (status = 422, description = "a child is invalid; `children[i]` says which", body = ErrorResponse),
    ))]
pub async fn spawn_children(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    JsonBody(request): JsonBody<SpawnRequest>,
) -> Result<(StatusCode, Json<SubmitBatchResponse>), ApiError> {
    let id = params::job_id(&path_param(id)?)?;
    if request.children.is_empty() {
        return Err(ApiError::bad_request(
            "`children` is empty; send at least one child",
        ));
    }
    let children = request
        .children
        .into_iter()
        .map(convert::submit_params)
        .collect();
    let spawned = state.app.spawn(caller.access(), id, children).await?;
    let status = if spawned.iter().any(|child| child.created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(SubmitBatchResponse {
            jobs: spawned
                .iter()
                .map(|child| convert::job_preview(&child.job))
                .collect(),
        }),
    ))
}
