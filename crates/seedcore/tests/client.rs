//! The command-line client (`seedcore task|fact|queue|schedule|workflow|worker list`): the
//! real binary, run as a child process, against a real server started by the test.

mod common;

use std::{
    io::Write,
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use common::{process::command, *};
use seedcore::auth::Secret;
use serde_json::{Value, json};

/// What a run of the client printed and how it exited.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code().expect("an exit code, not a signal"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "exit {}:\n{}\n{}",
            self.code, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts exit 0 and parses stdout as JSON.
    fn json(&self) -> Value {
        let out = self.ok();
        serde_json::from_str(out).unwrap_or_else(|err| panic!("not JSON ({err}):\n{out}"))
    }
}

/// Runs `seedcore ARGS` against `base`, with `stdin` as its input.
async fn client_with_input(base: &str, args: &[&str], stdin: &[u8]) -> Ran {
    let mut cmd = command(args, &[("SEEDCORE_URL", base)]);
    cmd.env_remove("SEEDCORE_TOKEN");
    let stdin = stdin.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the client");
        let mut input = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let output = child.wait_with_output().expect("the client ends");
        writer.join().expect("stdin written");
        Ran::from(output)
    })
    .await
    .expect("the client's thread")
}

async fn client(base: &str, args: &[&str]) -> Ran {
    client_with_input(base, args, b"").await
}

/// The number of facts the server holds.
async fn fact_total(app: &TestApp) -> i64 {
    let (_, page) = app.get("/api/v1/facts?limit=1").await;
    page["total"].as_i64().expect("a total")
}

both_backends!(task_commands_round_trip_against_a_server);
async fn task_commands_round_trip_against_a_server() {
    let app = TestApp::start().await;
    let base = &app.base;
    let created = client(
        base,
        &[
            "task",
            "create",
            "echo",
            "--params",
            r#"{"hello": "world"}"#,
            "--run",
            "--json",
        ],
    )
    .await
    .json();
    let id = id_of(&created);
    assert_eq!(created["status"], "queued");

    let watched = client(base, &["task", "watch", &id]).await;
    let result: Value = serde_json::from_str(watched.ok()).expect("the result as JSON");
    assert_eq!(result["result"], json!({"hello": "world"}), "{result}");

    let shown = client(base, &["task", "get", &id[..8]]).await;
    assert!(shown.ok().contains(&id), "{}", shown.stdout);
    assert!(shown.stdout.contains("completed"), "{}", shown.stdout);
    let got = client(base, &["task", "get", &id, "--json"]).await.json();
    assert_eq!(got["status"], "completed");
    assert_eq!(got["params"], json!({"hello": "world"}));

    let listed = client(base, &["task", "list", "--type", "echo", "--json"])
        .await
        .json();
    assert_eq!(listed["total"], 1);
    let table = client(base, &["task", "list", "--status", "completed"]).await;
    assert!(
        table.ok().contains(&id) && table.stdout.contains("echo"),
        "{}",
        table.stdout
    );

    let events = client(base, &["task", "events", &id]).await;
    assert!(events.ok().contains("completed"), "{}", events.stdout);
    let trail = client(base, &["task", "events", &id, "--json"])
        .await
        .json();
    assert!(
        trail["items"].as_array().expect("items").len() >= 3,
        "{trail}"
    );

    // What `task get --json` prints creates a copy: a new task with the same type and params.
    let copy = client_with_input(
        base,
        &["task", "create", "--from", "-", "--json"],
        serde_json::to_string(&got).unwrap().as_bytes(),
    )
    .await
    .json();
    assert_ne!(id_of(&copy), id);
    assert_eq!(copy["type"], "echo");
    assert_eq!(copy["params"], json!({"hello": "world"}));
    assert_eq!(copy["status"], "created");

    let cancelled = client(base, &["task", "cancel", &id_of(&copy), "--json"])
        .await
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    let queued = client(base, &["task", "run", &id_of(&copy), "--json"])
        .await
        .json();
    assert_eq!(queued["status"], "queued");
    let done = client(base, &["task", "watch", &id_of(&copy), "--json"])
        .await
        .json();
    assert_eq!(done["status"], "completed");
}

both_backends!(watch_follows_a_task_through_the_event_stream_to_its_end);
async fn watch_follows_a_task_through_the_event_stream_to_its_end() {
    let app = TestApp::start().await;
    let task = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 0.2}}))
        .await;
    let id = id_of(&task);
    // The watch starts while the task waits in `created`, and sees what happens next.
    let run_later = async {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        app.post_empty(&format!("/api/v1/tasks/{id}/run")).await
    };
    let args = ["task", "watch", &id];
    let (watched, (status, body)) = tokio::join!(client(&app.base, &args), run_later);
    assert!(status.is_success(), "{body}");
    let result: Value = serde_json::from_str(watched.ok()).expect("the result as JSON");
    assert_eq!(result["result"], json!({"slept": 0.2}), "{result}");
    // Only the event stream names what led to each status.
    for change in [
        "queued, attempt 0",
        "running (claimed), attempt 1",
        "completed, attempt 1",
    ] {
        assert!(
            watched.stderr.contains(change),
            "{change}:\n{}",
            watched.stderr
        );
    }
}

sqlite_only!(watch_exits_4_with_the_error_of_a_task_that_failed_or_was_cancelled);
async fn watch_exits_4_with_the_error_of_a_task_that_failed_or_was_cancelled() {
    let app = TestApp::start().await;
    let failing = app
        .create_task(json!({"type": "fail", "params": {"message": "boom at step 3"}, "run_immediately": true}))
        .await;
    let watched = client(&app.base, &["task", "watch", &id_of(&failing)]).await;
    assert_eq!(watched.code, 4, "{}\n{}", watched.stdout, watched.stderr);
    assert!(
        watched.stdout.contains("failed: boom at step 3"),
        "{}",
        watched.stdout
    );

    let waiting = app.create_task(json!({"type": "echo"})).await;
    let (_, _) = app
        .post_empty(&format!("/api/v1/tasks/{}/cancel", id_of(&waiting)))
        .await;
    let watched = client(&app.base, &["task", "watch", &id_of(&waiting), "--json"]).await;
    assert_eq!(watched.code, 4, "{}\n{}", watched.stdout, watched.stderr);
    let task: Value = serde_json::from_str(&watched.stdout).expect("the task as JSON");
    assert_eq!(task["status"], "cancelled");
}

sqlite_only!(exit_codes_tell_usage_errors_unknown_ids_and_refusals_apart);
async fn exit_codes_tell_usage_errors_unknown_ids_and_refusals_apart() {
    let app = TestApp::without_workers().await;
    let base = &app.base;
    let unknown = uuid::Uuid::new_v4().to_string();

    let missing = client(base, &["task", "get", &unknown]).await;
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert_eq!(missing.stderr.trim(), "seedcore: Task not found");
    let missing = client(base, &["fact", "delete", &unknown]).await;
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);

    for usage in [
        &["task", "frobnicate"][..],
        &["task", "cancel"],
        &["task", "cancel", "--status", "failed"],
        &["task", "cancel", "--all"],
        &["task", "create", "echo", "--params", "{not json"],
        &["fact", "update", &unknown],
        &["completions", "tcsh-ish"],
    ] {
        let ran = client(base, usage).await;
        assert_eq!(ran.code, 2, "{usage:?}: {}", ran.stderr);
        assert!(!ran.stderr.is_empty(), "{usage:?} says why");
    }

    // The server's validation errors are shown as their detail, not as a body dump.
    let refused = client(base, &["task", "list", "--limit", "0"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("seedcore: query.limit: "),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("\"loc\""), "{}", refused.stderr);

    let nowhere = client("http://127.0.0.1:9", &["task", "list"]).await;
    assert_eq!(nowhere.code, 1);
    assert!(
        nowhere
            .stderr
            .contains("cannot reach the server at http://127.0.0.1:9"),
        "{}",
        nowhere.stderr
    );
}

sqlite_only!(a_server_with_tokens_answers_the_client_that_sends_one);
async fn a_server_with_tokens_answers_the_client_that_sends_one() {
    let app = TestApp::without_workers().await;
    let token = Secret::generate().text;
    seedcore::auth::bootstrap(&app.store, &token)
        .await
        .expect("store a token");
    let refused = eventually(Duration::from_secs(5), "tokens are required", || async {
        let ran = client(&app.base, &["task", "list"]).await;
        (ran.code == 1).then_some(ran)
    })
    .await;
    assert!(
        refused.stderr.contains("Not authenticated"),
        "{}",
        refused.stderr
    );
    let listed = client(&app.base, &["task", "list", "--json", "--token", &token])
        .await
        .json();
    assert_eq!(listed["total"], 0);
}

both_backends!(fact_commands_round_trip_against_a_server);
async fn fact_commands_round_trip_against_a_server() {
    let app = TestApp::without_workers().await;
    let base = &app.base;
    let added = client(
        base,
        &[
            "fact",
            "add",
            "The Moon orbits the Earth",
            "--tag",
            "astro",
            "--tag",
            "moon",
            "--meta",
            r#"{"source": "book"}"#,
            "--json",
        ],
    )
    .await
    .json();
    let id = id_of(&added);
    assert_eq!(added["tags"], json!(["astro", "moon"]));
    assert_eq!(added["meta_data"], json!({"source": "book"}));
    client(base, &["fact", "add", "Mars has two moons"])
        .await
        .ok();

    let shown = client(base, &["fact", "get", &id]).await;
    assert!(
        shown.ok().contains("The Moon orbits the Earth"),
        "{}",
        shown.stdout
    );
    let tagged = client(base, &["fact", "list", "--tag", "astro", "--json"])
        .await
        .json();
    assert_eq!(tagged["total"], 1);
    let table = client(base, &["fact", "list", "--q", "mars"]).await;
    assert!(
        table.ok().contains("Mars has two moons"),
        "{}",
        table.stdout
    );
    assert!(
        !table.stdout.contains("The Moon orbits"),
        "{}",
        table.stdout
    );
    let found = client(base, &["fact", "search", "orbiting", "earth", "--json"])
        .await
        .json();
    assert_eq!(id_of(&found["items"][0]), id, "{found}");

    let updated = client(
        base,
        &[
            "fact",
            "update",
            &id,
            "--text",
            "The Moon orbits the Earth monthly",
            "--tag",
            "sky",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(updated["text"], "The Moon orbits the Earth monthly");
    assert_eq!(updated["tags"], json!(["sky"]));
    assert_eq!(updated["meta_data"], json!({"source": "book"}), "untouched");

    let deleted = client(base, &["fact", "delete", &id]).await;
    assert!(deleted.ok().contains(&id), "{}", deleted.stdout);
    assert_eq!(client(base, &["fact", "get", &id]).await.code, 3);
}

sqlite_only!(fact_import_of_100000_lines_with_3_bad_ones_stores_the_rest_and_names_the_bad_lines);
async fn fact_import_of_100000_lines_with_3_bad_ones_stores_the_rest_and_names_the_bad_lines() {
    let app = TestApp::without_workers().await;
    let folder = TempFolder::new();
    let path = folder.0.join("facts.jsonl");
    let long_tag = "t".repeat(201);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in 1..=100_000u32 {
        let text = match line {
            // Not JSON: found before sending.
            17 => "{\"text\": \"cut".to_string(),
            // The wrong type: found before sending.
            50_001 => json!({"text": 5}).to_string(),
            // Over the server's cap on a tag's length: refused by the server, in its batch.
            99_999 => json!({"text": "long tag", "tags": [long_tag]}).to_string(),
            n => json!({"text": format!("fact {n}"), "tags": ["bulk"], "meta_data": {"n": n}})
                .to_string(),
        };
        writeln!(file, "{text}").unwrap();
    }
    file.flush().unwrap();
    drop(file);

    let started = Instant::now();
    let ran = client(&app.base, &["fact", "import", path.to_str().unwrap()]).await;
    assert_eq!(
        ran.code, 1,
        "rejected lines make it exit 1:\n{}\n{}",
        ran.stdout, ran.stderr
    );
    assert!(
        ran.stdout
            .contains("read 100000 line(s): 99997 fact(s) stored, 3 rejected"),
        "{}",
        ran.stdout
    );
    let rejected: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(rejected.len(), 3, "{}", ran.stderr);
    assert!(
        rejected[0].starts_with("line 17: not valid JSON"),
        "{rejected:?}"
    );
    assert!(
        rejected[1].starts_with("line 50001: text: "),
        "{rejected:?}"
    );
    assert_eq!(
        rejected[2],
        "line 99999: tags.0: String should have at most 200 characters"
    );
    assert!(
        ran.stderr.contains("lines 17, 50001, 99999"),
        "{}",
        ran.stderr
    );
    assert_eq!(fact_total(&app).await, 99_997);
    eprintln!("imported 100,000 lines in {:?}", started.elapsed());
}

sqlite_only!(fact_import_skips_the_lines_already_done);
async fn fact_import_skips_the_lines_already_done() {
    let app = TestApp::without_workers().await;
    let lines: String = (1..=10)
        .map(|n| format!("{}\n", json!({"text": format!("line {n}")})))
        .collect();
    let ran = client_with_input(
        &app.base,
        &["fact", "import", "-", "--skip", "6", "--batch-size", "3"],
        lines.as_bytes(),
    )
    .await;
    assert!(
        ran.ok()
            .contains("read 4 line(s): 4 fact(s) stored, 0 rejected"),
        "{}",
        ran.stdout
    );
    let (_, page) = app.get("/api/v1/facts?limit=100").await;
    let mut texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    assert_eq!(texts, ["line 10", "line 7", "line 8", "line 9"]);

    // An import that cannot reach its server says where to resume.
    let stopped = client_with_input(
        "http://127.0.0.1:9",
        &["fact", "import", "-", "--skip", "2"],
        lines.as_bytes(),
    )
    .await;
    assert_eq!(stopped.code, 1);
    assert!(
        stopped.stderr.contains("resume with --skip 2"),
        "{}",
        stopped.stderr
    );
}

sqlite_only!(fact_export_writes_json_lines_that_import_reads_back);
async fn fact_export_writes_json_lines_that_import_reads_back() {
    let source = TestApp::without_workers().await;
    let facts: Vec<Value> = (0..2_500)
        .map(|n| json!({"text": format!("fact {n}"), "tags": [format!("t{}", n % 7)], "meta_data": {"n": n}}))
        .collect();
    for chunk in facts.chunks(1_000) {
        let (status, body) = source
            .post("/api/v1/facts/bulk", json!({"facts": chunk}))
            .await;
        assert!(status.is_success(), "{body}");
    }
    let exported = client(&source.base, &["fact", "export"]).await;
    let lines: Vec<Value> = exported
        .ok()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2_500, "every fact once, across pages");

    let target = TestApp::without_workers().await;
    let imported = client_with_input(
        &target.base,
        &["fact", "import", "-"],
        exported.stdout.as_bytes(),
    )
    .await;
    assert!(
        imported.ok().contains("2500 fact(s) stored, 0 rejected"),
        "{}",
        imported.stdout
    );
    let again = client(&target.base, &["fact", "export"]).await;
    let key = |fact: &Value| {
        (
            fact["text"].to_string(),
            fact["tags"].to_string(),
            fact["meta_data"].to_string(),
        )
    };
    let mut before: Vec<_> = lines.iter().map(key).collect();
    let mut after: Vec<_> = again
        .ok()
        .lines()
        .map(|line| key(&serde_json::from_str(line).unwrap()))
        .collect();
    before.sort();
    after.sort();
    assert_eq!(before, after);
}

sqlite_only!(fact_import_reads_csv_and_names_its_bad_rows);
async fn fact_import_reads_csv_and_names_its_bad_rows() {
    let app = TestApp::without_workers().await;
    let folder = TempFolder::new();
    let path = folder.0.join("facts.csv");
    std::fs::write(
        &path,
        "text,tags,meta_data\n\
         \"Paris, the capital\",geo;europe,\"{\"\"country\"\": \"\"FR\"\"}\"\n\
         plain,,\n\
         broken meta,x,{nope\n\
         \"two\nlines\",\"[\"\"a\"\", \"\"b\"\"]\",\n",
    )
    .unwrap();
    let ran = client(
        &app.base,
        &["fact", "import", path.to_str().unwrap(), "--json"],
    )
    .await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).expect("a JSON summary");
    assert_eq!(summary["stored"], 3, "{summary}");
    assert_eq!(summary["rejected"][0]["line"], 4, "{summary}");
    let (_, page) = app.get("/api/v1/facts?tag=europe").await;
    assert_eq!(page["items"][0]["text"], "Paris, the capital");
    assert_eq!(page["items"][0]["tags"], json!(["geo", "europe"]));
    assert_eq!(page["items"][0]["meta_data"], json!({"country": "FR"}));
    let (_, page) = app.get("/api/v1/facts?tag=b").await;
    assert_eq!(page["items"][0]["text"], "two\nlines");
}

sqlite_only!(queue_schedule_workflow_and_worker_commands_round_trip);
async fn queue_schedule_workflow_and_worker_commands_round_trip() {
    let app = TestApp::start().await;
    let base = &app.base;

    let paused = client(base, &["queue", "pause", "reports", "--json"])
        .await
        .json();
    assert_eq!(paused["paused"], true);
    let queues = client(base, &["queue", "list"]).await;
    assert!(
        queues.ok().contains("reports") && queues.stdout.contains("paused"),
        "{}",
        queues.stdout
    );
    let resumed = client(base, &["queue", "resume", "reports", "--json"])
        .await
        .json();
    assert_eq!(resumed["paused"], false);

    let schedule = client(
        base,
        &[
            "schedule",
            "create",
            "--name",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--type",
            "echo",
            "--params",
            r#"{"k": 1}"#,
            "--json",
        ],
    )
    .await
    .json();
    let schedule_id = id_of(&schedule);
    assert_eq!(schedule["task"]["params"], json!({"k": 1}));
    let listed = client(base, &["schedule", "list"]).await;
    assert!(
        listed.ok().contains("nightly") && listed.stdout.contains("0 3 * * *"),
        "{}",
        listed.stdout
    );
    let off = client(base, &["schedule", "pause", &schedule_id, "--json"])
        .await
        .json();
    assert_eq!(off["enabled"], false);
    let on = client(base, &["schedule", "resume", &schedule_id, "--json"])
        .await
        .json();
    assert_eq!(on["enabled"], true);
    client(base, &["schedule", "delete", &schedule_id])
        .await
        .ok();
    let none = client(base, &["schedule", "list", "--json"]).await.json();
    assert_eq!(none["total"], 0);

    let body = json!({"name": "pipeline", "tasks": [
        {"key": "wait", "type": "sleep", "params": {"seconds": 30}},
        {"key": "after", "type": "echo", "depends_on": ["wait"]},
    ]});
    let workflow = client_with_input(
        base,
        &["workflow", "create", "-", "--json"],
        body.to_string().as_bytes(),
    )
    .await
    .json();
    let workflow_id = id_of(&workflow);
    let listed = client(base, &["workflow", "list"]).await;
    assert!(listed.ok().contains("pipeline"), "{}", listed.stdout);
    let shown = client(base, &["workflow", "get", &workflow_id]).await;
    assert!(
        shown.ok().contains("wait") && shown.stdout.contains("after"),
        "{}",
        shown.stdout
    );
    let cancelled = client(base, &["workflow", "cancel", &workflow_id, "--json"])
        .await
        .json();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let workers = client(base, &["worker", "list", "--json"]).await.json();
    assert_eq!(workers["items"][0]["state"], "active", "{workers}");
    let table = client(base, &["worker", "list"]).await;
    assert!(table.ok().contains("active"), "{}", table.stdout);
}

#[test]
fn completions_generate_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let output = command(&["completions", shell], &[]).output().unwrap();
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{shell}");
        assert!(script.contains("seedcore"), "{shell}: {script}");
        assert!(
            script.contains("watch") && script.contains("import"),
            "{shell} completes subcommands"
        );
    }
}

sqlite_only!(task_delete_removes_a_finished_task_and_refuses_one_that_is_not);
async fn task_delete_removes_a_finished_task_and_refuses_one_that_is_not() {
    let app = TestApp::without_workers().await;
    let base = &app.base;
    let waiting = id_of(&app.create_task(json!({"type": "echo"})).await);
    let refused = client(base, &["task", "delete", &waiting]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("seedcore: "),
        "{}",
        refused.stderr
    );

    client(base, &["task", "cancel", &waiting]).await.ok();
    let deleted = client(base, &["task", "delete", &waiting]).await;
    assert!(deleted.ok().contains(&waiting), "{}", deleted.stdout);
    assert_eq!(client(base, &["task", "get", &waiting]).await.code, 3);
    assert_eq!(client(base, &["task", "delete", &waiting]).await.code, 3);
}

sqlite_only!(bulk_cancel_run_and_delete_act_on_every_matching_task);
async fn bulk_cancel_run_and_delete_act_on_every_matching_task() {
    let app = TestApp::start().await;
    let base = &app.base;
    // A paused queue keeps its tasks queued for the cancel to find.
    client(base, &["queue", "pause", "held"]).await.ok();
    let held: Vec<Value> = (0..300)
        .map(|n| json!({"type": "echo", "params": {"n": n}, "queue": "held", "run_immediately": true}))
        .collect();
    let (status, body) = app.post("/api/v1/tasks/bulk", json!({"tasks": held})).await;
    assert!(status.is_success(), "{body}");
    let other = id_of(
        &app.create_task(json!({"type": "echo", "queue": "elsewhere"}))
            .await,
    );

    let cancelled = client(
        base,
        &["task", "cancel", "--all", "--queue", "held", "--json"],
    )
    .await
    .json();
    assert_eq!(cancelled["state"], "completed", "{cancelled}");
    assert_eq!(cancelled["matched"], 300, "{cancelled}");
    assert_eq!(cancelled["done"], 300, "{cancelled}");
    let (_, page) = app.get("/api/v1/tasks?status=cancelled&limit=1").await;
    assert_eq!(page["total"], 300);
    assert_eq!(
        app.task(&other).await.status.as_str(),
        "created",
        "outside the filter"
    );

    let summary = client(base, &["task", "delete", "--all", "--status", "cancelled"]).await;
    assert!(
        summary
            .ok()
            .contains("delete: 300 matched, 300 done, 0 skipped (completed)"),
        "{}",
        summary.stdout
    );
    let (_, page) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(page["total"], 1, "only the task outside the filter is left");

    let ran = client(
        base,
        &["task", "run", "--all", "--queue", "elsewhere", "--json"],
    )
    .await
    .json();
    assert_eq!(ran["done"], 1, "{ran}");
    app.finished(&other).await;
}

sqlite_only!(watch_resumes_the_event_stream_across_a_server_restart);
async fn watch_resumes_the_event_stream_across_a_server_restart() {
    let folder = TempFolder::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let data = folder.0.to_str().unwrap().to_string();
    let env = [
        ("SEEDCORE_DATA_DIR", data.as_str()),
        ("PORT", port.as_str()),
        // Stopping releases the running task at once; the next server runs it again.
        ("SEEDCORE_SHUTDOWN_GRACE_SECONDS", "0"),
        ("SEEDCORE_POLL_INTERVAL_MS", "100"),
    ];
    let mut first = process::Process::spawn(&["serve"], &env);
    let base = first.wait_for_address();
    let http = reqwest::Client::new();
    let task: Value = http
        .post(format!("{base}/api/v1/tasks"))
        .json(&json!({"type": "sleep", "params": {"seconds": 3}, "run_immediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = id_of(&task);
    eventually(Duration::from_secs(10), "the task runs", || async {
        let task: Value = http
            .get(format!("{base}/api/v1/tasks/{id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (task["status"] == "running").then_some(())
    })
    .await;
    let args = ["task", "watch", &id];
    let restart = async {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        first.stop();
        let mut second = process::Process::spawn(&["serve"], &env);
        second.wait_for_address();
        second
    };
    let (watched, mut second) = tokio::join!(client(&base, &args), restart);
    let result: Value = serde_json::from_str(watched.ok()).expect("the result as JSON");
    assert_eq!(result["result"], json!({"slept": 3}), "{result}");
    // Released by the first server (the attempt not counted), claimed and run by the second.
    let changes: Vec<&str> = watched
        .stderr
        .lines()
        .filter_map(|line| line.split_once("  ").map(|(_, change)| change))
        .collect();
    assert_eq!(
        changes,
        [
            "running, attempt 1",
            "queued (released), attempt 0",
            "running (claimed), attempt 1",
            "completed, attempt 1"
        ],
        "{}",
        watched.stderr
    );
    second.stop();
}

sqlite_only!(quiet_and_terminate_reach_a_pull_worker_on_its_next_heartbeat);
async fn quiet_and_terminate_reach_a_pull_worker_on_its_next_heartbeat() {
    let app = TestApp::without_workers().await;
    let base = &app.base;
    let (status, worker) = app
        .post(
            "/api/v1/workers",
            json!({"name": "py-1", "queues": ["default"]}),
        )
        .await;
    assert!(status.is_success(), "{worker}");
    let id = id_of(&worker);
    let heartbeat = format!("/api/v1/workers/{id}/heartbeat");

    let quiet = client(base, &["worker", "quiet", &id, "--json"])
        .await
        .json();
    assert_eq!(quiet["state"], "quiet", "{quiet}");
    let (_, answer) = app.post(&heartbeat, json!({})).await;
    assert_eq!(answer["state"], "quiet", "{answer}");

    let table = client(base, &["worker", "terminate", &id]).await;
    assert!(
        table.ok().contains("terminate") && table.stdout.contains("py-1"),
        "{}",
        table.stdout
    );
    let (_, answer) = app.post(&heartbeat, json!({})).await;
    assert_eq!(answer["state"], "terminate", "{answer}");

    let unknown = client(base, &["worker", "quiet", "pull:nobody"]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
}
