//! A schedule's fire history and "trigger now" through the API and the scheduler: fires are
//! recorded with their tasks, a trigger creates the template's task without moving the next
//! fire (paused or not), the history keeps the newest hundred and goes with its schedule, and
//! every refusal. Every test runs on both backends.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{
    schedules::{PATH, create, get, time},
    *,
};
use reqwest::{Method, StatusCode};
use seedcore::{
    auth::{NewToken, Role, Secret},
    model::TaskStatus,
    store::FIRE_BATCH,
};
use serde_json::{Value, json};

async fn trigger(app: &TestApp, id: &str) -> Value {
    let (status, task) = app.post_empty(&format!("{PATH}/{id}/trigger")).await;
    assert_eq!(status, StatusCode::OK, "trigger: {task}");
    task
}

/// The schedule's fire history, newest first.
async fn fires(app: &TestApp, id: &str, limit: Option<i64>) -> Vec<Value> {
    let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
    let (status, list) = app.get(&format!("{PATH}/{id}/fires{query}")).await;
    assert_eq!(status, StatusCode::OK, "fires: {list}");
    list["items"].as_array().expect("items").clone()
}

fn assert_newest_first(items: &[Value]) {
    for pair in items.windows(2) {
        assert!(
            time(&pair[0]["fired_at"]) >= time(&pair[1]["fired_at"]),
            "not newest first: {pair:?}"
        );
    }
}

/// The rows the database holds in the schedule's history (the API shows at most 100).
async fn history_rows(db: &TestDb, id: &str) -> i64 {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let sql = "select count(*) from schedule_fires where schedule_id = ";
    match db.raw().await {
        RawDb::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{sql}$1")))
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap(),
        RawDb::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{sql}?1")))
            .bind(id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap(),
    }
}

both_backends!(scheduled_fires_are_recorded_with_their_tasks_newest_first);
async fn scheduled_fires_are_recorded_with_their_tasks_newest_first() {
    let app = TestApp::start().await;
    let schedule = create(
        &app,
        json!({"name": "tick", "cron": "* * * * * *", "task": {"type": "echo"}}),
    )
    .await;
    let id = id_of(&schedule);
    eventually(Duration::from_secs(15), "three fires", || async {
        (fires(&app, &id, None).await.len() >= 3).then_some(())
    })
    .await;
    let (status, _) = app
        .patch(&format!("{PATH}/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let recorded = fires(&app, &id, Some(100)).await;
    assert_newest_first(&recorded);
    for fire in &recorded {
        assert_eq!(fire["manual"], false);
        assert_eq!(fire["task"]["id"], fire["task_id"]);
        let task = app.finished(fire["task_id"].as_str().unwrap()).await;
        assert_eq!(task.status, TaskStatus::Completed);
        let key = format!(
            "schedule:{id}:{}",
            time(&fire["fired_at"]).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(task.idempotency_key.as_deref(), Some(key.as_str()));
    }
    let (_, tasks) = app.get("/api/v1/tasks?limit=1000").await;
    assert_eq!(
        tasks["total"].as_i64().unwrap(),
        recorded.len() as i64,
        "one fire per task"
    );
    let last = get(&app, &id).await;
    assert_eq!(last["last_fire_at"], recorded[0]["fired_at"]);
    assert_eq!(last["last_task_id"], recorded[0]["task_id"]);
    let now = fires(&app, &id, None).await;
    assert_eq!(
        now[0]["task"]["status"], "completed",
        "statuses are current"
    );
    assert!(now[0]["task"]["finished_at"].is_string());
}

both_backends!(
    triggering_creates_the_templates_task_and_a_manual_fire_without_moving_the_next_fire
);
async fn triggering_creates_the_templates_task_and_a_manual_fire_without_moving_the_next_fire() {
    let app = TestApp::start().await;
    let schedule = create(
        &app,
        json!({"name": "nightly", "cron": "0 3 * * *",
               "task": {"type": "echo", "params": {"report": "daily"}, "queue": "reports",
                        "priority": 5, "description": "the nightly report",
                        "domain": "finance", "max_attempts": 2}}),
    )
    .await;
    let id = id_of(&schedule);
    let before = Utc::now();
    let task = trigger(&app, &id).await;
    let after = Utc::now();
    assert_eq!(
        (
            &task["type"],
            &task["params"],
            &task["description"],
            &task["domain"]
        ),
        (
            &json!("echo"),
            &json!({"report": "daily"}),
            &json!("the nightly report"),
            &json!("finance")
        )
    );
    assert_eq!(
        (&task["queue"], &task["priority"], &task["max_attempts"]),
        (&json!("reports"), &json!(5), &json!(2))
    );
    assert_eq!(task["status"], "queued");
    let key = task["idempotency_key"].as_str().unwrap();
    assert_eq!(key, format!("schedule:{id}:manual:{}", id_of(&task)));

    let unchanged = get(&app, &id).await;
    assert_eq!(unchanged["next_fire_at"], schedule["next_fire_at"]);
    assert_eq!(
        unchanged["last_fire_at"],
        Value::Null,
        "a trigger is no cron fire"
    );
    let recorded = fires(&app, &id, None).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["manual"], true);
    assert_eq!(recorded[0]["task_id"], task["id"]);
    let fired_at = time(&recorded[0]["fired_at"]);
    // Stores keep times to the microsecond (PostgreSQL's clock) or the millisecond.
    let slack = chrono::TimeDelta::seconds(1);
    assert!(before - slack <= fired_at && fired_at <= after + slack);

    let done = app.finished(&id_of(&task)).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result.unwrap()["result"], json!({"report": "daily"}));
    let (_, events) = app
        .get(&format!("/api/v1/tasks/{}/events", id_of(&task)))
        .await;
    assert_eq!(events["items"][0]["actor"], "anonymous", "the caller acted");
}

both_backends!(a_paused_schedule_is_triggered_and_stays_paused);
async fn a_paused_schedule_is_triggered_and_stays_paused() {
    let app = TestApp::without_workers().await;
    let schedule = create(
        &app,
        json!({"name": "held", "cron": "@hourly", "enabled": false, "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    let task = trigger(&app, &id).await;
    assert_eq!(task["status"], "queued");
    let after = get(&app, &id).await;
    assert_eq!(
        (&after["enabled"], &after["next_fire_at"]),
        (&json!(false), &Value::Null)
    );
    let recorded = fires(&app, &id, None).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["task"]["status"], "queued");
}

both_backends!(the_history_keeps_the_newest_hundred_fires_and_lists_twenty_by_default);
async fn the_history_keeps_the_newest_hundred_fires_and_lists_twenty_by_default() {
    let app = TestApp::without_workers().await;
    let schedule = create(
        &app,
        json!({"name": "busy", "cron": "@daily", "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    let mut triggered = Vec::new();
    for _ in 0..105 {
        triggered.push(trigger(&app, &id).await["id"].clone());
    }
    assert_eq!(history_rows(&app.db, &id).await, 100);
    let kept = fires(&app, &id, Some(100)).await;
    assert_eq!(kept.len(), 100);
    assert_newest_first(&kept);
    let ids: Vec<Value> = kept.iter().map(|f| f["task_id"].clone()).collect();
    let newest: Vec<Value> = triggered.iter().rev().take(100).cloned().collect();
    assert_eq!(ids, newest, "the oldest five went, newest first");
    let page = fires(&app, &id, None).await;
    assert_eq!(page, kept[..20], "twenty by default");
    assert_eq!(fires(&app, &id, Some(1)).await, kept[..1]);
}

both_backends!(a_schedules_history_is_deleted_with_it_and_its_tasks_stay);
async fn a_schedules_history_is_deleted_with_it_and_its_tasks_stay() {
    let app = TestApp::without_workers().await;
    let schedule = create(
        &app,
        json!({"name": "gone", "cron": "@daily", "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    let task = trigger(&app, &id).await;
    trigger(&app, &id).await;
    assert_eq!(history_rows(&app.db, &id).await, 2);
    let (status, _) = app.delete(&format!("{PATH}/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(history_rows(&app.db, &id).await, 0);
    let (status, _) = app.get(&format!("{PATH}/{id}/fires")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.task(&id_of(&task)).await.status, TaskStatus::Queued);
}

both_backends!(a_fire_whose_task_was_deleted_shows_no_task_and_one_archived_still_does);
async fn a_fire_whose_task_was_deleted_shows_no_task_and_one_archived_still_does() {
    let app = TestApp::without_workers().await;
    let schedule = create(
        &app,
        json!({"name": "n", "cron": "@daily", "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    let (kept, deleted) = (trigger(&app, &id).await, trigger(&app, &id).await);
    for task in [&kept, &deleted] {
        let (status, _) = app
            .post_empty(&format!("/api/v1/tasks/{}/cancel", id_of(task)))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app
        .delete(&format!("/api/v1/tasks/{}", id_of(&deleted)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // PostgreSQL moves finished tasks out of the hot table; their fires still find them.
    let moved = app
        .store
        .archive_finished(Utc::now() + chrono::TimeDelta::hours(1), 100)
        .await
        .unwrap();
    let expected = if app.store.backend() == "postgres" {
        1
    } else {
        0
    };
    assert_eq!(moved, expected, "the cancelled task moved to the history");
    let recorded = fires(&app, &id, None).await;
    assert_eq!(recorded[0]["task_id"], deleted["id"]);
    assert_eq!(recorded[0]["task"], Value::Null, "the task is gone");
    assert_eq!(recorded[1]["task"]["status"], "cancelled");
    assert!(recorded[1]["task"]["finished_at"].is_string());
}

both_backends!(a_fire_whose_key_was_taken_records_nothing);
async fn a_fire_whose_key_was_taken_records_nothing() {
    let app = TestApp::without_workers().await;
    let schedule = create(
        &app,
        json!({"name": "tick", "cron": "* * * * * *", "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    // As if another process had fired the first second already.
    let taken = app
        .create_task(json!({"type": "noop", "idempotency_key":
            format!("schedule:{id}:{}", schedule["next_fire_at"].as_str().unwrap())}))
        .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let firing = app.store.fire_due_schedules(FIRE_BATCH).await.unwrap();
    assert!(!firing.tasks.is_empty(), "the later seconds fired");
    let recorded = fires(&app, &id, Some(100)).await;
    let mut recorded_ids: Vec<&Value> = recorded.iter().map(|f| &f["task_id"]).collect();
    let mut created: Vec<Value> = firing.tasks.iter().map(|t| json!(t.id)).collect();
    recorded_ids.sort_by_key(|v| v.to_string());
    created.sort_by_key(|v| v.to_string());
    assert_eq!(recorded_ids, created.iter().collect::<Vec<_>>());
    assert!(!recorded.iter().any(|f| f["task_id"] == taken["id"]));
}

both_backends!(an_unknown_schedule_is_a_404_and_a_bad_limit_or_id_a_422);
async fn an_unknown_schedule_is_a_404_and_a_bad_limit_or_id_a_422() {
    let app = TestApp::without_workers().await;
    let unknown = format!("{PATH}/0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b");
    for (status, answer) in [
        app.get(&format!("{unknown}/fires")).await,
        app.post_empty(&format!("{unknown}/trigger")).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(answer, json!({"detail": "Schedule not found"}));
    }
    let schedule = create(
        &app,
        json!({"name": "n", "cron": "@daily", "task": {"type": "noop"}}),
    )
    .await;
    let path = format!("{PATH}/{}/fires", id_of(&schedule));
    for limit in ["0", "101", "-1", "ten", "1.5"] {
        let (status, answer) = app.get(&format!("{path}?limit={limit}")).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{limit}: {answer}"
        );
        assert_eq!(answer["detail"][0]["loc"], json!(["query", "limit"]));
    }
    for limit in ["1", "100", ""] {
        let (status, answer) = app.get(&format!("{path}?limit={limit}")).await;
        assert_eq!(
            (status, answer),
            (StatusCode::OK, json!({"items": []})),
            "{limit}"
        );
    }
    for (status, answer) in [
        app.get(&format!("{PATH}/0f8e2c4a/fires")).await,
        app.post_empty(&format!("{PATH}/0f8e2c4a/trigger")).await,
    ] {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer["detail"][0]["loc"], json!(["path", "schedule_id"]));
    }
}

/// Stores a token of `role` under `name` and returns its text.
async fn mint(app: &TestApp, name: &str, role: Role) -> String {
    let secret = Secret::generate();
    app.store
        .create_token(NewToken {
            id: secret.id.clone(),
            name: name.into(),
            role,
            scopes: role.scopes(),
            secret_hash: secret.hash(),
            expires_at: None,
        })
        .await
        .expect("store a token");
    secret.text
}

both_backends!(a_viewer_reads_the_fires_but_may_not_trigger_and_an_operator_triggers_as_itself);
async fn a_viewer_reads_the_fires_but_may_not_trigger_and_an_operator_triggers_as_itself() {
    let app = TestApp::without_workers().await;
    // Tokens before the first request: from then on every request must show one.
    let viewer = mint(&app, "watcher", Role::Viewer).await;
    let operator = mint(&app, "ops", Role::Operator).await;
    let call = |method: reqwest::Method, path: String, token: &str, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("request");
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let body = json!({"name": "n", "cron": "@daily", "task": {"type": "noop"}});
    let (status, schedule) = call(Method::POST, PATH.into(), &operator, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let id = id_of(&schedule);
    let trigger_path = format!("{PATH}/{id}/trigger");
    let (status, answer) = call(Method::POST, trigger_path.clone(), &viewer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer["detail"].is_string(), "{answer}");
    let fires_path = format!("{PATH}/{id}/fires");
    let (status, list) = call(Method::GET, fires_path.clone(), &viewer, None).await;
    assert_eq!((status, list), (StatusCode::OK, json!({"items": []})));

    let (status, task) = call(Method::POST, trigger_path, &operator, None).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let events = format!("/api/v1/tasks/{}/events", id_of(&task));
    let (_, events) = call(Method::GET, events, &operator, None).await;
    assert_eq!(events["items"][0]["actor"], "token:ops");
    let (_, list) = call(Method::GET, fires_path, &operator, None).await;
    assert_eq!(list["items"][0]["task_id"], task["id"]);
}
