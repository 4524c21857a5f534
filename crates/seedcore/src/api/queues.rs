//! Queue endpoints: the queues with their task counts, pausing and resuming one, and setting
//! its concurrency limit. A paused queue keeps its tasks (and accepts new ones); no worker
//! claims them until it is resumed. A limited queue never has more tasks running than its
//! limit, however many processes and pull workers claim (the store's claim enforces it).

use axum::{
    Json,
    extract::{Path, State},
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

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::JsonObject,
};
use crate::{
    model::QueueInfo,
    validate::{
        FieldError, Fields, QUEUE_NAME,
        spec::{self, Integer, Invalid, Spec, Text},
    },
};

/// Every queue that has tasks or was paused.
#[derive(Serialize, ToSchema)]
pub struct QueueList {
    items: Vec<QueueInfo>,
}

#[utoipa::path(
    get, path = "/queues", tag = "queues",
    responses(
        (status = 200, description = "Queues by name, with their tasks per status", body = QueueList),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_queues(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let items = state
        .store
        .list_queues()
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(QueueList { items }))
}

#[utoipa::path(
    post, path = "/queues/{name}/pause", tag = "queues",
    params(QueueNameParam),
    responses(
        (status = 200, description = "The queue, now paused", body = QueueInfo),
        (status = 422, description = "Not a queue name", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn pause_queue(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&state, &name, true).await
}

#[utoipa::path(
    post, path = "/queues/{name}/resume", tag = "queues",
    params(QueueNameParam),
    responses(
        (status = 200, description = "The queue, now claimed from again", body = QueueInfo),
        (status = 422, description = "Not a queue name", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn resume_queue(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueInfo>, ApiError> {
    set_paused(&state, &name, false).await
}

/// The most a limit may be: far above any real worker pool, low enough to stay a plain
/// integer everywhere.
const MAX_CONCURRENCY: i64 = 100_000;

const CONCURRENCY: Spec<Integer> = spec::integer(
    "concurrency",
    1,
    MAX_CONCURRENCY,
    "At most this many of the queue's tasks run at once, across every process and pull \
     worker; null removes the limit.",
)
.required()
.allow_null();

/// The body of `PATCH /api/v1/queues/{name}`.
pub struct QueueSettingsBody;

impl PartialSchema for QueueSettingsBody {
    fn schema() -> RefOr<Schema> {
        spec::body_schema(
            &[&CONCURRENCY],
            true,
            "The queue's settings. Other keys are refused.",
        )
        .into()
    }
}

impl ToSchema for QueueSettingsBody {}

#[utoipa::path(
    patch, path = "/queues/{name}", tag = "queues",
    params(QueueNameParam),
    request_body = QueueSettingsBody,
    responses(
        (status = 200, description = "The queue with its new limit", body = QueueInfo),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Not a queue name, or an invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn update_queue(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<QueueInfo>, ApiError> {
    check_name(&name)?;
    let concurrency = concurrency(&body).map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
    })?;
    let info = state
        .store
        .set_queue_concurrency(&name, concurrency)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(info))
}

/// The limit a settings body asks for (None: no limit), or every problem with the body.
fn concurrency(body: &Map<String, Value>) -> Result<Option<i32>, Vec<FieldError>> {
    let mut fields = Fields::new(body);
    let limit = fields.read_integer(&CONCURRENCY);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(
        body.keys()
            .filter(|key| *key != CONCURRENCY.name)
            .map(|key| {
                FieldError::new(
                    vec![Value::from(key.as_str())],
                    "extra_forbidden",
                    "Extra inputs are not permitted",
                )
            }),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    // Within 1..=MAX_CONCURRENCY, so it fits.
    Ok(limit.map(|n| i32::try_from(n).expect("a limit within bounds")))
}

const QUEUE_NAME_PATH: Spec<Text> = spec::text("name", "The queue.")
    .required()
    .format(QUEUE_NAME);

/// The `{name}` path segment.
pub struct QueueNameParam;

impl IntoParams for QueueNameParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![spec::path_parameter(&QUEUE_NAME_PATH)]
    }
}

async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
) -> Result<Json<QueueInfo>, ApiError> {
    check_name(name)?;
    let info = state
        .store
        .set_queue_paused(name, paused)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(info))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if (QUEUE_NAME.check)(name) {
        return Ok(());
    }
    let Invalid { kind, msg } = QUEUE_NAME.invalid;
    Err(ApiError::invalid(&["path", "name"], kind, msg))
}
