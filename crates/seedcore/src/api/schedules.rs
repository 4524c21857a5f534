//! Cron schedule endpoints: create, list, get (with the next fire times), patch, delete.
//!
//! Handlers validate with `schedule_body` and delegate to the store. Bodies are checked off the
//! async threads: an expression that never matches takes croner a while to rule out.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    extract::{JsonObject, QueryParams},
    schedule_body::{new_schedule, schedule_patch},
};
use crate::{
    model::{MisfirePolicy, Schedule},
    store::{Page, StoreError},
    validate::FieldError,
};

/// How many coming fire times a schedule shows.
const SHOWN_FIRE_TIMES: usize = 5;

/// A schedule with its coming fire times.
#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    schedule: Schedule,
    /// The next five fire times from `next_fire_at` on (RFC 3339, UTC); empty while disabled.
    next_fire_times: Vec<DateTime<Utc>>,
}

impl From<Schedule> for ScheduleView {
    fn from(schedule: Schedule) -> ScheduleView {
        let next_fire_times = match (schedule.spec(), schedule.next_fire_at) {
            (Ok(spec), Some(next)) => spec.fire_times_from(next, SHOWN_FIRE_TIMES),
            _ => Vec::new(),
        };
        ScheduleView {
            schedule,
            next_fire_times,
        }
    }
}

/// A page of schedules, by name.
#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    /// Every schedule, before paging.
    total: i64,
    items: Vec<ScheduleView>,
}

/// The task a schedule creates at each fire (documentation only: validated field by field).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TaskTemplateRequest {
    /// The task type; picks the handler. Required, non-empty.
    #[schema(rename = "type")]
    task_type: String,
    /// Input for the handler (default `{}`).
    #[schema(value_type = Option<Object>)]
    params: Option<Value>,
    description: Option<String>,
    domain: Option<String>,
    /// Default `default`: 1 to 100 letters, digits, `_-.:`.
    queue: Option<String>,
    /// -1,000,000..=1,000,000, default 0.
    priority: Option<i32>,
    /// 1..=1000, default from configuration.
    max_attempts: Option<i32>,
    /// Greater than 0; default the engine's.
    timeout_seconds: Option<f64>,
    /// Default 0.
    drift_score: Option<f64>,
}

/// The body of `POST /api/v1/schedules` (documentation only: validated field by field, and
/// unknown keys are refused).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateScheduleRequest {
    /// Unique, 1 to 200 bytes.
    name: String,
    /// 5 fields (`minute hour day month weekday`, firing at second 0) or 6 (second first);
    /// names (`MON`, `JAN`), `L`, `W`, `#` and `@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly` are understood.
    cron: String,
    /// An IANA time zone such as `Europe/Zurich` (default `UTC`).
    timezone: Option<String>,
    task: TaskTemplateRequest,
    /// Default true; false creates the schedule paused.
    enabled: Option<bool>,
    /// `run_once` (default): fires missed while the service was down create one task;
    /// `skip`: they create none.
    misfire_policy: Option<MisfirePolicy>,
}

/// The body of `PATCH /api/v1/schedules/{schedule_id}`: any of the create fields; only those
/// given change. Inside `task`, null resets a field to its default.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdateScheduleRequest {
    name: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
    /// Only the template fields given change.
    task: Option<TaskTemplateRequest>,
    /// false pauses; true resumes from the next fire time after now (missed fires never run).
    enabled: Option<bool>,
    misfire_policy: Option<MisfirePolicy>,
}

/// Query parameters of `GET /api/v1/schedules`.
// Documentation only: read with `QueryParams`.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct ScheduleListParams {
    /// 1..=1000, default 100.
    limit: Option<i64>,
    /// At least 0, default 0.
    offset: Option<i64>,
}

#[utoipa::path(
    post, path = "/schedules", tag = "schedules",
    request_body = CreateScheduleRequest,
    responses(
        (status = 201, description = "The schedule as stored, with its next fire times", body = ScheduleView),
        (status = 409, description = "A schedule of that name exists"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid body: every problem is listed"),
    )
)]
pub async fn create_schedule(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let attempts = state.settings.default_max_attempts;
    let new = off_thread(move || new_schedule(&body, attempts)).await?;
    let schedule = state
        .store
        .create_schedule(new)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(schedule.into())))
}

#[utoipa::path(
    get, path = "/schedules", tag = "schedules",
    params(ScheduleListParams),
    responses(
        (status = 200, description = "Schedules by name", body = ScheduleList),
        (status = 422, description = "A parameter is out of range or malformed"),
    )
)]
pub async fn list_schedules(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<ScheduleList>, ApiError> {
    let limit = params.integer("limit", 1, 1000, 100);
    let offset = params.integer("offset", 0, i64::MAX, 0);
    params.finish()?;
    let Page { total, items } = state
        .store
        .list_schedules(limit, offset)
        .await
        .map_err(store_error)?;
    let items = items.into_iter().map(ScheduleView::from).collect();
    Ok(Json(ScheduleList { total, items }))
}

#[utoipa::path(
    get, path = "/schedules/{schedule_id}", tag = "schedules",
    params(("schedule_id" = Uuid, Path, description = "The schedule's id")),
    responses(
        (status = 200, description = "The schedule, with its next fire times", body = ScheduleView),
        (status = 404, description = "No such schedule"),
        (status = 422, description = "Not a UUID"),
    )
)]
pub async fn get_schedule(
    State(state): State<AppState>,
    ScheduleIdPath(id): ScheduleIdPath,
) -> Result<Json<ScheduleView>, ApiError> {
    let schedule = state.store.get_schedule(id).await.map_err(store_error)?;
    Ok(Json(schedule.into()))
}

#[utoipa::path(
    patch, path = "/schedules/{schedule_id}", tag = "schedules",
    params(("schedule_id" = Uuid, Path, description = "The schedule's id")),
    request_body = UpdateScheduleRequest,
    responses(
        (status = 200, description = "The updated schedule (unchanged for an empty body)", body = ScheduleView),
        (status = 404, description = "No such schedule"),
        (status = 409, description = "Another schedule has that name"),
        (status = 422, description = "Invalid body: every problem is listed"),
    )
)]
pub async fn update_schedule(
    State(state): State<AppState>,
    ScheduleIdPath(id): ScheduleIdPath,
    JsonObject(body): JsonObject,
) -> Result<Json<ScheduleView>, ApiError> {
    let attempts = state.settings.default_max_attempts;
    let patch = off_thread(move || schedule_patch(&body, attempts)).await?;
    let schedule = state
        .store
        .update_schedule(id, patch)
        .await
        .map_err(store_error)?;
    Ok(Json(schedule.into()))
}

#[utoipa::path(
    delete, path = "/schedules/{schedule_id}", tag = "schedules",
    params(("schedule_id" = Uuid, Path, description = "The schedule's id")),
    responses(
        (status = 204, description = "Deleted; the tasks it created stay"),
        (status = 404, description = "No such schedule"),
    )
)]
pub async fn delete_schedule(
    State(state): State<AppState>,
    ScheduleIdPath(id): ScheduleIdPath,
) -> Result<StatusCode, ApiError> {
    state.store.delete_schedule(id).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a body check on the blocking pool; its errors are located under `body`.
async fn off_thread<T: Send + 'static>(
    check: impl FnOnce() -> Result<T, Vec<FieldError>> + Send + 'static,
) -> Result<T, ApiError> {
    let checked = tokio::task::spawn_blocking(check)
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    checked.map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
    })
}

fn store_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Schedule not found".into())
}

/// The `{schedule_id}` path segment: a whole UUID (schedules take no prefixes).
pub struct ScheduleIdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ScheduleIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(raw)| raw)
            .unwrap_or_default();
        Uuid::try_parse(&raw).map(ScheduleIdPath).map_err(|_| {
            ApiError::invalid(
                &["path", "schedule_id"],
                "uuid_parsing",
                format!("Input should be a valid UUID, got '{raw}'"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_view_shows_five_fire_times_from_the_next_one_and_none_while_paused() {
        let mut schedule = new_schedule(
            &object(json!({"name": "n", "cron": "0 * * * *", "task": {"type": "noop"}})),
            3,
        )
        .unwrap()
        .into_schedule(Uuid::new_v4(), "2026-11-28T12:30:00Z".parse().unwrap())
        .unwrap();
        let view = serde_json::to_value(ScheduleView::from(schedule.clone())).unwrap();
        assert_eq!(view["next_fire_at"], "2026-11-28T13:00:00Z");
        assert_eq!(
            view["next_fire_times"],
            json!([
                "2026-11-28T13:00:00Z",
                "2026-11-28T14:00:00Z",
                "2026-11-28T15:00:00Z",
                "2026-11-28T16:00:00Z",
                "2026-11-28T17:00:00Z"
            ])
        );
        assert_eq!(view["task"]["type"], "noop");
        schedule.enabled = false;
        schedule.next_fire_at = None;
        let paused = serde_json::to_value(ScheduleView::from(schedule)).unwrap();
        assert_eq!(paused["next_fire_times"], json!([]));
    }
}
