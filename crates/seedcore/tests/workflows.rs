//! Dependencies and workflows: tasks that wait for their parents, run in dependency order, see
//! their parents' results, and are cancelled (or run anyway) when a parent fails.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::*;
use reqwest::StatusCode;
use seedcore::{
    api::ApiSettings,
    engine::{HandlerError, HandlerRouter, TaskContext, handler_fn},
    model::{Task, TaskStatus},
};
use serde_json::{Value, json};

/// `sum`: its `n` plus the `value` every completed parent returned, returned as `value`, with
/// the parents it saw.
async fn sum(task: TaskContext) -> Result<Value, HandlerError> {
    let own = task.params["n"].as_i64().unwrap_or(0);
    let parents: i64 = task
        .parents
        .iter()
        .filter_map(|p| p.result.as_ref()?["result"]["value"].as_i64())
        .sum();
    let seen: Vec<Value> = task
        .parents
        .iter()
        .map(|p| json!({"key": p.key, "status": p.status}))
        .collect();
    Ok(json!({"value": own + parents, "parents": seen}))
}

async fn app() -> TestApp {
    let mut router = HandlerRouter::with_builtins();
    router.register("sum", handler_fn(sum));
    TestApp::with_router(
        Arc::new(TestDb::create().await),
        Some(fast_engine()),
        ApiSettings::default(),
        router,
    )
    .await
}

async fn create_workflow(app: &TestApp, body: Value) -> Value {
    let (status, workflow) = app.post("/api/v1/workflows", body).await;
    assert_eq!(status, StatusCode::CREATED, "create workflow: {workflow}");
    workflow
}

/// Waits until the workflow is no longer running, and returns it.
async fn settled(app: &TestApp, workflow: &Value) -> Value {
    let path = format!("/api/v1/workflows/{}", id_of(workflow));
    eventually(
        Duration::from_secs(20),
        "the workflow to settle",
        || async {
            let (status, workflow) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{workflow}");
            (workflow["status"] != "running").then_some(workflow)
        },
    )
    .await
}

/// The workflow's task with this key.
fn task_of(workflow: &Value, key: &str) -> Task {
    let task = workflow["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["workflow_key"] == key)
        .unwrap_or_else(|| panic!("no task {key} in {workflow}"));
    serde_json::from_value(task.clone()).expect("a task")
}

fn ran_after(child: &Task, parent: &Task) -> bool {
    child.started_at.expect("child started") >= parent.finished_at.expect("parent finished")
}

fn diamond() -> Value {
    json!({
        "name": "diamond",
        "tasks": [
            {"key": "join", "type": "sum", "params": {"n": 1000}, "depends_on": ["left", "right"]},
            {"key": "left", "type": "sum", "params": {"n": 10}, "depends_on": ["start"]},
            {"key": "right", "type": "sum", "params": {"n": 100}, "depends_on": ["start"]},
            {"key": "start", "type": "sum", "params": {"n": 1}},
        ]
    })
}

both_backends!(a_diamond_workflow_runs_in_dependency_order_and_passes_results_down);
async fn a_diamond_workflow_runs_in_dependency_order_and_passes_results_down() {
    let app = app().await;
    let created = create_workflow(&app, diamond()).await;
    assert_eq!(created["name"], "diamond");
    assert_eq!(created["tasks"].as_array().unwrap().len(), 4);
    assert_eq!(task_of(&created, "join").status, TaskStatus::Blocked);

    let done = settled(&app, &created).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["counts"], json!({"completed": 4}));
    let [start, left, right, join] = ["start", "left", "right", "join"].map(|k| task_of(&done, k));
    assert!(ran_after(&left, &start) && ran_after(&right, &start));
    assert!(ran_after(&join, &left) && ran_after(&join, &right));
    let output = &join.result.unwrap()["result"];
    assert_eq!(
        output["value"],
        1000 + 11 + 101,
        "join saw both parents' results"
    );
    assert_eq!(
        output["parents"],
        json!([{"key": "left", "status": "completed"}, {"key": "right", "status": "completed"}])
    );
    assert_eq!(join.depends_on, vec![left.id, right.id]);
    assert_eq!(join.workflow_id.unwrap().to_string(), id_of(&created));
}

both_backends!(a_failure_cancels_every_descendant_with_its_parent_named);
async fn a_failure_cancels_every_descendant_with_its_parent_named() {
    let app = app().await;
    let created = create_workflow(
        &app,
        json!({"tasks": [
            {"key": "extract", "type": "fail", "params": {"message": "source down"}},
            {"key": "transform", "type": "sum", "depends_on": ["extract"]},
            {"key": "load", "type": "sum", "depends_on": ["transform"]},
            {"key": "audit", "type": "sum"},
        ]}),
    )
    .await;
    let done = settled(&app, &created).await;
    assert_eq!(done["status"], "failed");
    let [extract, transform, load, audit] =
        ["extract", "transform", "load", "audit"].map(|k| task_of(&done, k));
    assert_eq!(extract.status, TaskStatus::Failed);
    assert_eq!(
        audit.status,
        TaskStatus::Completed,
        "unrelated tasks still run"
    );
    assert_eq!(transform.status, TaskStatus::Cancelled);
    assert_eq!(
        transform.error.as_deref(),
        Some(format!("dependency {} failed", extract.id).as_str())
    );
    assert_eq!(load.status, TaskStatus::Cancelled);
    assert_eq!(
        load.error.as_deref(),
        Some(format!("dependency {} cancelled", transform.id).as_str())
    );
    assert!(transform.started_at.is_none() && load.started_at.is_none());

    let (_, events) = app.get(&format!("/api/v1/tasks/{}/events", load.id)).await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "cancelled");
    assert_eq!(last["from_status"], "blocked");
    assert_eq!(last["error"], json!(load.error));
}

both_backends!(a_task_that_runs_on_failure_runs_once_its_parents_are_final);
async fn a_task_that_runs_on_failure_runs_once_its_parents_are_final() {
    let app = app().await;
    let created = create_workflow(
        &app,
        json!({"tasks": [
            {"key": "work", "type": "fail"},
            {"key": "fine", "type": "sum", "params": {"n": 5}},
            {"key": "cleanup", "type": "sum", "depends_on": ["work", "fine"], "run_on_failure": true},
        ]}),
    )
    .await;
    let done = settled(&app, &created).await;
    let cleanup = task_of(&done, "cleanup");
    assert_eq!(cleanup.status, TaskStatus::Completed);
    assert!(cleanup.run_on_failure);
    let output = &cleanup.result.clone().unwrap()["result"];
    assert_eq!(
        output["parents"],
        json!([{"key": "work", "status": "failed"}, {"key": "fine", "status": "completed"}])
    );
    assert!(ran_after(&cleanup, &task_of(&done, "work")));
    assert_eq!(done["status"], "failed", "a failed task fails the workflow");
}

both_backends!(a_task_created_with_depends_on_waits_blocked_for_its_parent);
async fn a_task_created_with_depends_on_waits_blocked_for_its_parent() {
    let app = app().await;
    let parent = app
        .create_task(json!({"type": "sum", "params": {"n": 2}}))
        .await;
    let child = app
        .create_task(json!({"type": "sum", "params": {"n": 3}, "depends_on": [id_of(&parent)]}))
        .await;
    assert_eq!(child["status"], "blocked");
    assert_eq!(child["depends_on"], json!([id_of(&parent)]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.task(&id_of(&child)).await.status, TaskStatus::Blocked);

    let (status, _) = app
        .post_empty(&format!("/api/v1/tasks/{}/run", id_of(&parent)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let child = app.finished(&id_of(&child)).await;
    assert_eq!(child.status, TaskStatus::Completed);
    assert_eq!(child.result.unwrap()["result"]["value"], 5);
    assert!(child.workflow_id.is_none());
}

both_backends!(a_child_of_finished_parents_starts_queued_or_cancelled_at_once);
async fn a_child_of_finished_parents_starts_queued_or_cancelled_at_once() {
    let app = app().await;
    let good = app
        .create_task(json!({"type": "noop", "run_immediately": true}))
        .await;
    let bad = app
        .create_task(json!({"type": "fail", "run_immediately": true}))
        .await;
    app.finished(&id_of(&good)).await;
    app.finished(&id_of(&bad)).await;

    let ready = app
        .create_task(json!({"type": "noop", "depends_on": [id_of(&good)]}))
        .await;
    assert_eq!(ready["status"], "queued");
    let doomed = app
        .create_task(json!({"type": "noop", "depends_on": [id_of(&good), id_of(&bad)]}))
        .await;
    assert_eq!(doomed["status"], "cancelled");
    assert_eq!(
        doomed["error"],
        format!("dependency {} failed", id_of(&bad))
    );
    assert!(doomed["finished_at"].is_string());
    let anyway = app
        .create_task(json!({"type": "noop", "depends_on": [id_of(&bad)], "run_on_failure": true}))
        .await;
    assert_eq!(anyway["status"], "queued");
    assert_eq!(
        app.finished(&id_of(&anyway)).await.status,
        TaskStatus::Completed
    );
}

both_backends!(cancelling_a_waiting_task_cancels_its_descendants);
async fn cancelling_a_waiting_task_cancels_its_descendants() {
    let app = TestApp::without_workers().await;
    let root = app.create_task(json!({"type": "noop"})).await;
    let middle = app
        .create_task(json!({"type": "noop", "depends_on": [id_of(&root)]}))
        .await;
    let leaf = app
        .create_task(json!({"type": "noop", "depends_on": [id_of(&middle)]}))
        .await;
    let (status, cancelled) = app
        .post_empty(&format!("/api/v1/tasks/{}/cancel", id_of(&middle)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");
    let leaf = app.task(&id_of(&leaf)).await;
    assert_eq!(leaf.status, TaskStatus::Cancelled);
    assert_eq!(
        leaf.error,
        Some(format!("dependency {} cancelled", id_of(&middle)))
    );
    assert_eq!(app.task(&id_of(&root)).await.status, TaskStatus::Created);
}

both_backends!(running_a_cancelled_dependent_again_waits_for_a_parent_run_again);
async fn running_a_cancelled_dependent_again_waits_for_a_parent_run_again() {
    let flaky_failed = Arc::new(AtomicBool::new(false));
    let mut router = HandlerRouter::with_builtins();
    let failed = flaky_failed.clone();
    router.register(
        "flaky",
        handler_fn(move |_task| {
            let failed = failed.clone();
            async move {
                if failed.swap(true, Ordering::SeqCst) {
                    Ok(json!("fine now"))
                } else {
                    Err(HandlerError::Permanent("first run fails".into()))
                }
            }
        }),
    );
    let app = TestApp::with_router(
        Arc::new(TestDb::create().await),
        Some(fast_engine()),
        ApiSettings::default(),
        router,
    )
    .await;
    let parent = app
        .create_task(json!({"type": "flaky", "run_immediately": true}))
        .await;
    let child = app
        .create_task(json!({"type": "noop", "depends_on": [id_of(&parent)]}))
        .await;
    assert_eq!(
        app.finished(&id_of(&child)).await.status,
        TaskStatus::Cancelled
    );

    let (_, rerun) = app
        .post_empty(&format!("/api/v1/tasks/{}/run", id_of(&child)))
        .await;
    assert_eq!(rerun["status"], "blocked", "its parent has not completed");
    app.post_empty(&format!("/api/v1/tasks/{}/run", id_of(&parent)))
        .await;
    assert_eq!(
        app.finished(&id_of(&child)).await.status,
        TaskStatus::Completed
    );
}

both_backends!(a_child_of_many_parents_finishing_at_once_runs_exactly_once);
async fn a_child_of_many_parents_finishing_at_once_runs_exactly_once() {
    let app = app().await;
    let mut steps = vec![
        json!({"key": "child", "type": "sum", "depends_on": (0..60).map(|i| format!("p{i}")).collect::<Vec<_>>()}),
    ];
    steps.extend(
        (0..60).map(|i| json!({"key": format!("p{i}"), "type": "sum", "params": {"n": 1}})),
    );
    let created = create_workflow(&app, json!({"tasks": steps})).await;
    let done = settled(&app, &created).await;
    let child = task_of(&done, "child");
    assert_eq!(child.status, TaskStatus::Completed, "{done}");
    assert_eq!(child.result.unwrap()["result"]["value"], 60);
    assert_eq!(child.attempts, 1);
    let kinds = app.event_kinds(&child.id.to_string()).await;
    assert_eq!(kinds, vec!["created", "queued", "claimed", "completed"]);
}

both_backends!(a_cycle_is_refused_with_each_task_on_it_named_and_nothing_stored);
async fn a_cycle_is_refused_with_each_task_on_it_named_and_nothing_stored() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(
            "/api/v1/workflows",
            json!({"tasks": [
                {"key": "a", "type": "noop", "depends_on": ["b"]},
                {"key": "b", "type": "noop", "depends_on": ["a"]},
                {"key": "c", "type": "noop"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<&Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert_eq!(
        locs,
        vec![
            &json!(["body", "tasks", 0, "depends_on"]),
            &json!(["body", "tasks", 1, "depends_on"])
        ]
    );
    assert!(
        body["detail"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "cycle")
    );
    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(list["total"], 0);
}

both_backends!(bad_workflow_requests_name_every_problem);
async fn bad_workflow_requests_name_every_problem() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(
            "/api/v1/workflows",
            json!({"name": 5, "tasks": [
                {"key": "a", "type": "noop", "depends_on": ["a", "ghost"]},
                {"key": "a", "type": ""},
                {"type": "noop", "idempotency_key": "k"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/workflows",
            json!({"tasks": [
                {"key": "a", "type": "noop", "depends_on": ["a", "ghost"]},
                {"key": "a", "type": "noop"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let found: Vec<(Value, Value)> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["loc"].clone(), e["type"].clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (json!(["body", "tasks", 1, "key"]), json!("duplicate_key")),
            (
                json!(["body", "tasks", 0, "depends_on", 0]),
                json!("self_dependency")
            ),
            (
                json!(["body", "tasks", 0, "depends_on", 1]),
                json!("unknown_key")
            ),
        ]
    );
    let (status, body) = app
        .post(
            "/api/v1/workflows",
            json!({"tasks": [{"type": "noop"}, {"key": "b", "type": "noop", "idempotency_key": "k"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let kinds: Vec<&Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["type"])
        .collect();
    assert_eq!(kinds, vec!["missing", "not_in_workflow"]);
    let (status, body) = app.post("/api/v1/workflows", json!({"tasks": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

both_backends!(depends_on_must_name_existing_tasks_by_full_id);
async fn depends_on_must_name_existing_tasks_by_full_id() {
    let app = TestApp::without_workers().await;
    let ghost = uuid::Uuid::new_v4();
    let (status, body) = app
        .post(
            "/api/v1/tasks",
            json!({"type": "noop", "depends_on": [ghost]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "depends_on"]));
    assert_eq!(
        body["detail"][0]["msg"],
        format!("No task has the id {ghost}")
    );
    let (status, body) = app
        .post(
            "/api/v1/tasks",
            json!({"type": "noop", "depends_on": ["abc"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "depends_on", 0]));
    let (status, _) = app
        .post(
            "/api/v1/tasks",
            json!({"type": "noop", "run_on_failure": "yes"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(list["total"], 0);
}

both_backends!(cancelling_a_workflow_cancels_what_has_not_finished);
async fn cancelling_a_workflow_cancels_what_has_not_finished() {
    let app = app().await;
    let created = create_workflow(
        &app,
        json!({"tasks": [
            {"key": "quick", "type": "noop"},
            {"key": "slow", "type": "sleep", "params": {"seconds": 30}},
            {"key": "after", "type": "noop", "depends_on": ["slow"]},
        ]}),
    )
    .await;
    let id = id_of(&created);
    app.wait_for(
        &task_of(&created, "slow").id.to_string(),
        Duration::from_secs(10),
        |t| t.status == TaskStatus::Running,
    )
    .await;
    app.finished(&task_of(&created, "quick").id.to_string())
        .await;
    let (status, cancelled) = app
        .post_empty(&format!("/api/v1/workflows/{id}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(task_of(&cancelled, "quick").status, TaskStatus::Completed);
    assert_eq!(task_of(&cancelled, "slow").status, TaskStatus::Cancelled);
    assert_eq!(task_of(&cancelled, "after").status, TaskStatus::Cancelled);

    let (status, body) = app
        .get(&format!("/api/v1/workflows/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Workflow not found");
    let (status, _) = app.get("/api/v1/workflows/not-a-uuid").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

both_backends!(blocked_tasks_are_listed_and_counted_by_status);
async fn blocked_tasks_are_listed_and_counted_by_status() {
    let app = TestApp::without_workers().await;
    let parent = app.create_task(json!({"type": "noop"})).await;
    app.create_task(json!({"type": "noop", "depends_on": [id_of(&parent)]}))
        .await;
    let (status, list) = app.get("/api/v1/tasks?status=blocked").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    let (_, queues) = app.get("/api/v1/queues").await;
    assert_eq!(
        queues["items"][0]["counts"],
        json!({"blocked": 1, "created": 1})
    );
}

both_backends!(workflows_are_listed_newest_first_with_status_and_counts);
async fn workflows_are_listed_newest_first_with_status_and_counts() {
    let app = TestApp::without_workers().await;
    let older = create_workflow(
        &app,
        json!({"name": "older", "tasks": [{"key": "a", "type": "noop"}, {"key": "b", "type": "noop", "depends_on": ["a"]}]}),
    )
    .await;
    let newer = create_workflow(
        &app,
        json!({"name": "newer", "tasks": [{"key": "only", "type": "noop"}]}),
    )
    .await;
    app.post_empty(&format!("/api/v1/workflows/{}/cancel", id_of(&newer)))
        .await;

    let (status, list) = app.get("/api/v1/workflows").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "newer");
    assert_eq!(items[0]["status"], "cancelled");
    assert_eq!(items[0]["counts"], json!({"cancelled": 1}));
    assert_eq!(items[1]["id"], older["id"]);
    assert_eq!(items[1]["status"], "running");
    assert_eq!(items[1]["counts"], json!({"blocked": 1, "queued": 1}));
    assert!(
        items[1].get("tasks").is_none(),
        "a list leaves the tasks out"
    );

    let (_, page) = app.get("/api/v1/workflows?limit=1&offset=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["name"], "older");
    let (status, _) = app.get("/api/v1/workflows?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
