//! The example host application (`examples/host_app.rs`): its own route, its own handler and
//! the seedcore API, in one process started and stopped like any program.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::{Value, json};

/// Builds the example (a no-op when `cargo test` already did) and returns its path.
fn example_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "seedcore",
            "--example",
            "host_app",
        ])
        .status()
        .expect("run cargo");
    assert!(status.success(), "the example does not build");
    let deps = std::env::current_exe().expect("test path");
    let profile = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    profile.join("examples").join("host_app")
}

both_backends!(the_host_app_serves_its_own_route_the_api_and_its_own_handler);
async fn the_host_app_serves_its_own_route_the_api_and_its_own_handler() {
    let db = TestDb::create().await;
    let mut host = Command::new(example_binary())
        .env("DATABASE_URL", db.url())
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("an address")
        .to_string();
    let client = reqwest::Client::new();

    let hello = client
        .get(format!("{base}/hello"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hello, "hello from the host application");

    let task: Value = client
        .post(format!("{base}/api/v1/tasks"))
        .json(&json!({"type": "greet", "params": {"name": "Ada"}, "run_immediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let done = eventually(Duration::from_secs(15), "the greet task completes", || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let task: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (task["status"] == "completed").then_some(task)
        }
    })
    .await;
    assert_eq!(
        done["result"],
        json!({"success": true, "path": "fast", "handler": "greet",
               "result": {"greeting": "Hello, Ada!"}})
    );

    let status = Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || host.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        exit.success(),
        "the host exits cleanly on SIGTERM: {exit:?}"
    );
}
