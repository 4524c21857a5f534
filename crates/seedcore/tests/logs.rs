//! Logs and traces: request ids on responses and log lines, the task span on every line of an
//! execution, statement timings at DEBUG (a real `seedcore serve` writing JSON lines), and a
//! W3C `traceparent` kept with its task and passed on to remote executors; jemalloc's settings
//! as it reports them at startup.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, http::HeaderMap, routing::post};
use common::{process::Process, *};
use reqwest::StatusCode;
use seedcore::{api::ApiSettings, engine::HandlerRouter, model::TaskStatus};
use serde_json::{Value, json};
use uuid::Uuid;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const WITHIN: Duration = Duration::from_secs(30);

/// `seedcore serve` on the test's database, writing JSON logs at `level`.
struct JsonServe {
    process: Process,
    base: String,
    client: reqwest::Client,
}

impl JsonServe {
    fn start(db: &TestDb, level: &str) -> JsonServe {
        let url = db.url();
        let mut process = Process::spawn(
            &["serve"],
            &[
                ("DATABASE_URL", url.as_str()),
                ("PORT", "0"),
                ("LOG_FORMAT", "json"),
                ("LOG_LEVEL", level),
                ("SEEDCORE_POLL_INTERVAL_MS", "200"),
            ],
        );
        let line = parse(&process.wait_for_line("listening on http://", WITHIN));
        let message = line["message"].as_str().expect("a message");
        let base = message[message.find("http://").expect("a URL")..].to_string();
        JsonServe {
            process,
            base,
            client: reqwest::Client::new(),
        }
    }

    /// The next log line containing `needle` that `wanted` accepts, as JSON.
    fn line(&mut self, needle: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = parse(&self.process.wait_for_line(needle, WITHIN));
            if wanted(&line) {
                return line;
            }
        }
    }

    async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }
}

/// A log line as JSON; a line that is not one fails the test.
fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
}

fn request_id(response: &reqwest::Response) -> String {
    let ids: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1, "{:?}", response.headers());
    ids[0].to_str().unwrap().to_string()
}

both_backends!(a_generated_request_id_is_on_the_response_and_the_requests_log_line);
async fn a_generated_request_id_is_on_the_response_and_the_requests_log_line() {
    let db = TestDb::create().await;
    let mut serve = JsonServe::start(&db, "info,seedcore::request=debug");
    let response = serve
        .post("/api/v1/tasks", json!({"type": "echo"}), &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = request_id(&response);
    let uuid = Uuid::parse_str(&id).expect("a generated id is a UUID");
    assert_eq!(uuid.get_version_num(), 7);

    let line = serve.line(&id, |_| true);
    assert_eq!(line["message"], "request finished");
    assert_eq!(line["level"], "DEBUG");
    assert_eq!(line["target"], "seedcore::request");
    let span = &line["span"];
    assert_eq!(span["name"], "request");
    assert_eq!(span["request_id"], id.as_str());
    assert_eq!(span["method"], "POST");
    assert_eq!(span["route"], "/api/v1/tasks");
    assert_eq!(span["status"], 200);
    assert!(span["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    serve.process.stop();
}

both_backends!(a_client_request_id_is_echoed_and_an_unusable_one_replaced);
async fn a_client_request_id_is_echoed_and_an_unusable_one_replaced() {
    let db = TestDb::create().await;
    let mut serve = JsonServe::start(&db, "info,seedcore::request=debug");
    let mine = "client-abc.123_~!";
    let response = serve
        .post("/api/v1/tasks", json!({}), &[("x-request-id", mine)])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(request_id(&response), mine);
    let line = serve.line(mine, |_| true);
    assert_eq!(line["span"]["request_id"], mine);
    assert_eq!(line["span"]["status"], 422);

    let too_long = "x".repeat(129);
    for unusable in ["has space", too_long.as_str()] {
        let response = serve
            .post(
                "/api/v1/tasks",
                json!({"type": "echo"}),
                &[("x-request-id", unusable)],
            )
            .await;
        let id = request_id(&response);
        assert_ne!(id, unusable);
        assert!(Uuid::parse_str(&id).is_ok(), "{id}");
        serve.line(&id, |line| line["span"]["request_id"] == id.as_str());
    }
    serve.process.stop();
}

both_backends!(every_line_of_a_task_execution_names_the_task_attempt_worker_queue_and_type);
async fn every_line_of_a_task_execution_names_the_task_attempt_worker_queue_and_type() {
    let db = TestDb::create().await;
    let mut serve = JsonServe::start(&db, "info,seedcore::engine=debug");
    let response = serve
        .post(
            "/api/v1/tasks",
            json!({"type": "echo", "queue": "logged", "run_immediately": true}),
            &[("traceparent", TRACEPARENT)],
        )
        .await;
    let task: Value = response.json().await.unwrap();
    let id = id_of(&task);
    assert!(
        task.get("traceparent").is_none(),
        "the task object is the contract's: {task}"
    );

    let started = serve.line(&id, |line| line["message"] == "handler started");
    let ended = serve.line(&id, |line| line["message"] == "attempt ended");
    assert_eq!(ended["outcome"], "completed");
    let task: Value = serve
        .client
        .get(format!("{}/api/v1/tasks/{id}", serve.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for line in [&started, &ended] {
        let span = &line["span"];
        assert_eq!(span["name"], "task", "{line}");
        assert_eq!(span["task_id"], id.as_str(), "{line}");
        assert_eq!(span["attempt"], 1, "{line}");
        assert_eq!(span["worker"], task["worker_id"], "{line}");
        assert_eq!(span["queue"], "logged", "{line}");
        assert_eq!(span["type"], "echo", "{line}");
        assert_eq!(span["trace_id"], TRACE_ID, "{line}");
    }
    serve.process.stop();
}

both_backends!(debug_logs_each_statement_with_its_time_inside_the_request);
async fn debug_logs_each_statement_with_its_time_inside_the_request() {
    let db = TestDb::create().await;
    let mut serve = JsonServe::start(&db, "DEBUG");
    let response = serve
        .client
        .get(format!("{}/api/v1/tasks?type=echo", serve.base))
        .header("x-request-id", "statement-timing")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let line = serve.line("statement-timing", |line| line["target"] == "sqlx::query");
    assert_eq!(line["level"], "DEBUG");
    assert!(line["elapsed_secs"].as_f64().unwrap() >= 0.0, "{line}");
    assert!(line["elapsed"].is_string(), "{line}");
    assert!(line["summary"].is_string(), "{line}");
    assert_eq!(line["span"]["request_id"], "statement-timing");
    serve.process.stop();
}

/// An executor that records each request's `traceparent` header (None when absent) and
/// succeeds, unless the task's params say `fail`.
async fn tracing_executor() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/run",
        post(move |headers: HeaderMap, Json(task): Json<Value>| {
            let record = record.clone();
            async move {
                let header = headers
                    .get("traceparent")
                    .map(|v| v.to_str().unwrap().to_string());
                record.lock().unwrap().push(header);
                let fail = task["params"]["fail"] == true;
                Json(json!({"success": !fail, "result": null, "error": fail.then_some("asked to")}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/run"), seen)
}

async fn app_with_executor(url: &str) -> TestApp {
    let router = HandlerRouter::with_builtins().with_executors(&[("traced".into(), url.into())]);
    let db = Arc::new(TestDb::create().await);
    TestApp::with_router(db, Some(fast_engine()), ApiSettings::default(), router).await
}

/// POSTs `body` to `path` with `traceparent` (when given) and returns the answer's JSON.
async fn create(app: &TestApp, path: &str, body: Value, traceparent: Option<&str>) -> Value {
    let mut request = app.client.post(format!("{}{path}", app.base)).json(&body);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// Asserts `sent` is a child of [`TRACEPARENT`]: the same trace and flags, another parent id.
fn assert_child(sent: &Option<String>) {
    let sent = sent.as_deref().expect("a traceparent was sent");
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], TRACE_ID);
    assert_eq!(parts[2].len(), 16);
    assert!(
        parts[2]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_ne!(parts[2], "00f067aa0ba902b7");
    assert_ne!(parts[2], "0000000000000000");
    assert_eq!(parts[3], "01");
}

both_backends!(a_traceparent_reaches_the_remote_executor_as_a_child_of_the_same_trace);
async fn a_traceparent_reaches_the_remote_executor_as_a_child_of_the_same_trace() {
    let (url, seen) = tracing_executor().await;
    let app = app_with_executor(&url).await;
    let body = json!({"type": "traced", "run_immediately": true});
    let task = create(&app, "/api/v1/tasks", body, Some(TRACEPARENT)).await;
    let task = app.finished(&id_of(&task)).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_child(&sent[0]);
}

both_backends!(a_missing_or_invalid_traceparent_is_ignored_and_nothing_is_sent_on);
async fn a_missing_or_invalid_traceparent_is_ignored_and_nothing_is_sent_on() {
    let (url, seen) = tracing_executor().await;
    let app = app_with_executor(&url).await;
    let invalid = [
        None,
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        Some("not a traceparent"),
    ];
    for traceparent in invalid {
        let body = json!({"type": "traced", "run_immediately": true});
        let task = create(&app, "/api/v1/tasks", body, traceparent).await;
        let task = app.finished(&id_of(&task)).await;
        assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    }
    assert_eq!(*seen.lock().unwrap(), vec![None; invalid.len()]);
}

both_backends!(bulk_and_workflow_creates_keep_the_traceparent_for_every_task);
async fn bulk_and_workflow_creates_keep_the_traceparent_for_every_task() {
    let (url, seen) = tracing_executor().await;
    let app = app_with_executor(&url).await;
    let step = json!({"type": "traced", "run_immediately": true});
    let bulk = json!({"tasks": [step, step]});
    let created = create(&app, "/api/v1/tasks/bulk", bulk, Some(TRACEPARENT)).await;
    let mut ids: Vec<String> = created["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    let workflow = json!({"name": "traced", "tasks": [
        {"key": "a", "type": "traced"},
        {"key": "b", "type": "traced", "depends_on": ["a"]},
    ]});
    let workflow = create(&app, "/api/v1/workflows", workflow, Some(TRACEPARENT)).await;
    ids.extend(workflow["tasks"].as_array().unwrap().iter().map(id_of));
    assert_eq!(ids.len(), 4);
    for id in &ids {
        let task = app.finished(id).await;
        assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    }
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 4);
    sent.iter().for_each(assert_child);
}

postgres_only!(a_traceparent_moves_to_the_history_and_back_with_its_task);
async fn a_traceparent_moves_to_the_history_and_back_with_its_task() {
    let (url, seen) = tracing_executor().await;
    let app = app_with_executor(&url).await;
    // A failed task can be run again; a completed one cannot.
    let body = json!({"type": "traced", "run_immediately": true, "params": {"fail": true}});
    let id = id_of(&create(&app, "/api/v1/tasks", body, Some(TRACEPARENT)).await);
    assert_eq!(app.finished(&id).await.status, TaskStatus::Failed);
    let soon = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(app.store.archive_finished(soon, 100).await.unwrap(), 1);
    let store = app.db.pg_store().await;
    let kept: Option<String> =
        sqlx::query_scalar("select traceparent from task_history where id = $1::uuid")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(kept.as_deref(), Some(TRACEPARENT));

    let (status, _) = app.post_empty(&format!("/api/v1/tasks/{id}/run")).await;
    assert_eq!(status, StatusCode::OK);
    eventually(WITHIN, "the second run", || async {
        (seen.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    let sent = seen.lock().unwrap().clone();
    sent.iter().for_each(assert_child);
}

sqlite_only!(an_unknown_log_format_is_refused_with_the_ones_there_are);
async fn an_unknown_log_format_is_refused_with_the_ones_there_are() {
    let data = TempFolder::new();
    let data_dir = data.0.display().to_string();
    let output = common::process::command(
        &["serve"],
        &[
            ("SEEDCORE_DATA_DIR", data_dir.as_str()),
            ("PORT", "0"),
            ("LOG_FORMAT", "xml"),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("xml"), "{stderr}");
    assert!(
        stderr.contains("text") && stderr.contains("json"),
        "{stderr}"
    );
}

/// jemalloc's settings: the binary's own (`src/main.rs`) as jemalloc reports them once `serve`
/// is up, since a configuration jemalloc cannot find is ignored without a word.
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
mod jemalloc {
    use super::*;

    /// The settings line of a `serve` started with `env` besides its database and JSON logs.
    fn settings(env: &[(&str, &str)]) -> Value {
        let db = TestDb::sqlite();
        let mut all = vec![
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "info,seedcore::allocator=debug"),
        ];
        all.extend_from_slice(env);
        let mut serve = Process::serve(&db.url(), &all);
        let line = parse(&serve.wait_for_line("jemalloc settings", WITHIN));
        serve.stop();
        line
    }

    sqlite_only!(jemalloc_runs_with_the_settings_the_binary_gives_it);
    async fn jemalloc_runs_with_the_settings_the_binary_gives_it() {
        let line = settings(&[]);
        assert_eq!(line["narenas"], 2, "{line}");
        assert_eq!(line["background_thread"], true, "{line}");
        assert_eq!(line["dirty_decay_ms"], 1000, "{line}");
        assert_eq!(line["muzzy_decay_ms"], 0, "{line}");
    }

    postgres_only!(a_worker_process_logs_its_jemalloc_settings_too);
    async fn a_worker_process_logs_its_jemalloc_settings_too() {
        let db = TestDb::postgres().await;
        let url = db.url();
        let env = [
            ("PG_DSN", url.as_str()),
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "info,seedcore::allocator=debug"),
        ];
        let mut worker = Process::spawn(&["worker"], &env);
        let line = parse(&worker.wait_for_line("jemalloc settings", WITHIN));
        worker.stop();
        assert_eq!(line["narenas"], 2, "{line}");
        assert_eq!(line["background_thread"], true, "{line}");
    }

    sqlite_only!(the_environment_overrides_one_jemalloc_setting_and_keeps_the_others);
    async fn the_environment_overrides_one_jemalloc_setting_and_keeps_the_others() {
        let line = settings(&[("_RJEM_MALLOC_CONF", "narenas:3")]);
        assert_eq!(line["narenas"], 3, "{line}");
        assert_eq!(line["background_thread"], true, "{line}");
        assert_eq!(line["dirty_decay_ms"], 1000, "{line}");
        assert_eq!(line["muzzy_decay_ms"], 0, "{line}");
    }
}
