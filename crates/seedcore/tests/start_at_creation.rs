//! Tasks started at their creation (PostgreSQL): a ready task created through a process whose
//! worker lane has a slot free, and that no ready task of its queue would precede, is written
//! claimed by that worker and runs without a claim; its answer, trail and counters read as a
//! create followed by a claim. Such a task's `started_at` is its `created_at` (one statement's
//! clock), which tells it from a claimed one; `seedcore_tasks_started_at_creation_total` counts
//! them.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use reqwest::StatusCode;
use seedcore::{api::ApiSettings, engine::EngineSettings, model::NewTask};
use serde_json::{Value, json};

/// Whether the finished task ran from its creation's own statement.
fn started_at_creation(task: &Value) -> bool {
    task["started_at"] == task["created_at"]
}

async fn finished(app: &TestApp, id: &str) -> Value {
    eventually(Duration::from_secs(20), "the task finishes", || async {
        let (_, task) = app.get(&format!("/api/v1/tasks/{id}")).await;
        (task["status"] == "completed").then_some(task)
    })
    .await
}

/// Creates `noop` tasks one after another, each once the last finished, until one started at
/// its creation (the lanes have free slots between tasks); returns its answer to the create
/// and the task finished.
async fn a_task_started_at_creation(app: &TestApp) -> (Value, Value) {
    for _ in 0..20 {
        let answer = app
            .create_task(json!({"type": "noop", "run_immediately": true}))
            .await;
        let task = finished(app, id_of(&answer).as_str()).await;
        if started_at_creation(&task) {
            return (answer, task);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no task of 20 started at its creation");
}

/// A queue no other test of this binary uses: the metrics are the process's.
fn queue_of_its_own(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// `seedcore_tasks_started_at_creation_total` of `noop` tasks in `queue` (0 before the first).
async fn counted_as_started_at_creation(app: &TestApp, queue: &str) -> f64 {
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().expect("the metrics' text");
    let series =
        format!("seedcore_tasks_started_at_creation_total{{queue=\"{queue}\",type=\"noop\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0.0, |value| value.parse().expect("a number"))
}

/// Creates `count` `noop` tasks in `queue`, each once the last finished; returns how many
/// started at their creation.
async fn run_one_after_another(app: &TestApp, queue: &str, count: usize) -> usize {
    let mut started = 0;
    for _ in 0..count {
        let answer = app
            .create_task(json!({"type": "noop", "queue": queue, "run_immediately": true}))
            .await;
        let task = finished(app, id_of(&answer).as_str()).await;
        started += usize::from(started_at_creation(&task));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started
}

async fn trail(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, events) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events["items"].as_array().expect("items").clone()
}

postgres_only!(a_task_created_while_its_lane_waits_runs_at_once_and_reads_as_created_then_claimed);
async fn a_task_created_while_its_lane_waits_runs_at_once_and_reads_as_created_then_claimed() {
    let app = TestApp::start().await;
    let (answer, task) = a_task_started_at_creation(&app).await;

    assert_eq!(
        answer["status"], "queued",
        "the create answers the task as created"
    );
    assert_eq!(answer["attempts"], 0);
    assert_eq!(answer["started_at"], Value::Null);
    assert_eq!(task["attempts"], 1);
    let worker = task["worker_id"].as_str().expect("a worker ran it");

    let events = trail(&app, id_of(&task).as_str()).await;
    let steps: Vec<(&str, &Value, &str, i64)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("?"),
                &e["from_status"],
                e["to_status"].as_str().unwrap_or("?"),
                e["attempt"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("created", &Value::Null, "queued", 0),
            ("claimed", &json!("queued"), "running", 1),
            ("completed", &json!("running"), "completed", 1),
        ]
    );
    assert_eq!(events[1]["worker_id"], worker);
    assert_eq!(events[1]["actor"], format!("worker:{worker}"));
    assert_eq!(events[2]["actor"], format!("worker:{worker}"));
    assert!(events[0]["seq"].as_i64() < events[1]["seq"].as_i64());

    let (_, queues) = app.get("/api/v1/queues").await;
    let default = queues["items"]
        .as_array()
        .and_then(|all| all.iter().find(|q| q["name"] == "default"))
        .unwrap_or_else(|| panic!("no default queue in {queues}"));
    let (_, listed) = app.get("/api/v1/tasks?limit=1000").await;
    let completed = listed["total"].as_i64().expect("a total");
    assert_eq!(default["counts"]["completed"], completed, "{default}");
    assert_eq!(
        default["counts"]["running"].as_i64().unwrap_or(0),
        0,
        "{default}"
    );
    assert_eq!(
        default["counts"]["queued"].as_i64().unwrap_or(0),
        0,
        "{default}"
    );
    app.stop().await;
}

postgres_only!(a_task_written_claimed_runs_even_when_its_creator_gave_up_before_the_answer);
async fn a_task_written_claimed_runs_even_when_its_creator_gave_up_before_the_answer() {
    let app = TestApp::start().await;
    a_task_started_at_creation(&app).await;

    // A caller gone after handing its create to the batch (a client that hung up) must not
    // leave a task written claimed and never started: its lease (30 s here) would expire first.
    for _ in 0..20 {
        let task = NewTask {
            run_immediately: true,
            ..NewTask::of_type("noop")
        };
        let id = task.id.to_string();
        let gave_up = tokio::time::timeout(Duration::ZERO, app.store.create_task(task)).await;
        assert!(gave_up.is_err(), "the create answered before its batch ran");
        let task = finished(&app, &id).await;
        if started_at_creation(&task) {
            assert_eq!(task["attempts"], 1, "{task}");
            app.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no task of 20 whose creator gave up started at its creation");
}

postgres_only!(a_task_of_a_paused_queue_waits_for_its_queue_even_with_a_slot_free);
async fn a_task_of_a_paused_queue_waits_for_its_queue_even_with_a_slot_free() {
    let app = TestApp::start().await;
    let (status, paused) = app.post_empty("/api/v1/queues/held/pause").await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    a_task_started_at_creation(&app).await;

    let answer = app
        .create_task(json!({"type": "noop", "run_immediately": true, "queue": "held"}))
        .await;
    let id = id_of(&answer);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, waiting) = app.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(waiting["started_at"], Value::Null);

    let (status, resumed) = app.post_empty("/api/v1/queues/held/resume").await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    let task = finished(&app, &id).await;
    assert!(
        !started_at_creation(&task),
        "claimed after the resume: {task}"
    );
    app.stop().await;
}

postgres_only!(with_starting_at_creation_off_every_task_waits_for_a_claim);
async fn with_starting_at_creation_off_every_task_waits_for_a_claim() {
    let settings = EngineSettings {
        start_at_creation: false,
        ..fast_engine()
    };
    let db = Arc::new(TestDb::create().await);
    let app = TestApp::on(db, Some(settings), ApiSettings::default()).await;
    let queue = queue_of_its_own("off");
    assert_eq!(run_one_after_another(&app, &queue, 5).await, 0);
    assert_eq!(counted_as_started_at_creation(&app, &queue).await, 0.0);
    app.stop().await;
}

postgres_only!(every_task_started_at_creation_is_counted_in_the_metrics);
async fn every_task_started_at_creation_is_counted_in_the_metrics() {
    let app = TestApp::start().await;
    let queue = queue_of_its_own("counted");
    let started = run_one_after_another(&app, &queue, 20).await;
    assert!(started > 0, "no task of 20 started at its creation");
    assert_eq!(
        counted_as_started_at_creation(&app, &queue).await,
        started as f64
    );
    app.stop().await;
}

postgres_only!(a_task_never_starts_ahead_of_a_ready_task_of_its_queue_that_a_claim_takes_first);
async fn a_task_never_starts_ahead_of_a_ready_task_of_its_queue_that_a_claim_takes_first() {
    // Polls far apart: a task written straight into the table (no wake-up) waits, ready,
    // until a wake-up makes a lane claim.
    let settings = EngineSettings {
        poll_interval: Duration::from_secs(600),
        ..fast_engine()
    };
    let db = Arc::new(TestDb::create().await);
    let app = TestApp::on(db.clone(), Some(settings), ApiSettings::default()).await;
    a_task_started_at_creation(&app).await;
    let waiting = "5d0f1c52-8a0e-4a53-9b7e-0d6b1f0f7a01";
    let store = db.store().await;
    sqlx::query(
        "insert into tasks (id, type, status, priority) values ($1::uuid, 'noop', 'queued', 5)",
    )
    .bind(waiting)
    .execute(store.pool())
    .await
    .expect("insert a ready task");

    // First a task that precedes the waiting one, then one that the waiting one precedes
    // (the same priority, older); the second's wake-up makes a lane claim both.
    let ahead = app
        .create_task(json!({"type": "noop", "run_immediately": true, "priority": 6}))
        .await;
    let behind = app
        .create_task(json!({"type": "noop", "run_immediately": true, "priority": 5}))
        .await;

    let behind = finished(&app, id_of(&behind).as_str()).await;
    let waiting = finished(&app, waiting).await;
    let ahead = finished(&app, id_of(&ahead).as_str()).await;
    assert!(
        !started_at_creation(&behind),
        "claimed, after the older task: {behind}"
    );
    assert!(waiting["started_at"].as_str() <= behind["started_at"].as_str());
    assert!(
        started_at_creation(&ahead),
        "a higher priority precedes it: {ahead}"
    );
    app.stop().await;
}
