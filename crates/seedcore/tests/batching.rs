//! Concurrent creates and reads share statements on PostgreSQL; each caller still gets exactly
//! its own answer, and one create the database refuses fails alone.

mod common;

use std::{collections::HashSet, sync::Arc};

use common::*;
use futures::future::join_all;
use seedcore::{
    api::ApiSettings,
    model::{NewFact, NewTask, TaskStatus},
    store::{Store, StoreError, TaskQuery},
};
use serde_json::{Value, json};
use uuid::Uuid;

async fn app() -> TestApp {
    TestApp::on(
        Arc::new(TestDb::postgres().await),
        None,
        ApiSettings::default(),
    )
    .await
}

/// A PostgreSQL store on a new database, which lives as long as the returned `TestDb`.
async fn pg_store() -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::postgres().await;
    let store: Arc<dyn Store> = Arc::new(db.pg_store().await);
    (db, store)
}

postgres_only!(
    sixty_four_concurrent_creates_each_get_their_own_task,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn sixty_four_concurrent_creates_each_get_their_own_task() {
    let app = Arc::new(app().await);
    let creates = (0..64).map(|n| {
        let app = app.clone();
        async move {
            let body = json!({"type": "noop", "description": format!("task {n}"),
                              "params": {"n": n}, "priority": n % 3, "run_immediately": true});
            let (status, task) = app.post("/api/v1/tasks", body).await;
            assert_eq!(status, 200, "{task}");
            (n, task)
        }
    });
    let created = join_all(creates).await;
    let ids: HashSet<&str> = created
        .iter()
        .map(|(_, t)| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 64);
    for (n, task) in &created {
        assert_eq!(task["description"], format!("task {n}"));
        assert_eq!(task["params"], json!({"n": n}));
        assert_eq!(task["status"], "queued");
        let (_, stored) = app
            .get(&format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()))
            .await;
        assert_eq!(&stored, task);
    }
    let (_, page) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(page["total"], 64);
}

postgres_only!(
    concurrent_creates_with_one_key_make_one_task_among_other_creates,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_creates_with_one_key_make_one_task_among_other_creates() {
    let app = Arc::new(app().await);
    let creates = (0..40).map(|n| {
        let app = app.clone();
        async move {
            let body = match n % 2 {
                0 => json!({"type": "noop", "idempotency_key": "once", "description": format!("{n}")}),
                _ => json!({"type": "noop", "description": format!("other {n}")}),
            };
            app.post("/api/v1/tasks", body).await
        }
    });
    let answers = join_all(creates).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    let keyed: HashSet<&Value> = answers.iter().step_by(2).map(|(_, t)| &t["id"]).collect();
    assert_eq!(
        keyed.len(),
        1,
        "every create with the key got the same task"
    );
    let others: HashSet<&Value> = answers
        .iter()
        .skip(1)
        .step_by(2)
        .map(|(_, t)| &t["id"])
        .collect();
    assert_eq!(others.len(), 20);
    let (_, page) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(page["total"], 21);
}

postgres_only!(
    a_create_the_database_refuses_fails_alone,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_create_the_database_refuses_fails_alone() {
    let (_db, store) = pg_store().await;
    let creates = (0..30).map(|n| {
        let store = store.clone();
        async move {
            let mut task = NewTask::of_type("noop");
            // PostgreSQL's jsonb cannot hold the NUL character; the API refuses it earlier,
            // a program using the store directly meets the database's refusal.
            let text = if n == 7 { "bad\u{0}" } else { "good" };
            task.params.insert("text".into(), json!(text));
            (n, store.create_task(task).await)
        }
    });
    for (n, created) in join_all(creates).await {
        match (n, created) {
            (7, Err(StoreError::Database(_))) => {}
            (7, other) => panic!("the bad create answered {other:?}"),
            (_, Ok(task)) => assert_eq!(task.params["text"], "good"),
            (n, Err(err)) => panic!("create {n} failed with its batch: {err}"),
        }
    }
    let all = TaskQuery {
        limit: 100,
        ..Default::default()
    };
    let page = store.list_tasks(&all).await.unwrap();
    assert_eq!(page.items.len(), 29);
}

postgres_only!(
    concurrent_reads_of_one_task_and_of_missing_ones_each_get_their_answer,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_reads_of_one_task_and_of_missing_ones_each_get_their_answer() {
    let (_db, store) = pg_store().await;
    let task = store.create_task(NewTask::of_type("noop")).await.unwrap();
    let reads = (0..50).map(|n| {
        let store = store.clone();
        let id = if n % 5 == 0 { Uuid::new_v4() } else { task.id };
        async move { (id, store.get_task(id).await) }
    });
    let mut missing = 0;
    for (id, read) in join_all(reads).await {
        match read {
            Ok(found) => {
                assert_eq!(found.id, id, "a read got another id's row");
                assert_eq!(found.status, TaskStatus::Created);
            }
            Err(StoreError::NotFound) => {
                assert_ne!(id, task.id);
                missing += 1;
            }
            Err(err) => panic!("read failed: {err}"),
        }
    }
    assert_eq!(
        missing, 10,
        "every unknown id, and only those, was not found"
    );
}

postgres_only!(
    reads_keep_no_connection_from_the_pool_once_they_stop,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn reads_keep_no_connection_from_the_pool_once_they_stop() {
    let (_db, store) = pg_store().await;
    let task = store.create_task(NewTask::of_type("noop")).await.unwrap();
    for _ in 0..5 {
        let reads = (0..200).map(|_| {
            let store = store.clone();
            async move { store.get_task(task.id).await }
        });
        for read in join_all(reads).await {
            assert_eq!(read.unwrap().id, task.id);
        }
    }
    let quiet_by = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let main = store.pool_stats().into_iter().find(|p| p.name == "main");
        let main = main.expect("the PostgreSQL store reports its pool");
        if main.size == main.idle {
            break;
        }
        assert!(
            std::time::Instant::now() < quiet_by,
            "{} of {} connections still taken after the reads ended",
            main.size - main.idle,
            main.size
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

postgres_only!(
    concurrent_fact_creates_keep_each_facts_own_tags_in_order,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_fact_creates_keep_each_facts_own_tags_in_order() {
    let app = Arc::new(app().await);
    let tag_sets = [
        json!([]),
        json!(["b", "a"]),
        json!(["with,comma", "with \"quotes\"", "{braces}", "Ünïcode ✓"]),
        json!(["back\\slash", "NULL", ""]),
    ];
    let creates = (0..48).map(|n| {
        let app = app.clone();
        let tags = tag_sets[n % tag_sets.len()].clone();
        async move {
            let body = json!({"text": format!("fact {n}"), "tags": tags, "meta_data": {"n": n}});
            let (status, fact) = app.post("/api/v1/facts", body).await;
            assert_eq!(status, 200, "{fact}");
            (n, fact)
        }
    });
    for (n, fact) in join_all(creates).await {
        assert_eq!(fact["text"], format!("fact {n}"));
        assert_eq!(fact["tags"], tag_sets[n % tag_sets.len()]);
        assert_eq!(fact["meta_data"], json!({"n": n}));
        let (_, stored) = app
            .get(&format!("/api/v1/facts/{}", fact["id"].as_str().unwrap()))
            .await;
        assert_eq!(stored, fact);
    }
}

postgres_only!(
    a_fact_the_database_refuses_fails_alone,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_fact_the_database_refuses_fails_alone() {
    let (_db, store) = pg_store().await;
    let creates = (0..30).map(|n| {
        let store = store.clone();
        async move {
            let text = if n == 4 { "bad\u{0}" } else { "good" };
            let fact = NewFact {
                text: text.into(),
                tags: vec!["t".into()],
                meta_data: Default::default(),
            };
            (n, store.create_fact(fact).await)
        }
    });
    for (n, created) in join_all(creates).await {
        match (n, created) {
            (4, Err(StoreError::Database(_))) => {}
            (4, other) => panic!("the bad create answered {other:?}"),
            (_, Ok(fact)) => assert_eq!(fact.text, "good"),
            (n, Err(err)) => panic!("create {n} failed with its batch: {err}"),
        }
    }
}
