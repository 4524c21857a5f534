//! The pull API's lease routes: a task's heartbeat, completion, failure and release, each
//! fenced by the lease token the claim handed out.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::request::Parts,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};
use uuid::Uuid;

use super::{
    bodies,
    bodies::{CompleteBody, CompleteManyBody, FailBody, HeartbeatBody, ReleaseBody},
    lease_lost, store_error,
};
use crate::{
    api::{
        ApiError, AppState,
        error::{ErrorBody, ValidationErrors},
        extract::{JsonObject, WHOLE_ID},
    },
    model::TaskStatus,
    store::{Lease, Outcome, StoreError},
    validate::spec::{self, Spec, Text},
};

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
    // A progress report rides on the renewal: one fenced write of the row.
    let renewed = match request.progress {
        Some(progress) => state.store.renew_reporting(lease, extend, progress).await,
        None => state
            .store
            .renew_leases(&[lease], extend)
            .await
            .map(|held| !held.is_empty()),
    }
    .map_err(store_error)?;
    if renewed {
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
    let lease = Lease { task_id, token };
    end_attempt(&state, lease, completed(result)).await
}

/// What became of one completion of a batch.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompletionOutcome {
    /// Recorded (or recorded earlier with the same lease token).
    Completed,
    /// The token is not the task's current one: nothing changed for this task.
    LeaseLost,
}

/// One completion's answer.
#[derive(Serialize, ToSchema)]
pub struct CompletionAnswer {
    task_id: Uuid,
    outcome: CompletionOutcome,
}

/// The answers to a batch of completions, in the order sent.
#[derive(Serialize, ToSchema)]
pub struct CompletionAnswers {
    items: Vec<CompletionAnswer>,
}

#[utoipa::path(
    post, path = "/tasks/complete", tag = "workers",
    request_body = CompleteManyBody,
    responses(
        (status = 200, description = "Each completion recorded, or refused as `lease_lost` (that task unchanged); in the order sent", body = CompletionAnswers),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body: nothing was recorded", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn complete_tasks(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<CompletionAnswers>, ApiError> {
    let outcomes: Vec<(Lease, Outcome)> = bodies::completions(&body)?
        .into_iter()
        .map(|(task_id, token, result)| (Lease { task_id, token }, completed(result)))
        .collect();
    let leases: Vec<Lease> = outcomes.iter().map(|(lease, _)| *lease).collect();
    let recorded = state
        .pull
        .finisher
        .finish_many(&state.store, outcomes)
        .await
        .map_err(store_error)?;
    let mut items = Vec::with_capacity(leases.len());
    for (lease, recorded) in leases.into_iter().zip(recorded) {
        let completed = recorded
            || state
                .store
                .finished_lease(lease)
                .await
                .map_err(store_error)?
                == Some(TaskStatus::Completed);
        let outcome = match completed {
            true => CompletionOutcome::Completed,
            false => CompletionOutcome::LeaseLost,
        };
        items.push(CompletionAnswer {
            task_id: lease.task_id,
            outcome,
        });
    }
    Ok(Json(CompletionAnswers { items }))
}

/// A pull worker's result as the task's result envelope.
fn completed(result: serde_json::Value) -> Outcome {
    Outcome::Completed(json!({"success": true, "path": "pull", "handler": null, "result": result}))
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
    let finisher = &state.pull.finisher;
    if finisher
        .finish(store, lease, outcome)
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
