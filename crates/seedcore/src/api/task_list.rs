//! `GET /api/v1/tasks`: the task list with every filter, its orders and its paging.
//!
//! The original service's parameters (`status`, `type`, `domain`, `limit`, `offset`) behave as
//! the contract says, and a query using only them is answered exactly as before (`total` and
//! `items`). The rest are additions: `queue`, `workflow_id`, `parent`, `created_after`,
//! `created_before`, `q`, `params.<path>=<value>`, `sort`, keyset paging with `cursor`, and
//! `count`; a query using any of them is answered with `next_cursor` too (and
//! `total_is_estimate` when the total is an estimate), as the fact list does.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::{LIMIT, OFFSET, QueryParams, WHOLE_ID},
    fact_search::{COUNT, CURSOR_FORMAT, count_mode},
};
use crate::{
    model::{Cursor, Task, TaskStatus},
    store::{ParamFilter, TaskFilter, TaskPage, TaskQuery, TaskSort},
    validate::{
        QUEUE_NAME, limits,
        spec::{self, Choice, Spec, Text, Timestamp},
    },
};

/// A page of tasks, newest first unless `sort` says otherwise.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    /// Tasks matching the filters, before paging; null with `count=none`.
    total: Option<i64>,
    items: Vec<Task>,
    /// Present when the query used a parameter beyond the original `status`, `type`, `domain`,
    /// `limit`, `offset`: pass it as `cursor` for the next page; null on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    next_cursor: Option<Option<String>>,
    /// Present (true) when `total` is an estimate (`count=estimate` over a large result).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    total_is_estimate: bool,
}

/// The query parameters of `GET /api/v1/tasks`. Besides these, `params.<path>=<value>` filters
/// on the task's parameters (see the operation's description).
pub struct TaskListParams;

const STATUS: Spec<Choice> = spec::choice(
    "status",
    status_names,
    "one of created, blocked, queued, running, retry, completed, failed, cancelled",
    "Only tasks in this status.",
);
const TYPE: Spec<Text> = spec::text("type", "Only tasks of this type.").stored();
const DOMAIN: Spec<Text> = spec::text("domain", "Only tasks in this domain.").stored();
const QUEUE: Spec<Text> = spec::text("queue", "Only tasks in this queue.")
    .stored()
    .format(QUEUE_NAME);
const WORKFLOW_ID: Spec<Text> = Spec {
    name: "workflow_id",
    doc: "Only the tasks of this workflow (a whole UUID).",
    required: false,
    ..WHOLE_ID
};
const PARENT: Spec<Text> = Spec {
    name: "parent",
    doc: "Only the tasks that depend on this task (its children; a whole UUID).",
    required: false,
    ..WHOLE_ID
};
const CREATED_AFTER: Spec<Timestamp> = spec::timestamp(
    "created_after",
    "Only tasks created strictly after this time.",
);
const CREATED_BEFORE: Spec<Timestamp> = spec::timestamp(
    "created_before",
    "Only tasks created strictly before this time.",
);
const Q: Spec<Text> = spec::text(
    "q",
    "Case-insensitive substring of the parameters as JSON text or of the error; `%`, `_` and `\\` are literal.",
)
.stored();
const SORT: Spec<Choice> = spec::choice(
    "sort",
    sort_names,
    "one of -created_at, created_at, -updated_at, updated_at",
    "The order: `-created_at` (newest first, the default), `created_at`, `-updated_at` or `updated_at`; ties by id in the same direction.",
);
const CURSOR: Spec<Text> = spec::text(
    "cursor",
    "Continue after the previous page's `next_cursor`, in the same `sort` (stable while tasks are added); an `offset` skips that many more tasks past it.",
)
.format(CURSOR_FORMAT);

fn status_names() -> Vec<&'static str> {
    TaskStatus::ALL.iter().map(|s| s.as_str()).collect()
}

fn sort_names() -> Vec<&'static str> {
    TaskSort::NAMES.to_vec()
}

impl IntoParams for TaskListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[
            &LIMIT,
            &OFFSET,
            &STATUS,
            &TYPE,
            &DOMAIN,
            &QUEUE,
            &WORKFLOW_ID,
            &PARENT,
            &CREATED_AFTER,
            &CREATED_BEFORE,
            &Q,
            &SORT,
            &CURSOR,
            &COUNT,
        ])
    }
}

/// Tasks, newest first unless `sort` says otherwise.
///
/// Besides the parameters listed, `params.<path>=<value>` keeps the tasks whose parameters
/// hold the value at the path: `<path>` is one or more non-empty object keys joined by dots
/// (`params.customer.tier=gold`); the value is read as JSON when it is a JSON scalar (`42`,
/// `true`, `null`, `"42"`) and as a string otherwise. A number matches the same number however
/// written (42 and 42.0); a string never matches a number. Give several (at most 100) to
/// require all. A path with an empty key or a U+0000 anywhere is refused (422).
#[utoipa::path(
    get, path = "/tasks", tag = "tasks",
    params(TaskListParams),
    responses(
        (status = 200, description = "Tasks in the order asked for", body = TaskList),
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<TaskList>, ApiError> {
    let query = task_query(&mut params);
    params.finish()?;
    let page = state
        .store
        .list_tasks(&query)
        .await
        .map_err(|err| ApiError::from_store(err, || "Task not found".into()))?;
    Ok(Json(list(&query, page)))
}

fn task_query(params: &mut QueryParams) -> TaskQuery {
    // A cursor and an offset together skip `offset` rows past the cursor: a rule of the store's
    // query, not a refusal, since the document cannot say that the two exclude each other.
    TaskQuery {
        status: params.choice(&STATUS).and_then(TaskStatus::parse),
        filter: task_filter(params),
        sort: params
            .choice(&SORT)
            .and_then(TaskSort::parse)
            .unwrap_or_default(),
        cursor: params
            .formatted(&CURSOR)
            .as_deref()
            .and_then(Cursor::decode),
        count: params
            .choice(&COUNT)
            .and_then(count_mode)
            .unwrap_or_default(),
        limit: params.integer(&LIMIT),
        offset: params.integer(&OFFSET),
    }
}

fn task_filter(params: &mut QueryParams) -> TaskFilter {
    TaskFilter {
        task_type: params.stored_text(&TYPE),
        queue: params.formatted(&QUEUE),
        domain: params.stored_text(&DOMAIN),
        workflow_id: uuid(params, &WORKFLOW_ID),
        parent: uuid(params, &PARENT),
        created_after: params.timestamp(&CREATED_AFTER),
        created_before: params.timestamp(&CREATED_BEFORE),
        q: params.stored_text(&Q),
        params: param_filters(params),
    }
}

fn uuid(params: &mut QueryParams, spec: &Spec<Text>) -> Option<Uuid> {
    params
        .formatted(spec)
        .and_then(|id| Uuid::try_parse(&id).ok())
}

/// `params.<path>=<value>` parameters.
fn param_filters(params: &mut QueryParams) -> Vec<ParamFilter> {
    let given = params.prefixed("params.");
    if given.len() > limits::MAX_QUERY_VALUES {
        let msg = format!(
            "At most {} params.<path> filters per query, not {}",
            limits::MAX_QUERY_VALUES,
            given.len()
        );
        params.reject("params", "too_long", msg);
        return Vec::new();
    }
    let mut filters = Vec::new();
    for (path, raw) in given {
        match ParamFilter::new(&path, &raw) {
            Some(filter) => filters.push(filter),
            None => params.reject(
                &format!("params.{path}"),
                "param_filter",
                "Expected params.<path>=<value>: non-empty keys joined by dots, no '=' in the \
                 path and no NUL character"
                    .into(),
            ),
        }
    }
    filters
}

fn list(query: &TaskQuery, page: TaskPage) -> TaskList {
    let next_cursor = page.next_cursor.map(|cursor| cursor.encode());
    TaskList {
        total: page.total,
        items: page.items,
        next_cursor: query.is_extended().then_some(next_cursor),
        total_is_estimate: page.total_estimated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_the_document_lists_parses() {
        for name in sort_names() {
            assert!(TaskSort::parse(name).is_some(), "{name}");
        }
        assert_eq!(TaskSort::parse("-CREATED_AT"), None);
    }
}
