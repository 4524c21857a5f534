//! Property tests of every parser of outside input, over HTTP on both backends: any JSON
//! body, query string or path id gets a success or a 4xx in the contract's shape, never a 5xx
//! (the validators themselves are tested directly, with many more cases, beside them).
//! Each property sends a bounded number of generated requests, so the file runs in seconds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

/// Requests each property sends.
const CASES: usize = 48;
/// Longest a property may take before it stops early (it still must have sent some).
const BUDGET: Duration = Duration::from_secs(15);

/// `n` values drawn from `strategy` (no shrinking: a failure prints the whole input).
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::new(Config::default());
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,12}",
        1 => Just(String::new()),
        1 => Just("a\u{0}b".to_string()),
        1 => Just("0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b".to_string()),
        1 => Just("2026-11-28T12:00:00Z".to_string()),
        1 => Just("9999-12-31T23:59:59Z".to_string()),
        1 => Just("echo".to_string()),
        1 => Just("*/5 * * * *".to_string()),
        1 => Just("Europe/Zurich".to_string()),
        1 => Just("%_\\'\"".to_string()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|n| json!(n)),
        proptest::sample::select(vec![json!(1e30), json!(-1e30), json!(1.7e308), json!(-0.0)]),
        text().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((text(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `base` with some of `keys` set to any value (or removed).
fn edited(base: Value, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let edits = proptest::sample::subsequence(keys, 0..=keys.len().min(3));
    let values = proptest::collection::vec(proptest::option::weighted(0.9, json_value()), 3);
    (edits, values).prop_map(move |(edits, values)| {
        let mut body = base.clone();
        let map = body.as_object_mut().expect("an object");
        for (key, value) in edits.into_iter().zip(values) {
            match value {
                Some(value) => map.insert(key.to_string(), value),
                None => map.remove(key),
            };
        }
        body
    })
}

/// A body: mostly a valid one edited, sometimes any JSON value at all.
fn body(base: Value, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![4 => edited(base, keys), 1 => json_value()]
}

const TASK_KEYS: &[&str] = &[
    "type",
    "params",
    "description",
    "domain",
    "drift_score",
    "run_immediately",
    "max_attempts",
    "timeout_seconds",
    "attached_fact_ids",
    "queue",
    "priority",
    "run_at",
    "delay_seconds",
    "idempotency_key",
    "depends_on",
    "run_on_failure",
];
const FACT_KEYS: &[&str] = &["text", "tags", "meta_data"];
const SCHEDULE_KEYS: &[&str] = &[
    "name",
    "cron",
    "timezone",
    "enabled",
    "misfire_policy",
    "task",
];
const STEP_KEYS: &[&str] = &[
    "key",
    "depends_on",
    "type",
    "params",
    "run_at",
    "delay_seconds",
];

fn a_task() -> impl Strategy<Value = Value> {
    body(json!({"type": "noop", "params": {"a": 1}}), TASK_KEYS)
}

fn a_fact() -> impl Strategy<Value = Value> {
    body(
        json!({"text": "t", "tags": ["a"], "meta_data": {"k": "v"}}),
        FACT_KEYS,
    )
}

fn a_schedule() -> impl Strategy<Value = Value> {
    body(
        json!({"name": "n", "cron": "*/5 * * * *", "task": {"type": "noop"}}),
        SCHEDULE_KEYS,
    )
}

fn a_workflow() -> impl Strategy<Value = Value> {
    let step = edited(json!({"key": "a", "type": "noop"}), STEP_KEYS);
    let steps = proptest::collection::vec(step, 0..4);
    prop_oneof![
        4 => (proptest::option::of(json_value()), steps).prop_map(|(name, tasks)| {
            let mut body = json!({"tasks": tasks});
            if let Some(name) = name {
                body["name"] = name;
            }
            body
        }),
        1 => json_value(),
    ]
}

/// A query string: known names (and others) with any text, or raw characters.
fn a_query(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => proptest::sample::select(names).prop_map(str::to_string),
        1 => "[a-z._]{0,8}",
    ];
    let value = prop_oneof![
        3 => text(),
        1 => (-3i64..2000).prop_map(|n| n.to_string()),
        1 => Just("1e3".to_string()),
    ];
    prop_oneof![
        4 => proptest::collection::vec((name, value), 0..6)
            .prop_map(|pairs| serde_urlencoded::to_string(pairs).expect("encode")),
        1 => "[ -~]{0,40}",
    ]
}

const FACT_QUERY: &[&str] = &[
    "q",
    "search",
    "tag",
    "any_tag",
    "meta.k",
    "meta.",
    "created_after",
    "created_before",
    "cursor",
    "count",
    "limit",
    "offset",
];
const TASK_QUERY: &[&str] = &["status", "type", "domain", "limit", "offset"];
const OTHER_QUERY: &[&str] = &["prefix", "limit", "offset", "status"];

/// An id as a path takes it, or anything else.
fn a_path_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F-]{0,40}",
        "\\PC{1,20}",
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string()),
    ]
}

/// Asserts the answer is no server error, and that a refusal has the contract's shape.
fn assert_answered(status: StatusCode, answer: &Value, what: &str) {
    assert!(!status.is_server_error(), "{what}: {status} {answer}");
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        let errors = answer["detail"].as_array();
        assert!(
            errors.is_some_and(|errors| !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| e["loc"].is_array() && e["msg"].is_string() && e["type"].is_string())),
            "{what}: a 422 not in the contract's shape: {answer}"
        );
    } else if status.is_client_error() {
        assert!(answer["detail"].is_string(), "{what}: {status} {answer}");
    }
}

/// Sends each of `bodies` and checks each answer is one of `allowed`.
async fn send_bodies(
    app: &TestApp,
    method: Method,
    path: &str,
    bodies: Vec<Value>,
    allowed: &[StatusCode],
) {
    let started = Instant::now();
    for (sent, body) in bodies.into_iter().enumerate() {
        if sent > 8 && started.elapsed() > BUDGET {
            break;
        }
        let (status, answer) = app.request(method.clone(), path, Some(body.clone())).await;
        let what = format!("{method} {path} {body}");
        assert_answered(status, &answer, &what);
        assert!(allowed.contains(&status), "{what}: {status} {answer}");
    }
}

/// Sends GET `path?query` for each query.
async fn send_queries(app: &TestApp, path: &str, queries: Vec<String>) {
    for query in queries {
        let mut url = Url::parse(&format!("{}{path}", app.base)).expect("a url");
        url.set_query(Some(&query));
        let response = app.client.get(url).send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let what = format!("GET {path}?{query}");
        assert_answered(status, &answer, &what);
        assert!(
            [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "{what}: {status} {answer}"
        );
    }
}

/// Sends GET `prefix/{id}` for each id, the id as one path segment.
async fn send_path_ids(app: &TestApp, prefix: &str, ids: &[String]) {
    for id in ids {
        let mut url = Url::parse(&format!("{}{prefix}", app.base)).expect("a url");
        url.path_segments_mut().expect("a base").push(id);
        let response = app.client.get(url).send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let what = format!("GET {prefix}/{id:?}");
        assert_answered(status, &answer, &what);
        let allowed = [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::CONFLICT,
            StatusCode::UNPROCESSABLE_ENTITY,
        ];
        assert!(allowed.contains(&status), "{what}: {status} {answer}");
    }
}

const TAKEN_OR_REFUSED: &[StatusCode] = &[StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY];
const CREATED_OR_REFUSED: &[StatusCode] = &[
    StatusCode::CREATED,
    StatusCode::CONFLICT,
    StatusCode::UNPROCESSABLE_ENTITY,
];

both_backends!(any_task_body_is_taken_or_refused_never_a_server_error);
async fn any_task_body_is_taken_or_refused_never_a_server_error() {
    let app = TestApp::without_workers().await;
    send_bodies(
        &app,
        Method::POST,
        "/api/v1/tasks",
        draw(a_task(), CASES),
        TAKEN_OR_REFUSED,
    )
    .await;
    let bulks = draw(proptest::collection::vec(a_task(), 1..4), CASES / 2)
        .into_iter()
        .map(|tasks| json!({ "tasks": tasks }))
        .collect();
    send_bodies(
        &app,
        Method::POST,
        "/api/v1/tasks/bulk",
        bulks,
        TAKEN_OR_REFUSED,
    )
    .await;
}

both_backends!(any_fact_body_is_taken_or_refused_never_a_server_error);
async fn any_fact_body_is_taken_or_refused_never_a_server_error() {
    let app = TestApp::without_workers().await;
    send_bodies(
        &app,
        Method::POST,
        "/api/v1/facts",
        draw(a_fact(), CASES),
        TAKEN_OR_REFUSED,
    )
    .await;
    let (status, fact) = app.post("/api/v1/facts", json!({"text": "t"})).await;
    assert_eq!(status, StatusCode::OK, "{fact}");
    let path = format!("/api/v1/facts/{}", id_of(&fact));
    send_bodies(
        &app,
        Method::PATCH,
        &path,
        draw(a_fact(), CASES),
        TAKEN_OR_REFUSED,
    )
    .await;
    let bulks = draw(proptest::collection::vec(a_fact(), 1..4), CASES / 2)
        .into_iter()
        .map(|facts| json!({ "facts": facts }))
        .collect();
    send_bodies(
        &app,
        Method::POST,
        "/api/v1/facts/bulk",
        bulks,
        TAKEN_OR_REFUSED,
    )
    .await;
}

both_backends!(any_schedule_body_is_taken_or_refused_never_a_server_error);
async fn any_schedule_body_is_taken_or_refused_never_a_server_error() {
    let app = TestApp::without_workers().await;
    let bodies = draw(a_schedule(), CASES)
        .into_iter()
        .enumerate()
        .map(|(i, mut body)| {
            // Unique names, so that most creates are not refused as duplicates.
            if body.get("name") == Some(&json!("n")) {
                body["name"] = json!(format!("n{i}"));
            }
            body
        })
        .collect();
    send_bodies(
        &app,
        Method::POST,
        "/api/v1/schedules",
        bodies,
        CREATED_OR_REFUSED,
    )
    .await;
    let (status, schedule) = app
        .post(
            "/api/v1/schedules",
            json!({"name": "target", "cron": "0 0 * * *", "task": {"type": "noop"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let path = format!("/api/v1/schedules/{}", id_of(&schedule));
    let allowed = [
        StatusCode::OK,
        StatusCode::CONFLICT,
        StatusCode::UNPROCESSABLE_ENTITY,
    ];
    send_bodies(
        &app,
        Method::PATCH,
        &path,
        draw(a_schedule(), CASES),
        &allowed,
    )
    .await;
}

both_backends!(any_workflow_body_is_taken_or_refused_never_a_server_error);
async fn any_workflow_body_is_taken_or_refused_never_a_server_error() {
    let app = TestApp::without_workers().await;
    let bodies = draw(a_workflow(), CASES);
    send_bodies(
        &app,
        Method::POST,
        "/api/v1/workflows",
        bodies,
        CREATED_OR_REFUSED,
    )
    .await;
}

both_backends!(any_query_string_is_answered_or_refused_never_a_server_error);
async fn any_query_string_is_answered_or_refused_never_a_server_error() {
    let app = TestApp::without_workers().await;
    let (status, _) = app
        .post(
            "/api/v1/facts",
            json!({"text": "t", "tags": ["a"], "meta_data": {"k": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    send_queries(&app, "/api/v1/facts", draw(a_query(FACT_QUERY), CASES)).await;
    send_queries(&app, "/api/v1/tasks", draw(a_query(TASK_QUERY), CASES)).await;
    for path in [
        "/api/v1/tags",
        "/api/v1/workflows",
        "/api/v1/schedules",
        "/api/v1/queues",
    ] {
        send_queries(&app, path, draw(a_query(OTHER_QUERY), CASES / 4)).await;
    }
}

both_backends!(any_path_id_is_found_missing_ambiguous_or_refused_never_a_server_error);
async fn any_path_id_is_found_missing_ambiguous_or_refused_never_a_server_error() {
    let app = TestApp::without_workers().await;
    let task = app.create_task(json!({"type": "noop"})).await;
    let mut ids = draw(a_path_id(), CASES);
    ids.push(id_of(&task)[..6].to_string());
    for prefix in [
        "/api/v1/tasks",
        "/api/v1/facts",
        "/api/v1/workflows",
        "/api/v1/schedules",
    ] {
        send_path_ids(&app, prefix, &ids).await;
    }
}

#[test]
fn the_generators_reach_the_edges_they_are_meant_to() {
    // A property that never sends what it is about cannot fail: check the mix once.
    let tasks: Vec<Map<String, Value>> = draw(a_task(), 400)
        .into_iter()
        .filter_map(|v| v.as_object().cloned())
        .collect();
    assert!(
        tasks
            .iter()
            .filter(|t| t.get("type") == Some(&json!("noop")))
            .count()
            > 100
    );
    assert!(tasks.iter().any(|t| t.contains_key("delay_seconds")));
    let queries = draw(a_query(FACT_QUERY), 400);
    assert!(queries.iter().any(|q| q.contains("tag=")));
    assert!(queries.iter().any(|q| q.contains("%00")));
}
