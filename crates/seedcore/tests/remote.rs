//! Remote executors: a task type served by an HTTP endpoint (here a small axum app on port 0).

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, http::StatusCode, routing::post};
use common::*;
use seedcore::{api::ApiSettings, engine::HandlerRouter, model::TaskStatus};
use serde_json::{Value, json};

/// Starts an executor that records what it receives and answers with `answer`.
async fn executor(
    answer: impl Fn(&Value) -> (StatusCode, Value) + Send + Sync + Clone + 'static,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/run",
        post(move |Json(body): Json<Value>| {
            let answer = answer.clone();
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body.clone());
                if body["params"]["delay"].is_number() {
                    let delay = body["params"]["delay"].as_f64().unwrap();
                    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                }
                let (status, json) = answer(&body);
                (status, Json(json))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/run"), seen)
}

async fn app_with_executor(url: &str) -> TestApp {
    let router =
        HandlerRouter::with_builtins().with_executors(&[("analysis_task".into(), url.into())]);
    let db = Arc::new(TestDb::create().await);
    TestApp::with_router(db, Some(fast_engine()), ApiSettings::default(), router).await
}

async fn run(app: &TestApp, body: Value) -> seedcore::model::Task {
    let mut body = body;
    body["type"] = json!("analysis_task");
    app.run_to_the_end(body).await
}

both_backends!(a_remote_executor_receives_the_task_and_its_result_is_stored);
async fn a_remote_executor_receives_the_task_and_its_result_is_stored() {
    let (url, seen) = executor(|body| {
        (
            StatusCode::OK,
            json!({"success": true, "result": {"rows": body["params"]["rows"]}, "error": null}),
        )
    })
    .await;
    let app = app_with_executor(&url).await;
    let task = run(
        &app,
        json!({"params": {"rows": 7}, "domain": "science", "drift_score": 0.2}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(
        task.result.unwrap(),
        json!({"success": true, "path": "fast", "handler": "remote:analysis_task", "result": {"rows": 7}})
    );
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["id"], json!(task.id));
    assert_eq!(sent["type"], "analysis_task");
    assert_eq!(sent["params"], json!({"rows": 7}));
    assert_eq!(sent["domain"], "science");
    assert_eq!(sent["drift_score"], 0.2);
    assert_eq!(sent["attempt"], 1);
}

both_backends!(a_remote_failure_fails_the_task_without_retrying);
async fn a_remote_failure_fails_the_task_without_retrying() {
    let (url, seen) = executor(|_| {
        (
            StatusCode::OK,
            json!({"success": false, "result": null, "error": "bad input file"}),
        )
    })
    .await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("bad input file"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

both_backends!(a_remote_5xx_is_retried_until_attempts_run_out);
async fn a_remote_5xx_is_retried_until_attempts_run_out() {
    let (url, seen) =
        executor(|_| (StatusCode::SERVICE_UNAVAILABLE, json!({"detail": "busy"}))).await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 3);
    assert!(task.error.unwrap().contains("503"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

both_backends!(a_remote_4xx_is_final);
async fn a_remote_4xx_is_final() {
    let (url, seen) = executor(|_| (StatusCode::BAD_REQUEST, json!({"detail": "no"}))).await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

both_backends!(a_remote_retry_then_success_completes_on_the_second_attempt);
async fn a_remote_retry_then_success_completes_on_the_second_attempt() {
    let (url, _seen) = executor(|body| {
        if body["attempt"] == 1 {
            (
                StatusCode::OK,
                json!({"success": false, "error": "warming up", "retryable": true}),
            )
        } else {
            (StatusCode::OK, json!({"success": true, "result": "done"}))
        }
    })
    .await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.attempts, 2);
    assert_eq!(task.result.unwrap()["result"], "done");
}

both_backends!(an_unreachable_executor_is_retried_then_fails);
async fn an_unreachable_executor_is_retried_then_fails() {
    // Nothing listens on port 1 of this loopback address. (A port freed by this test could be
    // taken at once by another test's server running in parallel.)
    let app = app_with_executor("http://127.0.0.2:1/run").await;
    let task = run(&app, json!({"max_attempts": 2})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    assert!(task.error.unwrap().contains("executor unreachable"));
}

both_backends!(a_slow_executor_times_out_as_retryable);
async fn a_slow_executor_times_out_as_retryable() {
    let (url, seen) = executor(|_| (StatusCode::OK, json!({"success": true, "result": 1}))).await;
    let app = app_with_executor(&url).await;
    let task = run(
        &app,
        json!({"params": {"delay": 5}, "timeout_seconds": 0.3, "max_attempts": 2}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    assert!(task.error.unwrap().contains("timed out"));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

both_backends!(a_worker_registers_itself_and_is_listed_as_active);
async fn a_worker_registers_itself_and_is_listed_as_active() {
    let app = TestApp::start().await;
    let (status, workers) = app.get("/api/v1/workers").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let items = workers["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let worker = &items[0];
    assert_eq!(worker["state"], "active");
    assert_eq!(worker["pid"], std::process::id());
    assert_eq!(worker["concurrency"], 8);
    assert!(
        worker["id"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}:", std::process::id()))
    );

    let db = app.stop().await;
    let app = TestApp::on(db, None, ApiSettings::default()).await;
    let (_, workers) = app.get("/api/v1/workers").await;
    assert_eq!(workers["items"][0]["state"], "stopped");
}
