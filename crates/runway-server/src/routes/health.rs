use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use runway_api::{HealthResponse, codes};
use runway_core::{Error, StoreError};

use crate::ServerState;
use crate::error::ApiError;

/// Liveness without auth, for load balancers and `runway` itself.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the server is up", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness without auth: whether the server can take jobs now. A full disk answers 507
/// `storage_full`, any other store failure 503 `unavailable`.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "the server can take jobs", body = HealthResponse),
        (status = 503, description = "the store cannot write", body = runway_api::ErrorResponse),
        (status = 507, description = "the disk is full", body = runway_api::ErrorResponse),
    ))]
pub async fn readyz(State(state): State<ServerState>) -> Result<Json<HealthResponse>, ApiError> {
    match state.app.ready().await {
        Ok(()) => Ok(Json(HealthResponse {
            status: "ready".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        })),
        Err(Error::Store(StoreError::Full(cause))) => Err(ApiError::storage_full(cause)),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UNAVAILABLE,
                "the store cannot write now; the server log has the cause",
            ))
        }
    }
}
