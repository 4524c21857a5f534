//! The request bodies of the pull API: their field tables (which the OpenAPI document renders)
//! and how each is read, with every problem reported at once under `body`.
//!
//! Invariant: a lease longer than [`MAX_LEASE_SECONDS`] is refused (422), never shortened.

use std::time::Duration;

use serde_json::{Map, Value};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, schema::SchemaType},
};
use uuid::Uuid;

use crate::{
    api::{
        ApiError,
        extract::{WHOLE_ID, bulk_items_up_to},
    },
    validate::{
        FieldError, Fields, QUEUE_NAME, limits, nul_errors,
        spec::{
            self, Boolean, Documented, Format, Integer, Invalid, Kind, List, Number, Object, Spec,
            Text,
        },
    },
};

/// The longest lease a worker may ask for, in seconds: an hour. A longer task heartbeats.
pub const MAX_LEASE_SECONDS: f64 = 3600.0;
/// The longest a claim waits for a task: its `wait_ms` is at most this.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Most queues or types one worker names.
const MAX_NAMES: usize = 100;

const NAME: Spec<Text> = spec::text(
    "name",
    "The worker's name, for people (1 to 200 characters).",
)
.required()
.chars(1, 200)
.stored();
const QUEUES: Spec<List> = spec::strings(
    "queues",
    "Only tasks of these queues (each a queue name: 1 to 100 letters, digits, '_', '-', '.' \
     or ':'); absent or null takes every queue.",
)
.max_items(MAX_NAMES)
.max_item_chars(100)
.item_format(QUEUE_NAME)
.stored();
const TYPES: Spec<List> = spec::strings(
    "types",
    "Only tasks of these types; absent or null takes every type.",
)
.max_items(MAX_NAMES)
.max_item_chars(200)
.stored();
const CONCURRENCY: Spec<Integer> =
    spec::integer("concurrency", 1, 10_000, "Tasks the worker runs at once.").default(1);
const LABELS: Spec<Object> = spec::object("labels", "Free-form labels, for operators.")
    .sized(limits::Size::ParamsBytes)
    .stored();
const CLIENT_NAME: Spec<Text> =
    spec::text("client_name", "The client library that runs the worker.")
        .chars(0, 100)
        .stored();
const CLIENT_VERSION: Spec<Text> = spec::text("client_version", "That library's version.")
    .chars(0, 100)
    .stored();

const REGISTER_FIELDS: &[&dyn Documented] = &[
    &NAME,
    &QUEUES,
    &TYPES,
    &CONCURRENCY,
    &LABELS,
    &CLIENT_NAME,
    &CLIENT_VERSION,
];

const WORKER_ID: Spec<Text> = spec::text(
    "worker_id",
    "The id `POST /api/v1/workers` gave; tasks claimed carry it as `worker_id`.",
)
.required()
.non_empty()
.stored();
const MAX: Spec<Integer> = spec::integer("max", 1, 100, "Most tasks to claim.").default(1);
const WAIT_MS: Spec<Integer> = spec::integer(
    "wait_ms",
    0,
    MAX_CLAIM_WAIT.as_millis() as i64,
    "How long to wait for a task when none is ready, in milliseconds; the answer comes as soon \
     as one is (204 when none came).",
)
.default(0);
const LEASE_SECONDS: Spec<Number> = spec::number(
    "lease_seconds",
    "How long each lease lasts unless renewed (default from the registration answer). Over \
     the maximum is refused, never shortened.",
)
.above(0.0)
.at_most(MAX_LEASE_SECONDS);

/// `queue=n`: at most n (1 to 9999) tasks of that queue held at once.
const QUEUE_LIMIT: Format = Format {
    pattern: "^[A-Za-z0-9_.:-]{1,100}=[1-9][0-9]{0,3}$",
    check: |item| parse_queue_limit(item).is_some(),
    invalid: Invalid {
        kind: "queue_limit",
        msg: "A queue limit is `queue=n`: a queue name, '=' and a number from 1 to 9999",
    },
};
const QUEUE_CONCURRENCY: Spec<List> = spec::strings(
    "queue_concurrency",
    "Per-queue limits for this worker, as `queue=n` (e.g. `emails=4`): a claim takes no task \
     of that queue while the worker holds n of them running. A queue listed twice keeps the \
     smaller limit. Other queues are limited only by `max`.",
)
.max_items(MAX_NAMES)
.max_item_chars(105)
.item_format(QUEUE_LIMIT);

const CLAIM_FIELDS: &[&dyn Documented] = &[
    &WORKER_ID,
    &QUEUES,
    &TYPES,
    &MAX,
    &WAIT_MS,
    &LEASE_SECONDS,
    &QUEUE_CONCURRENCY,
];

const LEASE_TOKEN: Spec<Text> = {
    let mut token = WHOLE_ID.with_name("lease_token");
    token.doc = "The lease token the claim handed out with the task.";
    token
};
const EXTEND_SECONDS: Spec<Number> = spec::number(
    "extend_seconds",
    "The lease now runs until this many seconds from now (default: the default lease).",
)
.above(0.0)
.at_most(MAX_LEASE_SECONDS);
const PROGRESS: Spec<Number> = spec::number(
    "progress",
    "How far along the attempt is, from 0 to 1; shown as the task's `progress` until its next \
     attempt starts.",
)
.at_least(0.0)
.at_most(1.0);
const RESULT: Spec<AnyJson> = Spec {
    name: "result",
    doc: "What the task produced: any JSON (default null); stored as the result envelope's \
          `result`.",
    required: false,
    nullable: true,
    stored: true,
    error: None,
    null_error: None,
    size: None,
    kind: AnyJson,
};

const ERROR_TYPE: Spec<Text> = spec::text("type", "The kind of error, e.g. an exception class.")
    .required()
    .chars(1, 200)
    .stored();
const ERROR_MESSAGE: Spec<Text> = spec::text("message", "What went wrong.")
    .required()
    .stored();
const ERROR_STACK: Spec<Text> = spec::text("stack", "Where, for people.").stored();
const ERROR_FIELDS: &[&dyn Documented] = &[&ERROR_TYPE, &ERROR_MESSAGE, &ERROR_STACK];
const ERROR: Spec<Object> = {
    let mut error = spec::object(
        "error",
        "Why the attempt failed; stored as the task's `error` as `<type>: <message>`, then the \
         stack. Other keys are ignored.",
    )
    .required()
    .shaped(ERROR_FIELDS);
    // Clients send what their language's errors carry; only these keys are read.
    error.kind.closed = false;
    error
};
const RETRYABLE: Spec<Boolean> = spec::boolean(
    "retryable",
    "Whether another attempt may succeed (default false: the task fails). A retryable failure \
     with attempts left waits and runs again, as the built-in workers' failures do.",
);
const RETRY_AFTER_SECONDS: Spec<Number> = spec::number(
    "retry_after_seconds",
    "Wait this long before the next attempt instead of the retry policy's backoff.",
)
.at_least(0.0)
.at_most(limits::MAX_DELAY_SECONDS);

/// Most completions one `POST /api/v1/tasks/complete` carries.
pub const MAX_COMPLETIONS: usize = 100;
const COMPLETION_TASK_ID: Spec<Text> = {
    let mut id = WHOLE_ID.with_name("task_id");
    id.doc = "The task whose attempt the lease is for. A task listed twice is answered as two \
              requests one after the other would be.";
    id
};
const COMPLETION_FIELDS: &[&dyn Documented] = &[&COMPLETION_TASK_ID, &LEASE_TOKEN, &RESULT];

const HEARTBEAT_FIELDS: &[&dyn Documented] = &[&LEASE_TOKEN, &EXTEND_SECONDS, &PROGRESS];
const COMPLETE_FIELDS: &[&dyn Documented] = &[&LEASE_TOKEN, &RESULT];
const FAIL_FIELDS: &[&dyn Documented] = &[&LEASE_TOKEN, &ERROR, &RETRYABLE, &RETRY_AFTER_SECONDS];
const RELEASE_FIELDS: &[&dyn Documented] = &[&LEASE_TOKEN];

/// Any JSON value.
#[derive(Clone, Copy, Debug)]
pub struct AnyJson;

impl Kind for AnyJson {
    fn schema(&self, _: bool, _: bool, doc: &str) -> Schema {
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .description(Some(doc))
            .into()
    }
}

/// A worker's registration.
#[derive(Debug)]
pub struct Registration {
    pub name: String,
    pub queues: Option<Vec<String>>,
    pub types: Option<Vec<String>>,
    pub concurrency: i32,
    pub labels: Map<String, Value>,
    pub client_name: String,
    pub client_version: String,
}

/// A claim's request.
#[derive(Debug)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub queues: Option<Vec<String>>,
    pub types: Option<Vec<String>>,
    pub max: i64,
    pub wait: Duration,
    pub lease: Option<Duration>,
    /// Per-queue limits: the most tasks of each queue the worker may hold running.
    pub queue_limits: Vec<(String, i64)>,
}

/// A task heartbeat's request.
#[derive(Debug)]
pub struct HeartbeatRequest {
    pub token: Uuid,
    pub extend: Option<Duration>,
    pub progress: Option<f64>,
}

/// A failure's request.
#[derive(Debug)]
pub struct FailRequest {
    pub token: Uuid,
    pub error: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

pub fn registration(body: &Map<String, Value>) -> Result<Registration, ApiError> {
    let mut fields = Fields::new(body);
    let name = fields.read_text(&NAME);
    let queues = fields.read_strings(&QUEUES);
    let types = fields.read_strings(&TYPES);
    let concurrency = fields.read_integer(&CONCURRENCY).unwrap_or(1);
    let labels = fields.read_object(&LABELS).unwrap_or_default();
    let client_name = fields.read_text(&CLIENT_NAME).unwrap_or_default();
    let client_version = fields.read_text(&CLIENT_VERSION).unwrap_or_default();
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(format_errors(&QUEUES, queues.as_deref()));
    errors.extend(nul_errors(body, &spec::stored_keys(REGISTER_FIELDS)));
    done(errors)?;
    Ok(Registration {
        name: name.unwrap_or_default(),
        queues,
        types,
        concurrency: concurrency as i32,
        labels,
        client_name,
        client_version,
    })
}

pub fn claim(body: &Map<String, Value>) -> Result<ClaimRequest, ApiError> {
    let mut fields = Fields::new(body);
    let worker_id = fields.read_text(&WORKER_ID);
    let queues = fields.read_strings(&QUEUES);
    let types = fields.read_strings(&TYPES);
    let max = fields.read_integer(&MAX).unwrap_or(1);
    let wait_ms = fields.read_integer(&WAIT_MS).unwrap_or(0);
    let lease = fields.read_number(&LEASE_SECONDS);
    let limits = fields.read_strings(&QUEUE_CONCURRENCY);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(format_errors(&QUEUES, queues.as_deref()));
    errors.extend(format_errors(&QUEUE_CONCURRENCY, limits.as_deref()));
    errors.extend(nul_errors(body, &spec::stored_keys(CLAIM_FIELDS)));
    done(errors)?;
    Ok(ClaimRequest {
        worker_id: worker_id.unwrap_or_default(),
        queues,
        types,
        max,
        wait: Duration::from_millis(wait_ms as u64),
        lease: lease.map(Duration::from_secs_f64),
        queue_limits: queue_limits(limits.unwrap_or_default()),
    })
}

/// `queue=n` as the queue and n, if it is one.
fn parse_queue_limit(item: &str) -> Option<(&str, i64)> {
    let (queue, n) = item.rsplit_once('=')?;
    let digits = n.len() <= 4 && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
    let n: i64 = n.parse().ok().filter(|_| digits)?;
    ((QUEUE_NAME.check)(queue) && n >= 1).then_some((queue, n))
}

/// The limits by queue, each queue once with its smallest limit.
fn queue_limits(items: Vec<String>) -> Vec<(String, i64)> {
    let mut limits: Vec<(String, i64)> = Vec::new();
    for (queue, n) in items.iter().filter_map(|item| parse_queue_limit(item)) {
        match limits.iter_mut().find(|(q, _)| q == queue) {
            Some(limit) => limit.1 = limit.1.min(n),
            None => limits.push((queue.to_string(), n)),
        }
    }
    limits
}

pub fn heartbeat(body: &Map<String, Value>) -> Result<HeartbeatRequest, ApiError> {
    let mut fields = Fields::new(body);
    let token = read_token(&mut fields);
    let extend = fields.read_number(&EXTEND_SECONDS);
    let progress = fields.read_number(&PROGRESS);
    done(fields.finish().err().unwrap_or_default())?;
    Ok(HeartbeatRequest {
        token: token.unwrap_or_default(),
        extend: extend.map(Duration::from_secs_f64),
        progress,
    })
}

/// A completion's lease token and result.
pub fn completion(body: &Map<String, Value>) -> Result<(Uuid, Value), ApiError> {
    let mut fields = Fields::new(body);
    let token = read_token(&mut fields);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(body, &spec::stored_keys(COMPLETE_FIELDS)));
    done(errors)?;
    let result = body.get(RESULT.name).cloned().unwrap_or(Value::Null);
    Ok((token.unwrap_or_default(), result))
}

/// One completion of a batch: the lease and the task's result.
pub type CompletionItem = (Uuid, Uuid, Value);

/// The completions of `POST /api/v1/tasks/complete`.
pub fn completions(body: &Map<String, Value>) -> Result<Vec<CompletionItem>, ApiError> {
    bulk_items_up_to(body, "completions", MAX_COMPLETIONS, completion_item)
}

fn completion_item(item: &Map<String, Value>) -> Result<CompletionItem, Vec<FieldError>> {
    let mut fields = Fields::new(item);
    let task_id = fields
        .read_text(&COMPLETION_TASK_ID)
        .and_then(|text| Uuid::try_parse(&text).ok());
    let token = read_token(&mut fields);
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(item, &spec::stored_keys(COMPLETION_FIELDS)));
    if !errors.is_empty() {
        return Err(errors);
    }
    let result = item.get(RESULT.name).cloned().unwrap_or(Value::Null);
    Ok((
        task_id.unwrap_or_default(),
        token.unwrap_or_default(),
        result,
    ))
}

pub fn failure(body: &Map<String, Value>) -> Result<FailRequest, ApiError> {
    let mut fields = Fields::new(body);
    let token = read_token(&mut fields);
    let error = fields.read_object(&ERROR);
    let retryable = fields.read_bool(&RETRYABLE).unwrap_or(false);
    let retry_after = fields.read_number(&RETRY_AFTER_SECONDS);
    let mut errors = fields.finish().err().unwrap_or_default();
    let mut described = None;
    if let Some(error) = &error {
        match error_text(error) {
            Ok(text) => described = Some(text),
            Err(inner) => errors.extend(inner.into_iter().map(|e| e.under(ERROR.name))),
        }
    }
    errors.extend(nul_errors(body, &spec::stored_keys(FAIL_FIELDS)));
    done(errors)?;
    Ok(FailRequest {
        token: token.unwrap_or_default(),
        error: described.unwrap_or_default(),
        retryable,
        retry_after: retry_after.map(Duration::from_secs_f64),
    })
}

/// A release's lease token.
pub fn release(body: &Map<String, Value>) -> Result<Uuid, ApiError> {
    let mut fields = Fields::new(body);
    let token = read_token(&mut fields);
    done(fields.finish().err().unwrap_or_default())?;
    Ok(token.unwrap_or_default())
}

fn read_token(fields: &mut Fields<'_>) -> Option<Uuid> {
    fields
        .read_text(&LEASE_TOKEN)
        .and_then(|text| Uuid::try_parse(&text).ok())
}

/// The error object as the task's error text: `<type>: <message>`, then the stack.
fn error_text(error: &Map<String, Value>) -> Result<String, Vec<FieldError>> {
    let mut fields = Fields::new(error);
    let kind = fields.read_text(&ERROR_TYPE);
    let message = fields.read_text(&ERROR_MESSAGE);
    let stack = fields.read_text(&ERROR_STACK);
    let mut errors = fields.finish().err().unwrap_or_default();
    // The text is stored, and PostgreSQL's text holds no NUL.
    errors.extend(nul_errors(error, &spec::stored_keys(ERROR_FIELDS)));
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut text = format!(
        "{}: {}",
        kind.unwrap_or_default(),
        message.unwrap_or_default()
    );
    if let Some(stack) = stack.filter(|s| !s.is_empty()) {
        text.push('\n');
        text.push_str(&stack);
    }
    Ok(text)
}

/// An error for each item of the list that its spec's item format refuses.
fn format_errors(spec: &Spec<List>, items: Option<&[String]>) -> Vec<FieldError> {
    let (Some(items), Some(format)) = (items, spec.kind.item_format) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| !(format.check)(item))
        .map(|(i, _)| {
            FieldError::new(
                vec![spec.name.into(), i.into()],
                format.invalid.kind,
                format.invalid.msg,
            )
        })
        .collect()
}

fn done(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::Validation(
        errors.into_iter().map(|e| e.under("body")).collect(),
    ))
}

macro_rules! body_schema {
    ($name:ident, $fields:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                spec::body_schema($fields, false, $doc).into()
            }
        }

        impl ToSchema for $name {}
    };
}

body_schema!(
    RegisterBody,
    REGISTER_FIELDS,
    "A worker that claims over HTTP. Unknown keys are ignored."
);
body_schema!(
    ClaimBody,
    CLAIM_FIELDS,
    "What to claim. Queues and types default to the worker's registration. Unknown keys are ignored."
);
body_schema!(
    HeartbeatBody,
    HEARTBEAT_FIELDS,
    "Extends the lease. Unknown keys are ignored."
);
body_schema!(
    CompleteBody,
    COMPLETE_FIELDS,
    "Ends the attempt as completed. Unknown keys are ignored."
);
/// The body of `POST /api/v1/tasks/complete`.
pub struct CompleteManyBody;

impl PartialSchema for CompleteManyBody {
    fn schema() -> RefOr<Schema> {
        let item = spec::body_schema(
            COMPLETION_FIELDS,
            false,
            "One completion, as for `POST /api/v1/tasks/{task_id}/complete`, with its task's id. \
             Unknown keys are ignored.",
        );
        spec::bulk_schema(
            "completions",
            item,
            MAX_COMPLETIONS,
            "1 to 100 completions, recorded together; each only if its lease is current.",
        )
        .into()
    }
}

impl ToSchema for CompleteManyBody {}

body_schema!(
    FailBody,
    FAIL_FIELDS,
    "Ends the attempt as failed. Unknown keys are ignored."
);
body_schema!(
    ReleaseBody,
    RELEASE_FIELDS,
    "Hands the task back, the attempt uncounted. Unknown keys are ignored."
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::spec::conformance;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn errors_of<T: std::fmt::Debug>(read: Result<T, ApiError>) -> Vec<FieldError> {
        match read {
            Ok(_) => Vec::new(),
            Err(ApiError::Validation(errors)) => errors
                .into_iter()
                .map(|mut e| {
                    e.loc.remove(0);
                    e
                })
                .collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bound_the_claim_schema_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(ClaimBody::schema()).unwrap();
        let tried = conformance::assert_bounds_enforced_but(
            &schema,
            &body(json!({"worker_id": "w"})),
            &["queue_name", "queue_limit"],
            |b| errors_of(claim(b)),
        );
        assert!(tried >= 6, "only {tried} cases");
    }

    #[test]
    fn every_bound_the_registration_schema_states_is_the_one_the_validator_enforces() {
        let schema = serde_json::to_value(RegisterBody::schema()).unwrap();
        let tried = conformance::assert_bounds_enforced_but(
            &schema,
            &body(json!({"name": "w"})),
            &["queue_name", "queue_limit"],
            |b| errors_of(registration(b)),
        );
        assert!(tried >= 4, "only {tried} cases");
    }

    #[test]
    fn every_bound_the_lease_bodies_state_is_the_one_their_validators_enforce() {
        let token = json!({"lease_token": Uuid::new_v4()});
        let schema = serde_json::to_value(HeartbeatBody::schema()).unwrap();
        let tried = conformance::assert_bounds_enforced(&schema, &body(token.clone()), |b| {
            errors_of(heartbeat(b))
        });
        assert!(tried >= 4, "only {tried} cases");
        let mut failed = token;
        failed["error"] = json!({"type": "E", "message": "m"});
        let schema = serde_json::to_value(FailBody::schema()).unwrap();
        let tried =
            conformance::assert_bounds_enforced(&schema, &body(failed), |b| errors_of(failure(b)));
        assert!(tried >= 4, "only {tried} cases");
    }

    #[test]
    fn a_lease_over_the_cap_is_refused_not_shortened() {
        let refused = errors_of(claim(&body(
            json!({"worker_id": "w", "lease_seconds": MAX_LEASE_SECONDS + 1.0}),
        )));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].loc, vec![json!("lease_seconds")]);
        let taken = claim(&body(
            json!({"worker_id": "w", "lease_seconds": MAX_LEASE_SECONDS}),
        ))
        .unwrap();
        assert_eq!(taken.lease, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn a_nul_in_the_error_object_is_refused_where_it_is() {
        let refused = errors_of(failure(&body(
            json!({"lease_token": Uuid::new_v4().to_string(),
            "error": {"type": "E", "message": "m", "stack": "a\u{0}b"}}),
        )));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].loc, vec![json!("error"), json!("stack")]);
    }

    #[test]
    fn a_failure_reads_its_error_as_type_message_and_stack() {
        let token = Uuid::new_v4().to_string();
        let failed = failure(&body(json!({"lease_token": token,
            "error": {"type": "KeyError", "message": "'id'", "stack": "line 3"}})))
        .unwrap();
        assert_eq!(failed.error, "KeyError: 'id'\nline 3");
        assert!(!failed.retryable);
        let missing = errors_of(failure(&body(json!({"lease_token": token, "error": {}}))));
        let located: Vec<_> = missing.iter().map(|e| e.loc.clone()).collect();
        assert_eq!(
            located,
            vec![
                vec![json!("error"), json!("type")],
                vec![json!("error"), json!("message")]
            ]
        );
    }

    #[test]
    fn a_queue_list_refuses_names_a_queue_cannot_have() {
        let refused = errors_of(claim(&body(
            json!({"worker_id": "w", "queues": ["ok", "not ok"]}),
        )));
        assert_eq!(refused[0].loc, vec![json!("queues"), json!(1)]);
    }
}
