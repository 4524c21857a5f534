//! `seedcore db adopt` on databases the original service created, at three points of its
//! history (fixtures in `tests/fixtures/adopt/`): the dry run changes nothing, the adopted
//! rows keep the contract and execute, a failure midway leaves the database as it was, and
//! adopting twice changes nothing. PostgreSQL only: the original ran on PostgreSQL.

mod common;

use std::{sync::Arc, time::Duration};

use common::{process::*, *};
use reqwest::StatusCode;
use seedcore::{
    adopt::{self, AdoptError, AdoptOptions, Found},
    api::ApiSettings,
    model::TaskStatus,
};
use serde_json::json;
use sqlx::PgPool;

const FACTS: &str = include_str!("fixtures/adopt/facts_common.sql");
const V1: &str = include_str!("fixtures/adopt/v1_uppercase_enum.sql");
const V2: &str = include_str!("fixtures/adopt/v2_lowercase_enum_leases.sql");
const V3: &str = include_str!("fixtures/adopt/v3_varchar_status_links.sql");
const V3_LINKS: &str = include_str!("fixtures/adopt/v3_links.sql");

/// The fixture's tasks, one per status of the original.
const CREATED: &str = "a1000000-0000-4000-8000-000000000001";
const QUEUED: &str = "a2000000-0000-4000-8000-000000000002";
const RUNNING_EXPIRED: &str = "a3000000-0000-4000-8000-000000000003";
const RUNNING_LIVE: &str = "a4000000-0000-4000-8000-000000000004";
const COMPLETED: &str = "a5000000-0000-4000-8000-000000000005";
const FAILED: &str = "a6000000-0000-4000-8000-000000000006";
const CANCELLED: &str = "a7000000-0000-4000-8000-000000000007";
const RETRY: &str = "a8000000-0000-4000-8000-000000000008";
const FACT_WITHOUT_TAGS: &str = "f4000000-0000-4000-8000-000000000004";

/// The catalog (relations, columns with types and defaults, indexes, triggers, functions,
/// constraints, views, types, extensions) and every table's rows, as one digest.
const FINGERPRINT: &str = r"
select md5(concat_ws('|',
    (select string_agg(format('%s:%s', c.relname, c.relkind), ',' order by c.relname)
     from pg_class c where c.relnamespace = 'public'::regnamespace),
    (select string_agg(format('%s.%s:%s:%s:%s', c.relname, a.attname,
                              format_type(a.atttypid, a.atttypmod), a.attnotnull,
                              pg_get_expr(d.adbin, d.adrelid)), ',' order by c.relname, a.attnum)
     from pg_attribute a
     join pg_class c on c.oid = a.attrelid
     left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
     where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped),
    (select string_agg(pg_get_indexdef(i.indexrelid), ',' order by 1)
     from pg_index i join pg_class c on c.oid = i.indexrelid
     where c.relnamespace = 'public'::regnamespace),
    (select string_agg(format('%s:%s', t.tgname, t.tgrelid::regclass), ',' order by 1)
     from pg_trigger t where not t.tgisinternal),
    (select string_agg(p.oid::regprocedure::text, ',' order by 1)
     from pg_proc p where p.pronamespace = 'public'::regnamespace),
    (select string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ',' order by 1)
     from pg_constraint k where k.connamespace = 'public'::regnamespace),
    (select string_agg(c.relname || ' ' || pg_get_viewdef(c.oid), ',' order by 1)
     from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'),
    (select string_agg(t.typname, ',' order by 1)
     from pg_type t where t.typnamespace = 'public'::regnamespace),
    (select string_agg(extname, ',' order by 1) from pg_extension),
    (select string_agg(c.relname || '=' || md5(query_to_xml(
                 format('select * from %I order by 1', c.relname), true, false, '')::text),
             ',' order by c.relname)
     from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r')
))";

/// A fresh database holding one version of the original's schema and rows.
async fn original(version: &str) -> (TestDb, PgPool) {
    let db = TestDb::postgres().await;
    let pool = PgPool::connect_with(db.options.clone())
        .await
        .expect("connect to the test database");
    for sql in fixture(version) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("load the fixture");
    }
    (db, pool)
}

fn fixture(version: &str) -> Vec<&'static str> {
    match version {
        "v1" => vec![V1, FACTS],
        "v2" => vec![V2, FACTS],
        "v3" => vec![V3, FACTS, V3_LINKS],
        other => panic!("no fixture {other}"),
    }
}

async fn fingerprint(pool: &PgPool) -> String {
    sqlx::query_scalar(FINGERPRINT)
        .fetch_one(pool)
        .await
        .expect("fingerprint")
}

/// Runs `seedcore ARGS` on the test database; its exit success, stdout and stderr.
fn seedcore(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let url = db.url();
    let output = command(args, &[("PG_DSN", &url), ("PORT", "0")])
        .output()
        .expect("run seedcore");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A lease long enough that the fixture's live lock (taken when it was loaded) is still live
/// on a slow machine, short enough that its lock of an hour ago has expired.
const LEASE: [&str; 2] = ["--lease-seconds", "600"];

fn adopt_with_the_binary(db: &TestDb, extra: &[&str]) -> String {
    let mut args = vec!["db", "adopt", LEASE[0], LEASE[1]];
    args.extend_from_slice(extra);
    let (ok, out, err) = seedcore(db, &args);
    assert!(ok, "db adopt failed:\n{out}\n{err}");
    assert!(out.contains("adopted: 8 tasks and 4 facts"), "{out}");
    out
}

async fn dry_run_changes_nothing(version: &str) {
    let (db, pool) = original(version).await;
    let before = fingerprint(&pool).await;
    let (ok, out, err) = seedcore(&db, &["db", "adopt", "--dry-run"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("found the original service's schema: 8 tasks, 4 facts"),
        "{out}"
    );
    assert!(out.contains("tasks.status: "), "{out}");
    assert!(out.contains("drop trigger "), "{out}");
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(fingerprint(&pool).await, before);
}

async fn old_rows_keep_the_contract(version: &str) {
    let (db, _pool) = original(version).await;
    adopt_with_the_binary(&db, &[]);
    let (ok, out, err) = seedcore(&db, &["db", "init"]);
    assert!(ok, "{out}\n{err}");
    // Every PostgreSQL migration is applied, by adopt itself, and none is left for init.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("the migrations folder")
        .count();
    let expected = format!("0 applied now, {migrations} already applied");
    assert!(out.contains(&expected), "{out}");

    let app = TestApp::on(Arc::new(db), None, ApiSettings::default()).await;
    let (status, task) = app.get(&format!("/api/v1/tasks/{CREATED}")).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let keys: Vec<&String> = task
        .as_object()
        .expect("an object")
        .keys()
        .take(11)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "type",
            "description",
            "params",
            "domain",
            "drift_score",
            "status",
            "result",
            "error",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(task["description"], json!(""));
    assert_eq!(task["params"], json!({}));
    assert_eq!(task["drift_score"], json!(0.0));
    assert_eq!(task["status"], json!("created"));
    assert!(
        task["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2025-02-01T00:00:01")
    );

    let (status, task) = app.get("/api/v1/tasks/a500").await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["id"], json!(COMPLETED));
    assert_eq!(task["result"]["result"], json!({"n": 5}));
    let (status, body) = app.get("/api/v1/tasks/a0000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app.get(&format!("/api/v1/tasks/{RETRY}/status")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], json!("retry"));

    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(list["total"], json!(8), "{list}");
    assert_eq!(list["items"][0]["id"], json!(RETRY));
    assert_eq!(list["items"][7]["id"], json!(CREATED));
    let (_, running) = app.get(&format!("/api/v1/tasks/{RUNNING_EXPIRED}")).await;
    assert_eq!(
        running["status"],
        json!("queued"),
        "an expired lock is rescued"
    );
    let (_, running) = app.get(&format!("/api/v1/tasks/{RUNNING_LIVE}")).await;
    assert_eq!(
        running["status"],
        json!("running"),
        "a live lock stays a lease"
    );

    let (_, fact) = app.get(&format!("/api/v1/facts/{FACT_WITHOUT_TAGS}")).await;
    assert_eq!(fact["tags"], json!([]));
    assert_eq!(fact["meta_data"], json!({}));
    let (_, found) = app.get("/api/v1/facts?q=gradient").await;
    assert_eq!(found["total"], json!(1), "{found}");
    assert_eq!(
        found["items"][0]["id"],
        json!("f3000000-0000-4000-8000-000000000003")
    );
    let (_, found) = app.get("/api/v1/facts?q=COGNITIVE").await;
    assert_eq!(found["total"], json!(1), "{found}");
    let (_, found) = app.get("/api/v1/facts?tag=system").await;
    assert_eq!(found["total"], json!(2), "{found}");
    let (_, found) = app.get("/api/v1/facts?search=organs").await;
    assert_eq!(found["total"], json!(1), "{found}");
    assert_eq!(
        found["items"][0]["id"],
        json!("f2000000-0000-4000-8000-000000000002")
    );
    let (_, facts) = app.get("/api/v1/facts").await;
    assert_eq!(facts["total"], json!(4), "{facts}");

    let (_, ran) = app
        .post_empty(&format!("/api/v1/tasks/{CREATED}/run"))
        .await;
    assert_eq!(ran["status"], json!("queued"));
    let (_, ran) = app
        .post_empty(&format!("/api/v1/tasks/{CANCELLED}/run"))
        .await;
    assert_eq!(ran["status"], json!("queued"));
    let (_, kept) = app
        .post_empty(&format!("/api/v1/tasks/{FAILED}/cancel"))
        .await;
    assert_eq!(kept["status"], json!("failed"));
    assert_eq!(kept["error"], json!("boom"));
    let (_, cancelled) = app
        .post_empty(&format!("/api/v1/tasks/{RUNNING_LIVE}/cancel"))
        .await;
    assert_eq!(cancelled["status"], json!("cancelled"));
    let new_task = app
        .create_task(json!({"type": "echo", "params": {"new": true}, "run_immediately": true}))
        .await;
    let (status, new_fact) = app
        .post(
            "/api/v1/facts",
            json!({"text": "written after adoption", "tags": ["new"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{new_fact}");
    let (_, facts) = app.get("/api/v1/facts").await;
    assert_eq!(facts["total"], json!(5), "{facts}");
    assert_eq!(app.event_kinds(QUEUED).await, ["adopted"]);

    // With workers: the old queued, retry and rescued tasks run, and so does the new one.
    let db = app.stop().await;
    let app = TestApp::on(db, Some(fast_engine()), ApiSettings::default()).await;
    for id in [QUEUED, RETRY, RUNNING_EXPIRED, CREATED, &id_of(&new_task)] {
        let task = app
            .wait_for(id, Duration::from_secs(20), |t| t.status.is_final())
            .await;
        assert_eq!(task.status, TaskStatus::Completed, "{id}: {task:?}");
    }
    // v2's cancelled task has a type no handler serves: it ran, and failed saying so.
    let rerun = app
        .wait_for(CANCELLED, Duration::from_secs(20), |t| t.status.is_final())
        .await;
    assert_eq!(rerun.attempts, 1, "{rerun:?}");
    assert_ne!(rerun.status, TaskStatus::Cancelled);
    assert_eq!(
        app.task(QUEUED).await.result.unwrap()["result"],
        json!({"n": 2})
    );
    assert_eq!(
        app.task(RETRY).await.result.unwrap()["path"],
        json!("escalated")
    );
    let cancelled = app.task(RUNNING_LIVE).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    app.stop().await;
}

async fn failure_midway_leaves_it_as_it_was(version: &str) {
    let (_db, pool) = original(version).await;
    let before = fingerprint(&pool).await;
    let Found::Original(plan) = adopt::prepare(&pool, &AdoptOptions::default())
        .await
        .unwrap()
    else {
        panic!("the fixture is the original's schema");
    };
    let steps = plan.steps.len();
    for fail_at in [steps / 2, steps] {
        let options = AdoptOptions {
            fail_before_step: Some(fail_at),
            ..AdoptOptions::default()
        };
        let failed = adopt::apply::run(&pool, &plan, &options, |_| {}).await;
        assert!(
            matches!(failed, Err(AdoptError::Injected(n)) if n == fail_at),
            "{failed:?}"
        );
        assert_eq!(
            fingerprint(&pool).await,
            before,
            "after failing at step {fail_at}"
        );
    }
    // And it still adopts afterwards.
    adopt::apply::run(&pool, &plan, &AdoptOptions::default(), |_| {})
        .await
        .expect("adopt");
    assert_ne!(fingerprint(&pool).await, before);
}

async fn adopting_twice_changes_nothing(version: &str) {
    let (db, pool) = original(version).await;
    adopt_with_the_binary(&db, &[]);
    let adopted = fingerprint(&pool).await;
    let (ok, out, err) = seedcore(&db, &["db", "adopt"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("nothing to adopt: seedcore already manages this database"),
        "{out}"
    );
    assert_eq!(fingerprint(&pool).await, adopted);
}

macro_rules! every_version {
    ($($version:ident),*) => {$(
        mod $version {
            use crate::common::{Backend::Postgres, run_on};

            #[tokio::test]
            async fn a_dry_run_changes_nothing() {
                run_on(Postgres, super::dry_run_changes_nothing(stringify!($version))).await;
            }

            #[tokio::test]
            async fn adopted_rows_keep_the_contract_and_execute() {
                run_on(Postgres, super::old_rows_keep_the_contract(stringify!($version))).await;
            }

            #[tokio::test]
            async fn a_failure_midway_leaves_the_database_as_it_was() {
                let version = stringify!($version);
                run_on(Postgres, super::failure_midway_leaves_it_as_it_was(version)).await;
            }

            #[tokio::test]
            async fn adopting_twice_changes_nothing() {
                run_on(Postgres, super::adopting_twice_changes_nothing(stringify!($version))).await;
            }
        }
    )*};
}

every_version!(v1, v2, v3);

postgres_only!(db_init_serve_and_worker_refuse_the_original_schema_naming_db_adopt);
async fn db_init_serve_and_worker_refuse_the_original_schema_naming_db_adopt() {
    let (db, pool) = original("v1").await;
    let before = fingerprint(&pool).await;
    for command in [&["db", "init"][..], &["serve"][..], &["worker"][..]] {
        let (ok, out, err) = seedcore(&db, command);
        assert!(!ok, "{command:?} should refuse:\n{out}\n{err}");
        assert!(err.contains("`seedcore db adopt`"), "{command:?}: {err}");
        assert!(!err.contains("already exists"), "{command:?}: {err}");
    }
    assert_eq!(fingerprint(&pool).await, before);
}

postgres_only!(foreign_keys_of_other_tables_still_hold_after_adoption);
async fn foreign_keys_of_other_tables_still_hold_after_adoption() {
    let (db, pool) = original("v3").await;
    adopt_with_the_binary(&db, &[]);
    let links: i64 = sqlx::query_scalar("select count(*) from task_links")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(links, 2);
    sqlx::query("insert into task_links (task_id, fact_id) values ($1::uuid, $2::uuid)")
        .bind(RETRY)
        .bind(FACT_WITHOUT_TAGS)
        .execute(&pool)
        .await
        .expect("a link to an adopted task and fact");
    let dangling = sqlx::query("insert into task_links (task_id) values (gen_random_uuid())")
        .execute(&pool)
        .await
        .expect_err("a link to no task");
    let code = dangling.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("23503"), "{dangling}");
    let kept: i64 = sqlx::query_scalar("select snapshot_id from tasks where id = $1::uuid")
        .bind(COMPLETED)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 15, "a column seedcore does not know keeps its values");

    // Finished tasks move to the history, except the one task_links points at.
    let moved: i64 = sqlx::query_scalar("select seedcore_archive(now(), 1000)")
        .fetch_one(&pool)
        .await
        .expect("the move to the history goes through");
    assert_eq!(moved, 2, "the failed and the cancelled task");
    let stays: String = sqlx::query_scalar("select status from tasks where id = $1::uuid")
        .bind(COMPLETED)
        .fetch_one(&pool)
        .await
        .expect("the referenced task stays in tasks");
    assert_eq!(stays, "completed");
}

postgres_only!(deleting_a_fact_another_table_points_at_is_a_conflict_and_keeps_it);
async fn deleting_a_fact_another_table_points_at_is_a_conflict_and_keeps_it() {
    let (db, _pool) = original("v3").await;
    adopt_with_the_binary(&db, &[]);
    let app = TestApp::on(Arc::new(db), None, ApiSettings::default()).await;
    // task_links points at this fact (v3_links.sql).
    let linked = "f1000000-0000-4000-8000-000000000001";

    let (status, body) = app.delete(&format!("/api/v1/facts/{linked}")).await;

    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("task_links"),
        "{body}"
    );
    let (status, _) = app.get(&format!("/api/v1/facts/{linked}")).await;
    assert_eq!(status, StatusCode::OK, "the fact is still there");
}

postgres_only!(requeue_running_sends_every_running_task_back_to_the_queue);
async fn requeue_running_sends_every_running_task_back_to_the_queue() {
    let (db, pool) = original("v2").await;
    adopt_with_the_binary(&db, &["--requeue-running"]);
    let statuses: Vec<(String, Option<String>, Option<sqlx::types::Uuid>)> = sqlx::query_as(
        "select status, error, lease_token from tasks where id = any($1::uuid[]) order by id",
    )
    .bind([RUNNING_EXPIRED, RUNNING_LIVE])
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        [
            ("queued".to_string(), None, None),
            ("queued".to_string(), None, None)
        ]
    );
}

postgres_only!(the_graph_tasks_view_reads_the_adopted_rows);
async fn the_graph_tasks_view_reads_the_adopted_rows() {
    let (db, pool) = original("v2").await;
    adopt_with_the_binary(&db, &[]);
    let rows: Vec<(String, String)> =
        sqlx::query_as("select id::text, status::text from graph_tasks order by id")
            .fetch_all(&pool)
            .await
            .expect("the view works");
    assert_eq!(rows, [(CANCELLED.to_string(), "cancelled".to_string())]);
}

postgres_only!(a_view_comparing_uppercase_status_labels_still_finds_its_rows);
async fn a_view_comparing_uppercase_status_labels_still_finds_its_rows() {
    let (db, pool) = original("v1").await;
    let out = adopt_with_the_binary(&db, &[]);
    assert!(out.contains("create view active_tasks again"), "{out}");
    let rows: Vec<(String, String)> =
        sqlx::query_as("select id::text, status from active_tasks order by id")
            .fetch_all(&pool)
            .await
            .expect("the view works");
    let expected = [
        (QUEUED, "queued"),
        (RUNNING_EXPIRED, "queued"),
        (RUNNING_LIVE, "running"),
        (RETRY, "retry"),
    ]
    .map(|(id, status)| (id.to_string(), status.to_string()));
    assert_eq!(rows, expected);
}

postgres_only!(a_view_that_cannot_be_created_again_fails_adoption_naming_it_and_changes_nothing);
async fn a_view_that_cannot_be_created_again_fails_adoption_naming_it_and_changes_nothing() {
    let (db, pool) = original("v2").await;
    // Compares the status with every label of the enum: meaningless over text.
    sqlx::raw_sql(
        "create view known_tasks as
             select id from tasks where status = any (enum_range(null::taskstatus))",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before = fingerprint(&pool).await;
    let (ok, out, err) = seedcore(&db, &["db", "adopt"]);
    assert!(!ok, "{out}");
    assert!(err.contains("create view known_tasks again"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(fingerprint(&pool).await, before);
}

postgres_only!(an_unknown_status_stops_adoption_naming_it_before_any_change);
async fn an_unknown_status_stops_adoption_naming_it_before_any_change() {
    let (db, pool) = original("v3").await;
    sqlx::query("update tasks set status = 'paused' where id = $1::uuid")
        .bind(CREATED)
        .execute(&pool)
        .await
        .unwrap();
    let before = fingerprint(&pool).await;
    let (ok, out, err) = seedcore(&db, &["db", "adopt"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("tasks.status holds 'paused' (1 rows)"),
        "{err}"
    );
    assert_eq!(fingerprint(&pool).await, before);
}

postgres_only!(a_cascading_foreign_key_to_tasks_stops_adoption);
async fn a_cascading_foreign_key_to_tasks_stops_adoption() {
    let (db, pool) = original("v3").await;
    sqlx::raw_sql(
        "create table task_notes (task_id uuid references tasks (id) on delete cascade, note text)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before = fingerprint(&pool).await;
    let (ok, out, err) = seedcore(&db, &["db", "adopt", "--dry-run"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("task_notes_task_id_fkey of task_notes"),
        "{err}"
    );
    assert_eq!(fingerprint(&pool).await, before);
}
