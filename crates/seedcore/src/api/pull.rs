//! The pull API: workers in other processes, in any language, register, claim tasks over HTTP
//! with a long poll, and heartbeat, complete, fail or release each attempt by its lease token.
//!
//! Invariants:
//! - claims go through `Store::claim_tasks`, as the built-in workers' do, so paused queues,
//!   priorities and `run_at` hold the same way; a finished, renewed or released attempt goes
//!   through the store's fenced methods, so a stale or unknown lease token changes nothing
//!   and is answered 409 `{"detail": "lease lost"}`;
//! - a long poll claims only when it is about to answer. A client that hangs up after the
//!   claim committed leaves its tasks running under leases nobody renews: they expire and the
//!   reaper puts them back (the attempt counted), as for a worker that crashed;
//! - the long poll is bounded by `wait_ms` (at most 30 s); the server gives it the request
//!   timeout plus that longest wait (see `server::gate`), so a short timeout setting does not
//!   cut a poll short;
//! - a completion or failure is remembered with its lease token for a day, so repeating it with
//!   the same token answers the same outcome instead of 409;
//! - a retryable failure ends by the engine's own rule (`RetryPolicy::after_failure`).

mod bodies;
mod wakeups;

use std::time::Duration;

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::{JsonObject, WHOLE_ID},
};
use crate::{
    engine::RetryPolicy,
    model::{PullWorker, TaskStatus, Worker, WorkerCommand},
    store::{Claim, ClaimedTask, DriftRange, Lease, Outcome, StoreError},
    validate::spec::{self, Spec, Text},
};
use bodies::{ClaimBody, CompleteBody, FailBody, HeartbeatBody, RegisterBody, ReleaseBody};
pub use bodies::{MAX_CLAIM_WAIT, MAX_LEASE_SECONDS};
pub use wakeups::Wakeups;

/// What the pull API needs beyond the store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PullSettings {
    /// A lease's length when the claim or heartbeat does not say (at most [`MAX_LEASE_SECONDS`]).
    pub default_lease: Duration,
    /// How long a retryable failure waits before the next attempt: the engine's policy.
    pub retry: RetryPolicy,
    /// How often a waiting claim queries again when nothing woke it: what notices a `run_at`
    /// coming due (nothing signals that) or a lost wake-up.
    pub recheck: Duration,
}

impl Default for PullSettings {
    fn default() -> Self {
        let engine = crate::engine::EngineSettings::default();
        PullSettings {
            default_lease: engine.lease,
            retry: engine.retry,
            recheck: Duration::from_secs(1),
        }
    }
}

/// The pull API's settings and the wake-ups its long polls share.
#[derive(Default)]
pub struct Pull {
    settings: PullSettings,
    wakeups: Wakeups,
}

impl Pull {
    /// The pull API with these settings; a default lease over the cap is held to the cap.
    pub fn new(settings: PullSettings) -> Pull {
        let cap = Duration::from_secs_f64(MAX_LEASE_SECONDS);
        Pull {
            settings: PullSettings {
                default_lease: settings.default_lease.min(cap),
                ..settings
            },
            wakeups: Wakeups::default(),
        }
    }
}

const LEASE_LOST: &str = "lease lost";

fn lease_lost() -> ApiError {
    ApiError::Conflict(LEASE_LOST.into())
}

fn worker_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Worker not found".into())
}

fn store_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Task not found".into())
}

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

/// The `{task_id}` path segment of a lease's routes: a whole id, never a prefix.
pub struct LeasedTaskPath(Uuid);

const TASK_ID_PATH: Spec<Text> = WHOLE_ID.with_name("task_id");

impl<S: Send + Sync> FromRequestParts<S> for LeasedTaskPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = axum::extract::Path::<String>::from_request_parts(parts, state).await;
        match raw.ok().and_then(|path| Uuid::try_parse(&path.0).ok()) {
            Some(id) => Ok(LeasedTaskPath(id)),
            None => Err(ApiError::invalid(
                &["path", "task_id"],
                "uuid_parsing",
                "Input should be a valid UUID",
            )),
        }
    }
}

impl IntoParams for LeasedTaskPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&TASK_ID_PATH)]
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

/// A task handed to a pull worker, with the lease that lets it finish the attempt.
#[derive(Serialize, ToSchema)]
pub struct LeasedTask {
    id: Uuid,
    /// This attempt's number, from 1.
    attempt: i32,
    /// Attempts allowed before a retryable failure is final.
    max_attempts: i32,
    /// Send it back with every heartbeat, completion, failure or release of this attempt.
    lease_token: Uuid,
    /// The lease lasts at least until then unless renewed.
    lease_expires_at: DateTime<Utc>,
    #[serde(rename = "type")]
    task_type: String,
    #[schema(value_type = Object)]
    params: Value,
    queue: String,
    priority: i32,
    /// Seconds an attempt may run, if the task says.
    timeout_seconds: Option<f64>,
    /// The tasks this one waited for.
    parents: Vec<Uuid>,
    /// The W3C trace context the task was created under, if any.
    traceparent: Option<String>,
}

impl LeasedTask {
    fn of(claimed: ClaimedTask, expires: DateTime<Utc>) -> LeasedTask {
        let task = claimed.task;
        LeasedTask {
            id: task.id,
            attempt: task.attempts,
            max_attempts: task.max_attempts,
            lease_token: claimed.lease.token,
            lease_expires_at: expires,
            task_type: task.task_type,
            params: task.params,
            queue: task.queue,
            priority: task.priority,
            timeout_seconds: task.timeout_seconds,
            parents: task.depends_on,
            traceparent: claimed.traceparent,
        }
    }
}

/// The tasks a claim took.
#[derive(Serialize, ToSchema)]
pub struct ClaimedTasks {
    tasks: Vec<LeasedTask>,
}

#[utoipa::path(
    post, path = "/tasks/claim", tag = "workers",
    request_body = ClaimBody,
    responses(
        (status = 200, description = "Up to `max` tasks, now running under this worker's leases; answered as soon as one is ready", body = ClaimedTasks),
        (status = 204, description = "No task became ready within `wait_ms`, or the worker was told to be quiet or to terminate"),
        (status = 404, description = "No such worker: register first", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body (a lease over the maximum included)", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn claim_tasks(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = bodies::claim(&body)?;
    let store = &state.store;
    let worker = store
        .pull_worker(&request.worker_id)
        .await
        .map_err(worker_error)?;
    let orders = store
        .pull_worker_seen(&worker.id)
        .await
        .map_err(worker_error)?;
    if orders != WorkerCommand::Running {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let lease = request.lease.unwrap_or(state.pull.settings.default_lease);
    let claim = Claim {
        worker_id: worker.id,
        limit: request.max,
        lease,
        drift: DriftRange::ALL,
        queues: request.queues.or(worker.queues),
        exclude_queues: Vec::new(),
        types: request.types.or(worker.types),
    };
    let deadline = Instant::now() + request.wait;
    let mut waited = false;
    loop {
        let woken = state.pull.wakeups.interest(store);
        // An operator may have quieted the worker while this poll waited.
        if waited && !still_running(store, &claim.worker_id).await? {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        // Taken before the claim, so the expiry reported is never later than the stored one.
        let expires = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
        let claimed = store.claim_tasks(&claim).await.map_err(store_error)?;
        if !claimed.is_empty() {
            let tasks = claimed
                .into_iter()
                .map(|c| LeasedTask::of(c, expires))
                .collect();
            return Ok(Json(ClaimedTasks { tasks }).into_response());
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let recheck = deadline.min(now + state.pull.settings.recheck);
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep_until(recheck) => {}
        }
        waited = true;
    }
}

async fn still_running(store: &crate::store::DynStore, id: &str) -> Result<bool, ApiError> {
    let worker = store.pull_worker(id).await.map_err(worker_error)?;
    Ok(worker.state == WorkerCommand::Running)
}

/// A lease renewed, or the news that the task was cancelled.
#[derive(Serialize, ToSchema)]
pub struct LeaseState {
    /// The lease lasts at least until then; null when the task was cancelled.
    lease_expires_at: Option<DateTime<Utc>>,
    /// The task was cancelled: stop working on it (its completion would be refused).
    cancel_requested: bool,
}

/// How an attempt ended, as recorded.
#[derive(Serialize, ToSchema)]
pub struct AttemptEnded {
    task_id: Uuid,
    /// `completed`, `retry` (it runs again after its backoff), `failed` or, after a release,
    /// `queued`.
    status: TaskStatus,
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/heartbeat", tag = "workers",
    params(LeasedTaskPath),
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "The lease, extended; or, for a cancelled task, `cancel_requested`", body = LeaseState),
        (status = 409, description = "`lease lost`: the token is not the task's current one (expired and rescued, released, or never handed out)", body = ErrorBody),
        (status = 422, description = "Invalid body (an extension over the maximum lease included)", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn task_heartbeat(
    State(state): State<AppState>,
    LeasedTaskPath(task_id): LeasedTaskPath,
    JsonObject(body): JsonObject,
) -> Result<Json<LeaseState>, ApiError> {
    let request = bodies::heartbeat(&body)?;
    let lease = Lease {
        task_id,
        token: request.token,
    };
    let extend = request.extend.unwrap_or(state.pull.settings.default_lease);
    let expires = Utc::now() + chrono::Duration::from_std(extend).unwrap_or_default();
    let renewed = state
        .store
        .renew_leases(&[lease], extend)
        .await
        .map_err(store_error)?;
    if !renewed.is_empty() {
        return Ok(Json(LeaseState {
            lease_expires_at: Some(expires),
            cancel_requested: false,
        }));
    }
    // A cancel clears the lease token, so a cancelled task is recognised by its status.
    match state.store.get_task(task_id).await {
        Ok(task) if task.status == TaskStatus::Cancelled => Ok(Json(LeaseState {
            lease_expires_at: None,
            cancel_requested: true,
        })),
        Ok(_) | Err(StoreError::NotFound) => Err(lease_lost()),
        Err(err) => Err(store_error(err)),
    }
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/complete", tag = "workers",
    params(LeasedTaskPath),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "The task is completed (also the answer to a repeat with the same token)", body = AttemptEnded),
        (status = 409, description = "`lease lost`: the token is not the task's current one; nothing changed", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn complete_task(
    State(state): State<AppState>,
    LeasedTaskPath(task_id): LeasedTaskPath,
    JsonObject(body): JsonObject,
) -> Result<Json<AttemptEnded>, ApiError> {
    let (token, result) = bodies::completion(&body)?;
    let envelope = json!({"success": true, "path": "pull", "handler": null, "result": result});
    let lease = Lease { task_id, token };
    end_attempt(&state, lease, Outcome::Completed(envelope)).await
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/fail", tag = "workers",
    params(LeasedTaskPath),
    request_body = FailBody,
    responses(
        (status = 200, description = "The attempt failed: the task waits to retry (`retry`) or failed for good (`failed`); also the answer to a repeat with the same token", body = AttemptEnded),
        (status = 409, description = "`lease lost`: the token is not the task's current one; nothing changed", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn fail_task(
    State(state): State<AppState>,
    LeasedTaskPath(task_id): LeasedTaskPath,
    JsonObject(body): JsonObject,
) -> Result<Json<AttemptEnded>, ApiError> {
    let request = bodies::failure(&body)?;
    let lease = Lease {
        task_id,
        token: request.token,
    };
    let task = match state.store.get_task(task_id).await {
        Ok(task) => task,
        Err(StoreError::NotFound) => return Err(lease_lost()),
        Err(err) => return Err(store_error(err)),
    };
    // While the lease is current the attempt count cannot change: it is this attempt's.
    let outcome = if request.retryable {
        let retry = state.pull.settings.retry;
        retry.after_failure(&task, request.error, request.retry_after)
    } else {
        Outcome::Failed(request.error)
    };
    end_attempt(&state, lease, outcome).await
}

/// Records the outcome under the lease; a lease that already ended its attempt the same way
/// answers as it did then.
async fn end_attempt(
    state: &AppState,
    lease: Lease,
    outcome: Outcome,
) -> Result<Json<AttemptEnded>, ApiError> {
    let status = outcome.status();
    let store = &state.store;
    if store
        .finish_remembered(lease, outcome)
        .await
        .map_err(store_error)?
    {
        return Ok(Json(AttemptEnded {
            task_id: lease.task_id,
            status,
        }));
    }
    let same_kind = |recorded: TaskStatus| match status {
        TaskStatus::Completed => recorded == TaskStatus::Completed,
        _ => recorded != TaskStatus::Completed,
    };
    match store.finished_lease(lease).await.map_err(store_error)? {
        Some(recorded) if same_kind(recorded) => Ok(Json(AttemptEnded {
            task_id: lease.task_id,
            status: recorded,
        })),
        _ => Err(lease_lost()),
    }
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/release", tag = "workers",
    params(LeasedTaskPath),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "The task is queued again, this attempt uncounted (for a worker shutting down)", body = AttemptEnded),
        (status = 409, description = "`lease lost`: the token is not the task's current one; nothing changed", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn release_task(
    State(state): State<AppState>,
    LeasedTaskPath(task_id): LeasedTaskPath,
    JsonObject(body): JsonObject,
) -> Result<Json<AttemptEnded>, ApiError> {
    let token = bodies::release(&body)?;
    let released = state
        .store
        .release(&[Lease { task_id, token }])
        .await
        .map_err(store_error)?;
    if released == 0 {
        return Err(lease_lost());
    }
    Ok(Json(AttemptEnded {
        task_id,
        status: TaskStatus::Queued,
    }))
}
