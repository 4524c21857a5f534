//! The `seedcore` binary: its commands, settings, messages and signals.

mod common;

use std::time::Duration;

use common::{process::*, *};

postgres_only!(db_init_migrates_a_fresh_database_and_says_what_it_did);
async fn db_init_migrates_a_fresh_database_and_says_what_it_did() {
    let db = TestDb::postgres().await;
    let url = db.url();
    let first = command(&["db", "init"], &[("PG_DSN", &url)])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let applied = out.matches("applied migration ").count();
    assert!(applied > 0, "{out}");
    assert!(
        out.contains("verified: tables tasks, task_events, facts, workers, workflows and schedules are present"),
        "{out}"
    );

    let second = command(&["db", "init"], &[("DATABASE_URL", &url)])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    let expected = format!("0 applied now, {applied} already applied");
    assert!(out.contains(&expected), "{out}");
}

#[test]
fn db_init_fails_with_a_clear_message_when_the_server_is_unreachable() {
    let output = command(
        &[
            "db",
            "init",
            "--pg-dsn",
            "postgresql://nobody@127.0.0.1:1/none",
        ],
        &[],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("cannot connect to postgresql://nobody@127.0.0.1:1/none"),
        "{err}"
    );
    assert!(err.contains("is the server running"), "{err}");
}

postgres_only!(db_init_names_a_missing_database);
async fn db_init_names_a_missing_database() {
    let db = TestDb::postgres().await;
    let url = db.url().replace(&db.name, "seedcore_no_such_database");
    let output = command(&["db", "init"], &[("PG_DSN", &url)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn help_explains_every_setting() {
    let output = command(&["serve", "--help"], &[]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "PG_DSN",
        "DATABASE_URL",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_POOL_SIZE",
        "POSTGRES_POOL_TIMEOUT",
        "LOG_LEVEL",
        "HOST",
        "PORT",
        "SEEDCORE_WORKER_CONCURRENCY",
        "SEEDCORE_DATA_DIR",
        "SEEDCORE_LEASE_SECONDS",
        "SEEDCORE_MAX_BODY_BYTES",
        "OCPS_DRIFT_THRESHOLD",
    ] {
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} missing from --help"
        );
    }
}

postgres_only!(serve_answers_on_its_port_runs_tasks_and_exits_cleanly_on_sigterm);
async fn serve_answers_on_its_port_runs_tasks_and_exits_cleanly_on_sigterm() {
    let db = TestDb::postgres().await;
    let url = db.url();
    let mut server = Process::spawn(
        &["serve"],
        &[
            ("PG_DSN", &url),
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("LOG_LEVEL", "INFO"),
        ],
    );
    let base = server.wait_for_address();
    let client = reqwest::Client::new();
    let health: serde_json::Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");

    let task: serde_json::Value = client
        .post(format!("{base}/api/v1/tasks"))
        .json(&serde_json::json!({"type": "noop", "run_immediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = task["id"].as_str().unwrap().to_string();
    let done = eventually(Duration::from_secs(10), "the task completes", || {
        let client = client.clone();
        let url = format!("{base}/api/v1/tasks/{id}/status");
        async move {
            let status: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (status["status"] == "completed").then_some(status)
        }
    })
    .await;
    assert_eq!(done["error"], serde_json::Value::Null);

    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log.join("\n")
    );
}

postgres_only!(a_worker_process_with_no_workers_refuses_to_start);
async fn a_worker_process_with_no_workers_refuses_to_start() {
    let db = TestDb::postgres().await;
    let output = command(
        &["worker"],
        &[("PG_DSN", &db.url()), ("SEEDCORE_WORKER_CONCURRENCY", "0")],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to do"));
}
