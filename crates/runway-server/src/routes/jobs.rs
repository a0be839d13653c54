use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use runway_api::{
    BulkAction, BulkRequest, BulkResponse, BulkSkipped, CancelResponse, CountResponse,
    DeleteResponse, ErrorResponse, EventListResponse, JobListResponse, JobResponse, JobSortField,
    LogResponse, SortOrder, SubmitBatchIdsResponse, SubmitBatchRequest, SubmitBatchResponse,
    SubmitJobRequest,
};
use runway_core::JobId;
use runway_core::app::BulkTarget;
use runway_core::store::{JobListParams, TreeFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, path_param};
use crate::json::JsonBody;
use crate::params::TimeBounds;
use crate::{ServerState, convert, params};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;
const DEFAULT_LOG_BYTES: u64 = 64 * 1024;
const MAX_LOG_BYTES: u64 = 1024 * 1024;

/// Submits one job. It is durable when the answer arrives. With an idempotency key (the
/// `idempotency_key` field), a repeat returns the first job. An `Idempotency-Key` header may
/// stand for the field; given both, they must be equal (400 otherwise).
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])),
    request_body = SubmitJobRequest,
    responses(
        (status = 201, description = "created", body = JobResponse),
        (status = 200, description = "the job an earlier submit with the same idempotency key made", body = JobResponse),
        (status = 400, description = "malformed JSON, unknown field, bad value, nested too deep", body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member submitting a type only admins may (`shell`)", body = ErrorResponse),
        (status = 409, description = "the idempotency key was used for a different request, or two children share a key", body = ErrorResponse),
        (status = 413, description = "body over the limit", body = ErrorResponse),
        (status = 415, body = ErrorResponse),
        (status = 422, description = "unknown type or queue, input failing the schema", body = ErrorResponse),
    ))]
pub async fn submit_job(
    State(state): State<ServerState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(mut request): JsonBody<SubmitJobRequest>,
) -> Result<(StatusCode, Json<JobResponse>), ApiError> {
    if let Some(header) = headers.get("idempotency-key") {
        let header = header.to_str().map_err(|_| {
            ApiError::bad_request(
                "the Idempotency-Key header is not visible ASCII; use letters, digits and punctuation",
            )
        })?;
        match &request.idempotency_key {
            Some(field) if field != header => {
                return Err(ApiError::bad_request(format!(
                    "the Idempotency-Key header `{header}` and the idempotency_key field `{field}` differ; send one"
                )));
            }
            _ => request.idempotency_key = Some(header.to_string()),
        }
    }
    let inserted = state
        .app
        .submit(Some(caller.user()?), vec![convert::submit_params(request)])
        .await?
        .remove(0);
    let status = if inserted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(convert::job(inserted.job))))
}

/// What a batch submit answers with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// `jobs` (the default): every job whole; `ids`: only their ids, in request order
    /// (`{"ids": [...]}`), a tenth of the bytes for a large batch.
    #[serde(rename = "return")]
    #[param(rename = "return", pattern = "^(jobs|ids)$")]
    answer: Option<String>,
}

/// Submits many jobs in one transaction: all are created, or none.
#[utoipa::path(post, path = "/v1/jobs/batch", tag = "jobs", security(("bearer" = [])),
    request_body = SubmitBatchRequest,
    params(BatchQuery),
    responses(
        (status = 201, description = "created (those with a known idempotency key are the earlier jobs), in request order; with `return=ids`, a SubmitBatchIdsResponse", body = SubmitBatchResponse),
        (status = 200, description = "every job was an earlier one, by its idempotency key", body = SubmitBatchResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 403, description = "a member submitting a type only admins may (`shell`)", body = ErrorResponse),
        (status = 409, description = "an idempotency key was used for a different request, or two children share a key", body = ErrorResponse),
        (status = 413, body = ErrorResponse),
        (status = 422, description = "a job is invalid; `jobs[i]` in the message says which", body = ErrorResponse),
    ))]
pub async fn submit_batch(
    State(state): State<ServerState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<BatchQuery>, QueryRejection>,
    JsonBody(request): JsonBody<SubmitBatchRequest>,
) -> Result<(StatusCode, axum::response::Response), ApiError> {
    let query = params::query(query)?;
    let ids_only = match query.answer.as_deref() {
        None | Some("jobs") => false,
        Some("ids") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`return` is `{other}`; use `jobs` or `ids`"
            )));
        }
    };
    // One key cannot guard many jobs: ignoring it would make every retry a new batch.
    if headers.contains_key("idempotency-key") {
        return Err(ApiError::bad_request(
            "the Idempotency-Key header is for single submits; give each job of a batch its own idempotency_key field",
        ));
    }
    if request.jobs.is_empty() {
        return Err(ApiError::bad_request(
            "`jobs` is empty; send at least one job",
        ));
    }
    let inserted = state
        .app
        .submit(
            Some(caller.user()?),
            request
                .jobs
                .into_iter()
                .map(convert::submit_params)
                .collect(),
        )
        .await?;
    let status = if inserted.iter().any(|one| one.created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = if ids_only {
        Json(SubmitBatchIdsResponse {
            ids: inserted.iter().map(|one| one.job.id.to_string()).collect(),
        })
        .into_response()
    } else {
        Json(SubmitBatchResponse {
            jobs: inserted
                .iter()
                .map(|one| convert::job_preview(&one.job))
                .collect(),
        })
        .into_response()
    };
    Ok((status, answer))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only the children of this job.
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    parent: Option<String>,
    /// `true`: only jobs without a parent (roots of their trees).
    roots: Option<bool>,
    /// Only the jobs that run this job again (its retries).
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    retry_of: Option<String>,
    /// Statuses joined by commas, e.g. `queued,running`.
    #[param(
        pattern = "^(queued|scheduled|running|waiting|succeeded|failed|cancelled)(,(queued|scheduled|running|waiting|succeeded|failed|cancelled))*$"
    )]
    status: Option<String>,
    /// Comma-separated job types.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    job_type: Option<String>,
    /// Comma-separated queues.
    queue: Option<String>,
    /// Search: the job id, or part of its type or of its input's JSON text (any case).
    q: Option<String>,
    /// Only jobs created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    created_after: Option<String>,
    /// Only jobs created before this instant (RFC 3339).
    #[param(format = DateTime)]
    created_before: Option<String>,
    /// Only jobs finished at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    finished_after: Option<String>,
    /// Only jobs finished before this instant (RFC 3339).
    #[param(format = DateTime)]
    finished_before: Option<String>,
    /// What the list is ordered by; `created` (newest first) by default.
    #[param(inline)]
    sort: Option<JobSortField>,
    /// `desc` (the default) or `asc`.
    #[param(inline)]
    order: Option<SortOrder>,
    /// `next_cursor` of the previous page, in the same `sort` and `order`.
    #[param(pattern = r"^((-?[0-9]{1,18}|-):)?[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
    /// Jobs per page, 1..=1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Jobs, one page at a time: newest first, or in the order `sort` and `order` ask for.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = JobListResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
    ))]
pub async fn list_jobs(
    State(state): State<ServerState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobListResponse>, ApiError> {
    let query = params::query(query)?;
    let tree = tree_filter(query.parent.as_deref(), query.roots)?;
    let filter = filter_params(
        query.status.as_deref(),
        query.job_type.as_deref(),
        query.queue.as_deref(),
        query.q.as_deref(),
        TimeBounds {
            created_after: query.created_after.as_deref(),
            created_before: query.created_before.as_deref(),
            finished_after: query.finished_after.as_deref(),
            finished_before: query.finished_before.as_deref(),
        },
    )?;
    let limit = params::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let order = params::job_order(query.sort, query.order);
    let before = params::cursor(query.cursor.as_deref())?;
    let Some(tree) = tree else {
        return Ok(Json(convert::job_page(Vec::new(), limit, order)));
    };
    let filter = JobListParams {
        tree,
        order,
        retry_of: retried(query.retry_of.as_deref())?,
        ..filter
    };
    let jobs = state
        .app
        .jobs(
            caller.access(),
            JobListParams {
                before,
                limit,
                ..filter
            },
        )
        .await?;
    Ok(Json(convert::job_page(jobs, limit, order)))
}

/// Which jobs of their trees a list or count covers; `None` when no job can match (`parent`
/// with `roots=true`: a root has no parent).
fn tree_filter(parent: Option<&str>, roots: Option<bool>) -> Result<Option<TreeFilter>, ApiError> {
    let parent = parent
        .map(|parent| {
            parent
                .parse()
                .map_err(|message: String| ApiError::bad_request(format!("`parent`: {message}")))
        })
        .transpose()?;
    Ok(match (parent, roots) {
        (Some(_), Some(true)) => None,
        (Some(parent), _) => Some(TreeFilter::ChildrenOf(parent)),
        (None, Some(true)) => Some(TreeFilter::Roots),
        (None, _) => Some(TreeFilter::All),
    })
}

/// The `retry_of` parameter: the job whose retries a list or count keeps to.
fn retried(retry_of: Option<&str>) -> Result<Option<JobId>, ApiError> {
    retry_of
        .map(|id| {
            id.parse()
                .map_err(|message: String| ApiError::bad_request(format!("`retry_of`: {message}")))
        })
        .transpose()
}

/// The filters shared by the list and the count.
fn filter_params(
    status: Option<&str>,
    job_type: Option<&str>,
    queue: Option<&str>,
    q: Option<&str>,
    times: TimeBounds,
) -> Result<JobListParams, ApiError> {
    let (created, finished) = times.ranges("")?;
    Ok(JobListParams {
        statuses: params::statuses(status)?,
        job_types: params::comma_list(job_type),
        queues: params::comma_list(queue),
        search: params::search("q", q)?,
        created,
        finished,
        ..JobListParams::default()
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CountQuery {
    /// Only the children of this job.
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    parent: Option<String>,
    /// `true`: only jobs without a parent (roots of their trees).
    roots: Option<bool>,
    /// Only the jobs that run this job again (its retries).
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    retry_of: Option<String>,
    /// Statuses joined by commas, e.g. `queued,running`.
    #[param(
        pattern = "^(queued|scheduled|running|waiting|succeeded|failed|cancelled)(,(queued|scheduled|running|waiting|succeeded|failed|cancelled))*$"
    )]
    status: Option<String>,
    /// Comma-separated job types.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    job_type: Option<String>,
    /// Comma-separated queues.
    queue: Option<String>,
    /// Search, as for the list.
    q: Option<String>,
    /// Only jobs created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    created_after: Option<String>,
    /// Only jobs created before this instant (RFC 3339).
    #[param(format = DateTime)]
    created_before: Option<String>,
    /// Only jobs finished at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    finished_after: Option<String>,
    /// Only jobs finished before this instant (RFC 3339).
    #[param(format = DateTime)]
    finished_before: Option<String>,
}

/// How many jobs the filters match (the list's filters, without paging).
#[utoipa::path(get, path = "/v1/jobs/count", tag = "jobs", security(("bearer" = [])),
    params(CountQuery),
    responses(
        (status = 200, body = CountResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
    ))]
pub async fn count_jobs(
    State(state): State<ServerState>,
    caller: Caller,
    query: Result<Query<CountQuery>, QueryRejection>,
) -> Result<Json<CountResponse>, ApiError> {
    let query = params::query(query)?;
    let tree = tree_filter(query.parent.as_deref(), query.roots)?;
    let filter = filter_params(
        query.status.as_deref(),
        query.job_type.as_deref(),
        query.queue.as_deref(),
        query.q.as_deref(),
        TimeBounds {
            created_after: query.created_after.as_deref(),
            created_before: query.created_before.as_deref(),
            finished_after: query.finished_after.as_deref(),
            finished_before: query.finished_before.as_deref(),
        },
    )?;
    let count = match tree {
        Some(tree) => {
            let retry_of = retried(query.retry_of.as_deref())?;
            state
                .app
                .job_count(
                    caller.access(),
                    JobListParams {
                        tree,
                        retry_of,
                        ..filter
                    },
                )
                .await?
        }
        None => 0,
    };
    Ok(Json(CountResponse { count }))
}

/// Cancels or retries many jobs, named by `ids` or matched by `filter` (at most 10,000).
/// Every id must exist and the count be within the limit, or nothing changes; jobs the action
/// does not apply to (cancel a finished job, retry an unfinished one) are skipped.
#[utoipa::path(post, path = "/v1/jobs/bulk", tag = "jobs", security(("bearer" = [])),
    request_body = BulkRequest,
    responses(
        (status = 200, body = BulkResponse),
        (status = 400, description = "bad ids or filter, both or neither given, more than 10,000 ids", body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, description = "an id names no job", body = ErrorResponse),
        (status = 409, description = "the filter matches more than 10,000 jobs", body = ErrorResponse),
    ))]
pub async fn bulk_jobs(
    State(state): State<ServerState>,
    caller: Caller,
    JsonBody(request): JsonBody<BulkRequest>,
) -> Result<Json<BulkResponse>, ApiError> {
    let target = match (request.ids, request.filter) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::bad_request(
                    "`ids` is empty; name at least one job",
                ));
            }
            let ids = ids
                .iter()
                .enumerate()
                .map(|(index, id)| {
                    id.parse::<JobId>().map_err(|message| {
                        ApiError::bad_request(format!("`ids[{index}]`: {message}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            BulkTarget::Ids(ids)
        }
        (None, Some(filter)) => {
            let tree = tree_filter(filter.parent.as_deref(), filter.roots)
                .map_err(|error| ApiError::bad_request(format!("filter: {}", error.message)))?;
            let (created, finished) = TimeBounds {
                created_after: filter.created_after.as_deref(),
                created_before: filter.created_before.as_deref(),
                finished_after: filter.finished_after.as_deref(),
                finished_before: filter.finished_before.as_deref(),
            }
            .ranges("filter.")?;
            let params = JobListParams {
                statuses: params::status_list("filter.status", &filter.status)?,
                job_types: filter.job_type,
                queues: filter.queue,
                search: params::search("filter.q", filter.q.as_deref())?,
                created,
                finished,
                ..JobListParams::default()
            };
            match tree {
                Some(tree) => BulkTarget::Filter(Box::new(JobListParams { tree, ..params })),
                // No job can match: nothing to act on.
                None => BulkTarget::Ids(Vec::new()),
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `ids` (job ids) or `filter` (as for GET /v1/jobs)",
            ));
        }
    };
    let action = match request.action {
        BulkAction::Cancel => runway_core::app::BulkAction::Cancel,
        BulkAction::Retry => runway_core::app::BulkAction::Retry,
    };
    let outcome = state.app.bulk(caller.access(), action, target).await?;
    Ok(Json(BulkResponse {
        matched: outcome.matched,
        changed: outcome.changed,
        skipped: outcome
            .skipped
            .into_iter()
            .take(MAX_SKIPPED_REASONS)
            .map(|(id, reason)| BulkSkipped {
                id: id.to_string(),
                reason,
            })
            .collect(),
    }))
}

/// Most skipped jobs a bulk answer explains; the counts cover all.
const MAX_SKIPPED_REASONS: usize = 100;

/// Most events `GET /v1/jobs/{id}/events` returns.
const MAX_EVENTS: u32 = 1000;

/// A job's timeline: its newest 1,000 kept changes, oldest of them first.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$")),
    responses(
        (status = 200, body = EventListResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn job_events(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<EventListResponse>, ApiError> {
    let events = state
        .app
        .job_events(
            caller.access(),
            params::job_id(&path_param(id)?)?,
            MAX_EVENTS,
        )
        .await?;
    Ok(Json(EventListResponse {
        events: events.into_iter().map(convert::event).collect(),
    }))
}

/// Deletes a finished job, or a finished tree from its root, with its events, logs and
/// artifacts.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id: a job without a parent", pattern = r"^[1-9][0-9]{0,17}$")),
    responses(
        (status = 200, body = DeleteResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job has not finished, a job of its tree has not, or it is inside a tree", body = ErrorResponse),
    ))]
pub async fn delete_job(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let deleted = state
        .app
        .delete(caller.access(), params::job_id(&path_param(id)?)?)
        .await?;
    Ok(Json(DeleteResponse {
        deleted: deleted as u64,
    }))
}

/// A `wait` as the document's pattern spells it (`^([0-9]{1,3}ms|([0-9]{1,2}|[12][0-9]{2}|300)s|[0-5]m)$`):
/// up to 999 milliseconds, 300 seconds or 5 minutes, so the longest wait is 5 minutes.
fn parse_wait(text: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let digits = |number: &str, most: usize| {
        (1..=most).contains(&number.len()) && number.bytes().all(|byte| byte.is_ascii_digit())
    };
    if let Some(number) = text.strip_suffix("ms") {
        if !digits(number, 3) {
            return None;
        }
        return Some(Duration::from_millis(number.parse().ok()?));
    }
    if let Some(number) = text.strip_suffix('s') {
        let allowed = digits(number, 2)
            || (digits(number, 3) && (number.starts_with(['1', '2']) || number == "300"));
        if !allowed {
            return None;
        }
        return Some(Duration::from_secs(number.parse().ok()?));
    }
    let number = text.strip_suffix('m')?;
    if number.len() != 1 || !('0'..='5').contains(&number.chars().next()?) {
        return None;
    }
    Some(Duration::from_secs(60 * number.parse::<u64>().ok()?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// Answer once the job has ended, or after this long (e.g. `30s`, at most `5m`) with the
    /// job as it is then.
    #[param(pattern = "^([0-9]{1,3}ms|([0-9]{1,2}|[12][0-9]{2}|300)s|[0-5]m)$")]
    wait: Option<String>,
}

/// One job; with `wait`, once it has ended (or the time is up).
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$"), JobQuery),
    responses(
        (status = 200, body = JobResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn get_job(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<JobQuery>, QueryRejection>,
) -> Result<Json<JobResponse>, ApiError> {
    let id = params::job_id(&path_param(id)?)?;
    let query = params::query(query)?;
    let job = match query.wait.as_deref() {
        None => state.app.job(caller.access(), id).await?,
        Some(text) => {
            let wait = parse_wait(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`wait` is `{text}`; give 0 to 999ms, 0 to 300s or 0 to 5m, e.g. wait=30s"
                ))
            })?;
            state.app.job_when_ended(caller.access(), id, wait).await?
        }
    };
    Ok(Json(convert::job(job)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Byte offset to read from; `next_offset` of the previous read.
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Most bytes to return, 1..=1048576, default 65536.
    #[param(minimum = 1, maximum = 1048576)]
    limit: Option<u64>,
}

/// The stored log of a job, from an offset.
#[utoipa::path(get, path = "/v1/jobs/{id}/log", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$"), LogQuery),
    responses(
        (status = 200, body = LogResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn job_log(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<LogResponse>, ApiError> {
    let query = params::query(query)?;
    let offset = query.offset.unwrap_or(0);
    let offset = u64::try_from(offset).map_err(|_| {
        ApiError::bad_request(format!(
            "`offset` is {offset}; give a byte offset of 0 or more (`next_offset` of the previous read)"
        ))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LOG_BYTES);
    if !(1..=MAX_LOG_BYTES).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` is {limit}; use 1..={MAX_LOG_BYTES}"
        )));
    }
    let (job, chunk) = state
        .app
        .log(
            caller.access(),
            params::job_id(&path_param(id)?)?,
            offset,
            limit,
        )
        .await?;
    let next_offset = chunk.offset + chunk.data.len() as u64;
    Ok(Json(LogResponse {
        offset: chunk.offset,
        next_offset,
        complete: job.status.is_terminal() && next_offset >= chunk.size,
        marks: convert::log_marks(&chunk.marks),
        data: chunk.data,
    }))
}

/// Cancels a job: a waiting one at once, a running one by stopping its process group.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$")),
    responses(
        (status = 200, body = CancelResponse),
        (status = 400, description = "not a job id", body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job already finished", body = ErrorResponse),
    ))]
pub async fn cancel_job(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CancelResponse>, ApiError> {
    let (job, stopping) = state
        .app
        .cancel(caller.access(), params::job_id(&path_param(id)?)?)
        .await?;
    Ok(Json(CancelResponse {
        job: convert::job(job),
        stopping,
    }))
}

/// Runs a finished job again as a new job whose `retry_of` names this one.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id", pattern = r"^[1-9][0-9]{0,17}$")),
    responses(
        (status = 201, description = "the new job", body = JobResponse),
        (status = 400, description = "not a job id", body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job has not finished", body = ErrorResponse),
    ))]
pub async fn retry_job(
    State(state): State<ServerState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<JobResponse>), ApiError> {
    let job = state
        .app
        .retry(caller.access(), params::job_id(&path_param(id)?)?)
        .await?;
    Ok((StatusCode::CREATED, Json(convert::job(job))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_wait;

    #[test]
    fn a_wait_is_read_as_its_pattern_spells_it() {
        for (text, wait) in [
            ("0ms", 0),
            ("999ms", 999),
            ("0s", 0),
            ("05s", 5_000),
            ("99s", 99_000),
            ("100s", 100_000),
            ("299s", 299_000),
            ("300s", 300_000),
            ("0m", 0),
            ("5m", 300_000),
        ] {
            assert_eq!(
                parse_wait(text),
                Some(Duration::from_millis(wait)),
                "{text}"
            );
        }
        for text in [
            "", "0", "1000ms", "301s", "399s", "099s", "6m", "10m", "1h", "30 s", "-1s", "s", "ms",
            "1.5s",
        ] {
            assert_eq!(parse_wait(text), None, "{text}");
        }
    }
}
