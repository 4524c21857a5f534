//! Bulk actions (`POST /api/v1/tasks/actions`) and the single task delete: a bulk cancel of
//! 100,000 tasks while new ones flow, run again and delete on a filter, progress as batches
//! commit, refusals, an action that outlives its server, and the rules of `DELETE`.

mod common;

use std::time::Duration;

use common::{process::Process, *};
use reqwest::StatusCode;
use seedcore::{
    model::TaskStatus,
    store::{ActionFilter, ActionKind, ActionState, NewAction},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Creates `n` tasks through the bulk endpoint, 10,000 per request; returns their ids.
async fn create_many(app: &TestApp, n: usize, task: Value) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let size = left.min(10_000);
        let tasks: Vec<Value> = (0..size).map(|_| task.clone()).collect();
        let (status, body) = app
            .post("/api/v1/tasks/bulk", json!({"tasks": tasks}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.extend(
            body["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_string()),
        );
        left -= size;
    }
    ids
}

async fn submit(app: &TestApp, body: Value) -> Value {
    let (status, action) = app.post("/api/v1/tasks/actions", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{action}");
    assert_eq!(action["state"], "running");
    action
}

/// Polls the action until it is no longer running.
async fn finished(app: &TestApp, id: &str, within: Duration) -> Value {
    eventually(within, "the action finishing", || async {
        let (status, action) = app.get(&format!("/api/v1/actions/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{action}");
        (action["state"] != "running").then_some(action)
    })
    .await
}

async fn status_of(app: &TestApp, id: &str) -> String {
    app.task(id).await.status.as_str().to_string()
}

both_backends!(a_bulk_cancel_of_100_000_tasks_completes_with_correct_counts_while_new_tasks_flow);
async fn a_bulk_cancel_of_100_000_tasks_completes_with_correct_counts_while_new_tasks_flow() {
    let app = TestApp::start().await;
    const MATCHING: usize = 100_000;
    create_many(&app, MATCHING, json!({"type": "echo", "queue": "backlog"})).await;
    let action = submit(
        &app,
        json!({"action": "cancel", "filter": {"queue": "backlog", "status": "created"}}),
    )
    .await;
    let action_id = id_of(&action);

    // While it runs: new tasks of the same queue (created after it, so untouched), and
    // tasks of another queue that the workers execute.
    let mut late = Vec::new();
    let mut flowing = Vec::new();
    loop {
        late.push(id_of(
            &app.create_task(json!({"type": "echo", "queue": "backlog"}))
                .await,
        ));
        flowing.push(id_of(
            &app.create_task(json!({"type": "echo", "run_immediately": true}))
                .await,
        ));
        let (_, now) = app.get(&format!("/api/v1/actions/{action_id}")).await;
        if now["state"] != "running" || late.len() >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let action = finished(&app, &action_id, Duration::from_secs(45)).await;
    assert_eq!(action["state"], "completed", "{action}");
    assert_eq!(action["matched"], MATCHING);
    assert_eq!(action["done"], MATCHING);
    assert_eq!(action["skipped"], 0);
    assert!(action["finished_at"].is_string());
    assert_eq!(
        action["filter"],
        json!({"queue": "backlog", "status": "created"})
    );

    for id in &late {
        assert_eq!(
            status_of(&app, id).await,
            "created",
            "a task created after the action"
        );
    }
    for id in &flowing {
        assert_eq!(app.finished(id).await.status, TaskStatus::Completed);
    }
    let (_, cancelled) = app.get("/api/v1/tasks?status=cancelled&limit=1").await;
    assert_eq!(cancelled["total"], MATCHING);
    app.stop().await;
}

both_backends!(a_bulk_cancel_stops_running_handlers);
async fn a_bulk_cancel_stops_running_handlers() {
    let app = TestApp::start().await;
    let sleeper = id_of(
        &app.create_task(json!({"type": "sleep", "params": {"seconds": 30}, "queue": "slow", "run_immediately": true}))
            .await,
    );
    app.wait_for(&sleeper, Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    let action = submit(
        &app,
        json!({"action": "cancel", "filter": {"queue": "slow"}}),
    )
    .await;
    let action = finished(&app, &id_of(&action), Duration::from_secs(10)).await;
    assert_eq!(
        (action["matched"].clone(), action["done"].clone()),
        (json!(1), json!(1))
    );
    let task = app.finished(&sleeper).await;
    assert_eq!(task.status, TaskStatus::Cancelled);
    // The handler was told: the trail ends with the cancel, no completion after it.
    let kinds = app.event_kinds(&sleeper).await;
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("cancelled"),
        "{kinds:?}"
    );
    app.stop().await;
}

both_backends!(run_again_and_delete_apply_to_the_matching_tasks_only);
async fn run_again_and_delete_apply_to_the_matching_tasks_only() {
    let app = TestApp::without_workers().await;
    let alphas = create_many(&app, 30, json!({"type": "alpha"})).await;
    let betas = create_many(&app, 20, json!({"type": "beta"})).await;
    for id in alphas.iter().take(10).chain(betas.iter().take(5)) {
        app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    }

    // Run again: the 10 cancelled alphas only.
    let action = submit(
        &app,
        json!({"action": "run", "filter": {"type": "alpha", "status": "cancelled"}}),
    )
    .await;
    let action = finished(&app, &id_of(&action), Duration::from_secs(20)).await;
    assert_eq!(
        (
            &action["state"],
            &action["matched"],
            &action["done"],
            &action["skipped"]
        ),
        (&json!("completed"), &json!(10), &json!(10), &json!(0))
    );
    for id in &alphas[..10] {
        assert_eq!(status_of(&app, id).await, "queued");
        let kinds = app.event_kinds(id).await;
        assert_eq!(kinds, ["created", "cancelled", "queued"]);
        let (_, trail) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
        assert_eq!(trail["items"][2]["actor"], "anonymous", "without tokens");
    }
    assert_eq!(status_of(&app, &betas[0]).await, "cancelled");

    // Delete finished betas: the 5 cancelled ones go, with their trails.
    let action = submit(
        &app,
        json!({"action": "delete", "filter": {"type": "beta"}}),
    )
    .await;
    let action = finished(&app, &id_of(&action), Duration::from_secs(20)).await;
    assert_eq!(
        (&action["matched"], &action["done"]),
        (&json!(5), &json!(5))
    );
    for id in &betas[..5] {
        let (status, _) = app.get(&format!("/api/v1/tasks/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for id in &betas[5..] {
        assert_eq!(status_of(&app, id).await, "created");
    }
    // Run again on tasks that cannot run again matches nothing.
    let action = submit(
        &app,
        json!({"action": "run", "filter": {"status": "queued"}}),
    )
    .await;
    let action = finished(&app, &id_of(&action), Duration::from_secs(20)).await;
    assert_eq!(
        (&action["state"], &action["matched"]),
        (&json!("completed"), &json!(0))
    );
    app.stop().await;
}

both_backends!(an_action_reports_its_progress_batch_by_batch);
async fn an_action_reports_its_progress_batch_by_batch() {
    let app = TestApp::without_workers().await;
    let paced = create_many(&app, 25, json!({"type": "echo", "queue": "paced"})).await;
    // An action this test drives itself, one batch at a time, as a server's runner would.
    let owner = "process:test";
    let action = app
        .store
        .create_action(
            NewAction {
                id: Uuid::new_v4(),
                action: ActionKind::Cancel,
                filter: ActionFilter {
                    queue: Some("paced".into()),
                    ..ActionFilter::default()
                },
                actor: Some("token:ops".into()),
            },
            owner,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let path = format!("/api/v1/actions/{}", action.id);
    let mut seen = Vec::new();
    loop {
        let step = app
            .store
            .action_batch(action.id, owner, Duration::from_secs(3600), 10)
            .await
            .unwrap()
            .expect("still held");
        let (status, reported) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reported["matched"], step.matched);
        seen.push((
            reported["matched"].as_i64().unwrap(),
            reported["state"].clone(),
        ));
        if step.state != ActionState::Running {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            (10, json!("running")),
            (20, json!("running")),
            (25, json!("completed"))
        ]
    );
    // Another owner holds nothing: its batch changes nothing.
    let other = app
        .store
        .action_batch(action.id, "process:other", Duration::from_secs(1), 10)
        .await
        .unwrap();
    assert!(other.is_none());
    let (_, listed) = app.get("/api/v1/actions").await;
    assert_eq!(listed["items"][0]["id"], action.id.to_string());
    assert_eq!(listed["items"][0]["actor"], "token:ops");
    // The audit trail says who acted.
    for id in &paced {
        let (_, trail) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
        let last = trail["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (&last["kind"], &last["actor"]),
            (&json!("cancelled"), &json!("token:ops"))
        );
    }
    app.stop().await;
}

both_backends!(a_bad_action_or_filter_is_refused_with_422);
async fn a_bad_action_or_filter_is_refused_with_422() {
    let app = TestApp::without_workers().await;
    for (body, loc) in [
        (
            json!({"action": "explode", "filter": {}}),
            json!(["body", "action"]),
        ),
        (json!({"filter": {}}), json!(["body", "action"])),
        (json!({"action": "cancel"}), json!(["body", "filter"])),
        (
            json!({"action": "cancel", "filter": []}),
            json!(["body", "filter"]),
        ),
        (
            json!({"action": "cancel", "filter": {"status": "sleeping"}}),
            json!(["body", "filter", "status"]),
        ),
        (
            json!({"action": "cancel", "filter": {"colour": "red"}}),
            json!(["body", "filter", "colour"]),
        ),
        (
            json!({"action": "cancel", "filter": {"workflow_id": "nope"}}),
            json!(["body", "filter", "workflow_id"]),
        ),
        (
            json!({"action": "cancel", "filter": {"created_after": "yesterday"}}),
            json!(["body", "filter", "created_after"]),
        ),
        (
            json!({"action": "cancel", "filter": {"queue": "no spaces"}}),
            json!(["body", "filter", "queue"]),
        ),
        (
            json!({"action": "cancel", "filter": {}, "force": true}),
            json!(["body", "force"]),
        ),
    ] {
        let (status, answer) = app.post("/api/v1/tasks/actions", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
    }
    let (status, _) = app
        .get(&format!("/api/v1/actions/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/actions/not-an-id").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, listed) = app.get("/api/v1/actions").await;
    assert_eq!(listed["items"], json!([]), "nothing was stored");
    app.stop().await;
}

both_backends!(delete_removes_a_finished_task_and_refuses_others);
async fn delete_removes_a_finished_task_and_refuses_others() {
    let app = TestApp::without_workers().await;
    let done = id_of(&app.create_task(json!({"type": "echo"})).await);
    app.post_empty(&format!("/api/v1/tasks/{done}/cancel"))
        .await;
    let waiting = id_of(&app.create_task(json!({"type": "echo"})).await);

    let (status, body) = app.delete(&format!("/api/v1/tasks/{waiting}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("created"),
        "{body}"
    );
    assert_eq!(status_of(&app, &waiting).await, "created");

    let (status, _) = app.delete(&format!("/api/v1/tasks/{done}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/api/v1/tasks/{done}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&format!("/api/v1/tasks/{done}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "Task not found");

    // A finished parent that a blocked child still waits on stays (its outcome decides the
    // child's), in a single delete and in a bulk one.
    let first = id_of(&app.create_task(json!({"type": "echo"})).await);
    let second = id_of(&app.create_task(json!({"type": "echo"})).await);
    let child = app
        .create_task(json!({"type": "echo", "depends_on": [first, second], "run_on_failure": true}))
        .await;
    app.post_empty(&format!("/api/v1/tasks/{first}/cancel"))
        .await;
    assert_eq!(status_of(&app, &id_of(&child)).await, "blocked");
    let (status, body) = app.delete(&format!("/api/v1/tasks/{first}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("waits"), "{body}");
    let action = submit(
        &app,
        json!({"action": "delete", "filter": {"status": "cancelled"}}),
    )
    .await;
    let action = finished(&app, &id_of(&action), Duration::from_secs(20)).await;
    assert_eq!(
        (&action["matched"], &action["done"], &action["skipped"]),
        (&json!(1), &json!(0), &json!(1))
    );
    assert_eq!(status_of(&app, &first).await, "cancelled");
    app.stop().await;
}

postgres_only!(an_action_left_by_a_stopped_server_is_finished_by_the_next);
async fn an_action_left_by_a_stopped_server_is_finished_by_the_next() {
    let app = TestApp::without_workers().await;
    const MATCHING: usize = 20_000;
    create_many(&app, MATCHING, json!({"type": "echo", "queue": "orphan"})).await;
    let url = app.db.url();
    let env = [
        ("PG_DSN", url.as_str()),
        ("PORT", "0"),
        ("SEEDCORE_WORKER_CONCURRENCY", "0"),
        ("SEEDCORE_ACTION_BATCH_SIZE", "20"),
        ("SEEDCORE_ACTION_LEASE_SECONDS", "2"),
    ];
    let mut first = Process::spawn(&["serve"], &env);
    let base = first.wait_for_address();
    let client = reqwest::Client::new();
    let action: Value = client
        .post(format!("{base}/api/v1/tasks/actions"))
        .json(&json!({"action": "cancel", "filter": {"queue": "orphan"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = id_of(&action);
    let before = eventually(Duration::from_secs(20), "the first batches", || async {
        let (_, now) = app.get(&format!("/api/v1/actions/{id}")).await;
        (now["matched"].as_i64().unwrap_or(0) > 0).then_some(now)
    })
    .await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    assert_eq!(before["state"], "running", "killed mid-action: {before}");

    let mut second = Process::spawn(&["serve"], &env);
    second.wait_for_address();
    let after = finished(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(after["state"], "completed", "{after}");
    assert_eq!(after["matched"], MATCHING);
    assert_eq!(after["done"], MATCHING);
    assert_eq!(after["skipped"], 0);
    let (_, cancelled) = app.get("/api/v1/tasks?status=cancelled&limit=1").await;
    assert_eq!(cancelled["total"], MATCHING);
    second.stop();
    app.stop().await;
}
