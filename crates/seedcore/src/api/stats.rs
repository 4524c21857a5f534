//! `GET /api/v1/stats/tasks`: how many tasks finished per minute (or per larger bucket) over a
//! recent window, and how long they ran and waited, for charts. The store owns the rules (see
//! `store::stats`); this module reads and checks the query and documents it.

use axum::{Json, extract::State};
use utoipa::{
    IntoParams,
    openapi::path::{Parameter, ParameterIn},
};

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::QueryParams,
};
use crate::{
    store::{StatsQuery, TaskStats},
    validate::{
        QUEUE_NAME,
        spec::{self, Integer, Spec, Text},
    },
};

const MINUTES: Spec<Integer> = spec::integer(
    "minutes",
    1,
    1440,
    "How far back the window reaches, in minutes. Buckets last 60 seconds up to 120 minutes; \
     longer windows take the smallest of 120, 300, 600, 900, 1800 and 3600 seconds that keeps \
     them at 120 or fewer.",
)
.default(60);
const QUEUE_FILTER: Spec<Text> = spec::text("queue", "Only tasks of this queue.")
    .stored()
    .format(QUEUE_NAME);
const TYPE_FILTER: Spec<Text> = spec::text("type", "Only tasks of this type.").stored();

/// The query parameters of `GET /api/v1/stats/tasks`.
pub struct TaskStatsParams;

impl IntoParams for TaskStatsParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&MINUTES, &QUEUE_FILTER, &TYPE_FILTER])
    }
}

#[utoipa::path(
    get, path = "/stats/tasks", tag = "tasks",
    params(TaskStatsParams),
    responses(
        (status = 200, description = "The tasks that finished in the window, per bucket: every bucket present, oldest first, the last one (holding `until`) partial. A task counts in the bucket its `finished_at` falls in, from the hot table and the history alike.", body = TaskStats),
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn task_stats(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<TaskStats>, ApiError> {
    let query = StatsQuery {
        minutes: params.integer(&MINUTES),
        queue: params.formatted(&QUEUE_FILTER),
        task_type: params.stored_text(&TYPE_FILTER),
    };
    params.finish()?;
    let stats = state
        .store
        .task_stats(&query)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(stats))
}
