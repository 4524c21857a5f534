//! Several real `seedcore` processes sharing one PostgreSQL: load sharing, crashes, signals and
//! a database that drops every connection.

mod common;

use std::time::Duration;

use common::{process::*, *};
use seedcore::{
    model::{MisfirePolicy, NewSchedule, NewTask, SchedulePatch, TaskTemplate},
    store::{PgStore, Store},
};
use serde_json::json;

async fn enqueue(store: &PgStore, count: usize, task_type: &str, params: serde_json::Value) {
    for _ in 0..count {
        let mut task = NewTask::of_type(task_type);
        task.params = params.as_object().cloned().unwrap_or_default();
        task.run_immediately = true;
        store.create_task(task).await.expect("enqueue");
    }
}

async fn count(store: &PgStore, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

async fn wait_until_all_completed(store: &PgStore, total: i64, within: Duration) {
    eventually(within, "every task completes", || async {
        (count(
            store,
            "select count(*) from tasks where status = 'completed'",
        )
        .await
            == total)
            .then_some(())
    })
    .await;
}

fn worker(url: &str, extra: &[(&str, &str)]) -> Process {
    let mut env = vec![("PG_DSN", url), ("SEEDCORE_POLL_INTERVAL_MS", "200")];
    env.extend_from_slice(extra);
    let mut process = Process::spawn(&["worker"], &env);
    process.wait_for_line("workers started", Duration::from_secs(30));
    process
}

postgres_only!(three_worker_processes_share_the_load_and_run_each_task_once);
async fn three_worker_processes_share_the_load_and_run_each_task_once() {
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    let url = db.url();
    let _workers: Vec<Process> = (0..3)
        .map(|_| worker(&url, &[("SEEDCORE_WORKER_CONCURRENCY", "4")]))
        .collect();
    enqueue(&store, 300, "sleep", json!({"seconds": 0.01})).await;
    wait_until_all_completed(&store, 300, Duration::from_secs(60)).await;

    let claimed_twice = count(
        &store,
        "select count(*) from (select task_id from task_events where kind = 'claimed'
                               group by task_id having count(*) > 1) twice",
    )
    .await;
    assert_eq!(claimed_twice, 0, "a task was claimed more than once");
    assert_eq!(
        count(&store, "select count(*) from tasks where attempts <> 1").await,
        0
    );
    let workers_used = count(&store, "select count(distinct worker_id) from tasks").await;
    assert!(
        workers_used >= 2,
        "only {workers_used} worker(s) did any work"
    );
    let registered = store.list_workers().await.unwrap();
    assert_eq!(registered.len(), 3);
}

postgres_only!(tasks_of_a_worker_killed_mid_task_are_rescued_and_complete_once);
async fn tasks_of_a_worker_killed_mid_task_are_rescued_and_complete_once() {
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    let url = db.url();
    let lease = [
        ("SEEDCORE_LEASE_SECONDS", "2"),
        ("SEEDCORE_WORKER_CONCURRENCY", "4"),
    ];
    let mut doomed = worker(&url, &lease);
    enqueue(&store, 4, "sleep", json!({"seconds": 3})).await;
    eventually(
        Duration::from_secs(10),
        "the doomed worker runs all four",
        || async {
            (count(
                &store,
                "select count(*) from tasks where status = 'running'",
            )
            .await
                == 4)
                .then_some(())
        },
    )
    .await;
    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(10));

    let _survivor = worker(&url, &lease);
    wait_until_all_completed(&store, 4, Duration::from_secs(60)).await;
    // Each task was rescued at least once (more if a slow machine let a lease lapse before
    // the kill), and completed exactly once.
    let rescued = count(
        &store,
        "select count(distinct task_id) from task_events where kind = 'rescued'",
    )
    .await;
    assert_eq!(rescued, 4);
    assert_eq!(
        count(
            &store,
            "select count(*) from task_events where kind = 'completed'"
        )
        .await,
        4
    );
    let lost = store
        .list_workers()
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.stopped_at.is_none() && w.pid == doomed.child.id() as i32)
        .count();
    assert_eq!(lost, 1, "the killed worker never said goodbye");
}

postgres_only!(sigterm_under_load_exits_cleanly_and_leaves_nothing_running);
async fn sigterm_under_load_exits_cleanly_and_leaves_nothing_running() {
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    let url = db.url();
    let mut busy = worker(
        &url,
        &[
            ("SEEDCORE_WORKER_CONCURRENCY", "4"),
            ("SEEDCORE_SHUTDOWN_GRACE_SECONDS", "1"),
        ],
    );
    enqueue(&store, 20, "sleep", json!({"seconds": 0.3})).await;
    enqueue(&store, 4, "sleep", json!({"seconds": 30})).await;
    eventually(Duration::from_secs(10), "some tasks complete", || async {
        (count(
            &store,
            "select count(*) from tasks where status = 'completed'",
        )
        .await
            > 0)
        .then_some(())
    })
    .await;
    busy.signal("TERM");
    let started = std::time::Instant::now();
    let status = busy.wait_exit(Duration::from_secs(15));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        busy.log.join("\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        count(
            &store,
            "select count(*) from tasks where status = 'running'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            "select count(*) from tasks where status not in ('completed', 'queued')"
        )
        .await,
        0
    );
}

postgres_only!(workers_recover_by_themselves_when_the_database_drops_every_connection);
async fn workers_recover_by_themselves_when_the_database_drops_every_connection() {
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    let url = db.url();
    let _worker = worker(&url, &[("SEEDCORE_WORKER_CONCURRENCY", "4")]);
    enqueue(&store, 10, "noop", json!({})).await;
    wait_until_all_completed(&store, 10, Duration::from_secs(30)).await;

    // What a restart looks like from outside: every connection cut, new ones refused a while.
    outage(&db, Duration::from_secs(2)).await;

    let store = db.pg_store().await;
    enqueue(&store, 10, "noop", json!({})).await;
    wait_until_all_completed(&store, 20, Duration::from_secs(60)).await;
    assert_eq!(
        count(
            &store,
            "select count(*) from tasks where status <> 'completed'"
        )
        .await,
        0
    );
}

postgres_only!(an_outcome_that_could_not_be_written_during_an_outage_is_recorded_whole_after_it);
async fn an_outcome_that_could_not_be_written_during_an_outage_is_recorded_whole_after_it() {
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    // A short wait for a connection, so that a write fails within the outage, not after it.
    let mut worker = worker(&db.url(), &[("POSTGRES_POOL_TIMEOUT", "1")]);
    enqueue(&store, 1, "sleep", json!({"seconds": 1})).await;
    eventually(Duration::from_secs(10), "the task runs", || async {
        let running = "select count(*) from tasks where status = 'running'";
        (count(&store, running).await == 1).then_some(())
    })
    .await;

    // The handler ends while every connection is refused, so its outcome is sent again.
    outage(&db, Duration::from_secs(2)).await;
    worker.wait_for_line("cannot record the attempt yet", Duration::from_secs(10));

    let store = db.pg_store().await;
    wait_until_all_completed(&store, 1, Duration::from_secs(30)).await;
    let (result, attempts): (serde_json::Value, i32) =
        sqlx::query_as("select result, attempts from tasks")
            .fetch_one(store.pool())
            .await
            .expect("the task");
    assert_eq!(result["result"], json!({"slept": 1}));
    assert_eq!(
        attempts, 1,
        "recorded by the attempt that ran, not run again"
    );
}

async fn outage(db: &TestDb, length: Duration) {
    let admin = admin_pool().await;
    let allow = |allowed: bool| {
        // The name is the test's own; ALTER DATABASE takes no bind parameters.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "alter database {} with allow_connections {allowed}",
            db.name
        )))
    };
    allow(false).execute(&admin).await.unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&db.name)
        .execute(&admin)
        .await
        .unwrap();
    tokio::time::sleep(length).await;
    allow(true).execute(&admin).await.unwrap();
}

postgres_only!(three_processes_fire_an_every_second_schedule_once_per_second_without_gaps);
async fn three_processes_fire_an_every_second_schedule_once_per_second_without_gaps() {
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    let url = db.url();
    let _workers: Vec<Process> = (0..3).map(|_| worker(&url, &[])).collect();
    let schedule = store
        .create_schedule(NewSchedule {
            name: "tick".into(),
            cron: "* * * * * *".into(),
            timezone: "UTC".into(),
            task: TaskTemplate::of_type("noop"),
            enabled: true,
            misfire_policy: MisfirePolicy::RunOnce,
        })
        .await
        .expect("create the schedule");
    let prefix = format!("schedule:{}:", schedule.id);
    let fire_keys = || async {
        sqlx::query_scalar::<_, String>(
            "select idempotency_key from tasks where starts_with(idempotency_key, $1)",
        )
        .bind(&prefix)
        .fetch_all(store.pool())
        .await
        .expect("fire keys")
    };
    eventually(Duration::from_secs(30), "four fires", || async {
        (fire_keys().await.len() >= 4).then_some(())
    })
    .await;
    let pause = SchedulePatch {
        enabled: Some(false),
        ..SchedulePatch::default()
    };
    store.update_schedule(schedule.id, pause).await.unwrap();

    let keys = fire_keys().await;
    let mut fires: Vec<chrono::DateTime<chrono::Utc>> = keys
        .iter()
        .map(|key| key[prefix.len()..].parse().expect("a fire time"))
        .collect();
    fires.sort();
    fires.dedup();
    assert_eq!(
        fires.len(),
        keys.len(),
        "a fire time has two tasks: {keys:?}"
    );
    assert!(fires.len() >= 4, "{keys:?}");
    for pair in fires.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            chrono::TimeDelta::seconds(1),
            "a gap or a jump between fires: {fires:?}"
        );
    }
    assert!(fires[0] > schedule.created_at);
    wait_until_all_completed(&store, keys.len() as i64, Duration::from_secs(30)).await;
}
