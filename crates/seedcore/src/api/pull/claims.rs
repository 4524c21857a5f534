//! The pull API's long poll: `POST /api/v1/tasks/claim` (`api::pull` states its
//! invariants).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{bodies, bodies::ClaimBody, store_error, worker_error};
use crate::{
    api::{
        ApiError, AppState,
        error::{ErrorBody, ValidationErrors},
        extract::JsonObject,
    },
    model::WorkerCommand,
    store::{Claim, ClaimedTask, DriftRange, DynStore, StoreError},
};

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
    let wanted = Wanted {
        claim,
        limits: request.queue_limits,
    };
    let deadline = Instant::now() + request.wait;
    Ok(match poll(&state, &wanted, deadline).await? {
        Some(tasks) => Json(ClaimedTasks { tasks }).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Claims until some task is taken (Some) or the deadline passes or the worker is quieted
/// while waiting (None). Interest in wake-ups is registered before each query.
async fn poll(
    state: &AppState,
    wanted: &Wanted,
    deadline: Instant,
) -> Result<Option<Vec<LeasedTask>>, ApiError> {
    let claim = &wanted.claim;
    let store = &state.store;
    let mut waited = false;
    loop {
        let woken = state.pull.wakeups.interest(store);
        // An operator may have quieted the worker while this poll waited.
        if waited && !still_running(store, &claim.worker_id).await? {
            return Ok(None);
        }
        // Taken before the claim, so the expiry reported is never later than the stored one.
        let expires = Utc::now() + chrono::Duration::from_std(claim.lease).unwrap_or_default();
        let claimed = claim_once(store, wanted).await.map_err(store_error)?;
        if !claimed.is_empty() {
            let tasks = claimed.into_iter().map(|c| LeasedTask::of(c, expires));
            return Ok(Some(tasks.collect()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let recheck = deadline.min(now + state.pull.settings.recheck);
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep_until(recheck) => {}
        }
        waited = true;
    }
}

/// A claim and the worker's per-queue limits.
struct Wanted {
    claim: Claim,
    limits: Vec<(String, i64)>,
}

/// One claim without waiting: the queues without a limit first, then each limited queue up to
/// what its limit leaves beside the tasks of it the worker holds now, all within `max`. The
/// holdings are read before claiming, so claims a worker sends at the same time may together
/// pass a limit (the clients send one at a time).
async fn claim_once(store: &DynStore, wanted: &Wanted) -> Result<Vec<ClaimedTask>, StoreError> {
    let base = &wanted.claim;
    let served = |queue: &String| base.queues.as_ref().is_none_or(|qs| qs.contains(queue));
    let limits: Vec<&(String, i64)> = wanted.limits.iter().filter(|(q, _)| served(q)).collect();
    if limits.is_empty() {
        return store.claim_tasks(base).await;
    }
    let limited: Vec<String> = limits.iter().map(|(q, _)| q.clone()).collect();
    let held = store.running_by_queue(&base.worker_id, &limited).await?;
    let mut taken = Vec::new();
    let open = base.queues.as_ref().map(|qs| {
        qs.iter()
            .filter(|q| !limited.contains(q))
            .cloned()
            .collect::<Vec<_>>()
    });
    if open.as_ref().is_none_or(|qs| !qs.is_empty()) {
        let mut exclude = base.exclude_queues.clone();
        exclude.extend(limited.iter().cloned());
        let unlimited = Claim {
            queues: open,
            exclude_queues: exclude,
            ..base.clone()
        };
        taken.extend(store.claim_tasks(&unlimited).await?);
    }
    for (queue, limit) in limits {
        let left = base.limit - taken.len() as i64;
        let holding = held.iter().find(|(q, _)| q == queue).map_or(0, |(_, n)| *n);
        let allowed = (limit - holding).min(left);
        if allowed <= 0 {
            continue;
        }
        let one = Claim {
            queues: Some(vec![queue.clone()]),
            limit: allowed,
            ..base.clone()
        };
        taken.extend(store.claim_tasks(&one).await?);
    }
    Ok(taken)
}

async fn still_running(store: &DynStore, id: &str) -> Result<bool, ApiError> {
    let worker = store.pull_worker(id).await.map_err(worker_error)?;
    Ok(worker.state == WorkerCommand::Running)
}
