//! Tests of the SQLite store that need its private parts: upgrading an old schema, the signals
//! it gives this process, and `q` on metadata.

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{MIGRATOR, SqliteStore};
use crate::model::{Actor, NewFact, NewTask, TaskStatus};
use crate::store::{Claim, FactQuery, Signal, SignalSink, Store};
/// A migrated store on a file of its own, removed with the folder when dropped.
struct Scratch {
    store: SqliteStore,
    folder: PathBuf,
}

impl Scratch {
    async fn new() -> Scratch {
        let folder = std::env::temp_dir().join(format!("seedcore-unit-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        let store = SqliteStore::open(&folder.join("seedcore.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        Scratch { store, folder }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[tokio::test]
async fn upgrading_rebuilds_the_tasks_table_keeping_rows_order_and_triggers() {
    let folder = std::env::temp_dir().join(format!("seedcore-unit-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&folder).unwrap();
    let store = SqliteStore::open(&folder.join("seedcore.db"))
        .await
        .unwrap();
    // The schema before dependencies, with rows written by the code of that time.
    MIGRATOR
        .run_to(20261128000005, &store.writer)
        .await
        .unwrap();
    for (id, status) in [
        ("0002", "queued"),
        ("0001", "queued"),
        ("0003", "completed"),
    ] {
        sqlx::query(
            "insert into tasks (id, type, status, queue, priority) \
             values ('00000000-0000-0000-0000-00000000' || ?1, 'echo', ?2, 'default', 0)",
        )
        .bind(id)
        .bind(status)
        .execute(&store.writer)
        .await
        .unwrap();
    }
    store.migrate().await.unwrap();

    // Arrival order (the rowid) survives: the claim takes 0002 before 0001.
    let claimed = store.claim_tasks(&claim_all("w")).await.unwrap();
    let ids: Vec<String> = claimed.iter().map(|c| c.task.id.to_string()).collect();
    assert!(
        ids[0].ends_with("0002") && ids[1].ends_with("0001"),
        "{ids:?}"
    );
    let done = store
        .get_task(Uuid::parse_str("00000000-0000-0000-0000-000000000003").unwrap())
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    assert!(done.depends_on.is_empty() && !done.run_on_failure);
    // The trail written before the upgrade stays, and the triggers were recreated.
    let events = store.task_events(claimed[0].task.id).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["created", "claimed"]);
    store.close().await;
    let _ = std::fs::remove_dir_all(&folder);
}

fn recorder(store: &SqliteStore) -> (Arc<std::sync::Mutex<Vec<Signal>>>, CancellationToken) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let stop = CancellationToken::new();
    let sink: SignalSink = Arc::new(move |signal| record.lock().unwrap().push(signal));
    // Detached: the watching task ends when `stop` is cancelled.
    drop(store.watch(sink, stop.clone()));
    (seen, stop)
}

fn claim_all(worker: &str) -> Claim {
    Claim::any(worker, 10, Duration::from_secs(30))
}

#[tokio::test]
async fn watchers_hear_of_ready_tasks_and_of_a_running_task_cancelled() {
    let scratch = Scratch::new().await;
    let store = &scratch.store;
    let (seen, stop) = recorder(store);
    let idle = store.create_task(NewTask::of_type("echo")).await.unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "a created task is not ready"
    );
    store.run_task(idle.id, &Actor::anonymous()).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [Signal::TasksReady]);

    let claimed = store.claim_tasks(&claim_all("w")).await.unwrap();
    store.release(&[claimed[0].lease]).await.unwrap();
    store.claim_tasks(&claim_all("w")).await.unwrap();
    store
        .cancel_task(idle.id, &Actor::anonymous())
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Signal::TasksReady,
            Signal::TasksReady,
            Signal::Cancelled(idle.id)
        ]
    );
    let kinds: Vec<String> = store
        .task_events(idle.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "queued",
            "claimed",
            "released",
            "claimed",
            "cancelled"
        ]
    );

    stop.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .create_task(NewTask {
            run_immediately: true,
            ..NewTask::of_type("echo")
        })
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "a stopped watcher hears nothing"
    );
}

#[tokio::test]
async fn q_finds_metadata_values_in_any_script_and_takes_wildcards_literally() {
    let scratch = Scratch::new().await;
    let store = &scratch.store;
    for (text, meta) in [
        ("plain", json!({"city": "Zürich", "note": "50%_off"})),
        ("other", json!({"city": "Bern", "note": "500 off"})),
    ] {
        let fact = NewFact {
            text: text.into(),
            tags: vec!["t".into()],
            meta_data: meta.as_object().unwrap().clone(),
        };
        store.create_fact(fact).await.unwrap();
    }
    let texts = |q: &str| {
        let query = FactQuery {
            q: Some(q.into()),
            limit: 10,
            ..FactQuery::default()
        };
        async move {
            let page = store.list_facts(&query).await.unwrap();
            page.items.into_iter().map(|f| f.text).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        texts("zÜr").await,
        Vec::<String>::new(),
        "non-ASCII is not folded"
    );
    assert_eq!(texts("ZüRICH").await, ["plain"]);
    assert_eq!(texts("50%_").await, ["plain"]);
    assert_eq!(texts("0_o").await, Vec::<String>::new());
    assert_eq!(texts("PLAIN").await, ["plain"]);
}
