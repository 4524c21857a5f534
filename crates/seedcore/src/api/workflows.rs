//! Workflow endpoints: create a whole DAG of tasks in one request, read it with its overall
//! status, cancel what is left of it.
//!
//! A workflow's tasks name each other by key; the request is checked as a whole (every item,
//! then keys, edges and cycles) before anything is stored, and stored in one transaction.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    ApiError, AppState,
    extract::{BulkJsonObject, QueryParams, bulk_items},
    tasks::{CreateTaskRequest, new_task_fields},
};
use crate::{
    model::{NewWorkflow, Workflow, WorkflowStep, WorkflowSummary},
    store::Page,
    validate::{FieldError, Fields, nul_errors},
};

/// One task of a workflow: the fields of `POST /api/v1/tasks` (without `idempotency_key`,
/// `depends_on` taking keys instead of ids), plus its key.
// Documentation only: validated item by item to report every error.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct WorkflowTaskRequest {
    /// The task's name in the workflow: 1 to 200 characters, unique within it.
    key: String,
    /// Keys of the tasks of this workflow that must finish first.
    depends_on: Option<Vec<String>>,
    #[serde(flatten)]
    task: CreateTaskRequest,
}

/// The body of `POST /api/v1/workflows`.
// Documentation only: validated item by item to report every error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateWorkflowRequest {
    /// A name for people (default empty).
    name: Option<String>,
    /// 1 to 10,000 tasks; those without dependencies are queued at once, the others wait
    /// `blocked` for their parents.
    tasks: Vec<WorkflowTaskRequest>,
}

#[utoipa::path(
    post, path = "/workflows", tag = "workflows",
    request_body = CreateWorkflowRequest,
    responses(
        (status = 201, description = "The workflow and its tasks, stored in one transaction", body = Workflow),
        (status = 413, description = "Body over the bulk size limit"),
        (status = 422, description = "An item is invalid, a key is repeated or unknown, or the dependencies form a cycle: nothing was stored"),
    )
)]
pub async fn create_workflow(
    State(state): State<AppState>,
    BulkJsonObject(body): BulkJsonObject,
) -> Result<(StatusCode, Json<Workflow>), ApiError> {
    let name = workflow_name(&body)?;
    let default_attempts = state.settings.default_max_attempts;
    let steps = bulk_items(&body, "tasks", |item| step(item, default_attempts))?;
    let plan = NewWorkflow { name, steps }.plan().map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
    })?;
    let workflow = state
        .store
        .create_workflow(plan)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(workflow)))
}

fn workflow_name(body: &Map<String, Value>) -> Result<String, ApiError> {
    let mut fields = Fields::new(body);
    let name = fields.string("name").unwrap_or_default();
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(body, &["name"]));
    if errors.is_empty() {
        Ok(name)
    } else {
        Err(ApiError::Validation(
            errors.into_iter().map(|e| e.under("body")).collect(),
        ))
    }
}

/// One item: its key and parents' keys, and the task as `POST /api/v1/tasks` reads it.
fn step(item: &Map<String, Value>, default_attempts: i32) -> Result<WorkflowStep, Vec<FieldError>> {
    let mut fields = Fields::new(item);
    let key = fields.required_string("key", true);
    let depends_on = fields.strings("depends_on").unwrap_or_default();
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(item, &["key"]));
    if key.as_ref().is_some_and(|k| k.chars().count() > 200) {
        errors.push(FieldError::new(
            vec!["key".into()],
            "string_too_long",
            "A key is at most 200 characters",
        ));
    }
    if item.get("idempotency_key").is_some_and(|k| !k.is_null()) {
        errors.push(FieldError::new(
            vec!["idempotency_key".into()],
            "not_in_workflow",
            "Idempotency keys are taken by POST /api/v1/tasks only",
        ));
    }
    let mut task_fields = item.clone();
    task_fields.remove("key");
    task_fields.remove("depends_on");
    let task = new_task_fields(&task_fields, default_attempts);
    match (key, task) {
        (Some(key), Ok(task)) if errors.is_empty() => Ok(WorkflowStep {
            key,
            depends_on,
            task,
        }),
        (_, task) => {
            errors.extend(task.err().unwrap_or_default());
            Err(errors)
        }
    }
}

/// A page of workflows, newest first.
#[derive(serde::Serialize, ToSchema)]
pub struct WorkflowList {
    /// Every workflow, before paging.
    total: i64,
    items: Vec<WorkflowSummary>,
}

/// Query parameters of `GET /api/v1/workflows`.
// Documentation only: `list_workflows` reads the query with `QueryParams`.
#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct WorkflowListParams {
    /// 1..=1000, default 100.
    limit: Option<i64>,
    /// At least 0, default 0.
    offset: Option<i64>,
}

#[utoipa::path(
    get, path = "/workflows", tag = "workflows",
    params(WorkflowListParams),
    responses(
        (status = 200, description = "Workflows, newest first, with their status and task counts", body = WorkflowList),
        (status = 422, description = "A parameter is out of range or malformed"),
    )
)]
pub async fn list_workflows(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<WorkflowList>, ApiError> {
    let limit = params.integer("limit", 1, 1000, 100);
    let offset = params.integer("offset", 0, i64::MAX, 0);
    params.finish()?;
    let Page { total, items } = state
        .store
        .list_workflows(limit, offset)
        .await
        .map_err(store_error)?;
    Ok(Json(WorkflowList { total, items }))
}

#[utoipa::path(
    get, path = "/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "The workflow's id")),
    responses(
        (status = 200, description = "The workflow, its status and its tasks", body = Workflow),
        (status = 404, description = "No such workflow"),
        (status = 422, description = "Not a UUID"),
    )
)]
pub async fn get_workflow(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Workflow>, ApiError> {
    let id = workflow_id(&id)?;
    let workflow = state.store.get_workflow(id).await.map_err(store_error)?;
    Ok(Json(workflow))
}

#[utoipa::path(
    post, path = "/workflows/{id}/cancel", tag = "workflows",
    params(("id" = Uuid, Path, description = "The workflow's id")),
    responses(
        (status = 200, description = "The workflow, every unfinished task of it cancelled", body = Workflow),
        (status = 404, description = "No such workflow"),
        (status = 422, description = "Not a UUID"),
    )
)]
pub async fn cancel_workflow(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Workflow>, ApiError> {
    let id = workflow_id(&id)?;
    let workflow = state.store.cancel_workflow(id).await.map_err(store_error)?;
    Ok(Json(workflow))
}

fn workflow_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid(
            &["path", "id"],
            "uuid_parsing",
            "Input should be a valid UUID",
        )
    })
}

fn store_error(err: crate::store::StoreError) -> ApiError {
    ApiError::from_store(err, || "Workflow not found".into())
}
