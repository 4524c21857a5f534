//! Task endpoints: create, get, run, cancel, delete, status and the event trail. The list lives
//! in `task_list`.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Map;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, Schema},
};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    answer::TaskSized,
    error::{ErrorBody, ValidationErrors},
    extract::{BulkJsonObject, CallerActor, JsonObject, MAX_BULK, TaskIdPath, bulk_items},
};
use crate::{
    config::seconds,
    model::{IdRef, NewTask, Task, TaskEvent, TaskStatus, task::DEFAULT_QUEUE},
    telemetry::traceparent::TraceParentHeader,
    validate::{
        FieldError, Fields, QUEUE_NAME,
        limits::{self, Size},
        nul_errors,
        spec::{
            self, Boolean, Documented, Integer, List, Number, Object, Refused, Spec, Text,
            Timestamp,
        },
    },
};

/// The fields of a task to create, in the order they are read. `POST /api/v1/tasks` takes all
/// of them; a bulk item or a workflow step takes them with `idempotency_key` refused.
pub(super) const TYPE: Spec<Text> = spec::text("type", "The task type; picks the handler.")
    .required()
    .non_empty()
    .stored();
pub(super) const PARAMS: Spec<Object> = spec::object(
    "params",
    "Input for the handler (default `{}`; no U+0000 in any key or string).",
)
.sized(Size::ParamsBytes)
.stored();
pub(super) const DESCRIPTION: Spec<Text> = spec::text("description", "Default \"\".").stored();
pub(super) const DOMAIN: Spec<Text> = spec::text(
    "domain",
    "Picks a domain-specific handler when one is registered.",
)
.stored();
pub(super) const DRIFT_SCORE: Spec<Number> = spec::number(
    "drift_score",
    "At or above the escalation threshold the task takes the escalated path (default 0).",
);
const RUN_IMMEDIATELY: Spec<Boolean> = spec::boolean(
    "run_immediately",
    "Queue the task now (status `queued`) instead of leaving it `created`.",
);
pub(super) const MAX_ATTEMPTS: Spec<Integer> = spec::integer(
    "max_attempts",
    1,
    1000,
    "Attempts before a retryable failure is final (default from configuration).",
);
pub(super) const TIMEOUT_SECONDS: Spec<Number> = spec::number(
    "timeout_seconds",
    "Seconds an attempt may run (default from configuration, per path).",
)
.above(0.0)
.at_most(limits::MAX_TIMEOUT_SECONDS);
const ATTACHED_FACT_IDS: Spec<List> =
    spec::uuids("attached_fact_ids", "Ids of facts the task refers to.")
        .max_items(limits::MAX_ATTACHED_FACTS);
pub(super) const QUEUE: Spec<Text> =
    spec::text("queue", "The queue to wait in (default `default`).")
        .stored()
        .format(QUEUE_NAME);
pub(super) const PRIORITY: Spec<Integer> = spec::integer(
    "priority",
    -1_000_000,
    1_000_000,
    "Higher runs first; FIFO within a priority.",
)
.default(0);
const RUN_AT: Spec<Timestamp> = spec::timestamp(
    "run_at",
    "Not before this time: the task is `queued` with this `run_at` and waits. Not with `delay_seconds`.",
)
.within_days(limits::RUN_AT_HORIZON_DAYS);
const DELAY_SECONDS: Spec<Number> = spec::number(
    "delay_seconds",
    "Not before this many seconds from now (instead of `run_at`).",
)
.at_least(0.0)
.at_most(limits::MAX_DELAY_SECONDS);
const IDEMPOTENCY_KEY: Spec<Text> = spec::text(
    "idempotency_key",
    "A second create with the same key returns the first task (same id) instead of a new one, \
     for as long as that task exists.",
)
.stored()
.chars(1, 200)
.error("string_length", "An idempotency key is 1 to 200 characters");
const DEPENDS_ON: Spec<List> = spec::uuids(
    "depends_on",
    "Ids (in full) of existing tasks that must finish first; an unknown id is refused (422). \
     The task waits `blocked`, then is queued when they all completed, or cancelled (naming \
     the parent) as soon as one failed or was cancelled.",
)
.max_items(limits::MAX_PARENTS)
.error("too_long", "A task depends on at most 1000 tasks");
const RUN_ON_FAILURE: Spec<Boolean> = spec::boolean(
    "run_on_failure",
    "Run once the parents are final whatever they ended as (default false).",
);
/// A bulk item's `idempotency_key`.
const NO_IDEMPOTENCY_IN_BULK: Spec<Refused> = spec::refused(
    "idempotency_key",
    "Not taken in bulk: idempotency keys are taken by `POST /api/v1/tasks` only.",
)
.error(
    "not_in_bulk",
    "Idempotency keys are taken by POST /api/v1/tasks only",
);

/// The fields of a task without its idempotency key (and without `depends_on`, which a
/// workflow step reads as keys).
pub(super) const TASK_FIELDS: &[&dyn Documented] = &[
    &TYPE,
    &PARAMS,
    &DESCRIPTION,
    &DOMAIN,
    &DRIFT_SCORE,
    &RUN_IMMEDIATELY,
    &MAX_ATTEMPTS,
    &TIMEOUT_SECONDS,
    &ATTACHED_FACT_IDS,
    &QUEUE,
    &PRIORITY,
    &RUN_AT,
    &DELAY_SECONDS,
    &RUN_ON_FAILURE,
];

/// Keys of which one at most may hold a value.
pub(super) const EXCLUSIVE: &[(&str, &str)] = &[("run_at", "delay_seconds")];

/// A task body's schema: [`TASK_FIELDS`] and `more`.
pub(super) fn task_schema(more: &[&dyn Documented], doc: &str) -> Schema {
    let fields: Vec<&dyn Documented> = TASK_FIELDS.iter().chain(more).copied().collect();
    spec::exclusive(spec::body_schema(&fields, false, doc), EXCLUSIVE)
}

/// The body of `POST /api/v1/tasks`.
pub struct CreateTaskBody;

impl PartialSchema for CreateTaskBody {
    fn schema() -> RefOr<Schema> {
        task_schema(
            &[&IDEMPOTENCY_KEY, &DEPENDS_ON],
            "A task to create. Unknown keys are ignored.",
        )
        .into()
    }
}

impl ToSchema for CreateTaskBody {}

/// The body of `POST /api/v1/tasks/bulk`.
pub struct CreateTasksBody;

impl PartialSchema for CreateTasksBody {
    fn schema() -> RefOr<Schema> {
        let item = task_schema(
            &[&NO_IDEMPOTENCY_IN_BULK, &DEPENDS_ON],
            "A task, as for `POST /api/v1/tasks` without `idempotency_key`.",
        );
        spec::bulk_schema(
            "tasks",
            item,
            MAX_BULK,
            "1 to 10,000 tasks, stored all or none.",
        )
        .into()
    }
}

impl ToSchema for CreateTasksBody {}

/// What a bulk create stored.
#[derive(Serialize, ToSchema)]
pub struct CreatedTasks {
    created: usize,
    /// The new ids, in the order of the request.
    ids: Vec<Uuid>,
}

#[utoipa::path(
    post, path = "/tasks/bulk", tag = "tasks",
    request_body = CreateTasksBody,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context (`00-<32 hex>-<16 hex>-<2 hex>`), kept with the tasks and passed on to remote executors; an invalid one is ignored")),
    responses(
        (status = 200, description = "Every task was stored, in one transaction", body = CreatedTasks),
        (status = 413, description = "Body over the bulk size limit", body = ErrorBody),
        (status = 422, description = "Some item is invalid: nothing was stored; every problem is listed with its item's position", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn create_tasks(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    trace: TraceParentHeader,
    BulkJsonObject(body): BulkJsonObject,
) -> Result<Json<CreatedTasks>, ApiError> {
    let mut tasks = bulk_tasks(&body, state.settings.default_max_attempts)?;
    for task in &mut tasks {
        task.actor = Some(actor.clone());
        task.traceparent = trace.stored();
    }
    let created = state.store.create_tasks(tasks).await.map_err(store_error)?;
    created
        .iter()
        .for_each(|task| crate::metrics::task_created(&task.queue, &task.task_type));
    let ids: Vec<Uuid> = created.iter().map(|task| task.id).collect();
    Ok(Json(CreatedTasks {
        created: ids.len(),
        ids,
    }))
}

fn bulk_tasks(
    body: &Map<String, serde_json::Value>,
    default_attempts: i32,
) -> Result<Vec<NewTask>, ApiError> {
    bulk_items(body, "tasks", |item| bulk_task(item, default_attempts))
}

/// One item of a bulk create: a task without an idempotency key.
fn bulk_task(
    item: &Map<String, serde_json::Value>,
    default_attempts: i32,
) -> Result<NewTask, Vec<FieldError>> {
    let mut fields = Fields::new(item);
    fields.read_refused(&NO_IDEMPOTENCY_IN_BULK);
    fields.finish()?;
    new_task_fields(item, default_attempts)
}

/// Just a task's status.
#[derive(Serialize, ToSchema)]
pub struct TaskStatusView {
    id: Uuid,
    status: TaskStatus,
    updated_at: DateTime<Utc>,
    error: Option<String>,
}

/// A task's audit trail, oldest first.
#[derive(Serialize, ToSchema)]
pub struct TaskEvents {
    task_id: Uuid,
    items: Vec<TaskEvent>,
}

#[utoipa::path(
    post, path = "/tasks", tag = "tasks",
    request_body = CreateTaskBody,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context (`00-<32 hex>-<16 hex>-<2 hex>`), kept with the task and passed on to remote executors; an invalid one is ignored")),
    responses(
        (status = 200, description = "The task as stored", body = Task),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn create_task(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    trace: TraceParentHeader,
    JsonObject(body): JsonObject,
) -> Result<TaskSized<Task>, ApiError> {
    let task = NewTask {
        actor: Some(actor),
        traceparent: trace.stored(),
        ..new_task(&body, state.settings.default_max_attempts)?
    };
    let id = task.id;
    let task = state.store.create_task(task).await.map_err(store_error)?;
    // A key in use answers with the task that has it: nothing new was created.
    if task.id == id {
        crate::metrics::task_created(&task.queue, &task.task_type);
    }
    Ok(TaskSized(task))
}

fn new_task(
    body: &Map<String, serde_json::Value>,
    default_attempts: i32,
) -> Result<NewTask, ApiError> {
    new_task_fields(body, default_attempts).map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
    })
}

/// A create body's fields, with every problem found (located relative to the body).
pub(super) fn new_task_fields(
    body: &Map<String, serde_json::Value>,
    default_attempts: i32,
) -> Result<NewTask, Vec<FieldError>> {
    let mut fields = Fields::new(body);
    let task_type = fields.read_text(&TYPE);
    let params = fields.read_object(&PARAMS).unwrap_or_default();
    let description = fields.read_text(&DESCRIPTION).unwrap_or_default();
    let domain = fields.read_text(&DOMAIN);
    let drift_score = fields.read_number(&DRIFT_SCORE).unwrap_or(0.0);
    let run_immediately = fields.read_bool(&RUN_IMMEDIATELY).unwrap_or(false);
    let max_attempts = fields.read_integer(&MAX_ATTEMPTS);
    let timeout_seconds = fields.read_number(&TIMEOUT_SECONDS);
    let attached_fact_ids = fields.read_uuids(&ATTACHED_FACT_IDS).unwrap_or_default();
    let queue = fields.read_text(&QUEUE);
    let priority = fields.read_integer(&PRIORITY).unwrap_or(0);
    let run_at = fields.read_timestamp(&RUN_AT);
    let delay_seconds = fields.read_number(&DELAY_SECONDS);
    let idempotency_key = fields.read_text(&IDEMPOTENCY_KEY);
    let depends_on = fields.read_uuids(&DEPENDS_ON).unwrap_or_default();
    let run_on_failure = fields.read_bool(&RUN_ON_FAILURE).unwrap_or(false);
    let mut errors = fields.finish().err().unwrap_or_default();
    let stored: Vec<&dyn Documented> = TASK_FIELDS
        .iter()
        .copied()
        .chain([&IDEMPOTENCY_KEY as &dyn Documented])
        .collect();
    errors.extend(nul_errors(body, &spec::stored_keys(&stored)));
    if run_at.is_some() && delay_seconds.is_some() {
        errors.push(FieldError::new(
            vec!["delay_seconds".into()],
            "run_at_and_delay",
            "Give run_at or delay_seconds, not both",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let delayed = delay_seconds.map(|d| {
        Utc::now() + chrono::Duration::from_std(seconds(d)).unwrap_or(chrono::Duration::MAX)
    });
    Ok(NewTask {
        id: Uuid::new_v4(),
        task_type: task_type.unwrap_or_default(),
        description,
        params,
        domain,
        drift_score,
        run_immediately,
        max_attempts: max_attempts.map_or(default_attempts, |n| n as i32),
        timeout_seconds,
        attached_fact_ids,
        queue: queue.unwrap_or_else(|| DEFAULT_QUEUE.into()),
        priority: priority as i32,
        run_at: run_at.or(delayed),
        idempotency_key,
        depends_on,
        run_on_failure,
        workflow: None,
        actor: None,
        traceparent: None,
    })
}

#[utoipa::path(
    get, path = "/tasks/{task_id}", tag = "tasks",
    params(TaskIdPath),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The prefix matches several tasks", body = ErrorBody),
        (status = 422, description = "Not a UUID or prefix", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<TaskSized<Task>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state.store.get_task(id).await.map_err(store_error)?;
    Ok(TaskSized(task))
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/run", tag = "tasks",
    params(TaskIdPath),
    responses(
        (status = 200, description = "The task: queued if it was created, failed or cancelled; unchanged otherwise", body = Task),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The id prefix matches several rows", body = ErrorBody),
        (status = 422, description = "Invalid input: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn run_task(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<Task>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state
        .store
        .run_task(id, &actor)
        .await
        .map_err(store_error)?;
    Ok(Json(task))
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/cancel", tag = "tasks",
    params(TaskIdPath),
    responses(
        (status = 200, description = "The task: cancelled unless it had completed or failed", body = Task),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The id prefix matches several rows", body = ErrorBody),
        (status = 422, description = "Invalid input: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn cancel_task(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<Task>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state
        .store
        .cancel_task(id, &actor)
        .await
        .map_err(store_error)?;
    Ok(Json(task))
}

#[utoipa::path(
    delete, path = "/tasks/{task_id}", tag = "tasks",
    params(TaskIdPath),
    responses(
        (status = 204, description = "The task and its events were deleted"),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task has not finished (only completed, failed or cancelled tasks are deleted), a blocked task still waits on it, or the prefix matches several tasks", body = ErrorBody),
        (status = 422, description = "Not a UUID or prefix", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn delete_task(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = resolve(&state, &task_id).await?;
    state.store.delete_task(id).await.map_err(store_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/tasks/{task_id}/status", tag = "tasks",
    params(TaskIdPath),
    responses(
        (status = 200, description = "The task's status", body = TaskStatusView),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The id prefix matches several rows", body = ErrorBody),
        (status = 422, description = "Invalid input: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn task_status(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<TaskStatusView>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state.store.get_task(id).await.map_err(store_error)?;
    Ok(Json(TaskStatusView {
        id: task.id,
        status: task.status,
        updated_at: task.updated_at,
        error: task.error,
    }))
}

#[utoipa::path(
    get, path = "/tasks/{task_id}/events", tag = "tasks",
    params(TaskIdPath),
    responses(
        (status = 200, description = "Every status change of the task, oldest first", body = TaskEvents),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The id prefix matches several rows", body = ErrorBody),
        (status = 422, description = "Invalid input: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn task_events(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<TaskEvents>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    // Existence first, so an unknown id is a 404 rather than an empty trail.
    state.store.get_task(id).await.map_err(store_error)?;
    let items = state.store.task_events(id).await.map_err(store_error)?;
    Ok(Json(TaskEvents { task_id: id, items }))
}

async fn resolve(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = IdRef::parse(raw)
        .map_err(|err| ApiError::invalid(&["path", "task_id"], "uuid_parsing", err.to_string()))?;
    state.store.resolve_task(&id).await.map_err(store_error)
}

fn store_error(err: crate::store::StoreError) -> ApiError {
    match err {
        crate::store::StoreError::UnknownDependencies(ids) => ApiError::Validation(
            ids.into_iter()
                .map(|id| {
                    FieldError::new(
                        vec!["body".into(), "depends_on".into()],
                        "unknown_task",
                        format!("No task has the id {id}"),
                    )
                })
                .collect(),
        ),
        err => ApiError::from_store(err, || "Task not found".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::spec::conformance;
    use serde_json::json;

    fn body(value: serde_json::Value) -> Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    fn error_kinds(result: Result<NewTask, ApiError>) -> Vec<(String, &'static str)> {
        let Err(ApiError::Validation(errors)) = result else {
            panic!("expected 422")
        };
        errors
            .into_iter()
            .map(|e| {
                (
                    e.loc
                        .iter()
                        .map(|p| p.as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                        .join("."),
                    e.kind,
                )
            })
            .collect()
    }

    #[test]
    fn a_minimal_task_takes_every_default() {
        let task = new_task(&body(json!({"type": "echo"})), 3).unwrap();
        assert_eq!(
            task,
            NewTask {
                id: task.id,
                max_attempts: 3,
                ..NewTask::of_type("echo")
            }
        );
    }

    #[test]
    fn nulls_read_as_defaults() {
        let task = new_task(
            &body(
                json!({"type": "echo", "params": null, "description": null, "drift_score": null}),
            ),
            3,
        )
        .unwrap();
        assert_eq!(task.description, "");
        assert!(task.params.is_empty());
        assert_eq!(task.drift_score, 0.0);
    }

    #[test]
    fn every_wrong_field_is_reported_under_body() {
        let kinds = error_kinds(new_task(
            &body(
                json!({"type": 5, "params": [], "drift_score": "high", "run_immediately": "yes",
                         "max_attempts": 0, "timeout_seconds": -1}),
            ),
            3,
        ));
        assert_eq!(
            kinds,
            vec![
                ("body.type".into(), "string_type"),
                ("body.params".into(), "dict_type"),
                ("body.drift_score".into(), "float_type"),
                ("body.run_immediately".into(), "bool_type"),
                ("body.max_attempts".into(), "greater_than_equal"),
                ("body.timeout_seconds".into(), "greater_than"),
            ]
        );
    }

    fn bulk_item_schema() -> serde_json::Value {
        let schema = CreateTasksBody::schema();
        let schema = serde_json::to_value(schema).unwrap();
        schema["properties"]["tasks"]["items"].clone()
    }

    #[test]
    fn every_bound_the_create_schema_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(CreateTaskBody::schema()).unwrap();
        let tried =
            conformance::assert_bounds_enforced(&schema, &body(json!({"type": "echo"})), |b| {
                new_task_fields(b, 3).err().unwrap_or_default()
            });
        assert!(tried >= 20, "only {tried} cases");
    }

    #[test]
    fn every_bound_a_bulk_item_schema_states_is_the_one_the_validator_enforces() {
        let tried = conformance::assert_bounds_enforced(
            &bulk_item_schema(),
            &body(json!({"type": "echo"})),
            |b| bulk_task(b, 3).err().unwrap_or_default(),
        );
        assert!(tried >= 15, "only {tried} cases");
    }

    #[test]
    fn run_at_and_delay_seconds_are_documented_and_checked_as_exclusive() {
        let schema = serde_json::to_value(CreateTaskBody::schema()).unwrap();
        let rule = &schema["allOf"][1]["anyOf"];
        assert_eq!(rule[0]["properties"]["run_at"]["type"], "null");
        assert_eq!(rule[1]["properties"]["delay_seconds"]["type"], "null");
        let both =
            body(json!({"type": "echo", "run_at": "2026-11-28T12:00:00Z", "delay_seconds": 1}));
        assert_eq!(
            error_kinds(new_task(&both, 3)),
            vec![("body.delay_seconds".into(), "run_at_and_delay")]
        );
        let one = body(json!({"type": "echo", "run_at": null, "delay_seconds": 1}));
        assert!(new_task(&one, 3).is_ok());
    }

    #[test]
    fn a_missing_or_empty_type_is_refused() {
        assert_eq!(
            error_kinds(new_task(&body(json!({})), 3)),
            vec![("body.type".into(), "missing")]
        );
        assert_eq!(
            error_kinds(new_task(&body(json!({"type": ""})), 3)),
            vec![("body.type".into(), "string_too_short")]
        );
    }
}
