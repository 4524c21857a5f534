//! Totals answered from counters (PostgreSQL): after any mix of changes, before and after the
//! deltas are folded, they equal counting the rows.

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::*;
use seedcore::{api::ApiSettings, engine::EngineSettings, store::PgStore};
use serde_json::{Value, json};

/// The app on a PostgreSQL database of its own, with workers when given their settings.
async fn app_on(engine: Option<EngineSettings>) -> TestApp {
    TestApp::on(
        Arc::new(TestDb::postgres().await),
        engine,
        ApiSettings::default(),
    )
    .await
}

/// Tasks per (queue, status) as the API reports them.
async fn api_queue_counts(app: &TestApp) -> BTreeMap<(String, String), i64> {
    let (_, queues) = app.get("/api/v1/queues").await;
    let mut counts = BTreeMap::new();
    for queue in queues["items"].as_array().unwrap() {
        for (status, n) in queue["counts"].as_object().unwrap() {
            let key = (queue["name"].as_str().unwrap().to_string(), status.clone());
            counts.insert(key, n.as_i64().unwrap());
        }
    }
    counts
}

async fn counted_queue_counts(store: &PgStore) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("select queue, status, count(*) from tasks group by queue, status")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter().map(|(q, s, n)| ((q, s), n)).collect()
}

async fn api_total(app: &TestApp, path: &str) -> i64 {
    let (_, page) = app.get(path).await;
    page["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("no total in {page}"))
}

async fn assert_task_totals_match(app: &TestApp, store: &PgStore) {
    let counted = counted_queue_counts(store).await;
    assert_eq!(api_queue_counts(app).await, counted);
    let all: i64 = counted.values().sum();
    assert_eq!(api_total(app, "/api/v1/tasks?limit=1").await, all);
    let kept: i64 = sqlx::query_scalar(
        "select coalesce(sum(n), 0)::bigint from (select n from counters where kind = 'tasks' \
         union all select n from counter_deltas where kind = 'tasks') c",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(kept, all, "the counters hold the total themselves");
    for status in [
        "blocked",
        "queued",
        "completed",
        "failed",
        "cancelled",
        "created",
    ] {
        let expected: i64 = counted
            .iter()
            .filter(|((_, s), _)| s == status)
            .map(|(_, n)| n)
            .sum();
        let path = format!("/api/v1/tasks?limit=1&status={status}");
        assert_eq!(api_total(app, &path).await, expected, "{status}");
    }
}

postgres_only!(task_totals_and_queue_counts_match_the_rows_through_every_kind_of_change);
async fn task_totals_and_queue_counts_match_the_rows_through_every_kind_of_change() {
    let app = app_on(Some(fast_engine())).await;
    let store = app.db.pg_store().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let queue = if i % 2 == 0 { "default" } else { "mail" };
        let task_type = if i % 3 == 0 { "fail" } else { "noop" };
        let task = app
            .create_task(json!({"type": task_type, "queue": queue, "run_immediately": i % 4 != 3}))
            .await;
        ids.push(id_of(&task));
    }
    app.post(
        "/api/v1/tasks/bulk",
        json!({"tasks": [{"type": "noop", "queue": "bulk"}, {"type": "sleep", "params": {"seconds": 30}, "queue": "bulk", "run_immediately": true}]}),
    )
    .await;
    app.post(
        "/api/v1/workflows",
        json!({"tasks": [{"key": "a", "type": "fail"}, {"key": "b", "type": "noop", "depends_on": ["a"]}]}),
    )
    .await;
    let waiting = app
        .create_task(json!({"type": "noop", "depends_on": [ids[3]]}))
        .await;
    app.post_empty(&format!("/api/v1/tasks/{}/cancel", ids[7]))
        .await;
    let settle = || async {
        eventually(
            Duration::from_secs(20),
            "all but the sleeper to finish",
            || async {
                let busy: i64 = sqlx::query_scalar(
                    "select count(*) from tasks where status in ('queued', 'running', 'retry')",
                )
                .fetch_one(store.pool())
                .await
                .unwrap();
                (busy == 1).then_some(())
            },
        )
        .await
    };
    settle().await;
    app.post_empty(&format!("/api/v1/tasks/{}/run", ids[0]))
        .await;
    settle().await;
    assert_eq!(app.task(&id_of(&waiting)).await.status.as_str(), "blocked");

    assert_task_totals_match(&app, &store).await;
    seedcore::store::Store::fold_counters(&store).await.unwrap();
    assert_task_totals_match(&app, &store).await;
    let left: i64 = sqlx::query_scalar("select count(*) from counter_deltas")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        left < 10,
        "folding empties the deltas (but for changes since): {left}"
    );

    let deleted = sqlx::query("delete from tasks where queue = 'mail'")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(deleted.rows_affected() > 0);
    assert_task_totals_match(&app, &store).await;
}

async fn create_fact(app: &TestApp, tags: Value) -> String {
    let (_, fact) = app
        .post("/api/v1/facts", json!({"text": "counted", "tags": tags}))
        .await;
    id_of(&fact)
}

async fn assert_fact_totals_match(app: &TestApp, store: &PgStore) {
    for tag in ["a", "b", "c"] {
        let counted: i64 = sqlx::query_scalar("select count(*) from facts where tags @> $1")
            .bind(vec![tag])
            .fetch_one(store.pool())
            .await
            .unwrap();
        let path = format!("/api/v1/facts?tag={tag}&limit=1");
        assert_eq!(api_total(app, &path).await, counted, "tag {tag}");
    }
    let all: i64 = sqlx::query_scalar("select count(*) from facts")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(api_total(app, "/api/v1/facts?limit=1").await, all);
}

postgres_only!(fact_totals_by_tag_match_the_rows_through_creates_patches_and_deletes);
async fn fact_totals_by_tag_match_the_rows_through_creates_patches_and_deletes() {
    let app = app_on(None).await;
    let store = app.db.pg_store().await;
    let twice = create_fact(&app, json!(["a", "a", "b"])).await;
    let plain = create_fact(&app, json!(["b"])).await;
    create_fact(&app, json!([])).await;
    app.post(
        "/api/v1/facts/bulk",
        json!({"facts": [{"text": "x", "tags": ["a", "c"]}, {"text": "y", "tags": ["c", "c"]}]}),
    )
    .await;
    assert_fact_totals_match(&app, &store).await;

    app.patch(&format!("/api/v1/facts/{twice}"), json!({"tags": ["c"]}))
        .await;
    app.patch(
        &format!("/api/v1/facts/{plain}"),
        json!({"text": "only the text"}),
    )
    .await;
    app.delete(&format!("/api/v1/facts/{plain}")).await;
    assert_fact_totals_match(&app, &store).await;
    seedcore::store::Store::fold_counters(&store).await.unwrap();
    assert_fact_totals_match(&app, &store).await;
    assert_eq!(api_total(&app, "/api/v1/facts?tag=a&limit=1").await, 1);
}

postgres_only!(recounting_repairs_counters_that_rows_written_without_triggers_left_behind);
async fn recounting_repairs_counters_that_rows_written_without_triggers_left_behind() {
    let app = app_on(None).await;
    let store = app.db.pg_store().await;
    create_fact(&app, json!(["a"])).await;
    app.create_task(json!({"type": "noop"})).await;
    // What rows written around the triggers would leave: counts that are not the rows'.
    sqlx::query(
        "insert into counter_deltas (kind, a, b, n) \
         values ('tasks', 'default', 'created', 40), ('facts', 'a', '', 7)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert_ne!(api_total(&app, "/api/v1/tasks?limit=1").await, 1);

    sqlx::query("select seedcore_recount()")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(api_total(&app, "/api/v1/tasks?limit=1").await, 1);
    assert_fact_totals_match(&app, &store).await;
}
