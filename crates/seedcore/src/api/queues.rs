//! Queue endpoints: the queues with their task counts, and pausing and resuming one. A paused
//! queue keeps its tasks (and accepts new ones); no worker claims them until it is resumed.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
};
use crate::{
    model::QueueInfo,
    validate::{
        QUEUE_NAME,
        spec::{self, Invalid, Spec, Text},
    },
};

/// Every queue that has tasks or was paused.
#[derive(Serialize, ToSchema)]
pub struct QueueList {
    items: Vec<QueueInfo>,
}

#[utoipa::path(
    get, path = "/queues", tag = "queues",
    responses(
        (status = 200, description = "Queues by name, with their tasks per status", body = QueueList),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_queues(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let items = state
        .store
        .list_queues()
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(QueueList { items }))
}

#[utoipa::path(
    post, path = "/queues/{name}/pause", tag = "queues",
    params(QueueNameParam),
    responses(
        (status = 200, description = "The queue, now paused", body = QueueInfo),
        (status = 422, description = "Not a queue name", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn pause_queue(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&state, &name, true).await
}

#[utoipa::path(
    post, path = "/queues/{name}/resume", tag = "queues",
    params(QueueNameParam),
    responses(
        (status = 200, description = "The queue, now claimed from again", body = QueueInfo),
        (status = 422, description = "Not a queue name", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn resume_queue(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&state, &name, false).await
}

const QUEUE_NAME_PATH: Spec<Text> = spec::text("name", "The queue.")
    .required()
    .format(QUEUE_NAME);

/// The `{name}` path segment.
pub struct QueueNameParam;

impl IntoParams for QueueNameParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&QUEUE_NAME_PATH)]
    }
}

async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
) -> Result<Json<QueueInfo>, ApiError> {
    if !(QUEUE_NAME.check)(name) {
        let Invalid { kind, msg } = QUEUE_NAME.invalid;
        return Err(ApiError::invalid(&["path", "name"], kind, msg));
    }
    let info = state
        .store
        .set_queue_paused(name, paused)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(info))
}
