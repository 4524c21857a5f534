//! Queue endpoints: the queues with their task counts, and pausing and resuming one. A paused
//! queue keeps its tasks (and accepts new ones); no worker claims them until it is resumed.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::model::{QueueInfo, task::valid_queue_name};

/// Every queue that has tasks or was paused.
#[derive(Serialize, ToSchema)]
pub struct QueueList {
    items: Vec<QueueInfo>,
}

#[utoipa::path(
    get, path = "/queues", tag = "queues",
    responses((status = 200, description = "Queues by name, with their tasks per status", body = QueueList))
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
    params(("name" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The queue, now paused", body = QueueInfo),
        (status = 422, description = "Not a queue name"),
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
    params(("name" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The queue, now claimed from again", body = QueueInfo),
        (status = 422, description = "Not a queue name"),
    )
)]
pub async fn resume_queue(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&state, &name, false).await
}

async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
) -> Result<Json<QueueInfo>, ApiError> {
    if !valid_queue_name(name) {
        return Err(ApiError::invalid(
            &["path", "name"],
            "queue_name",
            "A queue name is 1 to 100 letters, digits, '_', '-', '.' or ':'",
        ));
    }
    let info = state
        .store
        .set_queue_paused(name, paused)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(info))
}
