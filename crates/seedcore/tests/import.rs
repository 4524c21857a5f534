//! `seedcore db import-legacy` and `seedcore db backup` through the real binary, on the test
//! backend.

mod common;

use std::path::Path;

use common::{process::command, *};
use seedcore::{
    model::TaskStatus,
    store::{FactQuery, Store, TaskQuery},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// The file-based system's data: `count` facts and `count` tasks, every fourth task attached
/// to a fact, statuses cycling through the old four.
fn legacy_data(count: usize) -> (Value, Value) {
    let fact_ids: Vec<String> = (0..count).map(|_| Uuid::new_v4().to_string()).collect();
    let facts: Vec<Value> = (0..count)
        .map(|n| {
            json!({"id": fact_ids[n], "text": format!("legacy fact {n}"), "tags": ["legacy", format!("t{}", n % 7)],
                   "metadata": {"n": n, "source": "file"}, "created_at": 1_700_000_000.0 + n as f64 + 0.5,
                   "updated_at": 1_700_000_100.0 + n as f64})
        })
        .collect();
    let statuses = ["created", "running", "completed", "failed"];
    let tasks: Vec<Value> = (0..count)
        .map(|n| {
            let status = statuses[n % 4];
            let attached: Vec<&String> = if n % 4 == 0 { vec![&fact_ids[n]] } else { vec![] };
            json!({"id": Uuid::new_v4().to_string(), "type": "analysis_task", "params": {"n": n},
                   "description": format!("task {n}"), "attached_fact_ids": attached, "status": status,
                   "result": if status == "completed" { json!({"rows": n}) } else { Value::Null },
                   "error": if status == "failed" { json!("it broke") } else { Value::Null },
                   "created_at": 1_700_000_000.0 + n as f64, "updated_at": 1_700_000_050.0 + n as f64})
        })
        .collect();
    (json!({ "tasks": tasks }), json!({ "facts": facts }))
}

fn import(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let url = db.url();
    let mut all = vec!["db", "import-legacy"];
    all.extend_from_slice(args);
    let output = command(&all, &[("DATABASE_URL", &url)]).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn paths(tasks: &Path, facts: &Path) -> [String; 4] {
    [
        "--tasks".into(),
        tasks.display().to_string(),
        "--facts".into(),
        facts.display().to_string(),
    ]
}

both_backends!(ten_thousand_tasks_and_facts_round_trip_and_a_second_import_adds_nothing);
async fn ten_thousand_tasks_and_facts_round_trip_and_a_second_import_adds_nothing() {
    let db = TestDb::create().await;
    let folder = TempFolder::new();
    let (tasks, facts) = legacy_data(10_000);
    let args = paths(
        &folder.write_json("tasks.json", &tasks),
        &folder.write_json("facts.json", &facts),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let (ok, out, err) = import(&db, &args);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("facts: 10000 read, 10000 imported, 0 already present, 0 rejected"),
        "{out}"
    );
    assert!(
        out.contains("tasks: 10000 read, 10000 imported, 0 already present, 0 rejected"),
        "{out}"
    );

    let store = db.store().await;
    let fact_id: Uuid = facts["facts"][3]["id"].as_str().unwrap().parse().unwrap();
    let fact = store.get_fact(fact_id).await.unwrap();
    assert_eq!(fact.text, "legacy fact 3");
    assert_eq!(fact.meta_data, json!({"n": 3, "source": "file"}));
    assert_eq!(fact.tags, ["legacy", "t3"]);
    assert_eq!(fact.created_at.timestamp_micros(), 1_700_000_003_500_000);
    assert_eq!(fact.updated_at.timestamp(), 1_700_000_103);

    for n in [0usize, 1, 2, 3] {
        let id: Uuid = tasks["tasks"][n]["id"].as_str().unwrap().parse().unwrap();
        let task = store.get_task(id).await.unwrap();
        assert_eq!(task.description, format!("task {n}"));
        assert_eq!(task.created_at.timestamp(), 1_700_000_000 + n as i64);
        match n {
            0 => {
                assert_eq!(task.status, TaskStatus::Created);
                assert_eq!(task.attached_fact_ids, [fact_ids(&facts, 0)]);
            }
            1 => {
                assert_eq!(task.status, TaskStatus::Failed);
                assert!(task.error.unwrap().starts_with("interrupted"));
            }
            2 => assert_eq!(task.result, Some(json!({"rows": 2}))),
            _ => assert_eq!(
                (task.status, task.error.as_deref()),
                (TaskStatus::Failed, Some("it broke"))
            ),
        }
    }
    let all_tasks = store
        .list_tasks(&TaskQuery {
            limit: 1,
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all_tasks.total, Some(10_000));
    let failed = TaskQuery {
        status: Some(TaskStatus::Failed),
        limit: 1,
        ..TaskQuery::default()
    };
    assert_eq!(store.list_tasks(&failed).await.unwrap().total, Some(5_000));

    let (ok, out, _) = import(&db, &args);
    assert!(ok);
    assert!(
        out.contains("facts: 10000 read, 0 imported, 10000 already present, 0 rejected"),
        "{out}"
    );
    assert!(
        out.contains("tasks: 10000 read, 0 imported, 10000 already present, 0 rejected"),
        "{out}"
    );
    let facts_page = store
        .list_facts(&FactQuery {
            limit: 1,
            ..FactQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(facts_page.total, 10_000);
}

fn fact_ids(facts: &Value, n: usize) -> Uuid {
    facts["facts"][n]["id"].as_str().unwrap().parse().unwrap()
}

both_backends!(each_kind_of_malformed_record_is_reported_with_its_position_and_skipped);
async fn each_kind_of_malformed_record_is_reported_with_its_position_and_skipped() {
    let db = TestDb::create().await;
    let folder = TempFolder::new();
    let good = Uuid::new_v4().to_string();
    let facts = json!({"facts": [
        {"id": good, "text": "fine", "created_at": 1.0},
        {"id": Uuid::new_v4().to_string(), "created_at": 1.0},
        {"id": "not-a-uuid", "text": "x", "created_at": 1.0},
        {"id": Uuid::new_v4().to_string(), "text": "x", "tags": "one", "created_at": 1.0},
        {"id": Uuid::new_v4().to_string(), "text": "x", "created_at": "yesterday"},
        "just a string"
    ]});
    let tasks = json!({"tasks": [
        {"id": Uuid::new_v4().to_string(), "type": "t", "status": "paused", "created_at": 1.0},
        {"id": Uuid::new_v4().to_string(), "status": "created", "created_at": 1.0},
        {"id": Uuid::new_v4().to_string(), "type": "t", "status": "created", "created_at": 1.0, "params": [1]}
    ]});
    let args = paths(
        &folder.write_json("t.json", &tasks),
        &folder.write_json("f.json", &facts),
    );
    let (ok, out, err) = import(&db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{out}{err}");
    for line in [
        "facts: 6 read, 1 imported, 0 already present, 5 rejected",
        "fact #1: text is missing",
        "fact #2: id 'not-a-uuid' is not a UUID",
        "fact #3: tags is not a list",
        "fact #4: created_at is not a number of seconds since the epoch",
        "fact #5: not an object",
        "tasks: 3 read, 0 imported, 0 already present, 3 rejected",
        "task #0: status 'paused' is not one of created, running, completed, failed",
        "task #1: type is missing",
        "task #2: params is not an object",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let store = db.store().await;
    assert_eq!(
        store.get_fact(good.parse().unwrap()).await.unwrap().text,
        "fine"
    );
}

both_backends!(strict_mode_imports_nothing_when_a_record_is_malformed);
async fn strict_mode_imports_nothing_when_a_record_is_malformed() {
    let db = TestDb::create().await;
    let folder = TempFolder::new();
    let facts = json!({"facts": [
        {"id": Uuid::new_v4().to_string(), "text": "fine", "created_at": 1.0},
        {"id": Uuid::new_v4().to_string(), "created_at": 1.0}
    ]});
    let path = folder.write_json("f.json", &facts);
    let (ok, _, err) = import(&db, &["--facts", path.to_str().unwrap(), "--strict"]);
    assert!(!ok);
    assert!(err.contains("fact #1: text is missing"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let store = db.store().await;
    assert_eq!(
        store
            .list_facts(&FactQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .total,
        0
    );
}

both_backends!(a_dry_run_counts_what_it_would_import_and_writes_nothing);
async fn a_dry_run_counts_what_it_would_import_and_writes_nothing() {
    let db = TestDb::create().await;
    let folder = TempFolder::new();
    let (tasks, facts) = legacy_data(20);
    let args = paths(
        &folder.write_json("tasks.json", &tasks),
        &folder.write_json("facts.json", &facts),
    );
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--dry-run");
    let (ok, out, err) = import(&db, &args);
    assert!(ok, "{err}");
    assert!(
        out.contains("facts: 20 read, 20 would be imported, 0 already present"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was written"), "{out}");
    let store = db.store().await;
    assert_eq!(
        store
            .list_tasks(&TaskQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .total,
        Some(0)
    );
}

both_backends!(tasks_that_were_running_can_be_queued_again_and_then_run);
async fn tasks_that_were_running_can_be_queued_again_and_then_run() {
    let db = std::sync::Arc::new(TestDb::create().await);
    let folder = TempFolder::new();
    let id = Uuid::new_v4();
    let tasks = json!({"tasks": [{"id": id.to_string(), "type": "echo", "params": {"x": 1},
                                  "status": "running", "created_at": 1.0}]});
    let path = folder.write_json("tasks.json", &tasks);
    let (ok, out, err) = import(
        &db,
        &["--tasks", path.to_str().unwrap(), "--requeue-running"],
    );
    assert!(ok, "{out}{err}");
    let app = TestApp::on(db, Some(fast_engine()), Default::default()).await;
    let task = app.finished(&id.to_string()).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.result.unwrap()["result"], json!({"x": 1}));
}

both_backends!(an_import_needs_a_file_and_names_a_missing_or_broken_one);
async fn an_import_needs_a_file_and_names_a_missing_or_broken_one() {
    let db = TestDb::create().await;
    let folder = TempFolder::new();
    let (ok, _, err) = import(&db, &[]);
    assert!(!ok);
    assert!(err.contains("nothing to import"), "{err}");
    let (ok, _, err) = import(&db, &["--facts", "/no/such/facts.json"]);
    assert!(!ok);
    assert!(err.contains("/no/such/facts.json"), "{err}");
    let broken = folder.0.join("broken.json");
    std::fs::write(&broken, "{\"facts\": [").unwrap();
    let (ok, _, err) = import(&db, &["--facts", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not valid JSON"), "{err}");
}

sqlite_only!(a_backup_of_the_embedded_database_taken_while_it_is_in_use_holds_the_data);
async fn a_backup_of_the_embedded_database_taken_while_it_is_in_use_holds_the_data() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    for n in 0..50 {
        store
            .create_fact(seedcore::model::NewFact {
                text: format!("kept {n}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let folder = TempFolder::new();
    let target = folder.0.join("copy.db");
    let url = db.url();
    let output = command(
        &["db", "backup", target.to_str().unwrap()],
        &[("DATABASE_URL", &url)],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let copy = seedcore::store::SqliteStore::open(&target).await.unwrap();
    let page = copy
        .list_facts(&FactQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 50);
    let again = command(
        &["db", "backup", target.to_str().unwrap()],
        &[("DATABASE_URL", &url)],
    )
    .output()
    .unwrap();
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );
}

postgres_only!(a_backup_of_postgres_points_to_pg_dump);
async fn a_backup_of_postgres_points_to_pg_dump() {
    let db = TestDb::postgres().await;
    let output = command(
        &["db", "backup", "/tmp/never-written.db"],
        &[("PG_DSN", &db.url())],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
}
