//! The real `seedcore` binary with no database settings: it runs on the embedded SQLite file in
//! `./data`, serves the API, runs tasks, and refuses `seedcore worker` (scale-out needs
//! PostgreSQL).

mod common;

use std::{
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use common::{
    TempFolder, eventually,
    process::{Process, command},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `seedcore ARGS` run in `folder` with no database setting at all.
fn seedcore(folder: &Path, args: &[&str]) -> Command {
    let mut command = command(args, &[("HOST", "127.0.0.1"), ("PORT", "0")]);
    command.current_dir(folder);
    command
}

fn run(folder: &Path, args: &[&str]) -> (Output, String, String) {
    let output = seedcore(folder, args).output().expect("run seedcore");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// `seedcore serve` in `folder`, in the background.
fn serve(folder: &Path) -> Process {
    let mut serve = seedcore(folder, &["serve"]);
    serve
        .env("LOG_LEVEL", "INFO")
        .env("SEEDCORE_POLL_INTERVAL_MS", "200");
    Process::from_command(serve)
}

async fn get(client: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let response = client.get(url).send().await.expect("request");
    let status = response.status();
    (status, response.json().await.expect("JSON"))
}

async fn run_to_completion(client: &reqwest::Client, base: &str) -> String {
    let task: Value = client
        .post(format!("{base}/api/v1/tasks"))
        .json(&json!({"type": "echo", "params": {"n": 1}, "run_immediately": true}))
        .send()
        .await
        .expect("create a task")
        .json()
        .await
        .expect("a task");
    let id = task["id"].as_str().expect("an id").to_string();
    let done = eventually(Duration::from_secs(10), "the task completes", || {
        let url = format!("{base}/api/v1/tasks/{id}");
        async move {
            let (_, task) = get(client, url).await;
            (task["status"] == "completed").then_some(task)
        }
    })
    .await;
    assert_eq!(done["result"]["result"], json!({"n": 1}));
    id
}

#[tokio::test]
async fn with_no_database_setting_serve_runs_on_a_file_in_the_data_folder() {
    let folder = TempFolder::new();
    let mut server = serve(&folder.0);
    let base = server.wait_for_address();
    let client = reqwest::Client::new();

    let (status, health) = get(&client, format!("{base}/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy");
    let (status, ready) = get(&client, format!("{base}/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready, json!({"status": "ready", "deps": {"db": "ok"}}));

    let id = run_to_completion(&client, &base).await;
    let file = folder.0.join("data").join("seedcore.db");
    assert!(file.is_file(), "{} was not created", file.display());

    // db init works on the same file, beside the running server.
    let (output, stdout, stderr) = run(&folder.0, &["db", "init"]);
    assert!(output.status.success(), "{stdout}{stderr}");
    let connected = format!("connected: sqlite://{} (sqlite)", file.display());
    assert!(stdout.contains(&connected), "{stdout}");
    assert!(stdout.contains("0 applied now"), "{stdout}");
    assert!(
        stdout.contains("verified: tables tasks, task_events, facts, workers, workflows and schedules are present"),
        "{stdout}"
    );

    // A graceful stop folds the write-ahead log into the file, and the data outlives the
    // process.
    server.stop();
    assert!(!folder.0.join("data").join("seedcore.db-wal").exists());
    let mut server = serve(&folder.0);
    let base = server.wait_for_address();
    let (status, task) = get(&client, format!("{base}/api/v1/tasks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["status"], "completed");
    server.stop();
}

#[test]
fn a_worker_process_is_refused_on_the_embedded_database() {
    let folder = TempFolder::new();
    let (output, _, stderr) = run(&folder.0, &["worker"]);
    assert!(!output.status.success());
    assert!(
        stderr.contains("seedcore worker needs PostgreSQL"),
        "{stderr}"
    );
    assert!(stderr.contains("PG_DSN"), "{stderr}");
    assert!(
        !folder.0.join("data").exists(),
        "the refused worker created the data folder"
    );
}

#[test]
fn db_init_creates_and_migrates_the_embedded_database() {
    let folder = TempFolder::new();
    let (output, stdout, stderr) = run(&folder.0, &["db", "init", "--data-dir", "state"]);
    assert!(output.status.success(), "{stdout}{stderr}");
    let file = folder.0.join("state").join("seedcore.db");
    assert!(
        stdout.contains(&format!("connected: sqlite://{} (sqlite)", file.display())),
        "{stdout}"
    );
    assert!(stdout.contains("applied migration"), "{stdout}");
    assert!(stdout.contains("0 already applied"), "{stdout}");
    assert!(file.is_file());

    let (output, stdout, _) = run(&folder.0, &["db", "init", "--data-dir", "state"]);
    assert!(output.status.success());
    assert!(stdout.contains("0 applied now"), "{stdout}");
}
