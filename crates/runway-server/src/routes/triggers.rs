use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use runway_api::ErrorResponse;
use runway_api::triggers::{FireResponse, TriggerListResponse, TriggerResponse};
use runway_core::triggers::Fired;

use crate::auth::Caller;
use crate::error::{ApiError, path_param};
use crate::{ServerState, convert};

/// Jobs listed with a trigger.
const RECENT_JOBS: u32 = 10;

/// What only admins may do with triggers: their jobs are the server's, which members do not see.
const TRIGGERS: &str = "see or control triggers: their jobs are the server's";

/// Every trigger of the config, with where it stands.
#[utoipa::path(get, path = "/v1/triggers", tag = "triggers", security(("bearer" = [])),
    responses(
        (status = 200, body = TriggerListResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
    ))]
pub async fn list_triggers(
    State(state): State<ServerState>,
    caller: Caller,
) -> Result<Json<TriggerListResponse>, ApiError> {
    caller.admin(TRIGGERS)?;
    Ok(Json(convert::trigger_list(state.app.triggers().list())))
}

/// One trigger, with its newest jobs.
#[utoipa::path(get, path = "/v1/triggers/{name}", tag = "triggers", security(("bearer" = [])),
    params(("name" = String, Path, description = "trigger name")),
    responses(
        (status = 200, body = TriggerResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn get_trigger(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TriggerResponse>, ApiError> {
    caller.admin(TRIGGERS)?;
    let name = path_param(name)?;
    Ok(Json(with_jobs(&state, &name).await?))
}

/// Submits the trigger's job now. A watch trigger that runs or cools down answers without a
/// job: one more run follows (a full rebuild, `"paths": null`). A paused trigger answers 409.
#[utoipa::path(post, path = "/v1/triggers/{name}/fire", tag = "triggers", security(("bearer" = [])),
    params(("name" = String, Path, description = "trigger name")),
    responses(
        (status = 200, body = FireResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn fire_trigger(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<FireResponse>, ApiError> {
    caller.admin(TRIGGERS)?;
    let name = path_param(name)?;
    let fired = state.app.triggers().fire(&name).await?;
    Ok(Json(FireResponse {
        job: match fired {
            Fired::Submitted(job) => Some(job.to_string()),
            Fired::Later => None,
        },
        trigger: with_jobs(&state, &name).await?,
    }))
}

/// A paused trigger submits nothing: a watch trigger gathers changes and runs once resumed, a
/// schedule skips its fires, a webhook refuses deliveries (409).
#[utoipa::path(post, path = "/v1/triggers/{name}/pause", tag = "triggers", security(("bearer" = [])),
    params(("name" = String, Path, description = "trigger name")),
    responses(
        (status = 200, body = TriggerResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn pause_trigger(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TriggerResponse>, ApiError> {
    caller.admin(TRIGGERS)?;
    set_paused(&state, path_param(name)?, true).await
}

#[utoipa::path(post, path = "/v1/triggers/{name}/resume", tag = "triggers", security(("bearer" = [])),
    params(("name" = String, Path, description = "trigger name")),
    responses(
        (status = 200, body = TriggerResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn resume_trigger(
    State(state): State<ServerState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TriggerResponse>, ApiError> {
    caller.admin(TRIGGERS)?;
    set_paused(&state, path_param(name)?, false).await
}

async fn set_paused(
    state: &ServerState,
    name: String,
    paused: bool,
) -> Result<Json<TriggerResponse>, ApiError> {
    state.app.triggers().set_paused(&name, paused).await?;
    Ok(Json(with_jobs(state, &name).await?))
}

async fn with_jobs(state: &ServerState, name: &str) -> Result<TriggerResponse, ApiError> {
    let view = state.app.triggers().get(name)?;
    let jobs = state.app.trigger_jobs(name, RECENT_JOBS).await?;
    Ok(convert::trigger(
        view,
        jobs.iter().map(convert::job_preview).collect(),
    ))
}
