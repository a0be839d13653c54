//! `POST /hooks/{path}`: webhook deliveries. Outside `/v1` and its tokens: a delivery proves
//! itself with the trigger's secret (core's `triggers::webhook`), and senders reach the server
//! by whatever public name it has, so the host check does not apply either.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use runway_api::ErrorResponse;
use runway_api::triggers::WebhookResponse;
use runway_core::triggers::Delivery;

use crate::ServerState;
use crate::error::{ApiError, path_param};
use crate::json::read_json_body;

/// Headers that carry a sender's id of a delivery, most specific first.
const DELIVERY_ID_HEADERS: [&str; 4] = [
    "x-github-delivery",
    "x-gitea-delivery",
    "x-gitlab-event-uuid",
    "x-delivery-id",
];

/// Submits the job of the webhook trigger at `path`: the body (or the part its
/// `input_pointer` names) is the input, checked by the type's schema. A delivery id seen
/// before answers with the first delivery's job.
#[utoipa::path(post, path = "/hooks/{path}", tag = "triggers",
    params(("path" = String, Path, description = "the trigger's `webhook` name")),
    responses(
        (status = 202, body = WebhookResponse),
        (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse),
        (status = 413, body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn deliver(
    State(state): State<ServerState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<(StatusCode, Json<WebhookResponse>), ApiError> {
    let path = path_param(path)?;
    // Before the body is read: a path no webhook has costs nothing.
    state.app.triggers().has_webhook(&path)?;
    let headers = request.headers().clone();
    let body = read_json_body(request, &state).await?;
    let delivery = Delivery {
        body: body.to_vec(),
        signature: header(&headers, "x-hub-signature-256"),
        authorization: header(&headers, "authorization"),
        id: DELIVERY_ID_HEADERS
            .iter()
            .find_map(|name| header(&headers, name)),
    };
    let inserted = state
        .app
        .triggers()
        .deliver(&state.app, &path, delivery)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookResponse {
            job: inserted.job.id.to_string(),
            created: inserted.created,
        }),
    ))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}
