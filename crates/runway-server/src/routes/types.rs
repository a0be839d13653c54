use axum::Json;
use axum::extract::State;
use runway_api::{ErrorResponse, TypeListResponse};

use crate::{ServerState, convert};

/// The declared job types, with their input schemas.
#[utoipa::path(get, path = "/v1/types", tag = "types", security(("bearer" = [])),
    responses(
        (status = 200, body = TypeListResponse),
        (status = 401, body = ErrorResponse),
    ))]
pub async fn list_types(State(state): State<ServerState>) -> Json<TypeListResponse> {
    Json(TypeListResponse {
        types: state
            .app
            .config()
            .types
            .values()
            .map(convert::job_type)
            .collect(),
    })
}
