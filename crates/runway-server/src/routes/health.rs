use axum::Json;
use runway_api::HealthResponse;

/// Liveness without auth, for load balancers and `runway` itself.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the server is up", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}
