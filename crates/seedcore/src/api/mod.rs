//! The HTTP API: routes, shared state, the OpenAPI document and the docs page.
//!
//! Routes and their OpenAPI description come from one source (`#[utoipa::path]` on each
//! handler, collected by `utoipa_axum::routes!`), so the document cannot drift from the code.
//! Handlers validate input, delegate to the store, and map its errors; none holds logic of its
//! own beyond that.
//!
//! Who may call each route is written once, in [`ROUTE_ACCESS`] beside the routes; the `auth`
//! layer reads it on every request and the OpenAPI document declares it per operation. A
//! test generated from the routes fails when one has no entry.

mod action_runner;
mod actions;
mod answer;
mod auth;
mod docs;
pub mod error;
mod event_hub;
mod events;
pub mod extract;
mod fact_search;
mod facts;
mod layer;
#[cfg(test)]
mod properties;
mod pull;
mod queues;
mod schedule_body;
mod schedule_fires;
mod schedules;
mod service;
mod stats;
mod task_list;
mod tasks;
mod tokens;
mod workers;
mod workflows;

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock},
};

use axum::{
    Json, Router,
    http::{Method, StatusCode},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
};
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use action_runner::{ActionRunner, ActionSettings};
pub use error::ApiError;
pub use event_hub::{EventHub, EventSettings};
pub use pull::{MAX_CLAIM_WAIT, MAX_LEASE_SECONDS, PullSettings};

use crate::auth::{Access, Auth, AuthSettings, Scope};
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
    /// The event stream's heartbeat, buffers and polling.
    pub events: EventSettings,
    /// How bulk actions run.
    pub actions: ActionSettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            max_body_bytes: 1_048_576,
            default_max_attempts: 3,
            max_bulk_body_bytes: 64 * 1_048_576,
            events: EventSettings::default(),
            actions: ActionSettings::default(),
        }
    }
}

/// What every handler can reach: one shared [`StateParts`], so that handing the state to a
/// request (axum clones it for every route call and every `State` extractor) is one reference
/// count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

/// The parts of [`AppState`], reached through it (`state.store`).
#[derive(Clone)]
pub struct StateParts {
    /// Where tasks, facts and workers are kept.
    pub store: DynStore,
    /// The API's limits and defaults.
    pub settings: Arc<ApiSettings>,
    /// Who may call what: settings, token caches, rate limits.
    pub auth: Arc<Auth>,
    /// Follows the audit trail for the event stream's subscribers.
    pub events: Arc<EventHub>,
    /// Runs bulk actions.
    pub actions: Arc<ActionRunner>,
    /// The pull API's settings and the wake-ups its long polls share.
    pub pull: Arc<pull::Pull>,
    /// How the dashboard at `/ui` is published.
    pub ui: Arc<crate::ui::UiSettings>,
}

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

impl AppState {
    /// The state of an API serving `store` with `settings`.
    /// Tokens are asked for once one exists ([`AuthSettings::default`]).
    pub fn new(store: DynStore, settings: ApiSettings) -> AppState {
        AppState(Arc::new(StateParts {
            auth: Arc::new(Auth::new(store.clone(), AuthSettings::default())),
            events: EventHub::new(store.clone(), settings.events.clone()),
            actions: ActionRunner::start(store.clone(), settings.actions.clone()),
            store,
            settings: Arc::new(settings),
            pull: Arc::new(pull::Pull::default()),
            ui: Arc::default(),
        }))
    }

    /// The same state with these dashboard settings.
    pub fn with_ui(self, ui: crate::ui::UiSettings) -> AppState {
        self.changed(|parts| parts.ui = Arc::new(ui))
    }

    /// The same state with these pull API settings.
    pub fn with_pull(self, settings: pull::PullSettings) -> AppState {
        self.changed(|parts| parts.pull = Arc::new(pull::Pull::new(settings)))
    }

    /// The same state with these authentication settings.
    pub fn with_auth(self, auth: AuthSettings) -> AppState {
        self.changed(|parts| parts.auth = Arc::new(Auth::new(parts.store.clone(), auth)))
    }

    fn changed(self, change: impl FnOnce(&mut StateParts)) -> AppState {
        let mut parts = Arc::unwrap_or_clone(self.0);
        change(&mut parts);
        AppState(Arc::new(parts))
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
        (name = "queues", description = "Queues: task counts, pause and resume, concurrency limits"),
        (name = "workers", description = "The worker processes sharing the database, and the pull API through which workers in any language claim and finish tasks"),
        (name = "service", description = "Health, readiness and documentation"),
        (name = "schedules", description = "Cron schedules that create tasks"),
        (name = "tokens", description = "API tokens, for holders of tokens:admin"),
    )
)]
struct ApiDoc;

/// The `/api/v1` routes with their OpenAPI description, relative to where they are mounted.
fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tasks::create_task, task_list::list_tasks))
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
        .routes(routes!(queues::update_queue))
        .routes(routes!(tasks::get_task, tasks::delete_task))
        .routes(routes!(tasks::run_task))
        .routes(routes!(tasks::cancel_task))
        .routes(routes!(tasks::task_status))
        .routes(routes!(tasks::task_events))
        .routes(routes!(stats::task_stats))
        .routes(routes!(events::events))
        .routes(routes!(actions::submit_action))
        .routes(routes!(actions::list_actions))
        .routes(routes!(actions::get_action))
        .routes(routes!(facts::create_fact, fact_search::list_facts))
        .routes(routes!(facts::create_facts))
        .routes(routes!(fact_search::list_tags))
        .routes(routes!(
            facts::get_fact,
            facts::update_fact,
            facts::delete_fact
        ))
        .routes(routes!(workers::list_workers, pull::register_worker))
        .routes(routes!(pull::get_worker))
        .routes(routes!(pull::worker_heartbeat))
        .routes(routes!(pull::quiet_worker))
        .routes(routes!(pull::terminate_worker))
        .routes(routes!(pull::claim_tasks))
        .routes(routes!(pull::task_heartbeat))
        .routes(routes!(pull::complete_task))
        .routes(routes!(pull::complete_tasks))
        .routes(routes!(pull::fail_task))
        .routes(routes!(pull::release_task))
        .routes(routes!(
            schedules::create_schedule,
            schedules::list_schedules
        ))
        .routes(routes!(
            schedules::get_schedule,
            schedules::update_schedule,
            schedules::delete_schedule
        ))
        .routes(routes!(schedule_fires::list_fires))
        .routes(routes!(schedule_fires::trigger_schedule))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
}

/// Who may call each route: `(method, path, access)`, paths as in the OpenAPI document. The
/// docs page and its files are under `/docs`.
pub const ROUTE_ACCESS: &[(&str, &str, Access)] = {
    use Access::{Always, Strict, Token};
    use Scope::*;
    &[
        ("get", "/", Token(MetricsRead)),
        ("get", "/health", Always),
        ("get", "/readyz", Token(MetricsRead)),
        ("get", "/metrics", Token(MetricsRead)),
        ("get", "/openapi.json", Token(MetricsRead)),
        ("get", "/docs", Token(MetricsRead)),
        ("get", "/docs/", Token(MetricsRead)),
        ("get", "/docs/{*file}", Token(MetricsRead)),
        ("get", "/api/v1/tasks", Token(TasksRead)),
        ("post", "/api/v1/tasks", Token(TasksWrite)),
        ("post", "/api/v1/tasks/bulk", Token(TasksWrite)),
        ("get", "/api/v1/tasks/{task_id}", Token(TasksRead)),
        ("post", "/api/v1/tasks/{task_id}/run", Token(TasksAdmin)),
        ("post", "/api/v1/tasks/{task_id}/cancel", Token(TasksAdmin)),
        ("get", "/api/v1/tasks/{task_id}/status", Token(TasksRead)),
        ("get", "/api/v1/tasks/{task_id}/events", Token(TasksRead)),
        ("delete", "/api/v1/tasks/{task_id}", Token(TasksAdmin)),
        ("get", "/api/v1/events", Token(TasksRead)),
        ("get", "/api/v1/stats/tasks", Token(TasksRead)),
        ("post", "/api/v1/tasks/actions", Token(TasksAdmin)),
        ("get", "/api/v1/actions", Token(TasksRead)),
        ("get", "/api/v1/actions/{action_id}", Token(TasksRead)),
        ("get", "/api/v1/workflows", Token(TasksRead)),
        ("post", "/api/v1/workflows", Token(WorkflowsWrite)),
        ("get", "/api/v1/workflows/{id}", Token(TasksRead)),
        ("post", "/api/v1/workflows/{id}/cancel", Token(TasksAdmin)),
        ("get", "/api/v1/queues", Token(TasksRead)),
        ("post", "/api/v1/queues/{name}/pause", Token(QueuesAdmin)),
        ("post", "/api/v1/queues/{name}/resume", Token(QueuesAdmin)),
        ("patch", "/api/v1/queues/{name}", Token(QueuesAdmin)),
        ("get", "/api/v1/facts", Token(FactsRead)),
        ("post", "/api/v1/facts", Token(FactsWrite)),
        ("post", "/api/v1/facts/bulk", Token(FactsWrite)),
        ("get", "/api/v1/tags", Token(FactsRead)),
        ("get", "/api/v1/facts/{fact_id}", Token(FactsRead)),
        ("patch", "/api/v1/facts/{fact_id}", Token(FactsWrite)),
        ("delete", "/api/v1/facts/{fact_id}", Token(FactsWrite)),
        ("get", "/api/v1/workers", Token(MetricsRead)),
        ("post", "/api/v1/workers", Token(WorkersPull)),
        ("get", "/api/v1/workers/{id}", Token(MetricsRead)),
        ("post", "/api/v1/workers/{id}/heartbeat", Token(WorkersPull)),
        // Draining a worker decides where queued work is consumed, as pausing a queue does.
        ("post", "/api/v1/workers/{id}/quiet", Token(QueuesAdmin)),
        ("post", "/api/v1/workers/{id}/terminate", Token(QueuesAdmin)),
        ("post", "/api/v1/tasks/claim", Token(WorkersPull)),
        ("post", "/api/v1/tasks/complete", Token(WorkersPull)),
        (
            "post",
            "/api/v1/tasks/{task_id}/heartbeat",
            Token(WorkersPull),
        ),
        (
            "post",
            "/api/v1/tasks/{task_id}/complete",
            Token(WorkersPull),
        ),
        ("post", "/api/v1/tasks/{task_id}/fail", Token(WorkersPull)),
        (
            "post",
            "/api/v1/tasks/{task_id}/release",
            Token(WorkersPull),
        ),
        ("get", "/api/v1/schedules", Token(TasksRead)),
        ("post", "/api/v1/schedules", Token(SchedulesAdmin)),
        ("get", "/api/v1/schedules/{schedule_id}", Token(TasksRead)),
        (
            "patch",
            "/api/v1/schedules/{schedule_id}",
            Token(SchedulesAdmin),
        ),
        (
            "delete",
            "/api/v1/schedules/{schedule_id}",
            Token(SchedulesAdmin),
        ),
        (
            "get",
            "/api/v1/schedules/{schedule_id}/fires",
            Token(TasksRead),
        ),
        // Creating a task from a schedule's template is a change to what the schedule does.
        (
            "post",
            "/api/v1/schedules/{schedule_id}/trigger",
            Token(SchedulesAdmin),
        ),
        ("get", "/api/v1/tokens", Strict(TokensAdmin)),
        ("post", "/api/v1/tokens", Strict(TokensAdmin)),
        ("delete", "/api/v1/tokens/{token_id}", Strict(TokensAdmin)),
        // The dashboard's pages and files: its pages send a visitor without a session to the
        // login page themselves, and its files are the same for everyone.
        ("get", "/ui", Always),
        ("get", "/ui/", Always),
        ("get", "/ui/{*page}", Always),
        ("get", "/ui/assets/{*file}", Always),
        ("get", "/ui/login", Always),
        ("post", "/ui/login", Always),
        // Checks the session's CSRF token itself.
        ("post", "/ui/logout", Always),
        ("get", "/ui/api/overview", Token(TasksRead)),
        ("get", "/ui/api/cron", Token(TasksRead)),
    ]
};

/// [`ROUTE_ACCESS`] by path: every request looks its route up, so once, not by a scan.
static ACCESS_BY_PATH: LazyLock<HashMap<&'static str, Vec<(&'static str, Access)>>> =
    LazyLock::new(|| {
        let mut by_path: HashMap<&'static str, Vec<(&'static str, Access)>> = HashMap::new();
        for (method, path, access) in ROUTE_ACCESS {
            by_path.entry(path).or_default().push((method, *access));
        }
        by_path
    });

/// The access of a route from [`ROUTE_ACCESS`], None when the table has no entry.
pub fn route_access(method: &Method, path: &str) -> Option<Access> {
    ACCESS_BY_PATH
        .get(path)?
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(method.as_str()))
        .map(|(_, access)| *access)
}

/// The route template `path` as the route table spells it, when the table has it (every route
/// of [`app`] is there), so that a metric label can borrow it instead of copying it.
pub fn known_route(path: &str) -> Option<&'static str> {
    ACCESS_BY_PATH.get_key_value(path).map(|(path, _)| *path)
}

/// Every documented route: the service routes and `/api/v1`.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(service::root))
        .routes(routes!(service::health))
        .routes(routes!(service::readyz))
        .routes(routes!(crate::metrics::http::metrics_route))
        .nest("/api/v1", v1_routes())
}

/// The whole API: service routes, `/api/v1`, `/docs`, `/openapi.json` and the dashboard at
/// `/ui`.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = documented_routes().split_for_parts();
    let per_request = from_fn_with_state(state.auth.clone(), layer::per_request);
    router
        .merge(docs::routes(auth::secured(openapi)))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(per_request)
        .with_state(state)
}

/// Only the `/api/v1` routes, to nest into a host application's router at `/api/v1`
/// (e.g. `host.nest("/api/v1", seedcore::api::v1_router(state))`), where the route table
/// applies to them as it does in [`app`].
pub fn v1_router(state: AppState) -> Router {
    let (router, _) = v1_routes().split_for_parts();
    let guard = from_fn_with_state(state.auth.clone(), crate::auth::require);
    router.layer(guard).with_state(state)
}

/// The OpenAPI document of [`app`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    auth::secured(documented_routes().into_openapi())
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
