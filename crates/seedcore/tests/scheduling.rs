//! Delayed tasks, priorities, queues (pause, resume, limits, selection), idempotent create and
//! bulk create.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use common::*;
use reqwest::StatusCode;
use seedcore::{
    api::ApiSettings,
    engine::{EngineSettings, HandlerRouter, handler_fn},
    model::TaskStatus,
};
use serde_json::{Value, json};

async fn app_with(settings: EngineSettings) -> TestApp {
    TestApp::on(
        Arc::new(TestDb::create().await),
        Some(settings),
        ApiSettings::default(),
    )
    .await
}

fn one_slot() -> EngineSettings {
    EngineSettings {
        concurrency: 1,
        ..fast_engine()
    }
}

both_backends!(a_delayed_task_waits_queued_and_starts_promptly_after_its_time);
async fn a_delayed_task_waits_queued_and_starts_promptly_after_its_time() {
    let app = TestApp::start().await;
    // The delay counts from the request (the insert itself may wait for a batch to commit,
    // so `created_at` can come later under load).
    let sent = Utc::now();
    let task = app
        .create_task(json!({"type": "noop", "delay_seconds": 1.5}))
        .await;
    let answered = Utc::now();
    assert_eq!(task["status"], "queued");
    let run_at: DateTime<Utc> = task["run_at"].as_str().unwrap().parse().unwrap();
    let delay = chrono::Duration::milliseconds(1500);
    // A millisecond of slack below: stores keep times to the microsecond or the millisecond.
    let slack = chrono::Duration::milliseconds(1);
    assert!(
        sent + delay - slack <= run_at && run_at <= answered + delay,
        "due {run_at}, asked between {sent} and {answered}"
    );

    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        app.task(&id_of(&task)).await.status,
        TaskStatus::Queued,
        "it started early"
    );
    let done = app.finished(&id_of(&task)).await;
    let started = done.started_at.unwrap();
    assert!(started >= run_at, "started {started} before {run_at}");
    assert!(
        (started - run_at).num_milliseconds() < 1000,
        "started {started}, due {run_at}"
    );
}

both_backends!(a_task_given_a_run_at_time_runs_then_and_a_past_time_runs_now);
async fn a_task_given_a_run_at_time_runs_then_and_a_past_time_runs_now() {
    let app = TestApp::start().await;
    let soon = (Utc::now() + chrono::Duration::milliseconds(700)).to_rfc3339();
    let later = app
        .create_task(json!({"type": "noop", "run_at": soon}))
        .await;
    let past = app
        .create_task(json!({"type": "noop", "run_at": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(
        app.finished(&id_of(&past)).await.status,
        TaskStatus::Completed
    );
    let later = app.finished(&id_of(&later)).await;
    assert!(later.started_at.unwrap() >= later.run_at);
}

both_backends!(malformed_scheduling_fields_are_each_a_422);
async fn malformed_scheduling_fields_are_each_a_422() {
    let app = TestApp::without_workers().await;
    for (body, loc) in [
        (json!({"type": "noop", "run_at": "tomorrow"}), "run_at"),
        (
            json!({"type": "noop", "delay_seconds": -1}),
            "delay_seconds",
        ),
        (
            json!({"type": "noop", "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"}),
            "delay_seconds",
        ),
        (json!({"type": "noop", "priority": 1.5}), "priority"),
        (json!({"type": "noop", "priority": 2_000_000}), "priority"),
        (json!({"type": "noop", "queue": "no spaces"}), "queue"),
        (json!({"type": "noop", "queue": ""}), "queue"),
        (
            json!({"type": "noop", "idempotency_key": ""}),
            "idempotency_key",
        ),
    ] {
        let (status, answer) = app.post("/api/v1/tasks", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", loc]),
            "{body}: {answer}"
        );
    }
}

both_backends!(higher_priorities_run_first_and_equal_ones_in_arrival_order);
async fn higher_priorities_run_first_and_equal_ones_in_arrival_order() {
    // Tasks claimed together share their `started_at`; the handler notes the order they ran in.
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let noted = ran.clone();
    let mut router = HandlerRouter::with_builtins();
    router.register(
        "note",
        handler_fn(move |task| {
            let noted = noted.clone();
            async move {
                noted.lock().expect("ran").push(task.params["n"].clone());
                Ok(json!({}))
            }
        }),
    );
    let db = Arc::new(TestDb::create().await);
    let app = TestApp::with_router(db, Some(one_slot()), ApiSettings::default(), router).await;
    app.post_empty("/api/v1/queues/default/pause").await;
    let mut ids = Vec::new();
    for (n, priority) in [0, 5, -1, 5, 10].into_iter().enumerate() {
        let task = app
            .create_task(json!({"type": "note", "params": {"n": n}, "priority": priority, "run_immediately": true}))
            .await;
        assert_eq!(task["priority"], priority);
        ids.push(id_of(&task));
    }
    app.post_empty("/api/v1/queues/default/resume").await;
    for id in &ids {
        assert_eq!(app.finished(id).await.status, TaskStatus::Completed);
    }
    assert_eq!(*ran.lock().expect("ran"), [4, 1, 3, 0, 2]);
}

both_backends!(a_paused_queue_keeps_its_tasks_until_resumed_and_is_counted);
async fn a_paused_queue_keeps_its_tasks_until_resumed_and_is_counted() {
    let app = TestApp::start().await;
    let (status, paused) = app.post_empty("/api/v1/queues/mail/pause").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        paused,
        json!({"name": "mail", "paused": true, "concurrency": null, "counts": {}})
    );
    let mail = app
        .create_task(json!({"type": "noop", "queue": "mail", "run_immediately": true}))
        .await;
    let other = app
        .create_task(json!({"type": "noop", "run_immediately": true}))
        .await;
    assert_eq!(
        app.finished(&id_of(&other)).await.status,
        TaskStatus::Completed
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.task(&id_of(&mail)).await.status, TaskStatus::Queued);

    let (_, queues) = app.get("/api/v1/queues").await;
    assert_eq!(
        queues["items"],
        json!([
            {"name": "default", "paused": false, "concurrency": null, "counts": {"completed": 1}},
            {"name": "mail", "paused": true, "concurrency": null, "counts": {"queued": 1}}
        ])
    );
    let (_, resumed) = app.post_empty("/api/v1/queues/mail/resume").await;
    assert_eq!(resumed["paused"], false);
    assert_eq!(
        app.finished(&id_of(&mail)).await.status,
        TaskStatus::Completed
    );
    let (status, _) = app.post_empty("/api/v1/queues/bad%20name/pause").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

both_backends!(a_queue_limit_keeps_that_queue_to_its_concurrency);
async fn a_queue_limit_keeps_that_queue_to_its_concurrency() {
    // A handler that counts how many of its runs overlap.
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut router = HandlerRouter::with_builtins();
    let (now, max) = (running.clone(), most.clone());
    router.register(
        "probe",
        handler_fn(move |_task| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(at_once, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(json!({}))
            }
        }),
    );
    let settings = EngineSettings {
        queue_limits: vec![("slow".into(), 1)],
        ..fast_engine()
    };
    let db = Arc::new(TestDb::create().await);
    let app = TestApp::with_router(db, Some(settings), ApiSettings::default(), router).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let body = json!({"type": "probe", "queue": "slow", "run_immediately": true});
        ids.push(id_of(&app.create_task(body).await));
    }
    let other = app
        .create_task(json!({"type": "noop", "run_immediately": true}))
        .await;
    for id in &ids {
        assert_eq!(app.finished(id).await.status, TaskStatus::Completed);
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two 'slow' tasks ran at once"
    );
    assert_eq!(
        app.finished(&id_of(&other)).await.status,
        TaskStatus::Completed
    );
}

both_backends!(a_worker_told_which_queues_to_serve_leaves_the_others);
async fn a_worker_told_which_queues_to_serve_leaves_the_others() {
    let settings = EngineSettings {
        queues: Some(vec!["a".into()]),
        ..fast_engine()
    };
    let app = app_with(settings).await;
    let a = app
        .create_task(json!({"type": "noop", "queue": "a", "run_immediately": true}))
        .await;
    let b = app
        .create_task(json!({"type": "noop", "queue": "b", "run_immediately": true}))
        .await;
    assert_eq!(app.finished(&id_of(&a)).await.status, TaskStatus::Completed);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.task(&id_of(&b)).await.status, TaskStatus::Queued);
}

both_backends!(fifty_concurrent_creates_with_one_idempotency_key_yield_one_task);
async fn fifty_concurrent_creates_with_one_idempotency_key_yield_one_task() {
    let app = TestApp::without_workers().await;
    let body = json!({"type": "echo", "idempotency_key": "order-42", "run_immediately": true});
    let answers =
        futures::future::join_all((0..50).map(|_| app.post("/api/v1/tasks", body.clone()))).await;
    let first = &answers[0].1;
    for (status, task) in &answers {
        assert_eq!(*status, StatusCode::OK, "{task}");
        assert_eq!(task["id"], first["id"]);
    }
    assert_eq!(first["idempotency_key"], "order-42");
    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(list["total"], 1);
    let other = app
        .create_task(json!({"type": "echo", "idempotency_key": "order-43"}))
        .await;
    assert_ne!(other["id"], first["id"]);
}

both_backends!(ten_thousand_tasks_are_created_in_one_bulk_request);
async fn ten_thousand_tasks_are_created_in_one_bulk_request() {
    let app = TestApp::without_workers().await;
    let tasks: Vec<Value> = (0..10_000)
        .map(|n| json!({"type": "echo", "params": {"n": n}, "priority": n % 3, "run_immediately": true}))
        .collect();
    let (status, created) = app
        .post("/api/v1/tasks/bulk", json!({ "tasks": tasks }))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["created"], 10_000);
    let first = created["ids"][0].as_str().unwrap();
    let task = app.task(first).await;
    assert_eq!(
        (task.params, task.status),
        (json!({"n": 0}), TaskStatus::Queued)
    );
    let (_, list) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(list["total"], 10_000);
}

both_backends!(a_bulk_request_with_a_bad_item_stores_nothing_and_names_each_problem);
async fn a_bulk_request_with_a_bad_item_stores_nothing_and_names_each_problem() {
    let app = TestApp::without_workers().await;
    let mut tasks: Vec<Value> = (0..50).map(|_| json!({"type": "noop"})).collect();
    tasks[3] = json!({"type": ""});
    tasks[9] = json!({"type": "noop", "idempotency_key": "k"});
    tasks[20] = json!(7);
    let (status, answer) = app
        .post("/api/v1/tasks/bulk", json!({ "tasks": tasks }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<Value> = answer["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["body", "tasks", 3, "type"]),
            json!(["body", "tasks", 9, "idempotency_key"]),
            json!(["body", "tasks", 20]),
        ]
    );
    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(list["total"], 0);
}
