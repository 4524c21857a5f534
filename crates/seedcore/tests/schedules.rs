//! Cron schedules through the API and the scheduler: create, read, list, patch, delete, every
//! refusal, fire times in a zone, one task per fire time, pause and resume, missed fires after
//! downtime. Every test runs on both backends.

mod common;

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Days, NaiveTime, SecondsFormat, TimeDelta, Timelike, Utc};
use common::{
    schedules::{PATH, create, get, time},
    *,
};
use reqwest::StatusCode;
use seedcore::{api::ApiSettings, model::TaskStatus, store::FIRE_BATCH};
use serde_json::{Value, json};

async fn patch(app: &TestApp, id: &str, body: Value) -> Value {
    let (status, schedule) = app.patch(&format!("{PATH}/{id}"), body).await;
    assert_eq!(status, StatusCode::OK, "patch schedule: {schedule}");
    schedule
}

fn times(value: &Value) -> Vec<DateTime<Utc>> {
    value.as_array().expect("a list").iter().map(time).collect()
}

/// The tasks a schedule created, each with the fire time its key names, by fire time.
async fn fired(app: &TestApp, schedule_id: &str) -> Vec<(DateTime<Utc>, Value)> {
    let (_, list) = app.get("/api/v1/tasks?limit=1000").await;
    let prefix = format!("schedule:{schedule_id}:");
    let mut tasks: Vec<(DateTime<Utc>, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|task| {
            let key = task["idempotency_key"].as_str()?;
            let at = key.strip_prefix(&prefix)?.parse().expect("a fire time");
            Some((at, task.clone()))
        })
        .collect();
    tasks.sort_by_key(|(at, _)| *at);
    tasks
}

async fn wait_for_fires(app: &TestApp, id: &str, count: usize) -> Vec<(DateTime<Utc>, Value)> {
    eventually(
        Duration::from_secs(15),
        &format!("{count} fires"),
        || async {
            let tasks = fired(app, id).await;
            (tasks.len() >= count).then_some(tasks)
        },
    )
    .await
}

fn assert_consecutive_seconds(fires: &[DateTime<Utc>]) {
    for pair in fires.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TimeDelta::seconds(1),
            "fires not one second apart: {fires:?}"
        );
    }
}

both_backends!(a_schedule_is_created_read_listed_changed_and_deleted);
async fn a_schedule_is_created_read_listed_changed_and_deleted() {
    let app = TestApp::without_workers().await;
    let created = create(
        &app,
        json!({
            "name": "nightly-report", "cron": "0 3 * * *", "timezone": "Europe/Zurich",
            "task": {"type": "echo", "params": {"report": "daily"}, "queue": "reports",
                     "priority": 5, "description": "the nightly report", "domain": "finance",
                     "max_attempts": 2, "timeout_seconds": 30, "drift_score": 0.2},
            "misfire_policy": "skip"
        }),
    )
    .await;
    assert_eq!(created["name"], "nightly-report");
    assert_eq!(
        created["task"],
        json!({"type": "echo", "params": {"report": "daily"}, "description": "the nightly report",
               "domain": "finance", "queue": "reports", "priority": 5, "max_attempts": 2,
               "timeout_seconds": 30.0, "drift_score": 0.2})
    );
    assert_eq!(
        (&created["enabled"], &created["misfire_policy"]),
        (&json!(true), &json!("skip"))
    );
    assert_eq!(created["last_fire_at"], Value::Null);
    assert_eq!(created["next_fire_times"].as_array().unwrap().len(), 5);
    assert_eq!(created["next_fire_times"][0], created["next_fire_at"]);
    let id = id_of(&created);
    assert_eq!(get(&app, &id).await, created);

    let other = create(
        &app,
        json!({"name": "a-first", "cron": "@hourly", "task": {"type": "noop"}}),
    )
    .await;
    assert_eq!(other["timezone"], "UTC");
    assert_eq!(other["misfire_policy"], "run_once");
    assert_eq!(other["task"]["max_attempts"], 3);
    let (status, list) = app.get(PATH).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-first", "nightly-report"]);
    let (_, page) = app.get(&format!("{PATH}?limit=1&offset=1")).await;
    assert_eq!(page["items"][0]["name"], "nightly-report");

    let changed = patch(
        &app,
        &id,
        json!({"name": "report", "task": {"priority": 9, "domain": null}}),
    )
    .await;
    assert_eq!(changed["name"], "report");
    assert_eq!(
        (&changed["task"]["priority"], &changed["task"]["domain"]),
        (&json!(9), &Value::Null)
    );
    assert_eq!(changed["task"]["queue"], "reports", "untouched fields stay");
    assert_eq!(changed["next_fire_at"], created["next_fire_at"]);
    assert!(time(&changed["updated_at"]) > time(&created["updated_at"]));
    assert_eq!(patch(&app, &id, json!({})).await, changed);

    let (status, body) = app.delete(&format!("{PATH}/{id}")).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, json!("")));
    let (status, gone) = app.get(&format!("{PATH}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone, json!({"detail": "Schedule not found"}));
}

both_backends!(every_bad_schedule_body_is_a_422_naming_the_field);
async fn every_bad_schedule_body_is_a_422_naming_the_field() {
    let app = TestApp::without_workers().await;
    let valid = json!({"name": "n", "cron": "* * * * *", "task": {"type": "noop"}});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let with_task = |key: &str, value: Value| {
        let mut body = valid.clone();
        body["task"][key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    for (body, loc) in [
        (with("cron", json!("61 * * * *")), json!(["body", "cron"])),
        (with("cron", json!("* * * *")), json!(["body", "cron"])),
        (with("cron", json!("0 0 30 2 *")), json!(["body", "cron"])),
        (with("cron", json!(5)), json!(["body", "cron"])),
        (
            with("timezone", json!("Mars/Olympus")),
            json!(["body", "timezone"]),
        ),
        (with("colour", json!("blue")), json!(["body", "colour"])),
        (with("enabled", json!("yes")), json!(["body", "enabled"])),
        (
            with("misfire_policy", json!("later")),
            json!(["body", "misfire_policy"]),
        ),
        (with("name", json!("")), json!(["body", "name"])),
        (with("name", json!("a\u{0}b")), json!(["body", "name"])),
        (with("task", json!("noop")), json!(["body", "task"])),
        (without("name"), json!(["body", "name"])),
        (without("cron"), json!(["body", "cron"])),
        (without("task"), json!(["body", "task"])),
        (
            with("task", json!({"params": {}})),
            json!(["body", "task", "type"]),
        ),
        (
            with_task("queue", json!("no spaces")),
            json!(["body", "task", "queue"]),
        ),
        (
            with_task("params", json!([1])),
            json!(["body", "task", "params"]),
        ),
        (
            with_task("priority", json!(2_000_000)),
            json!(["body", "task", "priority"]),
        ),
        (
            with_task("max_attempts", json!(0)),
            json!(["body", "task", "max_attempts"]),
        ),
        (
            with_task("timeout_seconds", json!(-1)),
            json!(["body", "task", "timeout_seconds"]),
        ),
        (
            with_task("retries", json!(3)),
            json!(["body", "task", "retries"]),
        ),
    ] {
        let (status, answer) = app.post(PATH, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
    }
    let (status, answer) = app.post(PATH, json!([1])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    let schedule = create(&app, valid.clone()).await;
    let path = format!("{PATH}/{}", id_of(&schedule));
    for (body, loc) in [
        (json!({"cron": "nope"}), json!(["body", "cron"])),
        (
            json!({"timezone": "Nowhere/Town"}),
            json!(["body", "timezone"]),
        ),
        (json!({"enabled": null}), json!(["body", "enabled"])),
        (json!({"id": "x"}), json!(["body", "id"])),
        (
            json!({"task": {"type": ""}}),
            json!(["body", "task", "type"]),
        ),
        (
            json!({"task": {"queue": "a b"}}),
            json!(["body", "task", "queue"]),
        ),
    ] {
        let (status, answer) = app.patch(&path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
    }
    assert_eq!(
        get(&app, &id_of(&schedule)).await,
        schedule,
        "nothing changed"
    );
    let (_, list) = app.get(PATH).await;
    assert_eq!(list["total"], 1, "no refused body was stored");
}

both_backends!(an_unknown_schedule_is_a_404_and_a_malformed_id_a_422);
async fn an_unknown_schedule_is_a_404_and_a_malformed_id_a_422() {
    let app = TestApp::without_workers().await;
    let unknown = format!("{PATH}/0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b");
    for (status, answer) in [
        app.get(&unknown).await,
        app.patch(&unknown, json!({"enabled": false})).await,
        app.delete(&unknown).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(answer, json!({"detail": "Schedule not found"}));
    }
    let (status, answer) = app.get(&format!("{PATH}/0f8e2c4a")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["detail"][0]["loc"], json!(["path", "schedule_id"]));
    let (status, _) = app.get(&format!("{PATH}?limit=0")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

both_backends!(a_name_in_use_is_a_409_on_create_and_on_rename);
async fn a_name_in_use_is_a_409_on_create_and_on_rename() {
    let app = TestApp::without_workers().await;
    let body = json!({"name": "daily", "cron": "@daily", "task": {"type": "noop"}});
    create(&app, body.clone()).await;
    let (status, answer) = app.post(PATH, body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        answer,
        json!({"detail": "A schedule named 'daily' already exists"})
    );
    let other = create(
        &app,
        json!({"name": "weekly", "cron": "@weekly", "task": {"type": "noop"}}),
    )
    .await;
    let (status, _) = app
        .patch(
            &format!("{PATH}/{}", id_of(&other)),
            json!({"name": "daily"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(get(&app, &id_of(&other)).await["name"], "weekly");
}

both_backends!(next_fire_times_follow_the_expression_in_the_schedules_zone);
async fn next_fire_times_follow_the_expression_in_the_schedules_zone() {
    let app = TestApp::without_workers().await;
    let quarter = create(
        &app,
        json!({"name": "quarter", "cron": "*/15 * * * *", "task": {"type": "noop"}}),
    )
    .await;
    let created = time(&quarter["created_at"]);
    // Expected independently: the quarter hours after the creation time.
    let hour = created.with_minute(0).unwrap().with_second(0).unwrap();
    let hour = hour.with_nanosecond(0).unwrap();
    let expected: Vec<DateTime<Utc>> = (1..=8)
        .map(|q| hour + TimeDelta::minutes(15 * q))
        .filter(|t| *t > created)
        .take(5)
        .collect();
    assert_eq!(times(&quarter["next_fire_times"]), expected);

    let seconds = create(
        &app,
        json!({"name": "seconds", "cron": "*/20 * * * * *", "task": {"type": "noop"}}),
    )
    .await;
    let created = time(&seconds["created_at"]);
    let minute = created.with_second(0).unwrap().with_nanosecond(0).unwrap();
    let expected: Vec<DateTime<Utc>> = (1..=8)
        .map(|n| minute + TimeDelta::seconds(20 * n))
        .filter(|t| *t > created)
        .take(5)
        .collect();
    assert_eq!(times(&seconds["next_fire_times"]), expected);

    // 09:00 in Tokyo (+09:00 all year, no daylight saving) is midnight UTC.
    let tokyo = create(
        &app,
        json!({"name": "tokyo", "cron": "0 9 * * *", "timezone": "Asia/Tokyo",
               "task": {"type": "noop"}}),
    )
    .await;
    let created = time(&tokyo["created_at"]);
    let first_day = created.date_naive().checked_add_days(Days::new(1)).unwrap();
    let expected: Vec<DateTime<Utc>> = (0..5)
        .map(|d| {
            first_day
                .checked_add_days(Days::new(d))
                .unwrap()
                .and_time(NaiveTime::MIN)
                .and_utc()
        })
        .collect();
    assert_eq!(times(&tokyo["next_fire_times"]), expected);
}

both_backends!(an_every_second_schedule_creates_one_queued_task_per_second_that_runs);
async fn an_every_second_schedule_creates_one_queued_task_per_second_that_runs() {
    let app = TestApp::start().await;
    let schedule = create(
        &app,
        json!({"name": "tick", "cron": "* * * * * *",
               "task": {"type": "echo", "params": {"hello": "world"}, "priority": 3,
                        "description": "a tick"}}),
    )
    .await;
    let id = id_of(&schedule);
    wait_for_fires(&app, &id, 3).await;
    patch(&app, &id, json!({"enabled": false})).await;
    let tasks = fired(&app, &id).await;
    let fire_times: Vec<DateTime<Utc>> = tasks.iter().map(|(at, _)| *at).collect();
    assert_consecutive_seconds(&fire_times);
    assert!(fire_times[0] > time(&schedule["created_at"]));
    for (_, task) in &tasks {
        let done = app.finished(&id_of(task)).await;
        assert_eq!(done.status, TaskStatus::Completed);
        assert_eq!(done.params, json!({"hello": "world"}));
        assert_eq!((done.priority, done.description.as_str()), (3, "a tick"));
        assert_eq!(done.result.unwrap()["result"], json!({"hello": "world"}));
    }
    let last = get(&app, &id).await;
    assert_eq!(time(&last["last_fire_at"]), *fire_times.last().unwrap());
    assert_eq!(last["last_task_id"], tasks.last().unwrap().1["id"]);
}

both_backends!(a_paused_schedule_creates_nothing_and_resuming_does_not_back_fill);
async fn a_paused_schedule_creates_nothing_and_resuming_does_not_back_fill() {
    let app = TestApp::start().await;
    let schedule = create(
        &app,
        json!({"name": "tick", "cron": "* * * * * *", "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    wait_for_fires(&app, &id, 1).await;
    let paused = patch(&app, &id, json!({"enabled": false})).await;
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["next_fire_at"], Value::Null);
    assert_eq!(paused["next_fire_times"], json!([]));
    let before = fired(&app, &id).await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        fired(&app, &id).await.len(),
        before,
        "a paused schedule fired"
    );

    let resumed = patch(&app, &id, json!({"enabled": true})).await;
    let resumed_at = time(&resumed["updated_at"]);
    assert!(time(&resumed["next_fire_at"]) > resumed_at);
    let tasks = wait_for_fires(&app, &id, before + 1).await;
    let late: Vec<DateTime<Utc>> = tasks[before..].iter().map(|(at, _)| *at).collect();
    assert!(
        late.iter().all(|at| *at > resumed_at),
        "fires from the pause were run: {late:?} (resumed at {resumed_at})"
    );
}

/// A schedule that fires every hour at half an hour from now: its last fire was about half an
/// hour ago, long past the grace, and its next is half an hour away.
fn half_past_now() -> (String, DateTime<Utc>) {
    let now = Utc::now();
    let minute = (now.minute() + 30) % 60;
    let this_hour = now
        .with_minute(minute)
        .unwrap()
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let last = if this_hour < now {
        this_hour
    } else {
        this_hour - TimeDelta::hours(1)
    };
    (format!("{minute} * * * *"), last)
}

/// Sets a schedule's next fire time directly, as if no process had run it since.
async fn set_next_fire(db: &TestDb, id: &str, at: DateTime<Utc>) {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let done = match db.raw().await {
        RawDb::Postgres(pool) => {
            sqlx::query("update schedules set next_fire_at = $1 where id = $2")
                .bind(at)
                .bind(id)
                .execute(&pool)
                .await
                .map(drop)
        }
        RawDb::Sqlite(pool) => sqlx::query("update schedules set next_fire_at = ?1 where id = ?2")
            .bind(at.format(seedcore::store::sqlite::TIME_FORMAT).to_string())
            .bind(id.to_string())
            .execute(&pool)
            .await
            .map(drop),
    };
    done.expect("set next_fire_at");
}

/// Creates the schedule with the API alone, makes it look three fires overdue, then starts
/// the workers and waits until the scheduler has moved it on.
async fn after_downtime(policy: &str) -> (TestApp, String, DateTime<Utc>) {
    let app = TestApp::without_workers().await;
    let (cron, last) = half_past_now();
    let schedule = create(
        &app,
        json!({"name": "hourly", "cron": cron, "misfire_policy": policy,
               "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    set_next_fire(&app.db, &id, last - TimeDelta::hours(2)).await;
    let db = app.stop().await;
    let app = TestApp::on(db, Some(fast_engine()), ApiSettings::default()).await;
    let upcoming = time(&schedule["next_fire_at"]);
    eventually(
        Duration::from_secs(10),
        "the scheduler moves the schedule on",
        || async { (time(&get(&app, &id).await["next_fire_at"]) == upcoming).then_some(()) },
    )
    .await;
    (app, id, last)
}

both_backends!(after_downtime_run_once_creates_one_task_for_the_latest_missed_fire);
async fn after_downtime_run_once_creates_one_task_for_the_latest_missed_fire() {
    let (app, id, last) = after_downtime("run_once").await;
    let tasks = fired(&app, &id).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].0, last);
    assert_eq!(
        tasks[0].1["idempotency_key"],
        format!(
            "schedule:{id}:{}",
            last.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    );
    assert_eq!(
        app.finished(&id_of(&tasks[0].1)).await.status,
        TaskStatus::Completed
    );
    let schedule = get(&app, &id).await;
    assert_eq!(time(&schedule["last_fire_at"]), last);
    assert_eq!(schedule["last_task_id"], tasks[0].1["id"]);
    let (_, events) = app
        .get(&format!("/api/v1/tasks/{}/events", id_of(&tasks[0].1)))
        .await;
    assert_eq!(
        events["items"][0]["actor"],
        format!("schedule:{}", schedule["name"].as_str().unwrap()),
        "the created event names the schedule that fired"
    );
}

both_backends!(after_downtime_skip_creates_nothing_for_the_missed_fires);
async fn after_downtime_skip_creates_nothing_for_the_missed_fires() {
    let (app, id, _) = after_downtime("skip").await;
    assert!(fired(&app, &id).await.is_empty());
    assert_eq!(get(&app, &id).await["last_fire_at"], Value::Null);
}

both_backends!(firing_twice_or_after_a_task_took_the_key_creates_no_second_task);
async fn firing_twice_or_after_a_task_took_the_key_creates_no_second_task() {
    let app = TestApp::without_workers().await;
    let (cron, last) = half_past_now();
    let schedule = create(
        &app,
        json!({"name": "hourly", "cron": cron, "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    let key = format!(
        "schedule:{id}:{}",
        last.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let taken = app
        .create_task(json!({"type": "noop", "idempotency_key": key}))
        .await;
    set_next_fire(&app.db, &id, last - TimeDelta::hours(1)).await;

    let firing = app.store.fire_due_schedules(FIRE_BATCH).await.unwrap();
    assert_eq!(firing.schedules, 1);
    assert!(firing.tasks.is_empty(), "the key was taken: no new task");
    assert_eq!(firing.missed.len(), 1);
    let again = app.store.fire_due_schedules(FIRE_BATCH).await.unwrap();
    assert_eq!((again.schedules, again.tasks.len()), (0, 0));

    let tasks = fired(&app, &id).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].1["id"], taken["id"]);
    let schedule = get(&app, &id).await;
    assert_eq!(schedule["last_task_id"], taken["id"]);
    assert_eq!(
        firing.next_due,
        Some(time(&schedule["next_fire_at"])),
        "the earliest next fire is this schedule's"
    );
}

both_backends!(deleting_a_schedule_keeps_the_tasks_it_created);
async fn deleting_a_schedule_keeps_the_tasks_it_created() {
    let app = TestApp::start().await;
    let schedule = create(
        &app,
        json!({"name": "tick", "cron": "* * * * * *", "task": {"type": "noop"}}),
    )
    .await;
    let id = id_of(&schedule);
    wait_for_fires(&app, &id, 2).await;
    let (status, _) = app.delete(&format!("{PATH}/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let kept = fired(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = fired(&app, &id).await;
    assert_eq!(later.len(), kept.len(), "a deleted schedule fired");
    for (_, task) in &later {
        assert_eq!(
            app.finished(&id_of(task)).await.status,
            TaskStatus::Completed
        );
    }
    let distinct: BTreeSet<DateTime<Utc>> = later.iter().map(|(at, _)| *at).collect();
    assert_eq!(distinct.len(), later.len());
}
