mod common;
use common::*;
use serde_json::json;

both_backends!(an_echo_task_completes_with_its_params_as_output);
async fn an_echo_task_completes_with_its_params_as_output() {
    let app = TestApp::start().await;
    let task = app
        .create_task(json!({"type": "echo", "params": {"x": 1}, "run_immediately": true}))
        .await;
    let done = app.finished(&id_of(&task)).await;
    assert_eq!(done.result.unwrap()["result"], json!({"x": 1}));
}

both_backends!(each_variant_runs_on_the_store_its_name_says);
async fn each_variant_runs_on_the_store_its_name_says() {
    let db = TestDb::create().await;
    let store = db.store().await;
    // libtest names a test's thread after the test, unless it runs them all on one thread.
    let thread = std::thread::current();
    let name = thread.name().unwrap_or_default();
    if name.contains("::") {
        assert_eq!(
            name.ends_with("::sqlite"),
            db.backend == Backend::Sqlite,
            "{name}"
        );
    }
    assert_eq!(
        backends::current(),
        Some(db.backend),
        "the database is the variant's"
    );
    match (db.backend, &store) {
        (Backend::Sqlite, TestStore::Sqlite(_)) | (Backend::Postgres, TestStore::Postgres(_)) => {}
        _ => panic!("a {:?} database opened another store", db.backend),
    }
}
