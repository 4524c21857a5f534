//! Retention: finished tasks past the retention period are deleted with their events; live
//! tasks and parents a blocked task waits on are kept.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use reqwest::StatusCode;
use seedcore::{api::ApiSettings, engine::EngineSettings, maintenance::Keeping};
use serde_json::json;

/// Creates a task that runs at once and waits until it is final; returns its id.
async fn finished(app: &TestApp, task_type: &str) -> String {
    let task = app
        .create_task(json!({"type": task_type, "run_immediately": true}))
        .await;
    app.finished(&id_of(&task)).await;
    id_of(&task)
}

async fn exists(app: &TestApp, id: &str) -> bool {
    let (status, _) = app.get(&format!("/api/v1/tasks/{id}")).await;
    status == StatusCode::OK
}

both_backends!(pruning_deletes_finished_tasks_with_their_events_and_keeps_the_rest);
async fn pruning_deletes_finished_tasks_with_their_events_and_keeps_the_rest() {
    let app = TestApp::start().await;
    let completed = finished(&app, "noop").await;
    let failed = finished(&app, "fail").await;
    let waited_on = finished(&app, "noop").await;
    let idle = id_of(&app.create_task(json!({"type": "noop"})).await);
    let blocked = app
        .create_task(json!({"type": "noop", "depends_on": [waited_on, idle]}))
        .await;
    assert_eq!(blocked["status"], "blocked");

    let a_minute_ago = Utc::now() - chrono::Duration::minutes(1);
    assert_eq!(
        app.store.prune_finished(a_minute_ago, 100).await.unwrap(),
        0
    );
    let soon = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(app.store.prune_finished(soon, 100).await.unwrap(), 2);

    for gone in [&completed, &failed] {
        assert!(!exists(&app, gone).await, "{gone} was pruned");
        let (status, _) = app.get(&format!("/api/v1/tasks/{gone}/events")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for kept in [&waited_on, &idle, &id_of(&blocked)] {
        assert!(exists(&app, kept).await, "{kept} was kept");
    }
    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(list["total"], 3);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

both_backends!(pruning_goes_oldest_first_in_batches_of_the_limit);
async fn pruning_goes_oldest_first_in_batches_of_the_limit() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(finished(&app, "noop").await);
    }
    let soon = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(app.store.prune_finished(soon, 2).await.unwrap(), 2);
    assert!(!exists(&app, &ids[0]).await && !exists(&app, &ids[1]).await);
    assert!(exists(&app, &ids[2]).await);
    assert_eq!(app.store.prune_finished(soon, 10).await.unwrap(), 3);
    assert_eq!(app.store.prune_finished(soon, 10).await.unwrap(), 0);
}

both_backends!(a_process_with_a_retention_period_prunes_on_its_own);
async fn a_process_with_a_retention_period_prunes_on_its_own() {
    let app = TestApp::start().await;
    let done = finished(&app, "noop").await;
    let waiting = id_of(&app.create_task(json!({"type": "noop"})).await);
    let workflow = {
        let (status, workflow) = app
            .post(
                "/api/v1/workflows",
                json!({"tasks": [{"key": "only", "type": "noop"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        workflow
    };
    let only = workflow["tasks"][0]["id"].as_str().unwrap().to_string();
    app.finished(&only).await;
    let db = app.stop().await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let keeping_a_moment = EngineSettings {
        keeping: Keeping {
            retention: Some(Duration::from_millis(10)),
            ..Keeping::default()
        },
        ..fast_engine()
    };
    let app = TestApp::on(db, Some(keeping_a_moment), ApiSettings::default()).await;
    eventually(
        Duration::from_secs(10),
        "the finished tasks to be pruned",
        || async { (!exists(&app, &done).await && !exists(&app, &only).await).then_some(()) },
    )
    .await;
    assert!(exists(&app, &waiting).await, "an unfinished task stays");
    let (status, _) = app
        .get(&format!("/api/v1/workflows/{}", id_of(&workflow)))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a workflow with no task left goes too"
    );
}
