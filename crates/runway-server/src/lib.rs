//! runway's HTTP API: the `/v1` routes, bearer-token auth, JSON errors and the OpenAPI
//! document generated from the same route table, so the two cannot drift apart.
//!
//! The only place core types become wire types (`convert`). Handlers call [`App`]
//! operations; they never touch a store or a runner directly.

pub mod auth;
pub mod connections;
mod convert;
pub mod error;
pub mod fanout;
pub mod host;
pub mod json;
pub mod live;
pub mod live_runtime;
pub mod metrics;
mod openapi_document;
mod params;
mod routes;
pub mod session;
pub mod web;
pub mod write_limits;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use runway_api::codes;
use runway_core::App;
use runway_core::store::StoreError;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::connections::ConnectionLimits;
use crate::error::ApiError;
use crate::fanout::Fanout;
use crate::live_runtime::LiveRuntime;
use crate::write_limits::WriteLimits;

/// What every request handler gets: the application value, the live fan-out and the runtime
/// live connections run on, and the signal that ends long-lived connections (WebSockets) at
/// shutdown.
#[derive(Clone)]
pub struct ServerState {
    pub app: App,
    pub fanout: Fanout,
    pub live: LiveRuntime,
    pub shutdown: CancellationToken,
    /// One permit per open WebSocket (`server.max_websockets`), held for the socket's life.
    pub websockets: Arc<Semaphore>,
    /// Per-token limits on writes.
    pub write_limits: Arc<WriteLimits>,
}

impl ServerState {
    /// Starts the live layer too: its runtime and the fan-out.
    pub async fn start(app: App) -> Result<ServerState, StartError> {
        metrics::install();
        let websockets = Arc::new(Semaphore::new(app.config().server.max_websockets));
        let server = &app.config().server;
        let write_limits = Arc::new(WriteLimits::new(
            NonZeroU32::new(server.writes_per_second).unwrap_or(NonZeroU32::MIN),
            NonZeroU32::new(server.write_burst).unwrap_or(NonZeroU32::MIN),
        ));
        let shutdown = CancellationToken::new();
        let live = LiveRuntime::start().map_err(StartError::Runtime)?;
        let fanout = Fanout::start(&app, &live, shutdown.clone())
            .await
            .map_err(StartError::Store)?;
        Ok(ServerState {
            app,
            fanout,
            live,
            shutdown,
            websockets,
            write_limits,
        })
    }

    /// A WebSocket's slot, or a 503 that tells the client to come back later.
    pub fn websocket_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.websockets)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::TOO_MANY_CONNECTIONS,
                    format!(
                        "the server holds its limit of {} WebSockets (server.max_websockets); try again later",
                        self.app.config().server.max_websockets
                    ),
                )
            })
    }
}

/// Why the live layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the live runtime's threads: {0}")]
    Runtime(std::io::Error),
    #[error("the live fan-out cannot read the store: {0}")]
    Store(StoreError),
}

/// The API's routes and its OpenAPI document, built from one table.
pub fn router(state: ServerState) -> Router {
    let body_limit = state.app.config().server.body_limit;
    let (v1, openapi) = api_routes().split_for_parts();
    let openapi = Arc::new(openapi_document::for_this_server(
        document(openapi),
        state.app.config(),
    ));
    let v1 = v1
        .route(
            "/v1/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // The session authenticates itself: at the upgrade, or with the token in `hello`.
    let (session, _) = OpenApiRouter::<ServerState>::new()
        .routes(routes!(session::session))
        .routes(routes!(routes::signin::sign_in, routes::signin::sign_out))
        .routes(routes!(routes::signin::check_code))
        .routes(routes!(routes::signin::token_from_code))
        .split_for_parts();
    // Webhook deliveries prove themselves with their trigger's secret, and come by whatever
    // public name the server has: no token, no host check.
    let (hooks, _) = OpenApiRouter::<ServerState>::new()
        .routes(routes!(routes::hooks::deliver))
        .split_for_parts();
    let hooks = hooks.layer(DefaultBodyLimit::max(body_limit));
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/static/{*path}", get(web::asset))
        .merge(session)
        .merge(v1)
        .fallback(web::fallback)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                "this route does not take that method; see /v1/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::require_known_host,
        ))
        .merge(hooks)
        .with_state(state)
}

/// The `/v1` routes that carry their OpenAPI description.
fn api_routes() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new()
        .routes(routes!(routes::jobs::submit_job, routes::jobs::list_jobs))
        .routes(routes!(routes::jobs::submit_batch))
        .routes(routes!(live::job_updates))
        .routes(routes!(routes::jobs::count_jobs))
        .routes(routes!(routes::jobs::bulk_jobs))
        .routes(routes!(routes::jobs::get_job, routes::jobs::delete_job))
        .routes(routes!(routes::jobs::job_events))
        .routes(routes!(routes::jobs::job_log))
        .routes(routes!(routes::jobs::cancel_job))
        .routes(routes!(routes::jobs::retry_job))
        .routes(routes!(routes::trees::job_tree))
        .routes(routes!(routes::trees::spawn_children))
        .routes(routes!(routes::artifacts::list_artifacts))
        .routes(routes!(routes::artifacts::get_artifact))
        .routes(routes!(routes::types::list_types))
        .routes(routes!(routes::queues::list_queues))
        .routes(routes!(routes::queues::pause_queue))
        .routes(routes!(routes::queues::resume_queue))
        .routes(routes!(routes::queues::queue_history))
        .routes(routes!(routes::triggers::list_triggers))
        .routes(routes!(routes::triggers::get_trigger))
        .routes(routes!(routes::triggers::fire_trigger))
        .routes(routes!(routes::triggers::pause_trigger))
        .routes(routes!(routes::triggers::resume_trigger))
        .routes(routes!(routes::users::me))
        .routes(routes!(routes::signin::create_code))
        .routes(routes!(routes::users::list_users, routes::users::add_user))
        .routes(routes!(routes::users::remove_user))
        .routes(routes!(
            routes::users::list_tokens,
            routes::users::create_token
        ))
        .routes(routes!(routes::users::revoke_token))
        .routes(routes!(metrics::metrics))
}

/// The OpenAPI document: the routes' paths plus `/healthz`, security and metadata.
pub fn openapi() -> OpenApi {
    let (_, openapi) = api_routes().split_for_parts();
    document(openapi)
}

fn document(mut openapi: OpenApi) -> OpenApi {
    let (_, health) = OpenApiRouter::<ServerState>::new()
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(session::session))
        .routes(routes!(routes::signin::sign_in, routes::signin::sign_out))
        .routes(routes!(routes::signin::check_code))
        .routes(routes!(routes::signin::token_from_code))
        .routes(routes!(routes::hooks::deliver))
        .split_for_parts();
    openapi.merge(health);
    // A route's `{*name}` (a name that may hold `/`) is `{name}` in OpenAPI's templates.
    openapi.paths.paths = std::mem::take(&mut openapi.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    openapi.info.title = "runway".into();
    openapi.info.version = env!("CARGO_PKG_VERSION").into();
    openapi.info.description = Some(
        "A self-hosted job server. Every /v1 route needs `Authorization: Bearer <token>`.".into(),
    );
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    openapi
}

/// Serves the API on `listener` until `shutdown` completes, then finishes open requests and
/// closes WebSockets.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = state.shutdown.clone();
    let server = &state.app.config().server;
    let limits = ConnectionLimits {
        max_connections: server.max_connections,
        idle_timeout: server.idle_timeout,
    };
    connections::serve_connections(listener, router(state), limits, async move {
        shutdown.await;
        live.cancel();
    })
    .await;
    Ok(())
}
