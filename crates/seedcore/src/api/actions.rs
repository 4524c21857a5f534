//! Bulk actions: `POST /api/v1/tasks/actions` accepts an action on every task matching a
//! filter and answers at once (202) with the action, which the process's action runner then
//! applies in batches; `GET /api/v1/actions/{action_id}` and `GET /api/v1/actions` report
//! progress. The rules each batch keeps are in `store::actions`.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
};
use serde::Serialize;
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
    extract::{CallerActor, JsonObject, QueryParams, WHOLE_ID},
};
use crate::{
    model::TaskStatus,
    store::{ActionFilter, ActionKind, NewAction, ParamFilter, StoreError, TaskAction},
    validate::{
        FieldError, Fields, QUEUE_NAME, limits,
        spec::{
            self, Choice, Documented, Format, Integer, Invalid, List, Object, Spec, Text, Timestamp,
        },
    },
};

const ACTION: Spec<Choice> = spec::choice(
    "action",
    action_names,
    "one of cancel, run, delete",
    "`cancel`: every matching task that has not finished (a running one's handler is told to \
     stop); `run`: queue again every matching created, failed or cancelled task; `delete`: \
     delete every matching finished (completed, failed, cancelled) task.",
)
.required();
const FILTER: Spec<Object> = spec::object(
    "filter",
    "Which tasks: every given field must match; `{}` matches every task. Only tasks created \
     before the action was accepted are touched.",
)
.required()
.shaped(FILTER_FIELDS);

const STATUS: Spec<Choice> = spec::choice(
    "status",
    status_names,
    "one of created, blocked, queued, running, retry, completed, failed, cancelled",
    "Only tasks in this status.",
);
const TYPE: Spec<Text> = spec::text("type", "Only tasks of this type.").stored();
const QUEUE: Spec<Text> = spec::text("queue", "Only tasks in this queue.")
    .stored()
    .format(QUEUE_NAME);
const DOMAIN: Spec<Text> = spec::text("domain", "Only tasks in this domain.").stored();
const WORKFLOW_ID: Spec<Text> = WHOLE_ID.with_name("workflow_id").optional();
const CREATED_AFTER: Spec<Timestamp> = spec::timestamp(
    "created_after",
    "Only tasks created strictly after this instant.",
);
const CREATED_BEFORE: Spec<Timestamp> = spec::timestamp(
    "created_before",
    "Only tasks created strictly before this instant.",
);

const PARENT: Spec<Text> = Spec {
    name: "parent",
    doc: "Only the tasks that depend on this task (its children; a whole UUID).",
    required: false,
    ..WHOLE_ID
};
const Q: Spec<Text> = spec::text(
    "q",
    "Only tasks whose parameters as JSON text or error hold this, case-insensitively and literally.",
)
.stored();
const PARAMS: Spec<List> = spec::strings(
    "params",
    "Parameter filters `<path>=<value>`, each as the task list's `params.<path>=<value>`: the \
     value at the dot-separated path of object keys under the parameters equals the value (JSON \
     when it is a JSON scalar, else a string). All must match.",
)
.max_items(limits::MAX_QUERY_VALUES)
.item_format(PARAM_FILTER);
/// A `params` item: non-empty keys joined by dots, `=`, then any value; no U+0000.
const PARAM_FILTER: Format = Format {
    pattern: "^[^.=\\x00]+(?:\\.[^.=\\x00]+)*=[^\\x00]*$",
    check: is_param_filter,
    invalid: Invalid {
        kind: "param_filter",
        msg: "Expected <path>=<value>: non-empty keys joined by dots, and no NUL character",
    },
};

fn is_param_filter(text: &str) -> bool {
    ParamFilter::parse(text).is_some()
}

const FILTER_FIELDS: &[&dyn Documented] = &[
    &STATUS,
    &TYPE,
    &QUEUE,
    &DOMAIN,
    &WORKFLOW_ID,
    &CREATED_AFTER,
    &CREATED_BEFORE,
    &PARENT,
    &Q,
    &PARAMS,
];

const ACTIONS_LIMIT: Spec<Integer> =
    spec::integer("limit", 1, 1000, "How many actions to list, newest first.").default(100);

fn action_names() -> Vec<&'static str> {
    ActionKind::ALL.iter().map(|k| k.as_str()).collect()
}

fn status_names() -> Vec<&'static str> {
    TaskStatus::ALL.iter().map(|s| s.as_str()).collect()
}

/// The body of `POST /api/v1/tasks/actions`.
pub struct ActionBody;

impl PartialSchema for ActionBody {
    fn schema() -> RefOr<Schema> {
        spec::body_schema(
            &[&ACTION, &FILTER],
            true,
            "An action and the filter of the tasks it applies to.",
        )
        .into()
    }
}

impl ToSchema for ActionBody {}

/// Recent actions, newest first.
#[derive(Serialize, ToSchema)]
pub struct ActionList {
    items: Vec<TaskAction>,
}

/// The query parameters of `GET /api/v1/actions`.
pub struct ActionListParams;

impl IntoParams for ActionListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&ACTIONS_LIMIT])
    }
}

#[utoipa::path(
    post, path = "/tasks/actions", tag = "tasks",
    request_body = ActionBody,
    responses(
        (status = 202, description = "Accepted: the action, `running`; it goes on in the background (follow it at /api/v1/actions/{id})", body = TaskAction),
        (status = 422, description = "Unknown action, or a bad or unknown filter field: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn submit_action(
    State(state): State<AppState>,
    CallerActor(actor): CallerActor,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<TaskAction>), ApiError> {
    let (action, filter) = read_body(&body).map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
    })?;
    let new = NewAction {
        id: Uuid::new_v4(),
        action,
        filter,
        actor: Some(actor.as_str().to_owned()),
    };
    let stored = state.actions.submit(new).await.map_err(store_error)?;
    Ok((StatusCode::ACCEPTED, Json(stored)))
}

#[utoipa::path(
    get, path = "/actions/{action_id}", tag = "tasks",
    params(ActionIdPath),
    responses(
        (status = 200, description = "The action and its progress", body = TaskAction),
        (status = 404, description = "No such action", body = ErrorBody),
        (status = 422, description = "Not a UUID", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn get_action(
    State(state): State<AppState>,
    ActionIdPath(id): ActionIdPath,
) -> Result<Json<TaskAction>, ApiError> {
    let action = state.store.get_action(id).await.map_err(store_error)?;
    Ok(Json(action))
}

#[utoipa::path(
    get, path = "/actions", tag = "tasks",
    params(ActionListParams),
    responses(
        (status = 200, description = "Recent actions, newest first", body = ActionList),
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_actions(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<ActionList>, ApiError> {
    let limit = params.integer(&ACTIONS_LIMIT);
    params.finish()?;
    let items = state.store.list_actions(limit).await.map_err(store_error)?;
    Ok(Json(ActionList { items }))
}

/// The action and filter of a body, with every problem found (located relative to it).
fn read_body(body: &Map<String, Value>) -> Result<(ActionKind, ActionFilter), Vec<FieldError>> {
    let mut fields = Fields::new(body);
    let action = fields.read_choice(&ACTION).and_then(ActionKind::parse);
    let filter = fields.read_object(&FILTER);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(unknown_keys(body, &["action", "filter"]));
    let filter = match filter.map(|f| read_filter(&f)) {
        Some(Ok(filter)) => Some(filter),
        Some(Err(more)) => {
            errors.extend(more.into_iter().map(|e| e.under("filter")));
            None
        }
        None => None,
    };
    match (action, filter) {
        (Some(action), Some(filter)) if errors.is_empty() => Ok((action, filter)),
        _ => Err(errors),
    }
}

fn read_filter(object: &Map<String, Value>) -> Result<ActionFilter, Vec<FieldError>> {
    let mut fields = Fields::new(object);
    let filter = ActionFilter {
        status: fields.read_choice(&STATUS).and_then(TaskStatus::parse),
        task_type: fields.read_text(&TYPE),
        queue: fields.read_text(&QUEUE),
        domain: fields.read_text(&DOMAIN),
        workflow_id: fields
            .read_text(&WORKFLOW_ID)
            .and_then(|id| Uuid::try_parse(&id).ok()),
        created_after: fields.read_timestamp(&CREATED_AFTER),
        created_before: fields.read_timestamp(&CREATED_BEFORE),
        parent: fields
            .read_text(&PARENT)
            .and_then(|id| Uuid::try_parse(&id).ok()),
        q: fields.read_text(&Q),
        params: fields.read_strings(&PARAMS).unwrap_or_default(),
    };
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(param_filter_errors(&filter.params));
    let known: Vec<&str> = FILTER_FIELDS.iter().map(|f| f.name()).collect();
    errors.extend(unknown_keys(object, &known));
    errors.extend(crate::validate::nul_errors(
        object,
        &["type", "queue", "domain", "q"],
    ));
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(errors)
    }
}

/// An error for each `params` item that is not a parameter filter.
fn param_filter_errors(items: &[String]) -> Vec<FieldError> {
    let invalid = PARAM_FILTER.invalid;
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| !is_param_filter(item))
        .map(|(i, _)| FieldError::new(vec!["params".into(), i.into()], invalid.kind, invalid.msg))
        .collect()
}

fn unknown_keys(object: &Map<String, Value>, known: &[&str]) -> Vec<FieldError> {
    object
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| {
            FieldError::new(
                vec![Value::from(key.as_str())],
                "extra_forbidden",
                "Extra inputs are not permitted",
            )
        })
        .collect()
}

fn store_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Action not found".into())
}

/// The `{action_id}` path segment: a whole UUID.
pub struct ActionIdPath(pub Uuid);

impl IntoParams for ActionIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&WHOLE_ID.with_name("action_id"))]
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ActionIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(raw)| raw)
            .unwrap_or_default();
        Uuid::try_parse(&raw).map(ActionIdPath).map_err(|_| {
            ApiError::invalid(
                &["path", "action_id"],
                "uuid_parsing",
                format!("Input should be a valid UUID, got '{raw}'"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::spec::conformance;

    #[test]
    fn the_param_filter_pattern_is_what_a_filter_parses_from() {
        conformance::assert_pattern_is_the_check(
            &PARAM_FILTER,
            &[
                "customer_id=42",
                "customer.tier=gold",
                "a=",
                "note=x=y",
                "a b=\"c\"",
            ],
        );
    }
}
