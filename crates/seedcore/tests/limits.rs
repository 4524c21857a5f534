//! The caps on input, through the API on both backends: every value over a cap is a 422 that
//! names the field and the cap, nothing is clamped, values at the cap are taken, and a
//! handler's result over its cap fails the task instead of being stored.

mod common;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use common::{
    process::{Process, command},
    *,
};
use reqwest::StatusCode;
use seedcore::{
    api::ApiSettings,
    engine::{EngineSettings, HandlerRouter, handler_fn},
    model::TaskStatus,
    validate::limits::{
        DEFAULT_LIMITS, MAX_ATTACHED_FACTS, MAX_DELAY_SECONDS, MAX_QUERY_PAIRS, MAX_QUERY_VALUES,
        MAX_TAG_CHARS, MAX_TAGS,
    },
};
use serde_json::{Value, json};
use uuid::Uuid;

const TASKS: &str = "/api/v1/tasks";
const FACTS: &str = "/api/v1/facts";

/// The one error of a 422 answer, as (location joined with dots, type, message).
fn the_error(status: StatusCode, body: &Value) -> (String, String, String) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let errors = body["detail"].as_array().expect("a list of errors");
    assert_eq!(errors.len(), 1, "{body}");
    let loc: Vec<String> = errors[0]["loc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
        .collect();
    (
        loc.join("."),
        errors[0]["type"].as_str().unwrap().to_string(),
        errors[0]["msg"].as_str().unwrap().to_string(),
    )
}

async fn total_tasks(app: &TestApp) -> i64 {
    let (status, page) = app.get(TASKS).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["total"].as_i64().unwrap()
}

both_backends!(a_delay_of_1e30_seconds_is_refused_naming_the_field_and_its_cap);
async fn a_delay_of_1e30_seconds_is_refused_naming_the_field_and_its_cap() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(TASKS, json!({"type": "noop", "delay_seconds": 1e30}))
        .await;
    let (loc, kind, msg) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.delay_seconds", "less_than_equal")
    );
    assert!(msg.contains("315360000"), "{msg}");
    assert_eq!(total_tasks(&app).await, 0, "nothing was stored");

    let task = app
        .create_task(json!({"type": "noop", "delay_seconds": MAX_DELAY_SECONDS}))
        .await;
    let run_at: DateTime<Utc> = task["run_at"].as_str().unwrap().parse().unwrap();
    let ahead = run_at - Utc::now();
    assert!(ahead > chrono::Duration::days(3649), "{ahead}");
    assert!(ahead <= chrono::Duration::days(3650), "{ahead}");
}

both_backends!(a_run_at_far_in_the_future_or_the_past_is_refused);
async fn a_run_at_far_in_the_future_or_the_past_is_refused() {
    let app = TestApp::without_workers().await;
    for at in [
        "9999-12-31T23:59:59Z",
        "2500-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1900-01-01T00:00:00Z",
    ] {
        let (status, body) = app.post(TASKS, json!({"type": "noop", "run_at": at})).await;
        let (loc, kind, msg) = the_error(status, &body);
        assert_eq!(
            (loc.as_str(), kind.as_str()),
            ("body.run_at", "datetime_range"),
            "{at}"
        );
        assert!(msg.contains("3650 days"), "{msg}");
    }
    assert_eq!(total_tasks(&app).await, 0);

    let soon = (Utc::now() + chrono::Duration::days(3600)).to_rfc3339();
    let task = app
        .create_task(json!({"type": "noop", "run_at": soon}))
        .await;
    assert_eq!(task["status"], "queued");
    let past = (Utc::now() - chrono::Duration::days(3600)).to_rfc3339();
    let task = app
        .create_task(json!({"type": "noop", "run_at": past}))
        .await;
    assert_eq!(task["status"], "queued");
}

both_backends!(a_timeout_over_a_year_is_refused);
async fn a_timeout_over_a_year_is_refused() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(TASKS, json!({"type": "noop", "timeout_seconds": 1e12}))
        .await;
    let (loc, kind, _) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.timeout_seconds", "less_than_equal")
    );
}

both_backends!(params_over_the_size_cap_are_refused_and_params_at_it_are_stored);
async fn params_over_the_size_cap_are_refused_and_params_at_it_are_stored() {
    // The cap is the default body size: a bulk body, larger, is where it matters.
    let app = TestApp::without_workers().await;
    let cap = DEFAULT_LIMITS.params_bytes;
    // {"blob":"…"} is 11 bytes around the string.
    let at_cap = json!({"blob": "x".repeat(cap - 11)});
    assert_eq!(serde_json::to_string(&at_cap).unwrap().len(), cap);
    let over = json!({"blob": "x".repeat(cap - 10)});
    let (status, body) = app
        .post(
            "/api/v1/tasks/bulk",
            json!({"tasks": [{"type": "noop", "params": at_cap}, {"type": "noop", "params": over}]}),
        )
        .await;
    let (loc, kind, msg) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.tasks.1.params", "too_large")
    );
    assert!(msg.contains("1,048,576 bytes"), "{msg}");
    assert!(msg.contains("SEEDCORE_MAX_PARAMS_BYTES"), "{msg}");
    assert_eq!(total_tasks(&app).await, 0);

    let (status, body) = app
        .post(
            "/api/v1/tasks/bulk",
            json!({"tasks": [{"type": "noop", "params": at_cap}]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        body.to_string().chars().take(200).collect::<String>()
    );
    assert_eq!(total_tasks(&app).await, 1);
}

both_backends!(a_task_with_20000_attached_facts_is_refused);
async fn a_task_with_20000_attached_facts_is_refused() {
    let app = TestApp::without_workers().await;
    let ids: Vec<String> = (0..20_000).map(|_| Uuid::new_v4().to_string()).collect();
    let (status, body) = app
        .post(TASKS, json!({"type": "noop", "attached_fact_ids": ids}))
        .await;
    let (loc, kind, msg) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.attached_fact_ids", "too_long")
    );
    assert!(
        msg.contains(&format!("at most {MAX_ATTACHED_FACTS} items")),
        "{msg}"
    );
    assert_eq!(total_tasks(&app).await, 0);

    let ids: Vec<String> = (0..MAX_ATTACHED_FACTS)
        .map(|_| Uuid::new_v4().to_string())
        .collect();
    let task = app
        .create_task(json!({"type": "noop", "attached_fact_ids": ids}))
        .await;
    assert_eq!(
        task["attached_fact_ids"].as_array().unwrap().len(),
        MAX_ATTACHED_FACTS
    );
}

both_backends!(a_bulk_item_over_a_cap_refuses_the_whole_bulk_naming_the_item);
async fn a_bulk_item_over_a_cap_refuses_the_whole_bulk_naming_the_item() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(
            "/api/v1/tasks/bulk",
            json!({"tasks": [{"type": "noop"}, {"type": "noop", "delay_seconds": 1e30}]}),
        )
        .await;
    let (loc, kind, _) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.tasks.1.delay_seconds", "less_than_equal")
    );
    assert_eq!(total_tasks(&app).await, 0);
}

both_backends!(a_fact_with_20000_tags_is_refused_and_one_with_the_cap_is_stored);
async fn a_fact_with_20000_tags_is_refused_and_one_with_the_cap_is_stored() {
    let app = TestApp::without_workers().await;
    let tags: Vec<String> = (0..20_000).map(|i| format!("t{i}")).collect();
    let (status, body) = app.post(FACTS, json!({"text": "x", "tags": tags})).await;
    let (loc, kind, msg) = the_error(status, &body);
    assert_eq!((loc.as_str(), kind.as_str()), ("body.tags", "too_long"));
    assert!(msg.contains(&format!("at most {MAX_TAGS} items")), "{msg}");

    let tags: Vec<String> = (0..MAX_TAGS).map(|i| format!("t{i}")).collect();
    let (status, fact) = app.post(FACTS, json!({"text": "x", "tags": tags})).await;
    assert_eq!(status, StatusCode::OK, "{fact}");
    assert_eq!(fact["tags"].as_array().unwrap().len(), MAX_TAGS);

    // An update is held to the same caps.
    let id = id_of(&fact);
    let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
    let (status, body) = app
        .patch(&format!("{FACTS}/{id}"), json!({"tags": tags}))
        .await;
    let (loc, _, _) = the_error(status, &body);
    assert_eq!(loc, "body.tags");
    let (_, page) = app.get(FACTS).await;
    assert_eq!(page["total"], 1);
}

both_backends!(a_tag_too_long_is_refused_at_its_position);
async fn a_tag_too_long_is_refused_at_its_position() {
    let app = TestApp::without_workers().await;
    let long = "é".repeat(MAX_TAG_CHARS + 1);
    let (status, body) = app
        .post(FACTS, json!({"text": "x", "tags": ["fine", long]}))
        .await;
    let (loc, kind, _) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.tags.1", "string_too_long")
    );
}

both_backends!(fact_text_and_metadata_over_their_caps_are_refused);
async fn fact_text_and_metadata_over_their_caps_are_refused() {
    let app = TestApp::without_workers().await;
    let chars = DEFAULT_LIMITS.fact_text_chars;
    let bulk = |facts: Value| json!({ "facts": facts });
    // Characters, not bytes: a text of the cap in two-byte characters is taken.
    let (status, body) = app
        .post(
            "/api/v1/facts/bulk",
            bulk(json!([{"text": "é".repeat(chars)}])),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        body.to_string().chars().take(200).collect::<String>()
    );
    let (status, body) = app
        .post(
            "/api/v1/facts/bulk",
            bulk(json!([{"text": ""}, {"text": "x".repeat(chars + 1)}])),
        )
        .await;
    let (loc, kind, msg) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.facts.1.text", "string_too_long")
    );
    assert!(msg.contains(&chars.to_string()), "{msg}");

    let meta = json!({"note": "x".repeat(DEFAULT_LIMITS.meta_data_bytes)});
    let (status, body) = app
        .post(
            "/api/v1/facts/bulk",
            bulk(json!([{"text": "", "meta_data": meta}])),
        )
        .await;
    let (loc, kind, msg) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.facts.0.meta_data", "too_large")
    );
    assert!(msg.contains("SEEDCORE_MAX_META_DATA_BYTES"), "{msg}");
    let (_, page) = app.get(FACTS).await;
    assert_eq!(page["total"], 1);
}

both_backends!(a_raised_body_limit_leaves_each_field_held_to_its_cap);
async fn a_raised_body_limit_leaves_each_field_held_to_its_cap() {
    let settings = ApiSettings {
        max_body_bytes: 4 * 1_048_576,
        ..ApiSettings::default()
    };
    let app = TestApp::on(Arc::new(TestDb::create().await), None, settings).await;
    let text = "x".repeat(DEFAULT_LIMITS.fact_text_chars + 1);
    let (status, body) = app.post(FACTS, json!({ "text": text })).await;
    let (loc, kind, _) = the_error(status, &body);
    assert_eq!(
        (loc.as_str(), kind.as_str()),
        ("body.text", "string_too_long")
    );
    let params = json!({"blob": "x".repeat(DEFAULT_LIMITS.params_bytes)});
    let (status, body) = app
        .post(TASKS, json!({"type": "noop", "params": params}))
        .await;
    let (loc, kind, _) = the_error(status, &body);
    assert_eq!((loc.as_str(), kind.as_str()), ("body.params", "too_large"));
}

/// `GET /api/v1/facts` with `name` repeated `n` times.
async fn list_with_repeated(app: &TestApp, name: &str, n: usize) -> (StatusCode, Value) {
    let pairs: Vec<(String, String)> = (0..n)
        .map(|i| (name.to_string(), format!("t{i}")))
        .collect();
    let query = serde_urlencoded::to_string(&pairs).unwrap();
    app.get(&format!("{FACTS}?{query}")).await
}

both_backends!(a_facts_list_with_tag_repeated_2000_times_is_a_422_not_a_500);
async fn a_facts_list_with_tag_repeated_2000_times_is_a_422_not_a_500() {
    let app = TestApp::without_workers().await;
    let tags: Vec<String> = (0..MAX_TAGS).map(|i| format!("t{i}")).collect();
    let (status, fact) = app.post(FACTS, json!({"text": "x", "tags": tags})).await;
    assert_eq!(status, StatusCode::OK, "{fact}");
    for name in ["tag", "any_tag"] {
        let (status, body) = list_with_repeated(&app, name, 2000).await;
        let (loc, kind, msg) = the_error(status, &body);
        assert_eq!(
            (loc.as_str(), kind.as_str()),
            (format!("query.{name}").as_str(), "too_long")
        );
        assert!(
            msg.contains(&format!("At most {MAX_QUERY_VALUES} values")),
            "{msg}"
        );
    }
    // Just under the cap, every backend answers, and all the tags are applied.
    let (status, page) = list_with_repeated(&app, "tag", MAX_QUERY_VALUES - 1).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 1);
    let (status, page) = list_with_repeated(&app, "any_tag", MAX_QUERY_VALUES - 1).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 1);
}

both_backends!(every_filter_at_its_cap_at_once_still_answers);
async fn every_filter_at_its_cap_at_once_still_answers() {
    let app = TestApp::without_workers().await;
    let tags: Vec<String> = (0..MAX_TAGS).map(|i| format!("t{i}")).collect();
    let meta: serde_json::Map<String, Value> = (0..MAX_QUERY_VALUES)
        .map(|i| (format!("k{i}"), json!(i)))
        .collect();
    let (status, fact) = app
        .post(FACTS, json!({"text": "x", "tags": tags, "meta_data": meta}))
        .await;
    assert_eq!(status, StatusCode::OK, "{fact}");
    let mut pairs: Vec<(String, String)> = Vec::new();
    for i in 0..MAX_QUERY_VALUES {
        pairs.push(("tag".into(), format!("t{i}")));
        pairs.push(("any_tag".into(), format!("t{i}")));
        pairs.push((format!("meta.k{i}"), i.to_string()));
    }
    pairs.push(("q".into(), "x".into()));
    let query = serde_urlencoded::to_string(&pairs).unwrap();
    let (status, page) = app.get(&format!("{FACTS}?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 1);

    pairs.push((format!("meta.k{MAX_QUERY_VALUES}"), "1".into()));
    let query = serde_urlencoded::to_string(&pairs).unwrap();
    let (status, body) = app.get(&format!("{FACTS}?{query}")).await;
    let (loc, kind, _) = the_error(status, &body);
    assert_eq!((loc.as_str(), kind.as_str()), ("query.meta", "too_long"));
}

both_backends!(a_query_string_of_too_many_parameters_is_refused_whatever_their_names);
async fn a_query_string_of_too_many_parameters_is_refused_whatever_their_names() {
    let app = TestApp::without_workers().await;
    let pairs: Vec<(String, String)> = (0..=MAX_QUERY_PAIRS)
        .map(|i| (format!("u{i}"), "1".into()))
        .collect();
    let query = serde_urlencoded::to_string(&pairs).unwrap();
    for path in [FACTS, TASKS] {
        let (status, body) = app.get(&format!("{path}?{query}")).await;
        let (loc, kind, msg) = the_error(status, &body);
        assert_eq!((loc.as_str(), kind.as_str()), ("query", "too_long"));
        assert!(msg.contains(&MAX_QUERY_PAIRS.to_string()), "{msg}");
    }
}

/// Handlers whose output is as large as their params ask.
fn sized_router() -> HandlerRouter {
    let mut router = HandlerRouter::with_builtins();
    router.register(
        "produce",
        handler_fn(|task| async move {
            let bytes = task.params["bytes"].as_u64().unwrap_or(0) as usize;
            Ok(json!({"blob": "x".repeat(bytes)}))
        }),
    );
    router
}

both_backends!(a_result_over_its_cap_fails_the_task_with_a_clear_error_and_is_not_stored);
async fn a_result_over_its_cap_fails_the_task_with_a_clear_error_and_is_not_stored() {
    let engine = EngineSettings {
        max_result_bytes: 4096,
        ..fast_engine()
    };
    let app = TestApp::with_router(
        Arc::new(TestDb::create().await),
        Some(engine),
        ApiSettings::default(),
        sized_router(),
    )
    .await;
    let small = app
        .run_to_the_end(json!({"type": "produce", "params": {"bytes": 100}, "max_attempts": 3}))
        .await;
    assert_eq!(small.status, TaskStatus::Completed, "{small:?}");

    let big = app
        .run_to_the_end(json!({"type": "produce", "params": {"bytes": 100_000}, "max_attempts": 3}))
        .await;
    assert_eq!(big.status, TaskStatus::Failed, "{big:?}");
    assert_eq!(big.result, None);
    assert_eq!(big.attempts, 1, "an oversized result is not retried");
    let error = big.error.unwrap();
    assert!(error.contains("4,096 bytes"), "{error}");
    assert!(error.contains("SEEDCORE_MAX_RESULT_BYTES"), "{error}");
}

/// `seedcore serve` on a fresh data folder with `env` added.
fn serve_with(folder: &TempFolder, env: &[(&str, &str)]) -> Process {
    let data = folder.0.join("data");
    let data = data.to_str().unwrap();
    let mut all = vec![
        ("SEEDCORE_DATA_DIR", data),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("LOG_LEVEL", "INFO"),
    ];
    all.extend_from_slice(env);
    Process::spawn(&["serve"], &all)
}

sqlite_only!(the_sizes_are_settable_and_the_settings_apply_to_the_api_and_the_handlers);
async fn the_sizes_are_settable_and_the_settings_apply_to_the_api_and_the_handlers() {
    let folder = TempFolder::new();
    let mut server = serve_with(
        &folder,
        &[
            ("SEEDCORE_MAX_PARAMS_BYTES", "64"),
            ("SEEDCORE_MAX_FACT_TEXT_CHARS", "5"),
            ("SEEDCORE_MAX_RESULT_BYTES", "2048"),
        ],
    );
    let base = server.wait_for_address();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(
        TASKS,
        json!({"type": "noop", "params": {"blob": "x".repeat(60)}}),
    )
    .await;
    let (loc, _, msg) = the_error(status, &body);
    assert_eq!(loc, "body.params");
    assert!(msg.contains("at most 64 bytes"), "{msg}");
    let (status, body) = post(FACTS, json!({"text": "sixsix"})).await;
    let (loc, _, msg) = the_error(status, &body);
    assert_eq!(loc, "body.text");
    assert!(msg.contains("at most 5 characters"), "{msg}");
    let (status, _) = post(FACTS, json!({"text": "five!"})).await;
    assert_eq!(status, StatusCode::OK);

    // The built-in fact_store handler reads its params with the same caps.
    let (status, task) = post(
        TASKS,
        json!({"type": "fact_store", "params": {"text": "too long"}, "run_immediately": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let id = id_of(&task);
    let done = eventually(
        Duration::from_secs(20),
        "the fact_store task to end",
        || {
            let request = client.get(format!("{base}{TASKS}/{id}"));
            async move {
                let task: Value = request.send().await.ok()?.json().await.ok()?;
                (task["status"] == "failed").then_some(task)
            }
        },
    )
    .await;
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("text: String should have at most 5 characters"),
        "{done}"
    );
    server.stop();
}

sqlite_only!(a_size_setting_that_is_not_a_positive_number_stops_the_start_with_its_name);
async fn a_size_setting_that_is_not_a_positive_number_stops_the_start_with_its_name() {
    let folder = TempFolder::new();
    let data = folder.0.join("data");
    let output = command(
        &["serve"],
        &[
            ("SEEDCORE_DATA_DIR", data.to_str().unwrap()),
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("SEEDCORE_MAX_PARAMS_BYTES", "0"),
        ],
    )
    .output()
    .expect("run seedcore");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max-params-bytes"), "{stderr}");
    assert!(!data.exists(), "nothing was opened");
}
