//! `GET /api/v1/stats/tasks`: finished tasks counted per bucket of the window they finished
//! in, with run and waiting time percentiles, every bucket present, on both stores and from
//! the history too.

mod common;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// A finished task to write as a worker would have left it.
struct Finished {
    status: &'static str,
    queue: &'static str,
    task_type: &'static str,
    /// When it became claimable, relative to its start (ms; negative: before it).
    wait_ms: i64,
    /// How long its last attempt ran (ms); None: it never started.
    run_ms: Option<i64>,
    finished_at: DateTime<Utc>,
}

impl Finished {
    fn completed(run_ms: i64, wait_ms: i64, finished_at: DateTime<Utc>) -> Finished {
        Finished {
            status: "completed",
            queue: "default",
            task_type: "noop",
            wait_ms,
            run_ms: Some(run_ms),
            finished_at,
        }
    }
}

/// Writes the task's row directly: the API never lets a test choose when a task finished.
async fn insert(db: &RawDb, task: &Finished) {
    let started = task
        .run_ms
        .map(|ms| task.finished_at - TimeDelta::milliseconds(ms));
    let before = task.finished_at - TimeDelta::seconds(30);
    let run_at = started.unwrap_or(before) - TimeDelta::milliseconds(task.wait_ms);
    let id = Uuid::new_v4();
    let sql_pg = "insert into tasks (id, type, queue, status, attempts, created_at, updated_at,
                                     run_at, started_at, finished_at)
                  values ($1, $2, $3, $4, 1, $5, $6, $7, $8, $6)";
    let sql_lite = "insert into tasks (id, type, queue, status, attempts, created_at, updated_at,
                                       run_at, started_at, finished_at)
                    values (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?6)";
    let done = match db {
        RawDb::Postgres(pool) => sqlx::query(sql_pg)
            .bind(id)
            .bind(task.task_type)
            .bind(task.queue)
            .bind(task.status)
            .bind(before.min(run_at))
            .bind(task.finished_at)
            .bind(run_at)
            .bind(started)
            .execute(pool)
            .await
            .map(drop),
        RawDb::Sqlite(pool) => sqlx::query(sql_lite)
            .bind(id.to_string())
            .bind(task.task_type)
            .bind(task.queue)
            .bind(task.status)
            .bind(lite(before.min(run_at)))
            .bind(lite(task.finished_at))
            .bind(lite(run_at))
            .bind(started.map(lite))
            .execute(pool)
            .await
            .map(drop),
    };
    done.expect("insert a finished task");
}

fn lite(at: DateTime<Utc>) -> String {
    at.format(seedcore::store::sqlite::TIME_FORMAT).to_string()
}

/// The start of the minute `minutes_ago` minutes before this one.
fn minute(minutes_ago: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap() - TimeDelta::minutes(minutes_ago)
}

/// Five tasks with known times in the minute three minutes ago, and a few around them.
async fn a_known_history(app: &TestApp) {
    let db = app.db.raw().await;
    let at = minute(3) + TimeDelta::seconds(20);
    for (run, wait) in [(100, 0), (200, 50), (300, 100), (400, 150)] {
        insert(&db, &Finished::completed(run, wait, at)).await;
    }
    let failed = Finished {
        status: "failed",
        ..Finished::completed(1000, -500, at)
    };
    insert(&db, &failed).await;
    let cancelled_before_start = Finished {
        status: "cancelled",
        run_ms: None,
        ..Finished::completed(0, 0, at)
    };
    insert(&db, &cancelled_before_start).await;
    let mail = Finished {
        queue: "mail",
        task_type: "email",
        ..Finished::completed(50, 10, minute(5) + TimeDelta::seconds(59))
    };
    insert(&db, &mail).await;
    let long_ago = Finished::completed(10, 10, minute(90));
    insert(&db, &long_ago).await;
}

async fn stats(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/stats/tasks{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The bucket that starts at `start`.
fn bucket(stats: &Value, start: DateTime<Utc>) -> Value {
    stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["start"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap()
                == start
        })
        .unwrap_or_else(|| panic!("no bucket at {start} in {stats}"))
        .clone()
}

fn total(stats: &Value, field: &str) -> i64 {
    stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[field].as_i64().unwrap())
        .sum()
}

fn assert_near(value: &Value, expected: f64) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"));
    assert!((got - expected).abs() < 1e-6, "{got} is not {expected}");
}

both_backends!(finished_tasks_land_in_the_minute_they_finished_with_their_percentiles);
async fn finished_tasks_land_in_the_minute_they_finished_with_their_percentiles() {
    let app = TestApp::without_workers().await;
    a_known_history(&app).await;

    let stats = stats(&app, "").await;

    let three_ago = bucket(&stats, minute(3));
    assert_eq!(three_ago["completed"], 4);
    assert_eq!(three_ago["failed"], 1);
    assert_eq!(three_ago["cancelled"], 1);
    // Runs 100, 200, 300, 400, 1000 ms; waits 0, 50, 100, 150 and 0 (it was due after it
    // started, which counts as no wait). The cancelled task never started: in neither.
    assert_near(&three_ago["run_ms"]["p50"], 300.0);
    assert_near(&three_ago["run_ms"]["p95"], 880.0);
    assert_near(&three_ago["wait_ms"]["p50"], 50.0);
    assert_near(&three_ago["wait_ms"]["p95"], 140.0);
    let five_ago = bucket(&stats, minute(5));
    assert_eq!(five_ago["completed"], 1);
    assert_near(&five_ago["run_ms"]["p50"], 50.0);
    assert_near(&five_ago["wait_ms"]["p95"], 10.0);
    assert_eq!(
        total(&stats, "completed"),
        5,
        "the task of 90 minutes ago is out"
    );
}

both_backends!(every_bucket_of_the_hour_is_there_oldest_first_with_zeros_where_nothing_finished);
async fn every_bucket_of_the_hour_is_there_oldest_first_with_zeros_where_nothing_finished() {
    let app = TestApp::without_workers().await;
    a_known_history(&app).await;

    let stats = stats(&app, "").await;

    assert_eq!(stats["bucket_seconds"], 60);
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    let starts: Vec<DateTime<Utc>> = buckets
        .iter()
        .map(|b| b["start"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1] - w[0] == TimeDelta::minutes(1))
    );
    assert_eq!(
        stats["since"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        starts[0]
    );
    let until: DateTime<Utc> = stats["until"].as_str().unwrap().parse().unwrap();
    assert!(starts[59] <= until && until < starts[59] + TimeDelta::minutes(1));
    let empty = bucket(&stats, minute(4));
    assert_eq!(
        empty,
        json!({"start": empty["start"], "completed": 0, "failed": 0, "cancelled": 0,
               "run_ms": null, "wait_ms": null})
    );
}

both_backends!(a_day_is_cut_into_ninety_six_quarter_hours);
async fn a_day_is_cut_into_ninety_six_quarter_hours() {
    let app = TestApp::without_workers().await;
    a_known_history(&app).await;

    let stats = stats(&app, "?minutes=1440").await;

    assert_eq!(stats["bucket_seconds"], 900);
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 96);
    assert_eq!(
        total(&stats, "completed"),
        6,
        "the task of 90 minutes ago is in"
    );
}

both_backends!(queue_and_type_keep_only_their_tasks);
async fn queue_and_type_keep_only_their_tasks() {
    let app = TestApp::without_workers().await;
    a_known_history(&app).await;

    let by_queue = stats(&app, "?queue=mail").await;
    let by_type = stats(&app, "?type=email").await;
    let neither = stats(&app, "?queue=mail&type=noop").await;

    assert_eq!(bucket(&by_queue, minute(5))["completed"], 1);
    assert_eq!(
        total(&by_queue, "completed") + total(&by_queue, "failed"),
        1
    );
    assert_eq!(by_type["buckets"], by_queue["buckets"]);
    assert_eq!(total(&neither, "completed"), 0);
}

both_backends!(bad_parameters_are_refused_with_the_field_named);
async fn bad_parameters_are_refused_with_the_field_named() {
    let app = TestApp::without_workers().await;
    for (query, field, kind) in [
        ("minutes=0", "minutes", "greater_than_equal"),
        ("minutes=1441", "minutes", "less_than_equal"),
        ("minutes=hour", "minutes", "int_parsing"),
        ("queue=no%20spaces", "queue", "queue_name"),
        ("type=a%00b", "type", "string_nul"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/stats/tasks?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", field]), "{query}");
        assert_eq!(body["detail"][0]["type"], kind, "{query}: {body}");
    }
}

both_backends!(tasks_run_by_the_workers_are_counted_as_they_finish);
async fn tasks_run_by_the_workers_are_counted_as_they_finish() {
    let app = TestApp::start().await;
    app.run_to_the_end(json!({"type": "noop"})).await;
    app.run_to_the_end(json!({"type": "noop"})).await;
    app.run_to_the_end(json!({"type": "fail", "max_attempts": 1}))
        .await;

    let stats = stats(&app, "?minutes=5").await;

    assert_eq!(total(&stats, "completed"), 2);
    assert_eq!(total(&stats, "failed"), 1);
    let with_runs = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["run_ms"]["p95"].as_f64().is_some_and(|ms| ms >= 0.0))
        .count();
    assert!(with_runs >= 1, "{stats}");
}

postgres_only!(tasks_moved_to_the_history_are_still_counted);
async fn tasks_moved_to_the_history_are_still_counted() {
    let app = TestApp::without_workers().await;
    a_known_history(&app).await;
    let before = stats(&app, "?minutes=1440").await;

    let soon = Utc::now() + TimeDelta::seconds(1);
    let moved = app.store.archive_finished(soon, 1000).await.unwrap();
    let after = stats(&app, "?minutes=1440").await;

    assert_eq!(moved, 8);
    assert_eq!(after["buckets"], before["buckets"]);
    assert_eq!(total(&after, "completed"), 6);
}
