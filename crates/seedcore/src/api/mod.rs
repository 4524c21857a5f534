//! The HTTP API: routes, shared state, the OpenAPI document and the docs page.
//!
//! Routes and their OpenAPI description come from one source (`#[utoipa::path]` on each
//! handler, collected by `utoipa_axum::routes!`), so the document cannot drift from the code.
//! Handlers validate input, delegate to the store, and map its errors; none holds logic of its
//! own beyond that.

mod docs;
pub mod error;
pub mod extract;
mod fact_search;
mod facts;
#[cfg(test)]
mod properties;
mod queues;
mod schedule_body;
mod schedules;
mod service;
mod tasks;
mod workers;
mod workflows;

use std::sync::Arc;

use axum::{
    Json, Router,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use error::ApiError;

use crate::store::DynStore;

/// Settings the API reads per request.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Attempts a task gets when its create request does not say.
    pub default_max_attempts: i32,
    /// Largest body of a bulk request (up to 10,000 items), in bytes.
    pub max_bulk_body_bytes: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            max_body_bytes: 1_048_576,
            default_max_attempts: 3,
            max_bulk_body_bytes: 64 * 1_048_576,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where tasks, facts and workers are kept.
    pub store: DynStore,
    /// The API's limits and defaults.
    pub settings: Arc<ApiSettings>,
}

impl AppState {
    /// The state of an API serving `store` with `settings`.
    pub fn new(store: DynStore, settings: ApiSettings) -> AppState {
        AppState {
            store,
            settings: Arc::new(settings),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "seedcore",
        description = "A durable task service: submit tasks, let workers run them, store and search facts."
    ),
    tags(
        (name = "tasks", description = "Create, list, run and cancel tasks"),
        (name = "facts", description = "Store and search facts"),
        (name = "workflows", description = "Tasks that depend on each other, created and followed together"),
        (name = "queues", description = "Queues: task counts, pause and resume"),
        (name = "workers", description = "The worker processes sharing the database"),
        (name = "service", description = "Health, readiness and documentation"),
        (name = "schedules", description = "Cron schedules that create tasks"),
    )
)]
struct ApiDoc;

/// The `/api/v1` routes with their OpenAPI description, relative to where they are mounted.
fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tasks::create_task, tasks::list_tasks))
        .routes(routes!(tasks::create_tasks))
        .routes(routes!(
            workflows::create_workflow,
            workflows::list_workflows
        ))
        .routes(routes!(workflows::get_workflow))
        .routes(routes!(workflows::cancel_workflow))
        .routes(routes!(queues::list_queues))
        .routes(routes!(queues::pause_queue))
        .routes(routes!(queues::resume_queue))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::run_task))
        .routes(routes!(tasks::cancel_task))
        .routes(routes!(tasks::task_status))
        .routes(routes!(tasks::task_events))
        .routes(routes!(facts::create_fact, fact_search::list_facts))
        .routes(routes!(facts::create_facts))
        .routes(routes!(fact_search::list_tags))
        .routes(routes!(
            facts::get_fact,
            facts::update_fact,
            facts::delete_fact
        ))
        .routes(routes!(workers::list_workers))
        .routes(routes!(
            schedules::create_schedule,
            schedules::list_schedules
        ))
        .routes(routes!(
            schedules::get_schedule,
            schedules::update_schedule,
            schedules::delete_schedule
        ))
}

/// Every documented route: the service routes and `/api/v1`.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(service::root))
        .routes(routes!(service::health))
        .routes(routes!(service::readyz))
        .nest("/api/v1", v1_routes())
}

/// The whole API: service routes, `/api/v1`, `/docs` and `/openapi.json`.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = documented_routes().split_for_parts();
    router
        .merge(docs::routes(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| internal_error()))
        .layer(TraceLayer::new_for_http())
}

/// Only the `/api/v1` routes, to nest or merge into a host application's router
/// (e.g. `host.nest("/api/v1", seedcore::api::v1_router(state))`).
pub fn v1_router(state: AppState) -> Router {
    let (router, _) = v1_routes().split_for_parts();
    router.with_state(state)
}

/// The OpenAPI document of [`app`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().into_openapi()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"detail": "Internal Server Error"})),
    )
        .into_response()
}
