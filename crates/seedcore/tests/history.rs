//! The history table (PostgreSQL): finished tasks moved out of the hot table read, list,
//! count, run again, hold their idempotency keys and settle their dependents exactly as they
//! did before the move; housekeeping moves them on its own and prunes them there.

mod common;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use common::*;
use futures::future::join_all;
use reqwest::StatusCode;
use seedcore::{api::ApiSettings, engine::EngineSettings, maintenance::Keeping, store::PgStore};
use serde_json::{Value, json};

/// The app with workers on a PostgreSQL database of its own, and that database's store.
async fn app() -> (TestApp, PgStore) {
    let app = TestApp::on(
        Arc::new(TestDb::postgres().await),
        Some(fast_engine()),
        ApiSettings::default(),
    )
    .await;
    let store = app.db.pg_store().await;
    (app, store)
}

/// Runs a task to the end; returns its id.
async fn finished(app: &TestApp, body: Value) -> String {
    app.run_to_the_end(body).await.id.to_string()
}

/// Moves every task finished by now to the history; returns how many moved.
async fn archive_all(app: &TestApp) -> u64 {
    let soon = Utc::now() + chrono::Duration::seconds(1);
    app.store.archive_finished(soon, 10_000).await.unwrap()
}

async fn in_history(store: &PgStore, id: &str) -> bool {
    sqlx::query_scalar("select exists (select 1 from task_history where id = $1::uuid)")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn hot_rows(store: &PgStore) -> i64 {
    sqlx::query_scalar("select count(*) from tasks")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Everything the API answers about these tasks and their workflow, as one value.
async fn what_the_api_says(app: &TestApp, ids: &[String], workflow: &str) -> Value {
    app.store.fold_counters().await.unwrap();
    let mut seen = serde_json::Map::new();
    for id in ids {
        seen.insert(
            format!("task {id}"),
            app.get(&format!("/api/v1/tasks/{id}")).await.1,
        );
        let short = &id[..8];
        seen.insert(
            format!("prefix {short}"),
            app.get(&format!("/api/v1/tasks/{short}")).await.1,
        );
        let events = app.get(&format!("/api/v1/tasks/{id}/events")).await.1;
        seen.insert(format!("events {id}"), events);
    }
    for path in [
        "/api/v1/tasks",
        "/api/v1/tasks?limit=2&offset=1",
        "/api/v1/tasks?status=completed",
        "/api/v1/tasks?status=failed",
        "/api/v1/tasks?type=fail",
        "/api/v1/queues",
        "/api/v1/workflows",
        &format!("/api/v1/workflows/{workflow}"),
    ] {
        seen.insert(path.to_string(), app.get(path).await.1);
    }
    Value::Object(seen)
}

postgres_only!(finished_tasks_read_the_same_after_they_move_to_the_history);
async fn finished_tasks_read_the_same_after_they_move_to_the_history() {
    let (app, store) = app().await;
    let mut ids = vec![
        finished(&app, json!({"type": "noop", "params": {"n": 1}})).await,
        finished(&app, json!({"type": "fail", "max_attempts": 1})).await,
        finished(&app, json!({"type": "noop", "idempotency_key": "k-1"})).await,
    ];
    let later = app
        .create_task(json!({"type": "noop", "delay_seconds": 3600}))
        .await;
    let (status, _) = app
        .post_empty(&format!("/api/v1/tasks/{}/cancel", id_of(&later)))
        .await;
    assert_eq!(status, StatusCode::OK);
    ids.push(id_of(&later));
    let (status, workflow) = app
        .post(
            "/api/v1/workflows",
            json!({"tasks": [{"key": "a", "type": "noop"},
                             {"key": "b", "type": "noop", "depends_on": ["a"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{workflow}");
    for task in workflow["tasks"].as_array().unwrap() {
        app.finished(&id_of(task)).await;
        ids.push(id_of(task));
    }
    let before = what_the_api_says(&app, &ids, &id_of(&workflow)).await;

    assert_eq!(archive_all(&app).await, 6);

    assert_eq!(
        hot_rows(&store).await,
        0,
        "the hot table holds nothing finished"
    );
    let live_events: i64 = sqlx::query_scalar("select count(*) from task_events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(live_events, 0, "the events moved with their tasks");
    for id in &ids {
        assert!(in_history(&store, id).await, "{id} moved");
    }
    let after = what_the_api_says(&app, &ids, &id_of(&workflow)).await;
    assert_eq!(after, before);
}

postgres_only!(a_key_held_by_a_moved_task_still_returns_that_task);
async fn a_key_held_by_a_moved_task_still_returns_that_task() {
    let (app, store) = app().await;
    let first = finished(&app, json!({"type": "noop", "idempotency_key": "once"})).await;
    archive_all(&app).await;

    let again = app
        .create_task(json!({"type": "noop", "idempotency_key": "once"}))
        .await;

    assert_eq!(id_of(&again), first);
    assert_eq!(again["status"], "completed");
    assert_eq!(hot_rows(&store).await, 0, "nothing new was written");
}

postgres_only!(creates_racing_the_move_of_their_key_holders_all_get_the_holders);
async fn creates_racing_the_move_of_their_key_holders_all_get_the_holders() {
    let (app, store) = app().await;
    let mut holders = Vec::new();
    for n in 0..60 {
        let key = format!("race-{n}");
        let body = json!({"type": "noop", "idempotency_key": key, "run_immediately": true});
        holders.push((key, id_of(&app.create_task(body).await)));
    }
    for (_, id) in &holders {
        app.finished(id).await;
    }

    let soon = Utc::now() + chrono::Duration::seconds(1);
    let moves = async {
        let mut moved = 0;
        while moved < holders.len() as u64 {
            moved += app.store.archive_finished(soon, 3).await.unwrap();
        }
    };
    let creates = join_all(
        holders
            .iter()
            .map(|(key, _)| app.create_task(json!({"type": "noop", "idempotency_key": key}))),
    );
    let ((), created) = tokio::join!(moves, creates);

    for ((key, holder), task) in holders.iter().zip(created) {
        assert_eq!(&id_of(&task), holder, "a create with {key} got its holder");
    }
    assert_eq!(hot_rows(&store).await, 0);
    let stored: i64 = sqlx::query_scalar("select count(*) from all_tasks")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, holders.len() as i64, "one task per key");
}

postgres_only!(running_a_moved_task_again_brings_it_back_and_runs_it);
async fn running_a_moved_task_again_brings_it_back_and_runs_it() {
    let (app, store) = app().await;
    let id = finished(
        &app,
        json!({"type": "fail", "max_attempts": 1, "params": {"message": "first"}}),
    )
    .await;
    archive_all(&app).await;

    let (status, queued) = app.post_empty(&format!("/api/v1/tasks/{id}/run")).await;

    assert_eq!(status, StatusCode::OK, "{queued}");
    assert_eq!(queued["attempts"], 0);
    assert!(!in_history(&store, &id).await, "it is live again");
    let done = app
        .wait_for(&id, Duration::from_secs(20), |t| {
            t.status.is_final() && t.attempts == 1
        })
        .await;
    assert_eq!(done.error.as_deref(), Some("first"));
    let kinds = app.event_kinds(&id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "created").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "failed").count(),
        2,
        "{kinds:?}"
    );
}

postgres_only!(dependents_of_moved_parents_start_from_their_outcomes);
async fn dependents_of_moved_parents_start_from_their_outcomes() {
    let (app, _store) = app().await;
    let completed = finished(&app, json!({"type": "noop"})).await;
    let failed = finished(&app, json!({"type": "fail", "max_attempts": 1})).await;
    archive_all(&app).await;

    let after_success = app
        .create_task(json!({"type": "noop", "depends_on": [completed]}))
        .await;
    let after_failure = app
        .create_task(json!({"type": "noop", "depends_on": [failed]}))
        .await;
    let on_failure = app
        .create_task(json!({"type": "noop", "depends_on": [failed], "run_on_failure": true}))
        .await;

    assert_eq!(after_failure["status"], "cancelled");
    assert_eq!(
        after_failure["error"],
        format!("dependency {failed} failed")
    );
    for runs in [&after_success, &on_failure] {
        assert_eq!(
            app.finished(&id_of(runs)).await.status.as_str(),
            "completed"
        );
    }
}

postgres_only!(a_blocked_task_settles_on_a_moved_parent_and_a_live_one);
async fn a_blocked_task_settles_on_a_moved_parent_and_a_live_one() {
    let (app, store) = app().await;
    let early = finished(&app, json!({"type": "noop"})).await;
    archive_all(&app).await;
    let late = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 0.3}, "run_immediately": true}))
        .await;
    let child = app
        .create_task(json!({"type": "noop", "depends_on": [early, id_of(&late)]}))
        .await;
    assert_eq!(child["status"], "blocked");

    let done = app.finished(&id_of(&child)).await;

    assert_eq!(done.status.as_str(), "completed");
    assert!(in_history(&store, &early).await);
}

postgres_only!(a_parent_a_blocked_task_waits_on_stays_in_the_hot_table);
async fn a_parent_a_blocked_task_waits_on_stays_in_the_hot_table() {
    let (app, store) = app().await;
    let parent = finished(&app, json!({"type": "noop"})).await;
    let waiting = app
        .create_task(json!({"type": "noop", "delay_seconds": 3600}))
        .await;
    let child = app
        .create_task(json!({"type": "noop", "depends_on": [parent, id_of(&waiting)]}))
        .await;
    assert_eq!(child["status"], "blocked");

    assert_eq!(archive_all(&app).await, 0);
    assert!(!in_history(&store, &parent).await);
}

postgres_only!(pruning_deletes_moved_tasks_and_frees_their_keys);
async fn pruning_deletes_moved_tasks_and_frees_their_keys() {
    let (app, store) = app().await;
    let old = finished(&app, json!({"type": "noop", "idempotency_key": "reused"})).await;
    archive_all(&app).await;

    let soon = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(app.store.prune_finished(soon, 100).await.unwrap(), 1);

    let (status, _) = app.get(&format!("/api/v1/tasks/{old}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&format!("/api/v1/tasks/{old}/events")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let fresh = app
        .create_task(json!({"type": "noop", "idempotency_key": "reused"}))
        .await;
    assert_ne!(id_of(&fresh), old, "the key is free again");
    app.store.fold_counters().await.unwrap();
    let (_, page) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(page["total"], 1);
    assert!(!in_history(&store, &old).await);
}

postgres_only!(a_process_moves_its_finished_tasks_to_the_history_on_its_own);
async fn a_process_moves_its_finished_tasks_to_the_history_on_its_own() {
    let (app, store) = app().await;
    let done = finished(&app, json!({"type": "noop"})).await;
    let db = app.stop().await;

    // Housekeeping's first round runs as the engine starts.
    let moving_at_once = EngineSettings {
        keeping: Keeping {
            archive_after: Duration::ZERO,
            retention: None,
        },
        ..fast_engine()
    };
    let app = TestApp::on(db, Some(moving_at_once), ApiSettings::default()).await;
    eventually(
        Duration::from_secs(10),
        "the finished task to move",
        || async { in_history(&store, &done).await.then_some(()) },
    )
    .await;
    assert_eq!(app.task(&done).await.status.as_str(), "completed");
}

postgres_only!(importing_the_same_legacy_tasks_again_skips_the_moved_ones);
async fn importing_the_same_legacy_tasks_again_skips_the_moved_ones() {
    let (app, store) = app().await;
    let folder = TempFolder::new();
    let id = uuid::Uuid::new_v4().to_string();
    let legacy = json!({"tasks": [{"id": id, "type": "analysis_task", "status": "completed",
                                  "result": {"rows": 1}, "created_at": 1_700_000_000.0,
                                  "updated_at": 1_700_000_050.0}]});
    let path = folder.write_json("tasks.json", &legacy);
    let import = || {
        let url = app.db.url();
        let args = ["db", "import-legacy", "--tasks", path.to_str().unwrap()];
        let output = process::command(&args, &[("DATABASE_URL", &url)])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(import().contains("1 imported, 0 already present"));
    // The task finished in 2023: the app's own housekeeping may be moving it at this moment,
    // in which case this call skips the locked row and the move commits a moment later.
    archive_all(&app).await;
    eventually(
        Duration::from_secs(5),
        "the move to the history",
        || async { in_history(&store, &id).await.then_some(()) },
    )
    .await;

    let again = import();

    assert!(again.contains("0 imported, 1 already present"), "{again}");
    assert!(in_history(&store, &id).await);
    assert_eq!(hot_rows(&store).await, 0);
}
