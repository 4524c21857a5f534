//! The pull API's worker routes: registration, a pull worker as registered, its heartbeat, and
//! the quiet and terminate orders an operator gives it.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::request::Parts,
};
use chrono::Utc;
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};

use super::{MAX_LEASE_SECONDS, bodies, bodies::RegisterBody, worker_error};
use crate::{
    api::{
        ApiError, AppState,
        error::{ErrorBody, ValidationErrors},
        extract::JsonObject,
    },
    model::{PullWorker, Worker, WorkerCommand},
    validate::spec::{self, Spec, Text},
};

/// A registered worker's id and the rhythm it keeps.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    /// The worker's id: claims name it, tasks it runs carry it as `worker_id`.
    id: String,
    /// How often to call `POST /api/v1/workers/{id}/heartbeat` (and each task's heartbeat).
    heartbeat_interval_seconds: f64,
    /// A lease's length when the claim does not say.
    default_lease_seconds: f64,
    /// The longest lease a claim or heartbeat may ask for; more is refused (422).
    max_lease_seconds: f64,
    /// What the operator asks of the worker: `running` at first.
    state: WorkerCommand,
}

#[utoipa::path(
    post, path = "/workers", tag = "workers",
    request_body = RegisterBody,
    responses(
        (status = 200, description = "The worker is registered and listed with the others", body = Registered),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn register_worker(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Registered>, ApiError> {
    let registration = bodies::registration(&body)?;
    let lease = state.pull.settings.default_lease;
    let now = Utc::now();
    let id = PullWorker::new_id();
    let client = format!(
        "{} {}",
        registration.client_name, registration.client_version
    );
    let worker = Worker {
        id: id.clone(),
        host: registration.name.clone(),
        pid: 0,
        version: client.trim().to_string(),
        concurrency: registration.concurrency,
        escalated_concurrency: 0,
        lease_seconds: lease.as_secs_f64(),
        started_at: now,
        last_seen_at: now,
        stopped_at: None,
    };
    let pull = PullWorker {
        id: id.clone(),
        name: registration.name,
        queues: registration.queues,
        types: registration.types,
        labels: registration.labels,
        client_name: registration.client_name,
        client_version: registration.client_version,
        concurrency: registration.concurrency,
        state: WorkerCommand::Running,
    };
    state
        .store
        .register_pull_worker(&worker, &pull)
        .await
        .map_err(worker_error)?;
    Ok(Json(Registered {
        id,
        heartbeat_interval_seconds: lease.as_secs_f64() / 3.0,
        default_lease_seconds: lease.as_secs_f64(),
        max_lease_seconds: MAX_LEASE_SECONDS,
        state: WorkerCommand::Running,
    }))
}

/// The `{id}` path segment of a worker's routes.
pub struct WorkerIdPath(String);

const WORKER_ID_PATH: Spec<Text> =
    spec::text("id", "A worker id, as `POST /api/v1/workers` gave it.").required();

impl<S: Send + Sync> FromRequestParts<S> for WorkerIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(WorkerIdPath(id)),
            Err(_) => Err(ApiError::invalid(
                &["path", "id"],
                "string_type",
                "Input should be a valid string",
            )),
        }
    }
}

impl IntoParams for WorkerIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&WORKER_ID_PATH)]
    }
}

/// What the operator asks of a worker.
#[derive(Serialize, ToSchema)]
pub struct WorkerOrders {
    /// `running`: claim and run; `quiet`: finish what is held, claim nothing; `terminate`:
    /// release what is held and stop.
    state: WorkerCommand,
}

#[utoipa::path(
    post, path = "/workers/{id}/heartbeat", tag = "workers",
    params(WorkerIdPath),
    responses(
        (status = 200, description = "The worker is seen now; what its operator asks of it", body = WorkerOrders),
        (status = 404, description = "No such worker (or it was forgotten a day after it last called): register again", body = ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn worker_heartbeat(
    State(state): State<AppState>,
    WorkerIdPath(id): WorkerIdPath,
) -> Result<Json<WorkerOrders>, ApiError> {
    let orders = state
        .store
        .pull_worker_seen(&id)
        .await
        .map_err(worker_error)?;
    Ok(Json(WorkerOrders { state: orders }))
}

#[utoipa::path(
    get, path = "/workers/{id}", tag = "workers",
    params(WorkerIdPath),
    responses(
        (status = 200, description = "The pull worker as registered, with what its operator asks of it", body = PullWorker),
        (status = 404, description = "No such pull worker (built-in workers are in the list only)", body = ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn get_worker(
    State(state): State<AppState>,
    WorkerIdPath(id): WorkerIdPath,
) -> Result<Json<PullWorker>, ApiError> {
    let worker = state.store.pull_worker(&id).await.map_err(worker_error)?;
    Ok(Json(worker))
}

#[utoipa::path(
    post, path = "/workers/{id}/quiet", tag = "workers",
    params(WorkerIdPath),
    responses(
        (status = 200, description = "The worker, now quiet: it finishes what it holds and claims nothing more (its claims answer 204 at once)", body = PullWorker),
        (status = 404, description = "No such pull worker", body = ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn quiet_worker(
    State(state): State<AppState>,
    WorkerIdPath(id): WorkerIdPath,
) -> Result<Json<PullWorker>, ApiError> {
    set_orders(&state, &id, WorkerCommand::Quiet).await
}

#[utoipa::path(
    post, path = "/workers/{id}/terminate", tag = "workers",
    params(WorkerIdPath),
    responses(
        (status = 200, description = "The worker, told to release what it holds and stop (its claims answer 204 at once)", body = PullWorker),
        (status = 404, description = "No such pull worker", body = ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn terminate_worker(
    State(state): State<AppState>,
    WorkerIdPath(id): WorkerIdPath,
) -> Result<Json<PullWorker>, ApiError> {
    set_orders(&state, &id, WorkerCommand::Terminate).await
}

async fn set_orders(
    state: &AppState,
    id: &str,
    orders: WorkerCommand,
) -> Result<Json<PullWorker>, ApiError> {
    let worker = state
        .store
        .set_pull_worker_state(id, orders)
        .await
        .map_err(worker_error)?;
    Ok(Json(worker))
}
