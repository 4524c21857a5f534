//! A queue's concurrency limit against a real server and database: set and cleared over HTTP,
//! refused when malformed, and held by every claim of two engines sharing the database, or of
//! an engine and a pull worker.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use common::*;
use reqwest::StatusCode;
use seedcore::api::ApiSettings;
use serde_json::{Value, json};

/// The queue's entry in `GET /api/v1/queues`.
async fn listed(app: &TestApp, name: &str) -> Value {
    let (status, list) = app.get("/api/v1/queues").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {list}"))
        .clone()
}

async fn set_limit(app: &TestApp, name: &str, concurrency: Value) -> Value {
    let path = format!("/api/v1/queues/{name}");
    let (status, queue) = app
        .patch(&path, json!({ "concurrency": concurrency }))
        .await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    queue
}

/// The `(loc, type)` of each error in a 422 answer.
fn errors_of(status: StatusCode, answer: &Value) -> Vec<(Value, String)> {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    answer["detail"]
        .as_array()
        .expect("detail")
        .iter()
        .map(|e| (e["loc"].clone(), e["type"].as_str().unwrap().to_string()))
        .collect()
}

both_backends!(a_limit_is_set_shown_and_cleared_over_http);
async fn a_limit_is_set_shown_and_cleared_over_http() {
    let app = TestApp::without_workers().await;

    let queue = set_limit(&app, "reports", json!(5)).await;
    assert_eq!(queue["name"], "reports");
    assert_eq!(queue["concurrency"], 5);
    assert_eq!(queue["paused"], false);
    assert_eq!(listed(&app, "reports").await["concurrency"], 5);

    let (status, paused) = app.post_empty("/api/v1/queues/reports/pause").await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["concurrency"], 5, "pausing keeps the limit");

    let cleared = set_limit(&app, "reports", Value::Null).await;
    assert_eq!(cleared["concurrency"], Value::Null);
    assert_eq!(cleared["paused"], true, "the limit leaves the pause alone");
    assert_eq!(listed(&app, "reports").await["concurrency"], Value::Null);
}

both_backends!(malformed_limits_are_refused_with_the_field_named);
async fn malformed_limits_are_refused_with_the_field_named() {
    let app = TestApp::without_workers().await;
    let cases = [
        (
            json!({"concurrency": 0}),
            "concurrency",
            "greater_than_equal",
        ),
        (
            json!({"concurrency": 100_001}),
            "concurrency",
            "less_than_equal",
        ),
        (json!({"concurrency": "3"}), "concurrency", "int_type"),
        (json!({"concurrency": 2.5}), "concurrency", "int_type"),
        (json!({}), "concurrency", "missing"),
        (
            json!({"concurrency": 3, "paused": true}),
            "paused",
            "extra_forbidden",
        ),
    ];
    for (body, field, kind) in cases {
        let (status, answer) = app.patch("/api/v1/queues/reports", body.clone()).await;
        let errors = errors_of(status, &answer);
        assert_eq!(
            errors,
            vec![(json!(["body", field]), kind.to_string())],
            "{body}"
        );
    }
    let (status, answer) = app
        .patch("/api/v1/queues/not%20a%20name", json!({"concurrency": 3}))
        .await;
    assert_eq!(errors_of(status, &answer)[0].0, json!(["path", "name"]));
    let (status, answer) = app.patch("/api/v1/queues/reports", json!([3])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    let (_, list) = app.get("/api/v1/queues").await;
    assert_eq!(list["items"], json!([]), "nothing refused was stored");
}

/// How many of the queue's tasks are `running` now, read straight from the table.
async fn running_in(raw: &RawDb, queue: &str) -> i64 {
    let sql = "select count(*) from tasks where queue = $1 and status = 'running'";
    match raw {
        RawDb::Postgres(pool) => sqlx::query_scalar(sql).bind(queue).fetch_one(pool).await,
        RawDb::Sqlite(pool) => sqlx::query_scalar(sql).bind(queue).fetch_one(pool).await,
    }
    .expect("count running tasks")
}

async fn finished_in(raw: &RawDb, queue: &str) -> i64 {
    let sql = "select count(*) from tasks where queue = $1 and status = 'completed'";
    match raw {
        RawDb::Postgres(pool) => sqlx::query_scalar(sql).bind(queue).fetch_one(pool).await,
        RawDb::Sqlite(pool) => sqlx::query_scalar(sql).bind(queue).fetch_one(pool).await,
    }
    .expect("count completed tasks")
}

/// Samples the queue's running tasks without pause until stopped; holds the most seen.
struct Sampler {
    most: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(raw: Arc<RawDb>, queue: &'static str) -> Sampler {
        let most = Arc::new(AtomicI64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (most.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                seen.fetch_max(running_in(&raw, queue).await, Ordering::Relaxed);
            }
        });
        Sampler { most, stop, task }
    }

    /// The most tasks seen running at once.
    async fn finish(self) -> i64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the sampler");
        self.most.load(Ordering::Relaxed)
    }
}

async fn enqueue(app: &TestApp, queue: &str, count: usize, seconds: f64) {
    for _ in 0..count {
        app.create_task(
            json!({"type": "sleep", "queue": queue, "run_immediately": true,
                               "params": {"seconds": seconds}}),
        )
        .await;
    }
}

async fn all_finish(raw: &RawDb, queue: &str, count: i64) {
    eventually(Duration::from_secs(60), "every task completes", || async {
        (finished_in(raw, queue).await == count).then_some(())
    })
    .await;
}

both_backends!(
    two_engines_never_run_more_of_a_limited_queue_than_its_limit,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn two_engines_never_run_more_of_a_limited_queue_than_its_limit() {
    let db = Arc::new(TestDb::create().await);
    let first = TestApp::on(db.clone(), Some(fast_engine()), ApiSettings::default()).await;
    let second = TestApp::on(db.clone(), Some(fast_engine()), ApiSettings::default()).await;
    let raw = Arc::new(db.raw().await);
    set_limit(&first, "limited", json!(3)).await;

    let limited = Sampler::start(raw.clone(), "limited");
    let other = Sampler::start(raw.clone(), "other");
    enqueue(&first, "limited", 40, 0.2).await;
    enqueue(&second, "other", 20, 0.2).await;
    all_finish(&raw, "other", 20).await;
    let limited_done_when_other_was = finished_in(&raw, "limited").await;
    all_finish(&raw, "limited", 40).await;
    assert_eq!(
        limited.finish().await,
        3,
        "the limited queue ran up to its limit of 3 at once, never more"
    );
    assert!(
        other.finish().await > 3,
        "the unlimited queue was held to the limit too"
    );
    assert!(
        limited_done_when_other_was < 40,
        "the other queue waited for the limited one"
    );

    set_limit(&second, "limited", Value::Null).await;
    let unlimited = Sampler::start(raw.clone(), "limited");
    enqueue(&first, "limited", 40, 0.2).await;
    all_finish(&raw, "limited", 80).await;
    assert!(
        unlimited.finish().await > 3,
        "the cleared limit still held the queue back"
    );
}

/// A pull worker of `queue` over HTTP: claims up to 4 tasks at a time, holds each 0.2 s and
/// completes it, until `total` of the queue's tasks completed; returns how many it ran.
async fn pull_worker(app: Arc<TestApp>, raw: Arc<RawDb>, queue: &'static str, total: i64) -> i64 {
    let (status, registered) = app
        .post(
            "/api/v1/workers",
            json!({"name": "puller", "queues": [queue], "concurrency": 4,
                   "client_name": "test", "client_version": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let worker = registered["id"].as_str().expect("an id").to_string();
    let mut ran = 0;
    while finished_in(&raw, queue).await < total {
        let (status, claimed) = app
            .post(
                "/api/v1/tasks/claim",
                json!({"worker_id": worker, "max": 4, "wait_ms": 50}),
            )
            .await;
        if status != StatusCode::OK {
            continue;
        }
        let tasks = claimed["tasks"].as_array().expect("tasks").clone();
        ran += tasks.len() as i64;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for task in tasks {
            let path = format!("/api/v1/tasks/{}/complete", id_of(&task));
            let body = json!({"lease_token": task["lease_token"], "result": {}});
            let (status, answer) = app.post(&path, body).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }
    ran
}

both_backends!(
    an_engine_and_a_pull_worker_together_never_pass_the_limit,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn an_engine_and_a_pull_worker_together_never_pass_the_limit() {
    let db = Arc::new(TestDb::create().await);
    let app = Arc::new(TestApp::on(db.clone(), Some(fast_engine()), ApiSettings::default()).await);
    let raw = Arc::new(db.raw().await);
    set_limit(&app, "limited", json!(2)).await;

    let sampler = Sampler::start(raw.clone(), "limited");
    enqueue(&app, "limited", 30, 0.2).await;
    let pulled = pull_worker(app.clone(), raw.clone(), "limited", 30).await;
    all_finish(&raw, "limited", 30).await;
    assert_eq!(
        sampler.finish().await,
        2,
        "the queue ran up to its limit of 2 at once, never more"
    );
    assert!(pulled > 0, "the pull worker took no part");
    assert!(pulled < 30, "the engine took no part");
}
