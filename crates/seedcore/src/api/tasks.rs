//! Task endpoints: create, list, get, run, cancel, status and the event trail.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    extract::{BulkJsonObject, JsonObject, QueryParams, TaskIdPath, bulk_items},
};
use crate::{
    config::seconds,
    model::{
        IdRef, NewTask, Task, TaskEvent, TaskStatus,
        task::{DEFAULT_QUEUE, valid_queue_name},
    },
    store::{Page, TaskQuery},
    validate::{FieldError, Fields, nul_errors},
};

/// The body of `POST /api/v1/tasks`.
// Documentation only: `new_task` validates the body field by field to report every error.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateTaskRequest {
    /// The task type; picks the handler. Required, non-empty.
    #[serde(rename = "type")]
    task_type: String,
    /// Input for the handler (default `{}`).
    #[schema(value_type = Option<Object>)]
    params: Option<serde_json::Value>,
    description: Option<String>,
    domain: Option<String>,
    /// At or above the escalation threshold the task takes the escalated path (default 0).
    drift_score: Option<f64>,
    /// Queue the task now (status `queued`) instead of leaving it `created`.
    run_immediately: Option<bool>,
    /// Attempts before a retryable failure is final (1..=1000; default from configuration).
    max_attempts: Option<i32>,
    /// Seconds an attempt may run (default from configuration, per path).
    timeout_seconds: Option<f64>,
    /// Ids of facts the task refers to.
    attached_fact_ids: Option<Vec<Uuid>>,
    /// The queue to wait in (default `default`): 1 to 100 letters, digits, `_-.:`.
    queue: Option<String>,
    /// Higher runs first (-1,000,000..=1,000,000, default 0); FIFO within a priority.
    priority: Option<i32>,
    /// Not before this RFC 3339 time: the task is `queued` with this `run_at` and waits.
    run_at: Option<DateTime<Utc>>,
    /// Not before this many seconds from now (instead of `run_at`).
    delay_seconds: Option<f64>,
    /// A second create with the same key returns the first task (same id) instead of a new
    /// one, for as long as that task exists.
    idempotency_key: Option<String>,
    /// Ids (in full) of existing tasks that must finish first (up to 1,000). The task waits
    /// `blocked`, then is queued when they all completed, or cancelled (naming the parent)
    /// as soon as one failed or was cancelled.
    depends_on: Option<Vec<Uuid>>,
    /// Run once the parents are final whatever they ended as (default false).
    run_on_failure: Option<bool>,
}

/// The body of `POST /api/v1/tasks/bulk`.
// Documentation only: validated item by item to report every error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateTasksRequest {
    /// 1 to 10,000 tasks, each as for `POST /api/v1/tasks` (without `idempotency_key`).
    tasks: Vec<CreateTaskRequest>,
}

/// What a bulk create stored.
#[derive(Serialize, ToSchema)]
pub struct CreatedTasks {
    created: usize,
    /// The new ids, in the order of the request.
    ids: Vec<Uuid>,
}

#[utoipa::path(
    post, path = "/tasks/bulk", tag = "tasks",
    request_body = CreateTasksRequest,
    responses(
        (status = 200, description = "Every task was stored, in one transaction", body = CreatedTasks),
        (status = 413, description = "Body over the bulk size limit"),
        (status = 422, description = "Some item is invalid: nothing was stored; every problem is listed with its item's position"),
    )
)]
pub async fn create_tasks(
    State(state): State<AppState>,
    BulkJsonObject(body): BulkJsonObject,
) -> Result<Json<CreatedTasks>, ApiError> {
    let tasks = bulk_tasks(&body, state.settings.default_max_attempts)?;
    let created = state.store.create_tasks(tasks).await.map_err(store_error)?;
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
    bulk_items(body, "tasks", |item| {
        if item.get("idempotency_key").is_some_and(|k| !k.is_null()) {
            return Err(vec![FieldError::new(
                vec!["idempotency_key".into()],
                "not_in_bulk",
                "Idempotency keys are taken by POST /api/v1/tasks only",
            )]);
        }
        new_task_fields(item, default_attempts)
    })
}

/// A page of tasks, newest first.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    /// Tasks matching the filters, before paging.
    total: i64,
    items: Vec<Task>,
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

/// Query parameters of `GET /api/v1/tasks`.
// Documentation only: `list_tasks` reads the query with `QueryParams`.
#[derive(Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct TaskListParams {
    /// 1..=1000, default 100.
    limit: Option<i64>,
    /// At least 0, default 0.
    offset: Option<i64>,
    /// Only tasks in this status.
    status: Option<TaskStatus>,
    /// Only tasks of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    task_type: Option<String>,
    /// Only tasks in this domain.
    domain: Option<String>,
}

#[utoipa::path(
    post, path = "/tasks", tag = "tasks",
    request_body = CreateTaskRequest,
    responses(
        (status = 200, description = "The task as stored", body = Task),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid body"),
    )
)]
pub async fn create_task(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Task>, ApiError> {
    let task = new_task(&body, state.settings.default_max_attempts)?;
    let task = state.store.create_task(task).await.map_err(store_error)?;
    Ok(Json(task))
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
    let task_type = fields.required_string("type", true);
    let params = fields.object("params").unwrap_or_default();
    let description = fields.string("description").unwrap_or_default();
    let domain = fields.string("domain");
    let drift_score = fields.number("drift_score").unwrap_or(0.0);
    let run_immediately = fields.boolean("run_immediately").unwrap_or(false);
    let max_attempts = fields.integer_in("max_attempts", 1, 1000);
    let timeout_seconds = fields.number("timeout_seconds");
    let attached_fact_ids = fields.uuids("attached_fact_ids").unwrap_or_default();
    let queue = fields.string("queue");
    let priority = fields
        .integer_in("priority", -1_000_000, 1_000_000)
        .unwrap_or(0);
    let run_at = fields.timestamp("run_at");
    let delay_seconds = fields.number_at_least("delay_seconds", 0.0);
    let idempotency_key = fields.string("idempotency_key");
    let depends_on = fields.uuids("depends_on").unwrap_or_default();
    let run_on_failure = fields.boolean("run_on_failure").unwrap_or(false);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(body, &STORED_FIELDS));
    let mut invalid = |key: &str, kind: &'static str, msg: &str| {
        errors.push(FieldError::new(vec![key.into()], kind, msg));
    };
    if timeout_seconds.is_some_and(|t| t <= 0.0) {
        invalid(
            "timeout_seconds",
            "greater_than",
            "Input should be greater than 0",
        );
    }
    if queue.as_deref().is_some_and(|q| !valid_queue_name(q)) {
        invalid(
            "queue",
            "queue_name",
            "A queue name is 1 to 100 letters, digits, '_', '-', '.' or ':'",
        );
    }
    if idempotency_key
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 200)
    {
        invalid(
            "idempotency_key",
            "string_length",
            "An idempotency key is 1 to 200 characters",
        );
    }
    if depends_on.len() > MAX_PARENTS {
        invalid(
            "depends_on",
            "too_long",
            &format!("A task depends on at most {MAX_PARENTS} tasks"),
        );
    }
    if run_at.is_some() && delay_seconds.is_some() {
        invalid(
            "delay_seconds",
            "run_at_and_delay",
            "Give run_at or delay_seconds, not both",
        );
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
    })
}

/// Most parents one task may have.
const MAX_PARENTS: usize = 1000;

/// The fields stored as PostgreSQL text or jsonb, which cannot hold U+0000.
const STORED_FIELDS: [&str; 6] = [
    "type",
    "description",
    "domain",
    "params",
    "queue",
    "idempotency_key",
];

#[utoipa::path(
    get, path = "/tasks", tag = "tasks",
    params(TaskListParams),
    responses(
        (status = 200, description = "Tasks, newest first", body = TaskList),
        (status = 422, description = "A parameter is out of range or malformed"),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<TaskList>, ApiError> {
    let query = TaskQuery {
        limit: params.integer("limit", 1, 1000, 100),
        offset: params.integer("offset", 0, i64::MAX, 0),
        status: params.choice(
            "status",
            TaskStatus::parse,
            "one of created, blocked, queued, running, retry, completed, failed, cancelled",
        ),
        task_type: params.stored_text("type"),
        domain: params.stored_text("domain"),
    };
    params.finish()?;
    let Page { total, items } = state.store.list_tasks(&query).await.map_err(store_error)?;
    Ok(Json(TaskList { total, items }))
}

#[utoipa::path(
    get, path = "/tasks/{task_id}", tag = "tasks",
    params(("task_id" = String, Path, description = "A task id, or a unique prefix of one (4+ characters)")),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task"),
        (status = 409, description = "The prefix matches several tasks"),
        (status = 422, description = "Not a UUID or prefix"),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<Task>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state.store.get_task(id).await.map_err(store_error)?;
    Ok(Json(task))
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/run", tag = "tasks",
    params(("task_id" = String, Path, description = "A task id or unique prefix")),
    responses(
        (status = 200, description = "The task: queued if it was created, failed or cancelled; unchanged otherwise", body = Task),
        (status = 404, description = "No such task"),
    )
)]
pub async fn run_task(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<Task>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state.store.run_task(id).await.map_err(store_error)?;
    Ok(Json(task))
}

#[utoipa::path(
    post, path = "/tasks/{task_id}/cancel", tag = "tasks",
    params(("task_id" = String, Path, description = "A task id or unique prefix")),
    responses(
        (status = 200, description = "The task: cancelled unless it had completed or failed", body = Task),
        (status = 404, description = "No such task"),
    )
)]
pub async fn cancel_task(
    State(state): State<AppState>,
    TaskIdPath(task_id): TaskIdPath,
) -> Result<Json<Task>, ApiError> {
    let id = resolve(&state, &task_id).await?;
    let task = state.store.cancel_task(id).await.map_err(store_error)?;
    Ok(Json(task))
}

#[utoipa::path(
    get, path = "/tasks/{task_id}/status", tag = "tasks",
    params(("task_id" = String, Path, description = "A task id or unique prefix")),
    responses(
        (status = 200, description = "The task's status", body = TaskStatusView),
        (status = 404, description = "No such task"),
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
    params(("task_id" = String, Path, description = "A task id or unique prefix")),
    responses(
        (status = 200, description = "Every status change of the task, oldest first", body = TaskEvents),
        (status = 404, description = "No such task"),
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
