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
use serde_json::{Map, Value};
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
    extract::{
        BulkJsonObject, CallerActor, LIMIT, MAX_BULK, OFFSET, QueryParams, WHOLE_ID, bulk_items,
    },
    tasks::{self, new_task_fields},
};
use crate::{
    model::{NewWorkflow, Workflow, WorkflowStep, WorkflowSummary},
    store::Page,
    telemetry::traceparent::TraceParentHeader,
    validate::{
        FieldError, Fields, nul_errors,
        spec::{self, Documented, List, Refused, Spec, Text},
    },
};

const NAME: Spec<Text> = spec::text("name", "A name for people (default empty).").stored();
const KEY: Spec<Text> = spec::text("key", "The task's name in the workflow, unique within it.")
    .required()
    .chars(1, 200)
    .stored();
const DEPENDS_ON_KEYS: Spec<List> = spec::strings(
    "depends_on",
    "Keys of the tasks of this workflow that must finish first (each a key of the same \
     workflow, with no cycle; otherwise the workflow is refused, 422).",
)
.max_items(crate::validate::limits::MAX_PARENTS);
const NO_IDEMPOTENCY: Spec<Refused> = spec::refused(
    "idempotency_key",
    "Not taken here: idempotency keys are taken by `POST /api/v1/tasks` only.",
)
.error(
    "not_in_workflow",
    "Idempotency keys are taken by POST /api/v1/tasks only",
);

/// The body of `POST /api/v1/workflows`.
pub struct CreateWorkflowBody;

impl PartialSchema for CreateWorkflowBody {
    fn schema() -> RefOr<Schema> {
        let step = tasks::task_schema(
            &[&KEY, &DEPENDS_ON_KEYS, &NO_IDEMPOTENCY],
            "One task of the workflow: the fields of `POST /api/v1/tasks` (without \
             `idempotency_key`, `depends_on` naming keys instead of ids), plus its key.",
        );
        let Schema::Object(body) = spec::bulk_schema(
            "tasks",
            step,
            MAX_BULK,
            "1 to 10,000 tasks; those without dependencies are queued at once, the others wait \
             `blocked` for their parents. Stored all or none.",
        ) else {
            unreachable!("a bulk body is an object")
        };
        let mut body = body;
        body.properties
            .insert(NAME.name.into(), NAME.schema().into());
        Schema::Object(body).into()
    }
}

impl ToSchema for CreateWorkflowBody {}

#[utoipa::path(
    post, path = "/workflows", tag = "workflows",
    request_body = CreateWorkflowBody,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context (`00-<32 hex>-<16 hex>-<2 hex>`), kept with the workflow's tasks and passed on to remote executors; an invalid one is ignored")),
    responses(
        (status = 201, description = "The workflow and its tasks, stored in one transaction", body = Workflow),
        (status = 413, description = "Body over the bulk size limit", body = ErrorBody),
        (status = 422, description = "An item is invalid, a key is repeated or unknown, or the dependencies form a cycle: nothing was stored", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn create_workflow(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    trace: TraceParentHeader,
    BulkJsonObject(body): BulkJsonObject,
) -> Result<(StatusCode, Json<Workflow>), ApiError> {
    let name = workflow_name(&body)?;
    let default_attempts = state.settings.default_max_attempts;
    let steps = bulk_items(&body, "tasks", |item| step(item, default_attempts))?;
    let mut plan = NewWorkflow { name, steps }.plan().map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
    })?;
    for task in &mut plan.tasks {
        task.actor = Some(actor.clone());
        task.traceparent = trace.stored();
    }
    let workflow = state
        .store
        .create_workflow(plan)
        .await
        .map_err(store_error)?;
    workflow
        .tasks
        .iter()
        .for_each(|task| crate::metrics::task_created(&task.queue, &task.task_type));
    Ok((StatusCode::CREATED, Json(workflow)))
}

fn workflow_name(body: &Map<String, Value>) -> Result<String, ApiError> {
    let mut fields = Fields::new(body);
    let name = fields.read_text(&NAME).unwrap_or_default();
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(body, &spec::stored_keys(&[&NAME])));
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
    let key = fields.read_text(&KEY);
    let depends_on = fields.read_strings(&DEPENDS_ON_KEYS).unwrap_or_default();
    fields.read_refused(&NO_IDEMPOTENCY);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(item, &spec::stored_keys(&[&KEY])));
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

/// The query parameters of `GET /api/v1/workflows`.
pub struct WorkflowListParams;

impl IntoParams for WorkflowListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&LIMIT, &OFFSET])
    }
}

/// The `{id}` path segment of a workflow: a whole UUID.
pub struct WorkflowIdParam;

impl IntoParams for WorkflowIdParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&WHOLE_ID)]
    }
}

#[utoipa::path(
    get, path = "/workflows", tag = "workflows",
    params(WorkflowListParams),
    responses(
        (status = 200, description = "Workflows, newest first, with their status and task counts", body = WorkflowList),
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_workflows(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<WorkflowList>, ApiError> {
    let limit = params.integer(&LIMIT);
    let offset = params.integer(&OFFSET);
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
    params(WorkflowIdParam),
    responses(
        (status = 200, description = "The workflow, its status and its tasks", body = Workflow),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
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
    params(WorkflowIdParam),
    responses(
        (status = 200, description = "The workflow, every unfinished task of it cancelled", body = Workflow),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn cancel_workflow(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    Path(id): Path<String>,
) -> Result<Json<Workflow>, ApiError> {
    let id = workflow_id(&id)?;
    let workflow = state
        .store
        .cancel_workflow(id, &actor)
        .await
        .map_err(store_error)?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::spec::conformance;

    #[test]
    fn every_bound_a_step_schema_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(CreateWorkflowBody::schema()).unwrap();
        let step_schema = &schema["properties"]["tasks"]["items"];
        let base = json!({"key": "a", "type": "echo"});
        let tried =
            conformance::assert_bounds_enforced(step_schema, base.as_object().unwrap(), |item| {
                step(item, 3).err().unwrap_or_default()
            });
        assert!(tried >= 20, "only {tried} cases");
    }
}
