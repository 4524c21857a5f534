//! The pull API against a real server and database: workers register, claim over HTTP with a
//! long poll, and heartbeat, complete, fail or release each attempt by its lease token.

mod common;

use std::{net::SocketAddr, time::Duration};

use chrono::{DateTime, Utc};
use common::{process::Process, *};
use reqwest::StatusCode;
use seedcore::{
    api::{self, ApiSettings, AppState, PullSettings},
    auth::{AuthSettings, NewToken, Role, Secret},
    model::TaskStatus,
    server::{Listener, ListenerSettings},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Registers a pull worker and returns its id.
async fn register(app: &TestApp, body: Value) -> String {
    let (status, registered) = app.post("/api/v1/workers", body).await;
    assert_eq!(status, StatusCode::OK, "register: {registered}");
    registered["id"].as_str().expect("an id").to_string()
}

/// A worker of every queue and type.
async fn any_worker(app: &TestApp) -> String {
    register(
        app,
        json!({"name": "any", "client_name": "test", "client_version": "1"}),
    )
    .await
}

/// Claims once without waiting; returns the tasks taken (none for a 204).
async fn claim(app: &TestApp, body: Value) -> Vec<Value> {
    let (status, claimed) = app.post("/api/v1/tasks/claim", body).await;
    match status {
        StatusCode::OK => claimed["tasks"].as_array().expect("tasks").clone(),
        StatusCode::NO_CONTENT => Vec::new(),
        other => panic!("claim answered {other}: {claimed}"),
    }
}

/// Creates a queued task and returns its id.
async fn queued(app: &TestApp, body: Value) -> String {
    let mut body = body;
    body["run_immediately"] = json!(true);
    id_of(&app.create_task(body).await)
}

/// The one task a worker claims now.
async fn claim_one(app: &TestApp, worker: &str) -> Value {
    let mut tasks = claim(app, json!({"worker_id": worker})).await;
    assert_eq!(tasks.len(), 1, "one task: {tasks:?}");
    tasks.remove(0)
}

fn token_of(task: &Value) -> String {
    task["lease_token"]
        .as_str()
        .expect("a lease token")
        .to_string()
}

async fn complete(app: &TestApp, task: &Value, result: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/tasks/{}/complete", id_of(task));
    app.post(
        &path,
        json!({"lease_token": token_of(task), "result": result}),
    )
    .await
}

/// The task's events as `(kind, actor)`.
async fn trail(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let (status, events) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

both_backends!(a_worker_registers_claims_and_completes_over_http);
async fn a_worker_registers_claims_and_completes_over_http() {
    let app = TestApp::without_workers().await;
    let (status, registered) = app
        .post(
            "/api/v1/workers",
            json!({"name": "billing-1", "queues": ["billing"], "concurrency": 4,
                   "labels": {"zone": "eu"}, "client_name": "seedcore-py",
                   "client_version": "0.1.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let worker = registered["id"].as_str().unwrap().to_string();
    assert!(worker.starts_with("pull:"), "{worker}");
    assert_eq!(registered["default_lease_seconds"], 30.0);
    assert_eq!(registered["heartbeat_interval_seconds"], 10.0);
    assert_eq!(registered["max_lease_seconds"], 3600.0);
    assert_eq!(registered["state"], "running");

    let parent = queued(&app, json!({"type": "other"})).await;
    let id = queued(
        &app,
        json!({"type": "invoice", "queue": "billing", "params": {"n": 7}}),
    )
    .await;
    let task = claim_one(&app, &worker).await;
    assert_eq!(id_of(&task), id, "only the billing queue: {task}");
    assert_eq!(task["type"], "invoice");
    assert_eq!(task["params"], json!({"n": 7}));
    assert_eq!(task["attempt"], 1);
    assert_eq!(task["parents"], json!([]));
    let expires: DateTime<Utc> = serde_json::from_value(task["lease_expires_at"].clone()).unwrap();
    assert!(
        expires > Utc::now() + chrono::Duration::seconds(20),
        "{expires}"
    );
    assert_eq!(
        app.task(&id).await.worker_id.as_deref(),
        Some(worker.as_str())
    );

    let (status, ended) = complete(&app, &task, json!({"total": 12})).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended, json!({"task_id": id, "status": "completed"}));
    let done = app.task(&id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result.unwrap()["result"], json!({"total": 12}));
    let named = format!("worker:{worker}");
    let events = trail(&app, &id).await;
    assert!(
        events.contains(&("claimed".into(), named.clone())),
        "{events:?}"
    );
    assert!(events.contains(&("completed".into(), named)), "{events:?}");
    assert_eq!(app.task(&parent).await.status, TaskStatus::Queued);

    let (_, workers) = app.get("/api/v1/workers").await;
    let listed = workers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == worker.as_str())
        .expect("the pull worker is listed")
        .clone();
    assert_eq!(listed["host"], "billing-1");
    assert_eq!(listed["version"], "seedcore-py 0.1.0");
    assert_eq!(listed["concurrency"], 4);
    assert_eq!(listed["state"], "active");
}

both_backends!(a_claimed_task_carries_its_parents_and_traceparent);
async fn a_claimed_task_carries_its_parents_and_traceparent() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let parent = queued(&app, json!({"type": "first"})).await;
    let first = claim_one(&app, &worker).await;
    assert_eq!(complete(&app, &first, json!(1)).await.0, StatusCode::OK);
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let response = app
        .client
        .post(format!("{}/api/v1/tasks", app.base))
        .header("traceparent", trace)
        .json(&json!({"type": "second", "depends_on": [parent], "run_immediately": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let child = claim(&app, json!({"worker_id": worker, "wait_ms": 5000})).await;
    assert_eq!(child.len(), 1, "{child:?}");
    assert_eq!(child[0]["parents"], json!([parent]));
    assert_eq!(child[0]["traceparent"], trace);
}

both_backends!(a_long_poll_answers_with_a_task_created_while_it_waits);
async fn a_long_poll_answers_with_a_task_created_while_it_waits() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let poll = {
        let (client, base) = (app.client.clone(), app.base.clone());
        let body = json!({"worker_id": worker, "wait_ms": 20000});
        tokio::spawn(async move {
            let response = client
                .post(format!("{base}/api/v1/tasks/claim"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.ok())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = queued(&app, json!({"type": "late"})).await;
    // Well before wait_ms runs out, the poll answers with the task.
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the poll answered before wait_ms")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap()["tasks"][0]["id"], id.as_str());
}

both_backends!(a_long_poll_with_nothing_ready_answers_204_after_wait_ms);
async fn a_long_poll_with_nothing_ready_answers_204_after_wait_ms() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let _not_ready = app.create_task(json!({"type": "later"})).await;
    let started = std::time::Instant::now();
    let (status, body) = app
        .post(
            "/api/v1/tasks/claim",
            json!({"worker_id": worker, "wait_ms": 400, "max": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

both_backends!(claims_take_only_the_queues_and_types_asked_for);
async fn claims_take_only_the_queues_and_types_asked_for() {
    let app = TestApp::without_workers().await;
    let mailer = register(&app, json!({"name": "mailer", "types": ["email"]})).await;
    let anyone = any_worker(&app).await;
    let report = queued(&app, json!({"type": "report", "queue": "slow"})).await;
    let email = queued(&app, json!({"type": "email", "queue": "slow"})).await;
    let sms = queued(&app, json!({"type": "sms"})).await;

    // The registered types hold when the claim names none.
    let taken = claim(&app, json!({"worker_id": mailer, "max": 10})).await;
    let ids: Vec<&str> = taken.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [email.as_str()]);
    // A claim's own filters: this queue and these types only.
    let taken = claim(
        &app,
        json!({"worker_id": anyone, "max": 10, "queues": ["default"], "types": ["report", "sms"]}),
    )
    .await;
    let ids: Vec<&str> = taken.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [sms.as_str()]);
    assert_eq!(app.task(&report).await.status, TaskStatus::Queued);
}

both_backends!(a_paused_queue_is_not_claimed_and_priorities_hold);
async fn a_paused_queue_is_not_claimed_and_priorities_hold() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let held = queued(&app, json!({"type": "t", "queue": "held"})).await;
    let (status, _) = app.post_empty("/api/v1/queues/held/pause").await;
    assert_eq!(status, StatusCode::OK);
    let low = queued(&app, json!({"type": "t", "priority": 1})).await;
    let high = queued(&app, json!({"type": "t", "priority": 5})).await;
    // One at a time: the order within one claim's answer is not promised.
    assert_eq!(id_of(&claim_one(&app, &worker).await), high);
    assert_eq!(id_of(&claim_one(&app, &worker).await), low);
    assert!(claim(&app, json!({"worker_id": worker})).await.is_empty());
    assert_eq!(app.task(&held).await.status, TaskStatus::Queued);
}

both_backends!(a_lease_over_the_cap_is_refused_never_shortened);
async fn a_lease_over_the_cap_is_refused_never_shortened() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let (status, body) = app
        .post(
            "/api/v1/tasks/claim",
            json!({"worker_id": worker, "lease_seconds": 3601}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "lease_seconds"]));
    assert_eq!(
        app.task(&id).await.status,
        TaskStatus::Queued,
        "nothing claimed"
    );
    let task = claim_one(&app, &worker).await;
    let path = format!("/api/v1/tasks/{id}/heartbeat");
    let (status, body) = app
        .post(
            &path,
            json!({"lease_token": token_of(&task), "extend_seconds": 7200}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/tasks/claim",
            json!({"worker_id": worker, "max": 101}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

both_backends!(a_heartbeat_keeps_the_lease_past_its_first_expiry);
async fn a_heartbeat_keeps_the_lease_past_its_first_expiry() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim(&app, json!({"worker_id": worker, "lease_seconds": 1})).await;
    let task = &task[0];
    let path = format!("/api/v1/tasks/{id}/heartbeat");
    let (status, beat) = app
        .post(
            &path,
            json!({"lease_token": token_of(task), "extend_seconds": 60, "progress": 0.5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    assert_eq!(beat["cancel_requested"], false);
    let expires: DateTime<Utc> = serde_json::from_value(beat["lease_expires_at"].clone()).unwrap();
    assert!(
        expires > Utc::now() + chrono::Duration::seconds(50),
        "{expires}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.store.rescue_expired().await.unwrap(),
        0,
        "the lease held"
    );
    assert_eq!(complete(&app, task, json!(null)).await.0, StatusCode::OK);
}

both_backends!(a_heartbeats_progress_shows_on_the_task_until_its_next_attempt_starts);
async fn a_heartbeats_progress_shows_on_the_task_until_its_next_attempt_starts() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let shown = |task: Value| (task["progress"].clone(), task["updated_at"].clone());
    let task_path = format!("/api/v1/tasks/{id}");
    let beat_path = format!("/api/v1/tasks/{id}/heartbeat");
    assert_eq!(app.get(&task_path).await.1["progress"], Value::Null);

    let first = claim_one(&app, &worker).await;
    let (_, before) = shown(app.get(&task_path).await.1);
    let beat = |token: String, body: Value| {
        let mut body = body;
        body["lease_token"] = json!(token);
        app.post(&beat_path, body)
    };
    assert_eq!(
        beat(token_of(&first), json!({"progress": 0.25})).await.0,
        StatusCode::OK
    );
    let (progress, updated) = shown(app.get(&task_path).await.1);
    assert_eq!(progress, json!(0.25));
    assert_ne!(updated, before, "a progress report changes the row");

    // A beat without progress keeps the last report; one with a token not current is refused
    // and records nothing.
    assert_eq!(beat(token_of(&first), json!({})).await.0, StatusCode::OK);
    let stranger = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        beat(stranger, json!({"progress": 0.9})).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(app.get(&task_path).await.1["progress"], json!(0.25));

    // The next attempt starts without the last one's progress, and its own report outlives it.
    let released = format!("/api/v1/tasks/{id}/release");
    let (status, _) = app
        .post(&released, json!({"lease_token": token_of(&first)}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = claim_one(&app, &worker).await;
    assert_eq!(app.get(&task_path).await.1["progress"], Value::Null);
    assert_eq!(
        beat(token_of(&second), json!({"progress": 1})).await.0,
        StatusCode::OK
    );
    assert_eq!(complete(&app, &second, json!(null)).await.0, StatusCode::OK);
    let done = app.get(&task_path).await.1;
    assert_eq!(
        (done["status"].clone(), done["progress"].clone()),
        (json!("completed"), json!(1.0))
    );
}

both_backends!(a_cancelled_task_asks_its_worker_to_stop_and_refuses_its_completion);
async fn a_cancelled_task_asks_its_worker_to_stop_and_refuses_its_completion() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let (status, _) = app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, beat) = app
        .post(
            &format!("/api/v1/tasks/{id}/heartbeat"),
            json!({"lease_token": token_of(&task)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    assert_eq!(
        beat,
        json!({"lease_expires_at": null, "cancel_requested": true})
    );
    let (status, body) = complete(&app, &task, json!("late")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"detail": "lease lost"}));
    let after = app.task(&id).await;
    assert_eq!(after.status, TaskStatus::Cancelled);
    assert_eq!(after.result, None);
}

both_backends!(a_repeated_completion_answers_the_same_outcome);
async fn a_repeated_completion_answers_the_same_outcome() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let first = complete(&app, &task, json!({"n": 1})).await;
    let again = complete(&app, &task, json!({"n": 2})).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(
        app.task(&id).await.result.unwrap()["result"],
        json!({"n": 1})
    );
    // The same token cannot turn the completion into a failure.
    let (status, body) = app
        .post(
            &format!("/api/v1/tasks/{id}/fail"),
            json!({"lease_token": token_of(&task), "error": {"type": "E", "message": "m"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

both_backends!(tasks_claimed_together_complete_and_repeat_each_on_its_own);
async fn tasks_claimed_together_complete_and_repeat_each_on_its_own() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    for n in 0..3 {
        queued(&app, json!({"type": "t", "params": {"n": n}})).await;
    }
    let tasks = claim(&app, json!({"worker_id": worker, "max": 3})).await;
    assert_eq!(tasks.len(), 3);
    for _ in 0..2 {
        for task in &tasks {
            let (status, ended) = complete(&app, task, task["params"].clone()).await;
            assert_eq!(status, StatusCode::OK, "{ended}");
            assert_eq!(ended["status"], "completed");
        }
    }
    for task in &tasks {
        let done = app.task(&id_of(task)).await;
        assert_eq!(done.result.unwrap()["result"], task["params"]);
    }
}

both_backends!(a_stale_or_unknown_token_is_refused_and_changes_nothing);
async fn a_stale_or_unknown_token_is_refused_and_changes_nothing() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let before = app.task(&id).await;
    let stranger = json!({"lease_token": uuid::Uuid::new_v4()});
    for action in ["complete", "heartbeat", "release"] {
        let (status, body) = app
            .post(&format!("/api/v1/tasks/{id}/{action}"), stranger.clone())
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert_eq!(body, json!({"detail": "lease lost"}));
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/tasks/{id}/fail"),
            json!({"lease_token": uuid::Uuid::new_v4(), "error": {"type": "E", "message": "m"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let unknown_task = format!("/api/v1/tasks/{}/complete", uuid::Uuid::new_v4());
    let (status, _) = app
        .post(&unknown_task, json!({"lease_token": token_of(&task)}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.task(&id).await, before, "nothing changed");
    let (status, body) = app
        .post(
            &format!("/api/v1/tasks/{id}/complete"),
            json!({"lease_token": "not-a-uuid"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

both_backends!(a_retryable_failure_waits_the_engines_backoff_and_a_final_one_fails);
async fn a_retryable_failure_waits_the_engines_backoff_and_a_final_one_fails() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t", "max_attempts": 2})).await;
    let task = claim_one(&app, &worker).await;
    let failed_at = Utc::now();
    let (status, ended) = app
        .post(
            &format!("/api/v1/tasks/{id}/fail"),
            json!({"lease_token": token_of(&task), "retryable": true,
                   "error": {"type": "Timeout", "message": "upstream slow"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["status"], "retry");
    let waiting = app.task(&id).await;
    assert_eq!(waiting.status, TaskStatus::Retry);
    assert_eq!(waiting.error.as_deref(), Some("Timeout: upstream slow"));
    // The engine's default policy: 1 s nominal after the first attempt, half of it at least.
    let delay = (waiting.run_at - failed_at).as_seconds_f64();
    assert!((0.4..=1.5).contains(&delay), "{delay}");

    let again = claim(&app, json!({"worker_id": worker, "wait_ms": 5000})).await;
    assert_eq!(again[0]["attempt"], 2, "{again:?}");
    let (status, ended) = app
        .post(
            &format!("/api/v1/tasks/{id}/fail"),
            json!({"lease_token": token_of(&again[0]), "retryable": true,
                   "error": {"type": "Timeout", "message": "still slow"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["status"], "failed", "out of attempts");
    assert_eq!(app.task(&id).await.status, TaskStatus::Failed);

    let permanent = queued(&app, json!({"type": "t", "max_attempts": 5})).await;
    let task = claim_one(&app, &worker).await;
    let (_, ended) = app
        .post(
            &format!("/api/v1/tasks/{permanent}/fail"),
            json!({"lease_token": token_of(&task),
                   "error": {"type": "ValueError", "message": "bad input", "stack": "at line 1"}}),
        )
        .await;
    assert_eq!(ended["status"], "failed");
    let failed = app.task(&permanent).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("ValueError: bad input\nat line 1")
    );
}

both_backends!(a_worker_may_ask_for_its_own_retry_delay);
async fn a_worker_may_ask_for_its_own_retry_delay() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let failed_at = Utc::now();
    let (status, _) = app
        .post(
            &format!("/api/v1/tasks/{id}/fail"),
            json!({"lease_token": token_of(&task), "retryable": true, "retry_after_seconds": 120,
                   "error": {"type": "RateLimited", "message": "429"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let delay = (app.task(&id).await.run_at - failed_at).as_seconds_f64();
    assert!((119.0..=121.0).contains(&delay), "{delay}");
}

both_backends!(a_released_task_is_queued_again_with_its_attempt_uncounted);
async fn a_released_task_is_queued_again_with_its_attempt_uncounted() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let (status, ended) = app
        .post(
            &format!("/api/v1/tasks/{id}/release"),
            json!({"lease_token": token_of(&task)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["status"], "queued");
    let back = app.task(&id).await;
    assert_eq!((back.status, back.attempts), (TaskStatus::Queued, 0));
    assert_eq!(claim_one(&app, &worker).await["attempt"], 1);
    let kinds: Vec<String> = trail(&app, &id).await.into_iter().map(|(k, _)| k).collect();
    assert!(kinds.contains(&"released".to_string()), "{kinds:?}");
}

both_backends!(an_expired_lease_is_rescued_and_the_late_completion_refused);
async fn an_expired_lease_is_rescued_and_the_late_completion_refused() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let id = queued(&app, json!({"type": "t"})).await;
    let task = claim(&app, json!({"worker_id": worker, "lease_seconds": 0.2})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.store.rescue_expired().await.unwrap(), 1);
    let (status, body) = complete(&app, &task[0], json!("late")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let rescued = app.task(&id).await;
    assert_eq!((rescued.status, rescued.attempts), (TaskStatus::Queued, 1));
    let (_, events) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
    let rescue = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "rescued")
        .expect("a rescue event")
        .clone();
    assert_eq!(rescue["actor"], "system:lease-expired");
    assert_eq!(
        rescue["worker_id"],
        worker.as_str(),
        "names the worker that lost it"
    );
    assert_eq!(
        claim_one(&app, &worker).await["attempt"],
        2,
        "the attempt counted"
    );
}

both_backends!(a_quiet_worker_claims_nothing_and_a_terminated_one_is_told_to_stop);
async fn a_quiet_worker_claims_nothing_and_a_terminated_one_is_told_to_stop() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    let beat = format!("/api/v1/workers/{worker}/heartbeat");
    assert_eq!(app.post_empty(&beat).await.1, json!({"state": "running"}));
    let id = queued(&app, json!({"type": "t"})).await;

    // A poll already waiting when the worker is quieted claims nothing either.
    let waiting = {
        let (client, base) = (app.client.clone(), app.base.clone());
        let body = json!({"worker_id": worker, "wait_ms": 3000, "queues": ["later"]});
        tokio::spawn(async move {
            let url = format!("{base}/api/v1/tasks/claim");
            client.post(url).json(&body).send().await.unwrap().status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, quiet) = app
        .post_empty(&format!("/api/v1/workers/{worker}/quiet"))
        .await;
    assert_eq!(status, StatusCode::OK, "{quiet}");
    let later = queued(&app, json!({"type": "t", "queue": "later"})).await;
    assert_eq!(waiting.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(app.task(&later).await.status, TaskStatus::Queued);
    assert_eq!(quiet["state"], "quiet");
    assert_eq!(app.post_empty(&beat).await.1, json!({"state": "quiet"}));
    let started = std::time::Instant::now();
    let (status, _) = app
        .post(
            "/api/v1/tasks/claim",
            json!({"worker_id": worker, "wait_ms": 10000}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once"
    );
    assert_eq!(app.task(&id).await.status, TaskStatus::Queued);

    let (status, _) = app
        .post_empty(&format!("/api/v1/workers/{worker}/terminate"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.post_empty(&beat).await.1, json!({"state": "terminate"}));
    let (status, shown) = app.get(&format!("/api/v1/workers/{worker}")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["state"], "terminate");
    assert_eq!(shown["client_name"], "test");
    let (status, _) = app.post_empty("/api/v1/workers/pull:nobody/quiet").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post("/api/v1/tasks/claim", json!({"worker_id": "pull:nobody"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "register first");
}

both_backends!(a_token_without_workers_pull_cannot_claim);
async fn a_token_without_workers_pull_cannot_claim() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let settings = AuthSettings {
        open_routes: Vec::new(),
        rate: None,
        ..AuthSettings::default()
    };
    let state = AppState::new(store.clone(), ApiSettings::default()).with_auth(settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, api::app(state)).await.unwrap();
    });
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Worker, Role::Operator] {
        let secret = Secret::generate();
        store
            .create_token(NewToken {
                id: secret.id.clone(),
                name: role.as_str().into(),
                role,
                scopes: role.scopes(),
                secret_hash: secret.hash(),
                expires_at: None,
            })
            .await
            .unwrap();
        tokens.push(secret.text);
    }
    let client = reqwest::Client::new();
    let call = |path: &str, token: &str, body: Value| {
        client
            .post(format!("http://{address}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let (viewer, worker, operator) = (&tokens[0], &tokens[1], &tokens[2]);
    let refused = call("/api/v1/workers", viewer, json!({"name": "w"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("workers:pull"),
        "{body}"
    );
    let registered: Value = call("/api/v1/workers", worker, json!({"name": "w"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["id"].as_str().unwrap();
    let claim = json!({"worker_id": id});
    let status = |r: reqwest::Response| r.status();
    assert_eq!(
        status(
            call("/api/v1/tasks/claim", viewer, claim.clone())
                .await
                .unwrap()
        ),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(call("/api/v1/tasks/claim", worker, claim).await.unwrap()),
        StatusCode::NO_CONTENT
    );
    // Draining is an operator's call, not a worker's.
    let quiet = format!("/api/v1/workers/{id}/quiet");
    assert_eq!(
        status(call(&quiet, worker, json!({})).await.unwrap()),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(call(&quiet, operator, json!({})).await.unwrap()),
        StatusCode::OK
    );
}

both_backends!(a_long_poll_outlasts_a_request_timeout_shorter_than_its_wait);
async fn a_long_poll_outlasts_a_request_timeout_shorter_than_its_wait() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let settings = ListenerSettings {
        request_timeout: Duration::from_millis(300),
        ..ListenerSettings::default()
    };
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), settings)
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr());
    let stop = CancellationToken::new();
    let app = api::app(AppState::new(store, ApiSettings::default()));
    let served = tokio::spawn(listener.serve(app, stop.clone()));
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(format!("{base}/api/v1/workers"))
        .json(&json!({"name": "patient"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claim = client
        .post(format!("{base}/api/v1/tasks/claim"))
        .json(&json!({"worker_id": registered["id"], "wait_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), StatusCode::NO_CONTENT, "not a 503 timeout");
    stop.cancel();
    let _ = served.await;
}

both_backends!(a_long_poll_is_woken_by_the_stores_signal_not_by_its_recheck);
async fn a_long_poll_is_woken_by_the_stores_signal_not_by_its_recheck() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    // Rechecks far apart: within wait_ms only the store's wake-up can find the new task.
    let pull = PullSettings {
        recheck: Duration::from_secs(600),
        ..PullSettings::default()
    };
    let state = AppState::new(store.clone(), ApiSettings::default()).with_pull(pull);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, api::app(state)).await.unwrap();
    });
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(format!("{base}/api/v1/workers"))
        .json(&json!({"name": "woken"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll = {
        let (client, base) = (client.clone(), base.clone());
        let body = json!({"worker_id": registered["id"], "wait_ms": 30000});
        tokio::spawn(async move {
            let response = client
                .post(format!("{base}/api/v1/tasks/claim"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.ok())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let created: Value = client
        .post(format!("{base}/api/v1/tasks"))
        .json(&json!({"type": "t", "run_immediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Without a wake-up the poll would answer only at wait_ms, with its last query.
    let (status, body) = tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .expect("a wake-up answered the poll before wait_ms")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap()["tasks"][0]["id"], created["id"]);
}

both_backends!(a_server_without_workers_still_rescues_a_pull_workers_expired_lease);
async fn a_server_without_workers_still_rescues_a_pull_workers_expired_lease() {
    let db = TestDb::create().await;
    let url = db.url();
    let mut server = Process::spawn(
        &["serve"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
            ("SEEDCORE_WORKER_CONCURRENCY", "0"),
        ],
    );
    let base = server.wait_for_address();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let registered: Value = post("/api/v1/workers", json!({"name": "gone"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created: Value = post(
        "/api/v1/tasks",
        json!({"type": "t", "run_immediately": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let claim = json!({"worker_id": registered["id"], "lease_seconds": 0.3});
    let claimed: Value = post("/api/v1/tasks/claim", claim)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claimed["tasks"][0]["id"], created["id"]);
    let task_url = format!("{base}/api/v1/tasks/{}", id_of(&created));
    eventually(Duration::from_secs(15), "the expired lease rescued", || {
        let (client, url) = (client.clone(), task_url.clone());
        async move {
            let task: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (task["status"] == "queued" && task["attempts"] == 1).then_some(())
        }
    })
    .await;
    server.stop();
}

both_backends!(a_batch_of_completions_records_each_current_lease_and_refuses_the_others);
async fn a_batch_of_completions_records_each_current_lease_and_refuses_the_others() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    for n in 0..3 {
        queued(&app, json!({"type": "t", "params": {"n": n}})).await;
    }
    let tasks = claim(&app, json!({"worker_id": worker, "max": 3})).await;
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    let stale = uuid::Uuid::new_v4().to_string();
    let item = |task: &Value, token: &str, n: i64| json!({"task_id": id_of(task), "lease_token": token, "result": {"n": n}});
    let body = json!({"completions": [
        item(&tasks[0], &token_of(&tasks[0]), 0),
        item(&tasks[1], &stale, 1),
        item(&tasks[2], &token_of(&tasks[2]), 2),
    ]});

    let (status, answer) = app.post("/api/v1/tasks/complete", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcomes: Vec<(String, String)> = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let id = item["task_id"].as_str().unwrap().to_string();
            (id, item["outcome"].as_str().unwrap().to_string())
        })
        .collect();
    let expected: Vec<(String, String)> = tasks
        .iter()
        .zip(["completed", "lease_lost", "completed"])
        .map(|(task, outcome)| (id_of(task), outcome.to_string()))
        .collect();
    assert_eq!(outcomes, expected);
    let first = app.task(&id_of(&tasks[0])).await;
    assert_eq!(first.status, TaskStatus::Completed);
    assert_eq!(first.result.unwrap()["result"], json!({"n": 0}));
    assert_eq!(
        app.task(&id_of(&tasks[1])).await.status,
        TaskStatus::Running
    );

    // The same batch again answers the same: the repeats by their tokens, the stale one refused.
    let (status, again) = app.post("/api/v1/tasks/complete", body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, answer);
}

both_backends!(a_batch_with_a_bad_item_records_nothing);
async fn a_batch_with_a_bad_item_records_nothing() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let good = json!({"task_id": id_of(&task), "lease_token": token_of(&task)});

    let bad = json!({"completions": [good, {"task_id": "nope", "lease_token": token_of(&task)}]});
    let (status, refused) = app.post("/api/v1/tasks/complete", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["detail"][0]["loc"],
        json!(["body", "completions", 1, "task_id"])
    );
    let none = json!({"completions": []});
    let (status, _) = app.post("/api/v1/tasks/complete", none).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let too_many: Vec<Value> = (0..101).map(|_| good.clone()).collect();
    let (status, refused) = app
        .post("/api/v1/tasks/complete", json!({"completions": too_many}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["detail"][0]["type"], "list_length");

    assert_eq!(app.task(&id_of(&task)).await.status, TaskStatus::Running);
}

both_backends!(a_per_queue_limit_holds_a_queue_to_its_count_while_other_queues_fill_the_claim);
async fn a_per_queue_limit_holds_a_queue_to_its_count_while_other_queues_fill_the_claim() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    for queue in ["emails", "emails", "emails", "other", "other"] {
        queued(&app, json!({"type": "t", "queue": queue})).await;
    }
    let limited = json!({"worker_id": worker, "max": 10, "queue_concurrency": ["emails=1"]});
    let first = claim(&app, limited.clone()).await;
    let queues_of = |tasks: &[Value]| {
        let mut queues: Vec<String> = tasks
            .iter()
            .map(|t| t["queue"].as_str().unwrap().to_string())
            .collect();
        queues.sort();
        queues
    };
    assert_eq!(queues_of(&first), ["emails", "other", "other"]);

    // While it holds its one `emails` task, the limit leaves nothing to claim.
    assert!(claim(&app, limited.clone()).await.is_empty());
    let held = first.iter().find(|t| t["queue"] == "emails").unwrap();
    let (status, _) = complete(&app, held, json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queues_of(&claim(&app, limited).await), ["emails"]);
}

both_backends!(a_queue_limit_that_is_not_queue_equals_a_count_is_refused);
async fn a_queue_limit_that_is_not_queue_equals_a_count_is_refused() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    for bad in [
        "emails",
        "emails=0",
        "emails=10000",
        "emails=01",
        "bad name=1",
        "=3",
    ] {
        let body = json!({"worker_id": worker, "queue_concurrency": ["ok=2", bad]});
        let (status, refused) = app.post("/api/v1/tasks/claim", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {refused}");
        assert_eq!(
            refused["detail"][0]["loc"],
            json!(["body", "queue_concurrency", 1]),
            "{bad}"
        );
        assert_eq!(refused["detail"][0]["type"], "queue_limit", "{bad}");
    }
}

both_backends!(a_task_listed_twice_in_a_batch_is_answered_as_two_requests_would_be);
async fn a_task_listed_twice_in_a_batch_is_answered_as_two_requests_would_be() {
    let app = TestApp::without_workers().await;
    let worker = any_worker(&app).await;
    queued(&app, json!({"type": "t"})).await;
    let task = claim_one(&app, &worker).await;
    let good = json!({"task_id": id_of(&task), "lease_token": token_of(&task), "result": 1});
    let stale = json!({"task_id": id_of(&task), "lease_token": uuid::Uuid::new_v4(), "result": 2});

    let body = json!({"completions": [good, stale, good]});
    let (status, answer) = app.post("/api/v1/tasks/complete", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcomes: Vec<&str> = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["completed", "lease_lost", "completed"]);
    let done = app.task(&id_of(&task)).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result.unwrap()["result"], 1);
}
