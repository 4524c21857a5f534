//! A schedule's fire history and its "trigger now": `GET /schedules/{id}/fires` lists the
//! newest fires with their tasks' current state, `POST /schedules/{id}/trigger` creates the
//! template's task at once.
//!
//! The store writes a fire's history row in the transaction that inserts its task and keeps
//! the newest [`FIRE_HISTORY`] per schedule; handlers here only validate and delegate. A
//! trigger works on a paused schedule too and never moves its next fire; its task's key is
//! `schedule:<id>:manual:<task id>` (see `store::schedules::manual_key`), and its audit trail
//! names the caller.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::{CallerActor, QueryParams},
    schedules::{ScheduleIdPath, store_error},
};
use crate::{
    model::Task,
    store::{FIRE_HISTORY, ScheduleFire},
    validate::spec::{self, Integer, Spec},
};

/// How many fires a history page holds: at most all the history keeps.
const FIRES_LIMIT: Spec<Integer> = spec::integer(
    "limit",
    1,
    FIRE_HISTORY,
    "How many of the newest fires to list.",
)
.default(20);

/// A schedule's newest fires.
#[derive(Serialize, ToSchema)]
pub struct FireList {
    /// Newest first: by fire time, a later record first among equal times.
    items: Vec<ScheduleFire>,
}

/// The query parameters of `GET /api/v1/schedules/{schedule_id}/fires`.
pub struct FireListParams;

impl IntoParams for FireListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&FIRES_LIMIT])
    }
}

#[utoipa::path(
    get, path = "/schedules/{schedule_id}/fires", tag = "schedules",
    params(ScheduleIdPath, FireListParams),
    responses(
        (status = 200, description = "The schedule's newest fires (the last 100 are kept), scheduled and manual, each with its task as it is now (null once the task is gone)", body = FireList),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "Not a UUID, or a parameter out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_fires(
    State(state): State<AppState>,
    ScheduleIdPath(id): ScheduleIdPath,
    mut params: QueryParams,
) -> Result<Json<FireList>, ApiError> {
    let limit = params.integer(&FIRES_LIMIT);
    params.finish()?;
    let items = state
        .store
        .schedule_fires(id, limit)
        .await
        .map_err(store_error)?;
    Ok(Json(FireList { items }))
}

#[utoipa::path(
    post, path = "/schedules/{schedule_id}/trigger", tag = "schedules",
    params(ScheduleIdPath),
    responses(
        (status = 200, description = "The task created now from the schedule's template (queued, idempotency key `schedule:<id>:manual:<task id>`), recorded as a manual fire; the schedule's next fire does not move, and a paused schedule is triggered too. A body, if any, is ignored", body = Task),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn trigger_schedule(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    ScheduleIdPath(id): ScheduleIdPath,
) -> Result<Json<Task>, ApiError> {
    let task = state
        .store
        .trigger_schedule(id, actor)
        .await
        .map_err(store_error)?;
    crate::metrics::fires::count(&state.store, std::slice::from_ref(&task)).await;
    Ok(Json(task))
}
