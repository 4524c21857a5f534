//! `GET /api/v1/workers`: the worker processes registered in the store and whether each is
//! still there.

use axum::{Json, extract::State};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, error::ErrorBody};
use crate::model::{Worker, WorkerState};

/// A worker process and its state as of the request.
#[derive(Serialize, ToSchema)]
pub struct WorkerView {
    #[serde(flatten)]
    worker: Worker,
    state: WorkerState,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerList {
    items: Vec<WorkerView>,
}

#[utoipa::path(
    get, path = "/workers", tag = "workers",
    responses(
        (status = 200, description = "Registered worker processes, newest first", body = WorkerList),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_workers(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let workers = state
        .store
        .list_workers()
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    let now = Utc::now();
    let items = workers
        .into_iter()
        .map(|worker| WorkerView {
            state: worker.state(now),
            worker,
        })
        .collect();
    Ok(Json(WorkerList { items }))
}
