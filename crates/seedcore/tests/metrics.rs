//! `GET /metrics` over real HTTP, parsed from the text the server answers: the counted
//! families move as tasks are created and run, the gauges read from the store show zeros for
//! empty queues, tokens guard the route, and `seedcore serve` serves it on a port of its own.
//!
//! Counters are per process and every test of this file shares one, so each test works in
//! queues (and schedules) named for it alone and compares before and after.

mod common;

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use common::{process::*, *};
use reqwest::StatusCode;
use seedcore::{
    auth::{NewToken, Role, Scope, Secret},
    model::TaskStatus,
};
use serde_json::json;

/// One sample of a scrape: its series name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// A scrape, parsed: every sample by series, and the `# TYPE` of every family.
struct Scrape {
    samples: BTreeMap<Series, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (family, kind) = declared.split_once(' ').expect("a TYPE line");
                types.insert(family.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a value: {line}"));
            samples.insert(series_of(series), value);
        }
        Scrape { samples, types }
    }

    /// The value of the series with exactly these labels, if it is there.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let series = Series {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.samples.get(&series).copied()
    }

    /// The value of the series, 0 when it is not there yet (a counter before its first count).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// Every series of the family `name`.
    fn all(&self, name: &str) -> Vec<(&Series, f64)> {
        self.samples
            .iter()
            .filter(|(series, _)| series.name == name)
            .map(|(series, value)| (series, *value))
            .collect()
    }
}

fn series_of(text: &str) -> Series {
    let Some((name, rest)) = text.split_once('{') else {
        return Series {
            name: text.to_owned(),
            labels: BTreeMap::new(),
        };
    };
    let mut labels = BTreeMap::new();
    for pair in rest.trim_end_matches('}').split("\",") {
        let (key, value) = pair.split_once("=\"").expect("a label");
        labels.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
    }
    Series {
        name: name.to_owned(),
        labels,
    }
}

/// GET `url`, with a token when given: the status and the body's text.
async fn fetch(url: &str, token: Option<&str>) -> (StatusCode, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// A scrape of the app's `/metrics`, which must answer 200 in the Prometheus text format.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(&response.text().await.expect("body"))
}

/// A name no other test of this binary uses.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

both_backends!(metrics_appear_and_move_when_tasks_run);
async fn metrics_appear_and_move_when_tasks_run() {
    let app = TestApp::start().await;
    let queue = unique("moves");
    let task = [("queue", queue.as_str()), ("type", "echo")];
    let completed = [
        ("queue", queue.as_str()),
        ("type", "echo"),
        ("outcome", "completed"),
    ];
    let post = [
        ("method", "POST"),
        ("route", "/api/v1/tasks"),
        ("status", "200"),
    ];
    let before = scrape(&app).await;

    let done = app
        .run_to_the_end(json!({"type": "echo", "params": {"n": 1}, "queue": queue}))
        .await;
    assert_eq!(done.status, TaskStatus::Completed);
    let after = scrape(&app).await;

    assert_eq!(after.count("seedcore_tasks_created_total", &task), 1.0);
    assert_eq!(after.count("seedcore_task_attempts_total", &completed), 1.0);
    for histogram in [
        "seedcore_task_run_duration_seconds",
        "seedcore_task_queue_wait_seconds",
    ] {
        let count = format!("{histogram}_count");
        assert_eq!(after.count(&count, &task), 1.0, "{count}");
        let mut in_all = task.to_vec();
        in_all.push(("le", "+Inf"));
        let bucket = format!("{histogram}_bucket");
        assert_eq!(after.count(&bucket, &in_all), 1.0, "{bucket}");
        let mut smallest = task.to_vec();
        smallest.push(("le", "0.001"));
        assert!(
            after.value(&bucket, &smallest).is_some(),
            "buckets from 1 ms"
        );
        let mut largest = task.to_vec();
        largest.push(("le", "14400"));
        assert_eq!(after.count(&bucket, &largest), 1.0, "buckets up to hours");
        assert_eq!(after.types[histogram], "histogram");
    }
    for counter in [
        "seedcore_tasks_created_total",
        "seedcore_task_attempts_total",
        "seedcore_http_requests_total",
    ] {
        assert_eq!(after.types[counter], "counter", "{counter}");
    }
    let requests = "seedcore_http_requests_total";
    assert!(after.count(requests, &post) >= before.count(requests, &post) + 1.0);
    let timed = [("method", "POST"), ("route", "/api/v1/tasks")];
    let duration = "seedcore_http_request_duration_seconds_count";
    assert!(after.count(duration, &timed) >= before.count(duration, &timed) + 1.0);
    // Routes are templates, never raw paths.
    let gets = [
        ("method", "GET"),
        ("route", "/api/v1/tasks/{task_id}"),
        ("status", "200"),
    ];
    assert!(after.count(requests, &gets) >= 1.0);
    for (series, _) in after.all(requests) {
        let route = &series.labels["route"];
        assert!(
            route == "unmatched" || !route.contains(&done.id.to_string()),
            "{route}"
        );
    }

    let counts = [("queue", queue.as_str()), ("status", "completed")];
    assert_eq!(after.value("seedcore_tasks", &counts), Some(1.0));
    let this_queue = [("queue", queue.as_str())];
    assert_eq!(after.value("seedcore_queue_paused", &this_queue), Some(0.0));
    let age = "seedcore_queue_oldest_ready_age_seconds";
    assert_eq!(after.value(age, &this_queue), Some(0.0));
    let active = after.value("seedcore_workers", &[("state", "active")]);
    assert!(active.is_some_and(|n| n >= 1.0), "{active:?}");
    assert!(
        after
            .value("seedcore_workers", &[("state", "lost")])
            .is_some()
    );

    let pools = after.all("seedcore_db_pool_max_connections");
    assert!(!pools.is_empty(), "no pool reported");
    for (series, max) in pools {
        let pool = [("pool", series.labels["pool"].as_str())];
        let open = after.value("seedcore_db_pool_connections", &pool).unwrap();
        let idle = after.value("seedcore_db_pool_idle", &pool).unwrap();
        let in_use = after.value("seedcore_db_pool_in_use", &pool).unwrap();
        assert!(
            max >= 1.0 && open <= max && idle + in_use == open,
            "{series:?}"
        );
    }
    app.stop().await;
}

both_backends!(a_failing_task_moves_the_failed_and_retried_outcomes);
async fn a_failing_task_moves_the_failed_and_retried_outcomes() {
    let app = TestApp::start().await;
    let queue = unique("fails");
    let done = app
        .run_to_the_end(json!({
            "type": "fail", "queue": queue, "max_attempts": 2,
            "params": {"message": "no luck", "retryable": true},
        }))
        .await;
    assert_eq!(done.status, TaskStatus::Failed);
    let after = scrape(&app).await;
    let outcome = |outcome| {
        [
            ("queue", queue.as_str()),
            ("type", "fail"),
            ("outcome", outcome),
        ]
    };
    let attempts = "seedcore_task_attempts_total";
    assert_eq!(after.count(attempts, &outcome("retried")), 1.0);
    assert_eq!(after.count(attempts, &outcome("failed")), 1.0);
    assert_eq!(after.value(attempts, &outcome("completed")), None);
    let runs = [("queue", queue.as_str()), ("type", "fail")];
    let ran = "seedcore_task_run_duration_seconds_count";
    assert_eq!(after.count(ran, &runs), 2.0);
    let failed = [("queue", queue.as_str()), ("status", "failed")];
    assert_eq!(after.value("seedcore_tasks", &failed), Some(1.0));
    app.stop().await;
}

both_backends!(a_cancelled_running_task_counts_a_cancelled_attempt);
async fn a_cancelled_running_task_counts_a_cancelled_attempt() {
    let app = TestApp::start().await;
    let queue = unique("cancels");
    let created = app
        .create_task(json!({
            "type": "sleep", "queue": queue, "run_immediately": true,
            "params": {"seconds": 30},
        }))
        .await;
    let id = id_of(&created);
    app.wait_for(&id, Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    let (status, _) = app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    let cancelled = [
        ("queue", queue.as_str()),
        ("type", "sleep"),
        ("outcome", "cancelled"),
    ];
    eventually(Duration::from_secs(10), "a cancelled attempt", || async {
        let now = scrape(&app).await;
        (now.count("seedcore_task_attempts_total", &cancelled) == 1.0).then_some(())
    })
    .await;
    app.stop().await;
}

both_backends!(an_attempt_past_its_timeout_counts_as_timed_out);
async fn an_attempt_past_its_timeout_counts_as_timed_out() {
    let app = TestApp::start().await;
    let queue = unique("times-out");
    let done = app
        .run_to_the_end(json!({
            "type": "sleep", "queue": queue, "max_attempts": 1, "timeout_seconds": 0.2,
            "params": {"seconds": 30},
        }))
        .await;
    assert_eq!(done.status, TaskStatus::Failed);
    let now = scrape(&app).await;
    let outcome = |outcome| {
        [
            ("queue", queue.as_str()),
            ("type", "sleep"),
            ("outcome", outcome),
        ]
    };
    let attempts = "seedcore_task_attempts_total";
    assert_eq!(now.count(attempts, &outcome("timed_out")), 1.0);
    assert_eq!(now.value(attempts, &outcome("failed")), None);
    app.stop().await;
}

both_backends!(a_task_whose_lease_expired_counts_a_lease_expired_attempt);
async fn a_task_whose_lease_expired_counts_a_lease_expired_attempt() {
    let idle = TestApp::without_workers().await;
    let queue = unique("rescued");
    let created = idle
        .create_task(json!({"type": "noop", "queue": queue, "run_immediately": true}))
        .await;
    let id = id_of(&created);
    let db = idle.stop().await;
    expire_a_lease(&db, &id).await;
    // Workers on the same database rescue the task at start, then run it.
    let app = TestApp::on(db, Some(fast_engine()), Default::default()).await;
    let done = app.finished(&id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    let now = scrape(&app).await;
    let outcome = |outcome| {
        [
            ("queue", queue.as_str()),
            ("type", "noop"),
            ("outcome", outcome),
        ]
    };
    let attempts = "seedcore_task_attempts_total";
    assert_eq!(now.count(attempts, &outcome("lease_expired")), 1.0);
    assert_eq!(now.count(attempts, &outcome("completed")), 1.0);
    app.stop().await;
}

/// Leaves the task as a worker that died while running it would: running, its lease past.
async fn expire_a_lease(db: &TestDb, id: &str) {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let past = Utc::now() - TimeDelta::minutes(1);
    let done = match db.raw().await {
        RawDb::Postgres(pool) => sqlx::query(
            "update tasks set status = 'running', attempts = 1, lease_token = $2,
             lease_expires_at = $3, worker_id = 'gone' where id = $1",
        )
        .bind(id)
        .bind(uuid::Uuid::new_v4())
        .bind(past)
        .execute(&pool)
        .await
        .map(drop),
        RawDb::Sqlite(pool) => sqlx::query(
            "update tasks set status = 'running', attempts = 1, lease_token = ?2,
             lease_expires_at = ?3, worker_id = 'gone' where id = ?1",
        )
        .bind(id.to_string())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(
            past.format(seedcore::store::sqlite::TIME_FORMAT)
                .to_string(),
        )
        .execute(&pool)
        .await
        .map(drop),
    };
    done.expect("expire the lease");
}

both_backends!(an_empty_queue_shows_zero_for_every_status);
async fn an_empty_queue_shows_zero_for_every_status() {
    let app = TestApp::without_workers().await;
    let queue = unique("empty");
    let (status, _) = app
        .post_empty(&format!("/api/v1/queues/{queue}/pause"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let now = scrape(&app).await;
    for name in [queue.as_str(), "default"] {
        for status in TaskStatus::ALL {
            let labels = [("queue", name), ("status", status.as_str())];
            assert_eq!(
                now.value("seedcore_tasks", &labels),
                Some(0.0),
                "{name} {status:?}"
            );
        }
        let age = now.value(
            "seedcore_queue_oldest_ready_age_seconds",
            &[("queue", name)],
        );
        assert_eq!(age, Some(0.0), "{name}");
    }
    let paused = now.value("seedcore_queue_paused", &[("queue", queue.as_str())]);
    assert_eq!(paused, Some(1.0));
    for state in ["active", "stopped", "lost"] {
        assert!(now.value("seedcore_workers", &[("state", state)]).is_some());
    }
    assert_eq!(now.types["seedcore_tasks"], "gauge");
    app.stop().await;
}

both_backends!(a_waiting_task_ages_its_queue);
async fn a_waiting_task_ages_its_queue() {
    let app = TestApp::without_workers().await;
    let queue = unique("waits");
    app.create_task(json!({"type": "noop", "queue": queue, "run_immediately": true}))
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let now = scrape(&app).await;
    let labels = [("queue", queue.as_str())];
    let age = now
        .value("seedcore_queue_oldest_ready_age_seconds", &labels)
        .unwrap();
    assert!((1.0..60.0).contains(&age), "{age}");
    let queued = [("queue", queue.as_str()), ("status", "queued")];
    assert_eq!(now.value("seedcore_tasks", &queued), Some(1.0));
    app.stop().await;
}

both_backends!(a_schedule_fire_is_counted_and_its_time_reported);
async fn a_schedule_fire_is_counted_and_its_time_reported() {
    let app = TestApp::start().await;
    // Yearly, so that the fire forced below is the only one: an every-minute schedule also
    // fired on its own when the test straddled a minute, and was then counted twice.
    let name = unique("yearly");
    let queue = unique("scheduled");
    let (status, schedule) = app
        .post(
            "/api/v1/schedules",
            json!({"name": name, "cron": "0 0 1 1 *", "task": {"type": "noop", "queue": queue}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let before = scrape(&app).await;
    let last = [("schedule", name.as_str())];
    let gauge = "seedcore_schedule_last_fire_timestamp_seconds";
    assert_eq!(before.value(gauge, &last), Some(0.0), "never fired yet");
    let due = Utc::now() - TimeDelta::seconds(1);
    set_next_fire(&app.db, &id_of(&schedule), due).await;
    // A scrape reads the schedules before it writes out the live counters, so a fire that
    // lands between the two shows in the count but not yet in the time: wait for both.
    let fired = eventually(Duration::from_secs(10), "a counted fire", || async {
        let now = scrape(&app).await;
        let counted = now.count("seedcore_schedule_fires_total", &last) == 1.0;
        let timed = now.value(gauge, &last).is_some_and(|at| at > 0.0);
        (counted && timed).then_some(now)
    })
    .await;
    let at = fired.value(gauge, &last).unwrap();
    assert!((at - due.timestamp() as f64).abs() < 5.0, "{at}");
    let created = [("queue", queue.as_str()), ("type", "noop")];
    assert_eq!(fired.count("seedcore_tasks_created_total", &created), 1.0);
    app.stop().await;
}

/// Sets a schedule's next fire time directly, as if it were due.
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

/// Stores a token with these scopes and returns its text.
async fn mint(app: &TestApp, name: &str, scopes: Vec<Scope>) -> String {
    let secret = Secret::generate();
    app.store
        .create_token(NewToken {
            id: secret.id.clone(),
            name: name.into(),
            role: Role::Viewer,
            scopes,
            secret_hash: secret.hash(),
            expires_at: None,
        })
        .await
        .expect("store a token");
    secret.text
}

both_backends!(once_tokens_exist_metrics_need_the_metrics_read_scope);
async fn once_tokens_exist_metrics_need_the_metrics_read_scope() {
    let app = TestApp::without_workers().await;
    let url = format!("{}/metrics", app.base);
    assert_eq!(fetch(&url, None).await.0, StatusCode::OK);
    let viewer = mint(&app, "viewer", Role::Viewer.scopes()).await;
    let tasks_only = mint(&app, "tasks-only", vec![Scope::TasksRead]).await;
    eventually(
        Duration::from_secs(5),
        "a refusal without a token",
        || async { (fetch(&url, None).await.0 == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    assert_eq!(
        fetch(&url, Some(&tasks_only)).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, text) = fetch(&url, Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(Scrape::parse(&text).types.contains_key("seedcore_tasks"));
    // The refusals were counted under the route, not lost.
    let refused = [("method", "GET"), ("route", "/metrics"), ("status", "401")];
    let counted = Scrape::parse(&text).count("seedcore_http_requests_total", &refused);
    assert!(counted >= 1.0, "{counted}");
    app.stop().await;
}

/// `seedcore serve` without workers on `db`, metrics on a port of their own, with `env` added.
fn spawn_serve(db: &TestDb, env: &[(&str, &str)]) -> Process {
    let mut all = vec![
        ("SEEDCORE_WORKER_CONCURRENCY", "0"),
        ("SEEDCORE_METRICS_ADDR", "127.0.0.1:0"),
    ];
    all.extend_from_slice(env);
    Process::serve(&db.url(), &all)
}

/// The metrics URL `serve` logged.
fn metrics_url(process: &mut Process) -> String {
    let line = process.wait_for_line("metrics served on http://", Duration::from_secs(30));
    let start = line.find("http://").expect("a URL");
    line[start..]
        .split_whitespace()
        .next()
        .expect("a URL")
        .to_owned()
}

both_backends!(the_metrics_address_serves_metrics_on_a_port_of_its_own);
async fn the_metrics_address_serves_metrics_on_a_port_of_its_own() {
    let db = TestDb::create().await;
    let mut serve = spawn_serve(&db, &[]);
    let metrics = metrics_url(&mut serve);
    let base = serve.wait_for_address();
    assert!(
        !metrics.starts_with(&base),
        "{metrics} is on the API's port"
    );

    let (status, text) = fetch(&metrics, None).await;
    assert_eq!(status, StatusCode::OK);
    let own_port = Scrape::parse(&text);
    let queued = [("queue", "default"), ("status", "queued")];
    assert_eq!(own_port.value("seedcore_tasks", &queued), Some(0.0));
    // Still on the API's port; and the metrics port serves nothing else.
    assert_eq!(
        fetch(&format!("{base}/metrics"), None).await.0,
        StatusCode::OK
    );
    let other = metrics.replace("/metrics", "/api/v1/tasks");
    assert_eq!(fetch(&other, None).await.0, StatusCode::NOT_FOUND);
    serve.stop();
}

sqlite_only!(switched_off_metrics_are_neither_counted_nor_served);
async fn switched_off_metrics_are_neither_counted_nor_served() {
    let db = TestDb::create().await;
    let mut serve = spawn_serve(&db, &[("SEEDCORE_METRICS_ENABLED", "false")]);
    let metrics = metrics_url(&mut serve);
    let base = serve.wait_for_address();
    assert_eq!(fetch(&metrics, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        fetch(&format!("{base}/metrics"), None).await.0,
        StatusCode::NOT_FOUND
    );
    serve.stop();
}

postgres_only!(a_worker_process_serves_its_counts_on_the_metrics_address);
async fn a_worker_process_serves_its_counts_on_the_metrics_address() {
    let app = TestApp::without_workers().await;
    let queue = unique("worker-side");
    let created = app
        .create_task(json!({"type": "noop", "queue": queue, "run_immediately": true}))
        .await;
    let url = app.db.url();
    let mut worker = Process::spawn(
        &["worker"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("SEEDCORE_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    let metrics = metrics_url(&mut worker);
    let done = app.finished(&id_of(&created)).await;
    assert_eq!(done.status, TaskStatus::Completed);
    let completed = [
        ("queue", queue.as_str()),
        ("type", "noop"),
        ("outcome", "completed"),
    ];
    let counted = eventually(Duration::from_secs(10), "the worker's count", || async {
        let (status, text) = fetch(&metrics, None).await;
        assert_eq!(status, StatusCode::OK);
        let count = Scrape::parse(&text).count("seedcore_task_attempts_total", &completed);
        (count > 0.0).then_some(count)
    })
    .await;
    assert_eq!(counted, 1.0);
    worker.stop();
    app.stop().await;
}

sqlite_only!(a_metrics_address_in_use_stops_serve_before_it_starts);
async fn a_metrics_address_in_use_stops_serve_before_it_starts() {
    let db = TestDb::create().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().unwrap().to_string();
    let mut serve = spawn_serve(&db, &[("SEEDCORE_METRICS_ADDR", address.as_str())]);
    let log = serve.refusal();
    assert!(
        log.contains(&format!("cannot listen for metrics on {address}")),
        "{log}"
    );
}
