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
use utoipa::{
    IntoParams, PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        path::{Parameter, ParameterIn},
    },
};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::{JsonObject, LIMIT, OFFSET, QueryParams, WHOLE_ID},
    schedule_body::{NEW_SCHEDULE, SCHEDULE_PATCH, new_schedule, schedule_patch},
};
use crate::{
    model::Schedule,
    store::{Page, StoreError},
    validate::{FieldError, spec},
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

/// The body of `POST /api/v1/schedules`.
pub struct CreateScheduleBody;

impl PartialSchema for CreateScheduleBody {
    fn schema() -> RefOr<Schema> {
        spec::body_schema(
            NEW_SCHEDULE,
            true,
            "A schedule to create. Keys a schedule does not have are refused.",
        )
        .into()
    }
}

impl ToSchema for CreateScheduleBody {}

/// The body of `PATCH /api/v1/schedules/{schedule_id}`.
pub struct UpdateScheduleBody;

impl PartialSchema for UpdateScheduleBody {
    fn schema() -> RefOr<Schema> {
        spec::body_schema(
            SCHEDULE_PATCH,
            true,
            "Any of the create fields, none null; only those given change.",
        )
        .into()
    }
}

impl ToSchema for UpdateScheduleBody {}

/// The query parameters of `GET /api/v1/schedules`.
pub struct ScheduleListParams;

impl IntoParams for ScheduleListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&LIMIT, &OFFSET])
    }
}

#[utoipa::path(
    post, path = "/schedules", tag = "schedules",
    request_body = CreateScheduleBody,
    responses(
        (status = 201, description = "The schedule as stored, with its next fire times", body = ScheduleView),
        (status = 409, description = "A schedule of that name exists", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
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
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_schedules(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<ScheduleList>, ApiError> {
    let limit = params.integer(&LIMIT);
    let offset = params.integer(&OFFSET);
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
    params(ScheduleIdPath),
    responses(
        (status = 200, description = "The schedule, with its next fire times", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
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
    params(ScheduleIdPath),
    request_body = UpdateScheduleBody,
    responses(
        (status = 200, description = "The updated schedule (unchanged for an empty body)", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 409, description = "Another schedule has that name", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
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
    params(ScheduleIdPath),
    responses(
        (status = 204, description = "Deleted; the tasks it created stay"),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "Invalid input: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
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

pub(super) fn store_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Schedule not found".into())
}

/// The `{schedule_id}` path segment: a whole UUID (schedules take no prefixes).
pub struct ScheduleIdPath(pub Uuid);

impl IntoParams for ScheduleIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&WHOLE_ID.with_name("schedule_id"))]
    }
}

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
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::validate::spec::conformance;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    /// A cron expression must also parse and fire, which its schema cannot state.
    const UNSTATABLE: &[&str] = &["cron_expression"];

    #[test]
    fn every_bound_the_create_schema_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(CreateScheduleBody::schema()).unwrap();
        let base = object(json!({"name": "n", "cron": "0 * * * *", "task": {"type": "noop"}}));
        let tried = conformance::assert_bounds_enforced_but(&schema, &base, UNSTATABLE, |b| {
            new_schedule(b, 3).err().unwrap_or_default()
        });
        assert!(tried > 100, "only {tried} cases");
    }

    #[test]
    fn every_bound_the_patch_schema_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(UpdateScheduleBody::schema()).unwrap();
        let tried =
            conformance::assert_bounds_enforced_but(&schema, &Map::new(), UNSTATABLE, |b| {
                schedule_patch(b, 3).err().unwrap_or_default()
            });
        assert!(tried > 100, "only {tried} cases");
    }

    #[test]
    fn every_bound_a_task_template_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(CreateScheduleBody::schema()).unwrap();
        let template = &schema["properties"]["task"];
        let tried = conformance::assert_bounds_enforced(
            template,
            &object(json!({"type": "noop"})),
            |task| {
                let body = json!({"name": "n", "cron": "0 * * * *", "task": task});
                let errors = new_schedule(body.as_object().unwrap(), 3).err();
                // Located under the body's `task`: compare them as the template's own.
                errors
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| e.loc.first() == Some(&json!("task")))
                    .map(|mut e| {
                        e.loc.remove(0);
                        e
                    })
                    .collect()
            },
        );
        assert!(tried >= 10, "only {tried} cases");
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
